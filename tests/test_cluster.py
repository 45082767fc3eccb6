"""The grid fanned out to a Dask cluster on loopback, against a sequential `dvc repro` of the same commit.

Real processes on 127.0.0.1: `dask scheduler` and two `dask worker` processes (each offering CPU=1, the tiny
params' train.threads), `mlflow server` on a throwaway PostgreSQL (team.py), the DVC remote a folder, or moto's S3
server in the worker-kill case. The grid is 4 tiny variants. `python -m filterlab.cluster` must train each variant
exactly once across both workers; the gather step (`dvc repro --pull`) must restore every fanned-out stage and run
only log_figures and the report; every output must equal, byte for byte, a sequential `dvc repro` of the commit;
the server must hold one FINISHED run per variant and none RUNNING. A worker killed with SIGKILL mid-training has its
task rerun on the other worker with the same result. Re-submitting an unchanged grid submits nothing.
"""

import filecmp
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from filterlab.core import parent_death
from helpers import api
from team import committed_copy, dask_cluster, git_clone, pg_mlflow_server, postgres, ran, s3_server, sh, wait_for  # noqa: F401

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(3600)]

GRID = {"filters": [4, 6], "kernel_size": [3], "stride": [1, 2]}
VARIANTS = [f"f{f}_k3_s{s}" for f in (4, 6) for s in (1, 2)]
TRAIN = [f"train@{f}-3-{s}" for f in (4, 6) for s in (1, 2)]
FANNED = sorted(["baselines", "probes", *TRAIN, *(name.replace("train@", "filters@") for name in TRAIN)])
OUTPUT_FOLDERS = ("data", "models", "reports")


@pytest.fixture(scope="module", autouse=True)
def _distributed():
    pytest.importorskip("distributed", reason="Dask's distributed is in the cluster extra: make test-cluster")


@pytest.fixture(scope="module")
def commit(tmp_path_factory):
    """A committed copy of the project with the 4-variant tiny grid: the commit every clone here checks out."""
    return committed_copy(tmp_path_factory.mktemp("cluster") / "origin", {"train.grid": GRID})


@pytest.fixture(scope="module")
def sequential(commit, tmp_path_factory):
    """A clone of the commit after one plain, sequential `dvc repro` (its own sqlite MLflow store)."""
    origin, _env = commit
    clone, env = git_clone(origin, tmp_path_factory.mktemp("sequential") / "repo")
    first = sh(["dvc", "repro"], clone, env, timeout=3000)
    assert set(TRAIN) <= set(ran(first.stdout))
    return clone


def cluster_command(address: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "filterlab.cluster", "--scheduler", address, *extra]


def runs_by_status(base: str, experiment: str | None = None) -> dict[str, list[dict]]:
    """Every run on the server (of one experiment, or of all), by status."""
    experiments = api(base, "/api/2.0/mlflow/experiments/search", {"max_results": 1000}).get("experiments", [])
    ids = [e["experiment_id"] for e in experiments if experiment is None or e["name"] == experiment]
    found = api(base, "/api/2.0/mlflow/runs/search", {"experiment_ids": ids, "max_results": 1000}).get("runs", [])
    by_status: dict[str, list[dict]] = {}
    for run in found:
        by_status.setdefault(run["info"]["status"], []).append(run)
    return by_status


def variant_of(run: dict) -> str | None:
    tags = {tag["key"]: tag["value"] for tag in run["data"].get("tags", [])}
    return tags.get("variant")


def same_files(left: Path, right: Path, folders=OUTPUT_FOLDERS) -> list[str]:
    """Relative paths that differ (or exist on one side only) under `folders` of two clones."""
    differ = []
    for folder in folders:
        names = {p.relative_to(left) for p in (left / folder).rglob("*") if p.is_file()}
        names |= {p.relative_to(right) for p in (right / folder).rglob("*") if p.is_file()}
        for name in sorted(names):
            a, b = left / name, right / name
            if not (a.is_file() and b.is_file() and filecmp.cmp(a, b, shallow=False)):
                differ.append(str(name))
    return differ


def test_the_grid_trains_once_across_two_workers_and_the_gather_restores_it(
    commit,
    sequential,
    pg_mlflow_server,  # noqa: F811
    tmp_path,
):
    base = pg_mlflow_server
    origin, _env = commit
    clone, env = git_clone(origin, tmp_path / "submitter")
    env["MLFLOW_TRACKING_URI"] = base
    sh(["dvc", "remote", "add", "--local", "-d", "team", str(tmp_path / "remote")], clone, env)
    with dask_cluster(tmp_path, env) as (address, _workers):
        summary = tmp_path / "summary.json"
        fanned = sh(cluster_command(address, "--summary", str(summary)), clone, env, timeout=3000)
        assert not (clone / "dvc.lock").exists()  # the tasks never write the submitter's lock: the gather does
        tasks = json.loads(summary.read_text())["tasks"]
        assert sorted(tasks) == FANNED, fanned.stdout
        assert {task["status"] for task in tasks.values()} == {"ran"}, tasks
        assert len({task["worker"] for task in tasks.values()}) == 2, tasks  # both workers took tasks

        assert not runs_by_status(base).get("RUNNING"), runs_by_status(base).get("RUNNING")
        statuses = runs_by_status(base, "train")
        assert sorted(variant_of(run) for run in statuses["FINISHED"]) == VARIANTS, statuses  # each exactly once
        assert set(statuses) == {"FINISHED"}, statuses

        gather = sh(["dvc", "repro", "--pull"], clone, env, timeout=3000)
        # No stage of the fan-out retrained; the stages that read every variant run here.
        assert ran(gather.stdout) == ["explorer", "log_figures", "report"], gather.stdout
        for stage in FANNED:
            assert f"Stage '{stage}' is cached - skipping run" in gather.stdout, stage
        assert "up to date" in sh(["dvc", "status"], clone, env).stdout
        assert (clone / "dvc.lock").read_text() == (sequential / "dvc.lock").read_text()
        assert same_files(clone, sequential) == []

        logged = runs_by_status(base)
        again = sh(cluster_command(address), clone, env, timeout=3000)
        assert "0 to run" in again.stdout and "nothing to submit" in again.stdout, again.stdout
        assert runs_by_status(base) == logged  # nothing ran, so nothing logged


