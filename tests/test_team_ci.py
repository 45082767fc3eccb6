"""`.ci/pipeline`, the workflow's pipeline step, against a local directory remote.

A first run on "main" retrains the tiny grid and fills the remote; a second clone on a branch
adds one filters value, pulls the run-cache and must train exactly the new variant (its
filters stage, log_figures, the explorer and the report follow), with no tracking URI set, so its MLflow runs land in
./mlflow.db and ./mlartifacts through the script's throwaway server, ready for `make ui`.
"""

import sqlite3

import pytest

from helpers import TINY, write_params
from team import committed_copy, git_clone, ran, sh

pytestmark = pytest.mark.team

FIRST = [
    "baselines",
    "download",
    "explorer",
    "filters@4-3-2",
    "log_figures",
    "prepare",
    "probes",
    "report",
    "train@4-3-2",
    "validate",
]


def test_ci_pipeline_fills_the_remote_then_retrains_only_the_new_variant(tmp_path):
    remote = tmp_path / "remote"
    a, env_a = committed_copy(tmp_path / "a")
    first = sh([".ci/pipeline"], a, {**env_a, "DVC_REMOTE_URL": str(remote), "GITHUB_REF": "refs/heads/main"})
    assert ran(first.stdout) == FIRST, first.stdout
    assert any((remote / "runs").rglob("*")), "the main branch pushes its run-cache"

    pushed = sorted(p.relative_to(remote) for p in remote.rglob("*"))
    b, env_b = git_clone(a, tmp_path / "b")
    write_params(b / "params.yaml", {**TINY, "train.grid": {**TINY["train.grid"], "filters": [4, 6]}})
    sh(["git", "commit", "-q", "-am", "one more filters value"], b, env_b)
    env_b.pop("MLFLOW_TRACKING_URI")
    second = sh([".ci/pipeline"], b, {**env_b, "DVC_REMOTE_URL": str(remote), "GITHUB_REF": "refs/heads/feature"})
    # validate re-reads the edited params.yaml; its stamp is unchanged, so nothing else re-runs for it.
    expected = ["explorer", "filters@6-3-2", "log_figures", "report", "train@6-3-2", "validate"]
    assert ran(second.stdout) == expected, second.stdout
    assert "Stage 'train@4-3-2' is cached - skipping run" in second.stdout
    assert (b / "models/f4_k3_s2/model.keras").is_file() and (b / "models/f6_k3_s2/model.keras").is_file()
    assert sorted(p.relative_to(remote) for p in remote.rglob("*")) == pushed, "only main pushes"

    # The MLflow pair CI uploads: the one new training run, its artifacts under ./mlartifacts.
    with sqlite3.connect(b / "mlflow.db") as db:
        rows = db.execute(
            "select r.name, r.status, r.artifact_uri from runs r join experiments e"
            " on r.experiment_id = e.experiment_id where e.name = 'train'"
        ).fetchall()
    assert [(name.split(" ")[0], status) for name, status, _ in rows] == [("f6_k3_s2", "FINISHED")], rows
    assert rows[0][2].startswith("mlflow-artifacts:/"), rows  # relative to ./mlartifacts, not this machine
    assert any((b / "mlartifacts").rglob("init_vs_learned.png"))
