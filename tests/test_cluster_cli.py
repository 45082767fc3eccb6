"""What `python -m filterlab.cluster` refuses before it starts anything, and the one line a failed stage leaves.

No Dask, no server: the refusals come before a scheduler is contacted (the fan-out itself is tests/test_cluster.py,
`make test-cluster`). Each refusal is one line on stderr and exit code 2.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from filterlab.cluster import submit, workspace

ROOT = Path(__file__).resolve().parents[1]


def cluster(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "filterlab.cluster", "--scheduler", "tcp://127.0.0.1:9", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    "uri, words",
    [
        (None, "MLFLOW_TRACKING_URI is not set"),
        ("sqlite:////tmp/mlflow.db", "cluster workers on other machines cannot share this machine's sqlite file"),
        ("file:///tmp/mlruns", "is a local folder"),
        ("./mlruns", "is a local folder"),
    ],
)
def test_a_tracking_store_workers_cannot_share_is_refused_in_one_line(uri, words):
    env = {key: value for key, value in os.environ.items() if key != "MLFLOW_TRACKING_URI"}
    if uri is not None:
        env["MLFLOW_TRACKING_URI"] = uri
    refused = cluster(ROOT, env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: MLFLOW_TRACKING_URI") and words in lines[0], lines
    assert "make server" in lines[0]


def test_a_tracking_server_is_accepted_and_its_password_never_shown():
    assert submit.tracking_refusal("http://127.0.0.1:5001") is None
    assert submit.tracking_refusal("postgresql://mlflow@db:5432/mlflow") is None
    line = submit.tracking_refusal("sqlite:///x.db") or ""
    assert "sqlite" in line
    assert "s3cret" not in (submit.tracking_refusal("file://me:s3cret@host/x") or "")


def _repo(path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
    }
    path.mkdir()
    (path / "dvc.yaml").write_text("stages: {}\n")
    (path / "params.yaml").write_text("seed: 1\n")
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "x"]):
        subprocess.run(command, cwd=path, env=env, check=True, capture_output=True)
    return env


def test_uncommitted_changes_to_what_the_stages_run_are_refused(tmp_path):
    env = _repo(tmp_path / "repo")
    (tmp_path / "repo" / "params.yaml").write_text("seed: 2\n")
    refused = cluster(tmp_path / "repo", env)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "error: uncommitted changes to params.yaml: commit them first, the workers clone the commit"
    )


def test_a_git_url_with_a_password_is_refused_without_showing_it(tmp_path):
    env = _repo(tmp_path / "repo")
    refused = cluster(tmp_path / "repo", env, "--git-url", "https://me:s3cret@git.example.invalid/team/repo.git")
    assert refused.returncode == 2
    assert "s3cret" not in refused.stderr + refused.stdout
    assert refused.stderr.startswith("error: --git-url holds a password") and refused.stderr.count("\n") == 1


def test_remote_options_reach_tasks_without_credentials(tmp_path):
    dvc_dir = tmp_path / ".dvc"
    dvc_dir.mkdir()
    (dvc_dir / "config").write_text("[core]\n    remote = team\n['remote \"team\"']\n    url = s3://bucket/dvc\n")
    (dvc_dir / "config.local").write_text(
        "['remote \"team\"']\n    secret_access_key = s3cret\n    access_key_id = AKIA\n"
        "    endpointurl = http://s3:9000\n"
    )
    name, options = submit.remote_settings(tmp_path, None)
    assert name == "team" and options["url"] == "s3://bucket/dvc" and options["endpointurl"] == "http://s3:9000"
    assert "s3cret" not in str(options) and "AKIA" not in str(options), options


def test_a_relative_directory_remote_reaches_tasks_as_an_absolute_path(tmp_path):
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text("['remote \"team\"']\n    url = ../storage\n")
    assert submit.remote_settings(tmp_path, "team")[1]["url"] == str((tmp_path / "storage").resolve())


def test_no_remote_is_one_line(tmp_path):
    (tmp_path / ".dvc").mkdir()
    with pytest.raises(submit.Refused, match="no default DVC remote"):
        submit.remote_settings(tmp_path, None)


@pytest.mark.parametrize(
    "lines, expected",
    [
        (
            ["Running stage 'train@4-3-2':", "error: data/prepared/mnist.npz: not a readable npz", "ERROR: failed"],
            "data/prepared/mnist.npz: not a readable npz",
        ),
        (
            [
                "Traceback (most recent call last):",
                '  File "x.py", line 1',
                "NameError: name 'x' is not defined",
                "ERROR: failed to reproduce 'train@4-3-2': exited with 1",
            ],
            "NameError: name 'x' is not defined",
        ),
        (
            ["ERROR: failed to reproduce 'train@4-3-2': exited with 1"],
            "failed to reproduce 'train@4-3-2': exited with 1",
        ),
        (["fatal: could not read from https://me:s3cret@host/x"], "fatal: could not read from https://me:***@host/x"),
    ],
)
def test_a_failed_command_leaves_the_line_that_says_why(lines, expected):
    assert workspace.error_line(lines) == expected
