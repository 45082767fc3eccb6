"""Parameter validation: every bad input names its key and what is allowed, before any work.

Bad `data`, `prepare` and `seed` values go through the real stage scripts as users meet
them (exit 2, one stderr line, no traceback, nothing written); the other sections go
through `load_section` with a shrunken copy of the real params.yaml.
"""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from filterlab.config import sections
from filterlab.config.params import load_section, load_seed, read_params
from filterlab.core.errors import ParamError

ROOT = Path(__file__).resolve().parents[1]
REAL = read_params(ROOT / "params.yaml")


def _changed(path: str, value):
    """A deep copy of the real params with dotted `path` set to `value` (or deleted when value is ...)."""
    params = copy.deepcopy(REAL)
    *parents, last = path.split(".")
    node = params
    for name in parents:
        node = node[name]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return params


def test_the_real_params_file_is_valid():
    assert load_seed(REAL) == REAL["seed"]
    for name, cls in [("data", sections.DataParams), ("prepare", sections.PrepareParams),
                      ("train", sections.TrainParams), ("baselines", sections.BaselinesParams),
                      ("filters", sections.FiltersParams), ("probes", sections.ProbesParams),
                      ("report", sections.ReportParams)]:
        assert isinstance(load_section(REAL, name, cls), cls)


STAGE_CASES = [
    # (stage, dotted key changed, new value, key named in the message, words that must appear)
    ("download", "data.source", "web", "data.source", "'auto', 'remote', 'bundled'"),
    ("download", "data.mirrors", ["ftp://example.org/mnist/"], "data.mirrors", "http://, https:// or file://"),
    ("download", "data.mirrors", [], "data.mirrors", "non-empty list"),
    ("download", "data.timeout_seconds", 0, "data.timeout_seconds", "out of range"),
    ("download", "data.retries", "two", "data.retries", "wrong type"),
    ("download", "data.retries", True, "data.retries", "wrong type"),
    ("download", "data.retry", 3, "data.retry", "unknown key; allowed keys: source, mirrors"),
    ("download", "data.retries", ..., "data.retries", "missing"),
    ("download", "data", ..., "data", "missing section"),
    ("prepare", "prepare.val_fraction", 0.9, "prepare.val_fraction", "(0, 0.5]"),
    ("prepare", "prepare.bundled_test_fraction", ..., "prepare.bundled_test_fraction", "missing"),
    ("prepare", "seed", -1, "seed", "[0, 4294967295]"),
    ("prepare", "seed", 1.5, "seed", "wrong type"),
]


@pytest.mark.parametrize(("stage", "path", "value", "key", "words"), STAGE_CASES,
                         ids=[f"{case[0]}:{case[1]}={case[2]!r}" for case in STAGE_CASES])
def test_stage_refuses_bad_params_before_any_work(tmp_path, stage, path, value, key, words):
    params = tmp_path / "bad.yaml"
    params.write_text(yaml.safe_dump(_changed(path, value)))
    out = tmp_path / "out"
    arguments = {
        "download": ["--out", str(out / "raw")],
        # A raw folder that does not exist: reaching it would be exit 1, not 2.
        "prepare": ["--raw", str(tmp_path / "no-raw"), "--out", str(out / "mnist.npz"),
                    "--metrics", str(out / "data.json")],
    }[stage]
    result = subprocess.run([sys.executable, str(ROOT / "pipeline" / f"{stage}.py"), "--params", str(params),
                             *arguments], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: params.yaml: {key}: ") and words in lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists()
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


@pytest.mark.parametrize(("path", "value", "section", "cls", "key", "words"), SECTION_CASES,
                         ids=[f"{case[0]}={case[1]!r}" for case in SECTION_CASES])
def test_section_refuses_bad_value(path, value, section, cls, key, words):
    with pytest.raises(ParamError) as caught:
        load_section(_changed(path, value), section, cls)
    assert caught.value.key == key
    assert str(caught.value).startswith(f"params.yaml: {key}: ") and words in str(caught.value)


def test_unreadable_params_files(tmp_path):
    with pytest.raises(ParamError, match="file not found"):
        read_params(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: [unclosed\n")
    with pytest.raises(ParamError, match="not valid YAML"):
        read_params(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- seed\n- data\n")
    with pytest.raises(ParamError, match="must be a mapping of sections"):
        read_params(listing)
