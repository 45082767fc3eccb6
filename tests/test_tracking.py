"""Tests for filterlab.core.tracking: where runs are logged, how they are tagged, and that no run stays RUNNING."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from filterlab.core import tracking
from filterlab.core.errors import Terminated


def test_ensure_database_creates_tables_on_a_fresh_path(migrated_db):
    with sqlite3.connect(migrated_db) as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
    assert {"experiments", "runs", "metrics", "params", "tags"} <= tables


@pytest.fixture
def fake_repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / ".dvc").mkdir(parents=True)
    (repo / "dvc.yaml").write_text("stages: {}\n")
    return repo


def test_repo_root_of_a_queued_experiment_is_the_original_repo(fake_repo, monkeypatch):
    worker = fake_repo / ".dvc" / "tmp" / "exps" / "tmpab12cd"
    worker.mkdir(parents=True)
    # The temp copy is a repo of its own; the database must still be the original's.
    (worker / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert tracking.repo_root(worker / "pipeline") == fake_repo
    monkeypatch.chdir(worker)
    assert tracking.repo_root() == fake_repo


def test_repo_root_walks_up_to_dvc_yaml(fake_repo, monkeypatch):
    monkeypatch.delenv("DVC_ROOT", raising=False)
    (fake_repo / "src" / "deep").mkdir(parents=True)
    assert tracking.repo_root(fake_repo / "src" / "deep") == fake_repo


def test_tracking_uri_defaults_to_absolute_sqlite_in_repo_root(fake_repo, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.chdir(fake_repo)
    uri = tracking.tracking_uri()
    assert uri == f"sqlite:///{fake_repo.resolve() / 'mlflow.db'}"
    assert Path(uri.removeprefix("sqlite:///")).is_absolute()


def test_tracking_uri_environment_overrides(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking.tracking_uri() == "http://127.0.0.1:5999"


def test_sweep_id_comes_from_environment_or_is_manual(monkeypatch):
    monkeypatch.setenv(tracking.SWEEP_ENV, "sweep-42")
    assert tracking.sweep_id() == "sweep-42"
    monkeypatch.delenv(tracking.SWEEP_ENV)
    assert tracking.sweep_id().startswith("manual-")  # pytest is not started by dvc


def test_artifact_root_sits_beside_a_sqlite_database():
    assert tracking.artifact_root("sqlite:////data/x/mlflow.db", "train") == "file:///data/x/mlartifacts/train"
    assert tracking.artifact_root("http://127.0.0.1:5000", "train") is None


def _run(run_id):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking.tracking_uri()).get_run(run_id)


def test_finished_run_has_params_tags_metrics_and_artifacts(mlflow_uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_EXP_NAME", "exp-test")
    artifact = tmp_path / "note.txt"
    artifact.write_text("hello")
    with tracking.start_run("unit", "run-a", params={"epochs": 3}, tags={"data.source": "bundled"}) as run:
        run.log_metrics({"loss": 0.5, "accuracy": 0.8}, step=1)
        run.log_metrics({"loss": 0.25, "accuracy": 0.9}, step=2)
        run.log_artifact(artifact)
    record = _run(run.run_id)
    assert record.info.status == "FINISHED" and record.info.run_name == "run-a (exp-test)"
    assert record.data.params == {"epochs": "3"}
    tags = record.data.tags
    assert tags[tracking.SWEEP_TAG] == "test-sweep"
    assert tags["data.source"] == "bundled" and tags["dvc.exp_name"] == "exp-test"
    assert record.data.metrics == {"loss": 0.25, "accuracy": 0.9}
    from mlflow.tracking import MlflowClient

    history = MlflowClient(tracking_uri=mlflow_uri).get_metric_history(run.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.25)]
    # Artifacts go beside the database, not into ./mlruns of whatever directory the stage ran in.
    stored = Path(mlflow_uri.removeprefix("sqlite:///")).parent / "mlartifacts"
    assert [path.name for path in (stored / "unit").rglob("note.txt")] == ["note.txt"]
    assert not (tmp_path / "mlruns").exists()
    assert run.seconds > 0


def test_finished_run_takes_more_without_reopening(mlflow_uri):
    with tracking.start_run("unit", "first", tags={"key": "abc"}) as run:
        pass
    before = _run(run.run_id)
    later = tracking.finished_run("unit", {"key": "abc"})
    assert later is not None and later.run_id == run.run_id
    later.log_metrics({"similarity": 0.5})
    after = _run(run.run_id)
    assert after.info.status == "FINISHED" and after.info.end_time == before.info.end_time
    assert after.data.metrics == {"similarity": 0.5}
    assert tracking.finished_run("unit", {"key": "other"}) is None
    assert tracking.finished_run("no-such-experiment", {"key": "abc"}) is None


def test_run_names_are_unique_per_sweep_and_metrics_rounded(mlflow_uri, monkeypatch):
    names = []
    for sweep in ("sweep-1", "sweep-2"):
        monkeypatch.setenv("FILTERLAB_SWEEP_ID", sweep)
        with tracking.start_run("unit", "f8_k3_s1") as run:
            run.log_metrics({"test_accuracy": np.float32(0.9675)})
        names.append(_run(run.run_id).info.run_name)
    assert names == ["f8_k3_s1 (sweep-1)", "f8_k3_s1 (sweep-2)"]
    assert _run(run.run_id).data.metrics["test_accuracy"] == 0.9675  # not 0.9674999713897705
    monkeypatch.setenv("DVC_EXP_NAME", "tidy-exp")
    with tracking.start_run("unit", "f8_k3_s1") as run:
        pass
    assert _run(run.run_id).info.run_name == "f8_k3_s1 (tidy-exp)"


def test_experiments_open_in_classic_mode_with_a_description(mlflow_uri):
    from mlflow.tracking import MlflowClient

    with tracking.start_run("train", "f8_k3_s1"):
        pass
    tags = MlflowClient(mlflow_uri).get_experiment_by_name("train").tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    assert tags["mlflow.note.content"].startswith("One run per grid variant")


def test_exception_marks_run_failed(mlflow_uri):
    with pytest.raises(RuntimeError, match="boom"):
        with tracking.start_run("unit", "fails") as run:
            raise RuntimeError("boom")
    assert _run(run.run_id).info.status == "FAILED"


def test_keyboard_interrupt_marks_run_killed(mlflow_uri):
    with pytest.raises(KeyboardInterrupt):
        with tracking.start_run("unit", "ctrl-c") as run:
            raise KeyboardInterrupt
    assert _run(run.run_id).info.status == "KILLED"


def test_real_sigterm_marks_run_killed_and_restores_handler(mlflow_uri):
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as caught:
        with tracking.start_run("unit", "sigterm") as run:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises long before this ends
            pytest.fail("SIGTERM did not interrupt the run")
    assert caught.value.signum == signal.SIGTERM
    assert _run(run.run_id).info.status == "KILLED"
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.mark.slow
def test_processes_racing_on_a_fresh_database_both_succeed(tmp_path):
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    code = "import sys; from filterlab.core.tracking import ensure_database; ensure_database(sys.argv[1])"
    racers = [subprocess.Popen([sys.executable, "-c", code, uri], stderr=subprocess.PIPE) for _ in range(2)]
    for racer in racers:
        _, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err.decode()[-2000:]
    with sqlite3.connect(tmp_path / "fresh" / "mlflow.db") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
    assert {"experiments", "runs", "metrics", "params", "tags"} <= tables
