"""Parameter validation: every bad input names its key and what is allowed, before any work.

Bad `data`, `prepare` and `seed` values go through the real stages' `main` as DVC calls
them (exit 2, one stderr line, no traceback, nothing written), and once through
`python pipeline/download.py` for the process's exit status; the other sections go
through `load_section` with a changed copy of the real params.yaml.
"""

import subprocess
import sys

import pytest

from filterlab.config import sections
from filterlab.config.params import load_numerics, load_section, load_seed, read_params
from filterlab.core.errors import ParamError
from helpers import DELETE, ROOT, load_stage


def test_the_real_params_file_is_valid():
    real = read_params(ROOT / "params.yaml")
    assert set(real) == set(sections.TOP_LEVEL)
    assert load_seed(real) == real["seed"] and load_numerics(real) == "avx2"
    for name, cls in [
        ("data", sections.DataParams),
        ("prepare", sections.PrepareParams),
        ("train", sections.TrainParams),
        ("baselines", sections.BaselinesParams),
        ("figures", sections.FiguresParams),
        ("filters", sections.FiltersParams),
        ("probes", sections.ProbesParams),
        ("report", sections.ReportParams),
    ]:
        assert isinstance(load_section(real, name, cls), cls)


STAGE_CASES = [
    # (stage, dotted key changed, new value, key named in the message, words that must appear)
    ("download", "data.source", "web", "data.source", "'auto', 'remote', 'pypi', 'bundled'"),
    ("download", "data.mirrors", ["ftp://example.org/mnist/"], "data.mirrors", "http://, https:// or file://"),
    ("download", "data.mirrors", [], "data.mirrors", "non-empty list"),
    ("download", "data.timeout_seconds", 0, "data.timeout_seconds", "out of range"),
    ("download", "data.retries", "two", "data.retries", "wrong type"),
    ("download", "data.retries", True, "data.retries", "wrong type"),
    ("download", "data.retry", 3, "data.retry", "unknown key; allowed keys: source, mirrors"),
    ("download", "data.retries", DELETE, "data.retries", "missing"),
    ("download", "data", DELETE, "data", "missing section"),
    ("prepare", "prepare.val_fraction", 0.9, "prepare.val_fraction", "(0, 0.5]"),
    ("prepare", "prepare.bundled_test_fraction", DELETE, "prepare.bundled_test_fraction", "missing"),
    ("prepare", "seed", -1, "seed", "[0, 4294967295]"),
    ("prepare", "seed", 1.5, "seed", "wrong type"),
]


def _stage_argv(stage: str, params, tmp_path) -> list[str]:
    out = tmp_path / "out"
    return [
        "--params",
        str(params),
        *{
            "download": ["--out", str(out / "raw")],
            # A raw folder that does not exist: reaching it would be exit 1, not 2.
            "prepare": [
                "--raw",
                str(tmp_path / "no-raw"),
                "--out",
                str(out / "mnist.npz"),
                "--details",
                str(out / "data.json"),
            ],
        }[stage],
    ]


def _case_id(value) -> str:
    return "<deleted>" if value is DELETE else repr(value)


@pytest.mark.parametrize(
    ("stage", "path", "value", "key", "words"),
    STAGE_CASES,
    ids=[f"{case[0]}:{case[1]}={_case_id(case[2])}" for case in STAGE_CASES],
)
def test_stage_refuses_bad_params_before_any_work(
    tmp_path, monkeypatch, capsys, params_file, stage, path, value, key, words
):
    monkeypatch.chdir(tmp_path)
    argv = _stage_argv(stage, params_file({path: value}, name="bad.yaml"), tmp_path)
    assert load_stage(stage).main(argv) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: params.yaml: {key}: ") and words in lines[0]
    assert "Traceback" not in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bad.yaml"]


