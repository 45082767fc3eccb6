"""The pull-request comment: values quoted from params and metrics are escaped, tables stay tables."""

import subprocess

from filterlab.report import pr_comment

HOSTILE = "@octocat <img src=x> | x"


def test_a_hostile_param_value_neither_pings_nor_injects_nor_breaks_the_table():
    params = {"params.yaml": {"report.title": {"old": "Results", "new": HOSTILE}, "train.epochs": {"old": 3, "new": 5}}}
    lines = pr_comment.params_table(params)
    row = next(line for line in lines if "report.title" in line)
    assert row.count(" | ") == 3  # four cells: the | inside the value is escaped
    assert "@\u2060octocat" in row and "\\<img src=x\\>" in row and " <img" not in row  # literal, not HTML
    assert any("train.epochs" in line and "| 3 | 5 |" in line for line in lines)


def test_metrics_rows_are_sorted_by_the_size_of_the_change_and_escaped():
    metrics = {
        "reports/metrics/train/f8_k3_s1.json": {
            "accuracy": {"old": 0.98, "new": 0.99, "diff": 0.01},
            "loss": {"old": 0.07, "new": 0.02, "diff": -0.05},
        },
        "reports/metrics/train/<b>.json": {"accuracy": {"old": None, "new": 0.5}},
    }
    lines = pr_comment.metrics_table(metrics)
    assert lines[2].split(" | ")[1] == "loss" and lines[3].split(" | ")[1] == "accuracy"
    assert all("<b>" not in line for line in lines) and any("| – |" in line for line in lines)


def test_the_whole_comment_from_a_real_repo(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    subprocess.run(["dvc", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "params.yaml").write_text("report:\n  title: Results\n")
    (tmp_path / "dvc.yaml").write_text("stages:\n  s:\n    cmd: echo\n    params: [report.title]\n")
    git("add", "-A")
    git("commit", "-qm", "base")
    (tmp_path / "params.yaml").write_text(f"report:\n  title: '{HOSTILE}'\n")
    command = ["python", "-m", "filterlab.report.pr_comment", "HEAD", "--summary", "none.md"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "## Params against HEAD" in done.stdout and "@\u2060octocat" in done.stdout
    assert " <img" not in done.stdout and "No metrics changed." in done.stdout