def _training_run(base: str) -> dict | None:
    running = runs_by_status(base, "train").get("RUNNING", [])
    return running[0] if running else None


def _worker_running(pid: int, workers: list[subprocess.Popen]) -> subprocess.Popen:
    """The `dask worker` process (the nanny) among the ancestors of `pid`: train.py < dvc < the workspace process
    (its own session) < the worker process < the nanny."""
    import psutil

    ancestors = {process.pid for process in psutil.Process(pid).parents()}
    found = [worker for worker in workers if worker.pid in ancestors]
    assert len(found) == 1, f"process {pid} runs under {len(found)} of the workers"
    return found[0]


def test_a_worker_killed_mid_training_has_its_task_rerun_on_the_other(
    commit,
    sequential,
    pg_mlflow_server,  # noqa: F811
    s3_server,  # noqa: F811
    tmp_path,
):
    pytest.importorskip("dvc_s3", reason="the DVC S3 plugin is in the team extra: make test-team")
    base = pg_mlflow_server
    endpoint, credentials = s3_server
    origin, _env = commit
    clone, env = git_clone(origin, tmp_path / "submitter")
    env.update({"MLFLOW_TRACKING_URI": base, **credentials})
    sh(["dvc", "remote", "add", "--local", "-d", "team", "s3://filterlab/dvc"], clone, env)
    sh(["dvc", "remote", "modify", "--local", "team", "endpointurl", endpoint], clone, env)
    with dask_cluster(tmp_path, env) as (address, workers):
        log = tmp_path / "fan-out.log"
        with open(log, "w") as out:
            fan_out = subprocess.Popen(
                cluster_command(address, "--stages", "train"), cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            run = wait_for(lambda: _training_run(base), 1500, "a RUNNING training run", log)
            tags = {tag["key"]: tag["value"] for tag in run["data"]["tags"]}
            victim = _worker_running(int(tags[parent_death.PID_TAG]), workers)
            os.killpg(victim.pid, signal.SIGKILL)  # the nanny and its worker process: a machine lost mid-fit
            assert fan_out.wait(timeout=2400) == 0, log.read_text()[-4000:]
        finally:
            if fan_out.poll() is None:
                fan_out.kill()
        output = log.read_text()
        assert f"retry: train@{variant_of(run)[1:].replace('_k', '-').replace('_s', '-')}" in output, output[-4000:]

    assert not runs_by_status(base).get("RUNNING"), runs_by_status(base).get("RUNNING")
    statuses = runs_by_status(base, "train")
    assert sorted(variant_of(r) for r in statuses["FINISHED"]) == VARIANTS, statuses  # the killed one too, once
    assert [variant_of(r) for r in statuses.get("KILLED", [])] == [variant_of(run)], statuses

    restore = sh(["dvc", "repro", "--pull", *TRAIN], clone, env, timeout=1500)
    assert ran(restore.stdout) == [], restore.stdout
    train_outputs = [f"models/{v}" for v in VARIANTS] + ["reports/metrics/train", "reports/details/train"]
    assert same_files(clone, sequential, folders=(*train_outputs, "reports/plots/train")) == []


def test_a_stage_that_fails_for_real_stops_the_fan_out_with_its_one_line(pg_mlflow_server, tmp_path):  # noqa: F811
    origin, env = committed_copy(tmp_path / "broken", {"train.grid": GRID})
    train = origin / "pipeline" / "train.py"
    train.write_text(train.read_text().replace("stage.entry(main)", 'raise SystemExit("error: broken on purpose")'))
    sh(["git", "commit", "-qam", "a train stage that fails"], origin, env)
    env["MLFLOW_TRACKING_URI"] = pg_mlflow_server
    sh(["dvc", "remote", "add", "--local", "-d", "team", str(tmp_path / "remote")], origin, env)
    with dask_cluster(tmp_path, env) as (address, _workers):
        failed = subprocess.run(
            cluster_command(address, "--stages", "train"), cwd=origin, env=env, capture_output=True, text=True
        )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    last = failed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: train@") and "broken on purpose; the other tasks are stopped" in last, last
    assert "Traceback" not in failed.stderr.split("[upstream]")[-1]
    assert not runs_by_status(pg_mlflow_server).get("RUNNING")
    entries = [path for path in (tmp_path / "remote" / "runs").rglob("*") if path.is_file()]
    assert len(entries) == 3, entries  # validate, download, prepare: nothing of a failed stage was pushed