def test_stage_script_exits_2_with_one_line(tmp_path, params_file):
    """The process boundary: `python pipeline/download.py` itself exits 2, one stderr line, no traceback."""
    params = params_file({"data.source": "web"}, name="bad.yaml")
    result = subprocess.run(
        [sys.executable, str(ROOT / "pipeline" / "download.py"), *_stage_argv("download", params, tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: params.yaml: data.source: "), result.stderr
    assert "'auto', 'remote', 'pypi', 'bundled'" in lines[0]
    assert "Traceback" not in result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bad.yaml"]


SECTION_CASES = [
    ("train.grid.kernel_size", [30], "train", sections.TrainParams, "train.grid.kernel_size", "[1, 28]"),
    ("train.grid.kernel_size", [27], "train", sections.TrainParams, "train.grid", "kernel_size 27 with stride 1"),
    ("train.grid.stride", [1, 20], "train", sections.TrainParams, "train.grid", "kernel_size 3 with stride 20"),
    ("train.grid.filters", [8, 8], "train", sections.TrainParams, "train.grid.filters", "distinct"),
    ("train.dropout", 1.0, "train", sections.TrainParams, "train.dropout", "[0, 1)"),
    ("train.grid", [3, 5], "train", sections.TrainParams, "train.grid", "must be a mapping"),
    ("probes.single_image.digit", 10, "probes", sections.ProbesParams, "probes.single_image.digit", "[0, 9]"),
    ("probes.single_image.n_filters", 0, "probes", sections.ProbesParams, "probes.single_image.n_filters", "[1, 64]"),
    ("probes.peak.vector", [0.5, 0.1], "probes", sections.ProbesParams, "probes.peak.vector", "at least 3"),
    ("probes.peak.vector", [0.5, "x", 1], "probes", sections.ProbesParams, "probes.peak.vector[1]", "wrong type"),
    ("filters.gif_frame_ms", 5, "filters", sections.FiltersParams, "filters.gif_frame_ms", "[20, 10000]"),
    ("report.title", "   ", "report", sections.ReportParams, "report.title", "non-empty"),
]


@pytest.mark.parametrize(
    ("path", "value", "section", "cls", "key", "words"),
    SECTION_CASES,
    ids=[f"{case[0]}={case[1]!r}" for case in SECTION_CASES],
)
def test_section_refuses_bad_value(params_file, path, value, section, cls, key, words):
    params = read_params(params_file({path: value}))
    with pytest.raises(ParamError) as caught:
        load_section(params, section, cls)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"params.yaml: {key}: ") and words in str(caught.value)


def test_unreadable_params_files(tmp_path, params_file):
    with pytest.raises(ParamError, match="file not found"):
        read_params(tmp_path / "absent.yaml")
    with pytest.raises(ParamError, match="not valid YAML"):
        read_params(params_file(name="broken.yaml", text="data: [unclosed\n"))
    with pytest.raises(ParamError, match="must be a mapping of sections"):
        read_params(params_file(name="list.yaml", text="- seed\n- data\n"))


def test_yaml_errors_name_the_file_once_and_the_line(params_file):
    broken = params_file(name="broken.yaml", text="seed: 1\ndata: [unclosed\nnumerics: avx2\n")
    with pytest.raises(ParamError) as caught:
        read_params(broken)
    message = str(caught.value)
    assert message.startswith(f"{broken}: line ") and message.count(str(broken)) == 1, message
    assert "params.yaml: " not in message.replace(str(broken), "") and "not valid YAML" in message


def test_duplicate_key_is_refused_with_both_lines(params_file):
    # PyYAML keeps the last value and DVC refuses the file: the stages must refuse it too.
    text = (ROOT / "params.yaml").read_text(encoding="utf-8").replace("  epochs: 8\n", "  epochs: 8\n  epochs: 2\n")
    with pytest.raises(ParamError, match=r"line \d+: duplicate key 'epochs' \(first given on line \d+\)"):
        read_params(params_file(text=text))


BAD_FILES = [
    ("duplicate key", lambda tmp: (tmp / "p.yaml", b"seed: 1\nseed: 2\n"), "line 2: duplicate key 'seed'"),
    ("not UTF-8", lambda tmp: (tmp / "p.yaml", b"seed: 1\nreport:\n  title: caf\xe9\n"), "line 3: not UTF-8"),
    ("folder", lambda tmp: (tmp / "folder", None), "is a folder"),
]


@pytest.mark.parametrize(("case", "make", "words"), BAD_FILES, ids=[case[0] for case in BAD_FILES])
def test_stage_refuses_unreadable_params_files_in_one_line(tmp_path, monkeypatch, capsys, case, make, words):
    monkeypatch.chdir(tmp_path)
    path, data = make(tmp_path)
    if data is None:
        path.mkdir()
    else:
        path.write_bytes(data)
    assert load_stage("download").main(["--params", str(path), "--out", str(tmp_path / "raw")]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [err.strip()] and err.startswith(f"error: {path}: ") and words in err, err
    assert not (tmp_path / "raw").exists()


VALIDATE_CASES = [
    # What DVC's own params comparison misses or only some stage would notice.
    ({"train.epochs": True}, "train.epochs: True has the wrong type"),
    ({"train.epochs": "1"}, "train.epochs: '1' has the wrong type"),
    ({"trian": {"epochs": 1}}, "trian: unknown top-level section"),
    ({"baselines.kernels": ["sobel_x", "sobel_z"]}, "baselines.kernels: unknown kernel 'sobel_z'"),
    ({"probes.recovery.kernels": ["gaussian_5x5"]}, "only 3x3 kernels"),
    ({"report.title": 3}, "report.title: 3 has the wrong type"),
    # What validate estimates, so that the stage would not fail (or exhaust memory) after DVC removed its outputs.
    ({"figures.colormap": "RdBu_rr"}, "figures.colormap: 'RdBu_rr' is not a matplotlib colormap"),
    ({"probes.peak.sequence_length": 1000}, "probes.peak.sequence_length: 1000: only 0.00% of random sequences"),
    (
        {"probes.peak.n_sequences": 1_000_000, "probes.peak.sequence_length": 1000},
        "probes.peak.n_sequences: 1000000 sequences of length 1000 need about 59.6 GiB at once",
    ),
]


@pytest.mark.parametrize(("overrides", "words"), VALIDATE_CASES, ids=[case[1].split(":")[0] for case in VALIDATE_CASES])
def test_validate_stage_refuses_what_any_stage_would(tmp_path, capsys, params_file, overrides, words):
    stamp = tmp_path / "params.checked"
    assert load_stage("validate").main(["--params", str(params_file(overrides)), "--out", str(stamp)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and words in err, err
    assert not stamp.exists()


def test_a_large_grid_is_accepted_with_one_loud_line(tmp_path, capsys, params_file):
    grid = {"filters": list(range(1, 21)), "kernel_size": [3, 5, 7], "stride": [1, 2]}  # 120 variants
    stamp = tmp_path / "params.checked"
    assert load_stage("validate").main(["--params", str(params_file({"train.grid": grid})), "--out", str(stamp)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("WARNING: train.grid has 120 variants (more than 100)")
    assert stamp.is_file()


def test_the_peak_probe_gives_up_instead_of_drawing_forever():
    """Called directly with a length validate refuses: a bounded number of draws, then one ParamError."""
    import numpy as np

    from filterlab.core.errors import ParamError
    from filterlab.probes import peak

    with pytest.raises(ParamError, match="probes.peak.sequence_length: 200: too few random sequences"):
        peak.make_sequences(20, 200, 0.05, np.random.default_rng(0))


def test_validate_stamp_does_not_depend_on_the_values(tmp_path, params_file):
    """The stamp is every later stage's dep: its bytes must change only with the schema, never with a value."""
    stamps = []
    for index, overrides in enumerate(({}, {"train.epochs": 3, "report.title": "Other", "seed": 7})):
        stamp = tmp_path / f"stamp{index}"
        params = params_file(overrides, name=f"params{index}.yaml")
        assert load_stage("validate").main(["--params", str(params), "--out", str(stamp)]) == 0
        stamps.append(stamp.read_bytes())
    assert stamps[0] == stamps[1] and b"train: grid(filters, kernel_size, stride), epochs" in stamps[0]
