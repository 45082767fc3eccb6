"""`make compare` (filterlab.compare): the grid in 120 columns, with Δ against a commit or an experiment."""

import json
import subprocess

import yaml

from filterlab import compare
from helpers import GRID, ROOT, make_reports


def _git(repo, *args):
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def _project(tmp_path):
    """A git repo holding params.yaml (the fake grid) and the fake reports, committed once."""
    repo = tmp_path / "repo"
    make_reports(repo / "reports")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["grid"] = {
        "filters": list(GRID.filters),
        "kernel_size": list(GRID.kernel_size),
        "stride": list(GRID.stride),
    }
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "first")
    return repo


def _set_accuracy(repo, name, accuracy):
    path = repo / "reports" / "metrics" / "train" / f"{name}.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"accuracy": accuracy}))


def test_rows_are_best_first_with_paired_verdicts_and_fit_120_columns(tmp_path):
    text = compare.compare(_project(tmp_path), None)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 120
    assert [line.split()[0] for line in lines[2:6]] == ["f8_k7_s1", "f4_k7_s1", "f4_k3_s1", "f8_k3_s1"]
    assert lines[2].split()[1:4] == ["97.00%", "95.00–99.00%", "best"]
    assert "below p=0.002" in lines[3] and "0.60 / 0.40" in lines[4]


def test_the_widest_possible_row_still_fits(tmp_path):
    """The longest names and cells the params allow: nothing is cut, the table is simply that narrow."""
    row = ("f512_k28_s28", "100.00%", "99.96–100.00%", "below p=1e-300", "0.99 / 0.99", "+100.00")
    text = compare.render([row], "0123456789abcdef0123")
    assert max(map(len, text.splitlines())) <= 120 and "f512_k28_s28" in text and text.endswith("+100.00")


def test_delta_against_a_commit_and_an_experiment_name(tmp_path):
    repo = _project(tmp_path)
    _set_accuracy(repo, "f4_k3_s1", 0.93)
    first = compare.compare(repo, "HEAD")
    row = next(line for line in first.splitlines() if line.startswith("f4_k3_s1"))
    assert row.endswith("+2.00") and "Δ vs HEAD" in first
    assert next(line for line in first.splitlines() if line.startswith("f8_k7_s1")).endswith("+0.00")
    # A DVC experiment is a ref under refs/exps named after the experiment.
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "exp")
    _git(repo, "update-ref", "refs/exps/ab/cdef/wide-lr", "HEAD")
    _git(repo, "reset", "-q", "--hard", "HEAD~1")
    against_exp = compare.compare(repo, "wide-lr")
    assert next(line for line in against_exp.splitlines() if line.startswith("f4_k3_s1")).endswith("-2.00")


def test_an_unknown_revision_is_one_line(tmp_path, capsys):
    repo = _project(tmp_path)
    assert compare.main(["no-such-thing", "--repo", str(repo)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no-such-thing: no such revision or experiment" in err


def test_the_verdict_follows_the_table_wrapped_to_120(tmp_path):
    repo = _project(tmp_path)
    (repo / "reports" / "verdict.json").write_text(
        json.dumps(
            {
                "data_source": "x",
                "test_digits": 500,
                "kernel_sizes": {
                    "7": {"variants": 2, "best": {"name": "f8_k7_s1", "accuracy": 0.97, "ci95": [0.95, 0.99]}}
                },
            }
        )
    )
    text = compare.compare(repo, None)
    assert "7×7 filters (2 variants, best f8_k7_s1 at 97.00%" in text and max(map(len, text.splitlines())) <= 120
