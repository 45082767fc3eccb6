"""The team MLflow server on a real PostgreSQL: a tiny pipeline, then three queued experiments, two at a time.

A throwaway PostgreSQL cluster and `mlflow server` (PostgreSQL backend, proxied artifacts)
run on loopback (fixtures in team.py); every stage logs over HTTP. After `dvc repro` and
`dvc queue start -j 2` of three grid values, every run must be there exactly once,
FINISHED, with its metric history and its images; none is left RUNNING. Checked through
the REST API, as a teammate's client would.
"""

import json
import subprocess
import time

import pytest

from helpers import api
from team import committed_copy, pg_mlflow_server, postgres, ran, sh  # noqa: F401 (fixtures)

pytestmark = pytest.mark.team

# Two epochs, so every run has a metric history of more than one point.
EPOCHS = 2
QUEUED = (5, 6, 7)  # one new filters value per experiment: trains one new variant each


def wait_for_queue(copy, env, seconds: float = 1500) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = sh(["dvc", "queue", "status"], copy, env).stdout
        if not any(word in status for word in ("Queued", "Running")):
            return status
        time.sleep(5)
    pytest.fail(f"queue still busy after {seconds:.0f} s:\n{status}")


def runs_of(base: str, experiment: str) -> list[dict]:
    found = api(base, "/api/2.0/mlflow/experiments/get-by-name", query={"experiment_name": experiment})
    body = {"experiment_ids": [found["experiment"]["experiment_id"]], "max_results": 1000}
    return api(base, "/api/2.0/mlflow/runs/search", body).get("runs", [])


def artifacts(base: str, run_id: str, path: str = "") -> list[str]:
    query = {"run_id": run_id, **({"path": path} if path else {})}
    return [f["path"] for f in api(base, "/api/2.0/mlflow/artifacts/list", query=query).get("files", [])]


def test_pipeline_and_queued_experiments_log_each_run_once_to_postgres(pg_mlflow_server, tmp_path):  # noqa: F811
    base = pg_mlflow_server
    copy, env = committed_copy(tmp_path / "repo", {"train.epochs": EPOCHS})
    env["MLFLOW_TRACKING_URI"] = base
    first = sh(["dvc", "repro"], copy, env)
    assert "train@4-3-2" in ran(first.stdout)
    sh(["git", "add", "-A"], copy, env)
    sh(["git", "commit", "-q", "-m", "first run"], copy, env)
    before = {name: len(runs_of(base, name)) for name in ("baselines", "probes")}

    for filters in QUEUED:
        sh(
            ["dvc", "exp", "run", "--queue", "-n", f"filters-{filters}", "-S", f"train.grid.filters=[{filters}]"],
            copy,
            env,
        )
    # Output to a file, not a pipe: the two workers it starts inherit it, and a pipe would hold this call
    # until they exit. wait_for_queue then watches `dvc queue status`.
    with open(tmp_path / "queue-start.log", "w") as log:
        subprocess.run(
            ["dvc", "queue", "start", "-j", "2"],
            cwd=copy,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=300,
        )
    status = wait_for_queue(copy, env)
    assert status.count("Success") == len(QUEUED), status

    train = runs_of(base, "train")
    variants = sorted({t["key"]: t["value"] for t in run["data"]["tags"]}["variant"] for run in train)
    assert variants == sorted(f"f{f}_k3_s2" for f in (4, *QUEUED)), variants  # each exactly once
    for run in train:
        run_id = run["info"]["run_id"]
        assert run["info"]["status"] == "FINISHED", run["info"]
        history = api(base, "/api/2.0/mlflow/metrics/get-history", query={"run_id": run_id, "metric_key": "loss"})
        assert len({m["step"] for m in history["metrics"]}) == len(history["metrics"]) == EPOCHS, history
        # The whole grid per step (key conv1_filters); conv1_filters_0-15 is the slider's legible crop.
        images = [
            p
            for p in artifacts(base, run_id, "images")
            if p.endswith(".png") and p.rsplit("/", 1)[-1].startswith("conv1_filters+")
        ]
        assert len(images) == EPOCHS + 1, images  # the filter grid at init and after each epoch
        assert "filters/init_vs_learned.png" in artifacts(base, run_id, "filters")
    names = [run["info"]["run_name"] for run in train]
    assert len(set(names)) == len(names), names
    # The queued experiments changed only the grid: baselines and probes were not re-run, so not re-logged.
    for name, count in before.items():
        assert len(runs_of(base, name)) == count >= 1, name
    every = [run for name in ("train", "baselines", "probes") for run in runs_of(base, name)]
    assert not [run["info"] for run in every if run["info"]["status"] != "FINISHED"], json.dumps(every)[:2000]
    assert any((tmp_path / "artifacts").rglob("init_vs_learned.png"))  # stored by the server
