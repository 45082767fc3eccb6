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

from filterlab.core import run_context, tracking
from filterlab.core.errors import Terminated
from helpers import closed_port


def test_ensure_database_creates_tables_on_a_fresh_path(migrated_db):
    with sqlite3.connect(migrated_db) as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
    assert {"experiments", "runs", "metrics", "params", "tags"} <= tables


def test_ensure_database_checks_a_store_once_per_process_until_it_is_replaced(tmp_path, monkeypatch):
    checks = []
    real = tracking._check_schema
    monkeypatch.setattr(tracking, "_check_schema", lambda uri, path: (checks.append(path), real(uri, path)))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.ensure_database(uri)
    tracking.ensure_database(uri)
    assert len(checks) == 1  # the baselines stage opens 14 runs: one schema check, not 14
    (tmp_path / "mlflow.db").rename(tmp_path / "moved.db")
    tracking.ensure_database(uri)  # gone: made again, and checked again
    assert len(checks) == 2 and (tmp_path / "mlflow.db").is_file()


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
    assert run_context.repo_root(worker / "pipeline") == fake_repo
    monkeypatch.chdir(worker)
    assert run_context.repo_root() == fake_repo


def test_repo_root_walks_up_to_dvc_yaml(fake_repo, monkeypatch):
    monkeypatch.delenv("DVC_ROOT", raising=False)
    (fake_repo / "src" / "deep").mkdir(parents=True)
    assert run_context.repo_root(fake_repo / "src" / "deep") == fake_repo


def test_tracking_uri_defaults_to_absolute_sqlite_in_repo_root(fake_repo, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.chdir(fake_repo)
    uri = run_context.tracking_uri()
    assert uri == f"sqlite:///{fake_repo.resolve() / 'mlflow.db'}"
    assert Path(uri.removeprefix("sqlite:///")).is_absolute()


def test_tracking_uri_environment_overrides(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert run_context.tracking_uri() == "http://127.0.0.1:5999"


def test_sweep_id_comes_from_environment_or_is_manual(monkeypatch):
    monkeypatch.setenv(run_context.SWEEP_ENV, "sweep-42")
    assert run_context.sweep_id() == "sweep-42"
    monkeypatch.delenv(run_context.SWEEP_ENV)
    assert run_context.sweep_id().startswith("manual-")  # pytest is not started by dvc


def test_artifact_root_sits_beside_a_sqlite_database():
    assert run_context.artifact_root("sqlite:////data/x/mlflow.db", "train") == "file:///data/x/mlartifacts/train"
    assert run_context.artifact_root("http://127.0.0.1:5000", "train") is None


def _run(run_id):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=run_context.tracking_uri()).get_run(run_id)


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
    assert tags[run_context.SWEEP_TAG] == "test-sweep"
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


STOPPED_BY = {signal.SIGTERM: Terminated, signal.SIGINT: KeyboardInterrupt}


@pytest.mark.parametrize("signum", list(STOPPED_BY))
def test_a_signal_inside_a_sqlite_write_lets_it_commit_and_the_run_ends_killed(mlflow_uri, monkeypatch, signum):
    """The signal lands inside the database transaction of a metric write, where a stage most often is when
    DVC stops it (the per-epoch log). Cut there, the open transaction's lock made ending the run fail."""
    from sqlalchemy.orm import Session

    real_commit = Session.commit
    signalled = []

    def commit_with_a_signal_inside(session):
        if not signalled:  # the first commit after the patch: the metric write's
            signalled.append(signum)
            os.kill(os.getpid(), signum)
        return real_commit(session)

    handlers = {number: signal.getsignal(number) for number in STOPPED_BY}
    with pytest.raises(STOPPED_BY[signum]):
        with tracking.start_run("unit", "signal-in-commit") as run, monkeypatch.context() as patched:
            patched.setattr(Session, "commit", commit_with_a_signal_inside)
            run.log_metrics({"loss": 0.5}, step=1)
            pytest.fail("the signal was not acted on once the write ended")
    assert signalled == [signum]
    finished = _run(run.run_id)
    assert finished.info.status == "KILLED"
    assert finished.data.metrics == {"loss": 0.5}  # the write that was under way went through whole
    assert run.incomplete is None
    assert {number: signal.getsignal(number) for number in STOPPED_BY} == handlers


def test_a_signal_while_the_run_is_created_ends_it_killed(mlflow_uri, monkeypatch):
    """Held while MLflow creates the run, the signal acts once the stage holds the run, so it is ended KILLED,
    not left to MLflow's exit hook (which ends it FINISHED); the run is born with the tags that find it."""
    import mlflow

    from filterlab.core.errors import raise_terminated

    real_start = mlflow.start_run

    def start_with_a_signal_inside(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real_start(*args, **kwargs)

    monkeypatch.setattr(mlflow, "start_run", start_with_a_signal_inside)
    before = signal.signal(signal.SIGTERM, raise_terminated)  # as under a stage
    try:
        with pytest.raises(Terminated):
            with tracking.start_run("unit", "signal-in-start"):
                pytest.fail("the body ran although SIGTERM came while the run was created")
        assert signal.getsignal(signal.SIGTERM) is raise_terminated
    finally:
        signal.signal(signal.SIGTERM, before)
        while mlflow.active_run() is not None:  # a regression must not leave later tests a run
            mlflow.end_run()
    runs = mlflow.tracking.MlflowClient(mlflow_uri).search_runs(
        [mlflow.get_experiment_by_name("unit").experiment_id], "tags.mlflow.runName LIKE 'signal-in-start%'"
    )
    assert [run.info.status for run in runs] == ["KILLED"]
    assert runs[0].data.tags[tracking.RUN_TAG] == "signal-in-start"


def test_held_signals_keep_their_handlers_whatever_comes_when():
    """The first signal acts once the block ends, with the handler that was in place; one that comes after the
    block but before its own handler is back is acted on at once; another thread changes nothing."""
    import threading

    from filterlab.core.errors import raise_terminated, signals_held

    before = {number: signal.getsignal(number) for number in STOPPED_BY}
    signal.signal(signal.SIGTERM, raise_terminated)  # as under a stage
    try:
        with pytest.raises(Terminated), signals_held():
            hold = signal.getsignal(signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGINT)  # only the first signal acts
            held = "the block ends"
        assert held
        assert signal.getsignal(signal.SIGTERM) is raise_terminated
        assert signal.getsignal(signal.SIGINT) is before[signal.SIGINT]
        # What a signal meets if it comes after the block but before its own handler is back: the hold, which
        # then acts at once with the real handler.
        with pytest.raises(Terminated):
            hold(signal.SIGTERM, None)
        with pytest.raises(KeyboardInterrupt):
            hold(signal.SIGINT, None)
    finally:
        signal.signal(signal.SIGTERM, before[signal.SIGTERM])

    seen = []

    def worker():
        with signals_held():
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [before[signal.SIGTERM]]


def test_an_ignored_signal_does_not_displace_a_held_one():
    from filterlab.core.errors import raise_terminated, signals_held

    before = {number: signal.getsignal(number) for number in STOPPED_BY}
    signal.signal(signal.SIGTERM, raise_terminated)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job's Ctrl-C
    try:
        with pytest.raises(Terminated), signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def test_first_line_speaks_through_the_database_driver_and_cuts_at_a_word():
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import OperationalError

    wrapped = OperationalError("UPDATE runs SET status=?", {}, sqlite3.OperationalError("database is locked"))
    wrapped.add_detail("raised as a result of Query-invoked autoflush; consider using a session.no_autoflush")
    assert tracking.first_line(wrapped) == "database is locked"
    try:  # how MLflow's store session passes SQLAlchemy's errors on
        raise MlflowException(message=wrapped) from wrapped
    except MlflowException as error:
        assert tracking.first_line(error) == "database is locked"
    words = tracking.first_line(RuntimeError("word " * 100))
    assert len(words) <= tracking.FIRST_LINE_CHARS and words.endswith("word…")
    url = tracking.first_line(RuntimeError("at http://server/" + "x" * 400))
    assert len(url) == tracking.FIRST_LINE_CHARS and url.startswith("at http://server/xxx")


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


def _tables(path):
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("select name from sqlite_master where type='table'")}


@pytest.fixture
def tiny_disk():
    """Every sqlite connection opened meanwhile may grow to 60 pages (240 KB): sqlite then fails with
    "database or disk is full" exactly as on a full tmpfs, partway through MLflow's migrations."""
    import sqlalchemy
    from sqlalchemy import event

    def limit(connection, _record):
        connection.execute("PRAGMA max_page_count = 60")

    event.listen(sqlalchemy.engine.Engine, "connect", limit)
    yield lambda: event.remove(sqlalchemy.engine.Engine, "connect", limit)
    if event.contains(sqlalchemy.engine.Engine, "connect", limit):
        event.remove(sqlalchemy.engine.Engine, "connect", limit)


def test_disk_full_while_creating_the_database_leaves_nothing_half_made(tmp_path, monkeypatch, tiny_disk):
    from filterlab.core.errors import DiskFull

    db_path = tmp_path / "store" / "mlflow.db"
    with pytest.raises(DiskFull) as caught:
        tracking.ensure_database(f"sqlite:///{db_path}")
    assert str(caught.value).startswith(f"{db_path}: no space left on the device") and "\n" not in str(caught.value)
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["mlflow.db.lock"]  # no half-made store, no temp
    tiny_disk()  # space freed: the next stage creates the store and logs to it
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db_path}")
    monkeypatch.setenv("FILTERLAB_SWEEP_ID", "test-sweep")
    with tracking.start_run("unit", "after-disk-full") as run:
        run.log_metrics({"loss": 1.0})
    assert _run(run.run_id).info.status == "FINISHED"


def test_a_half_made_store_is_set_aside_and_rebuilt_with_one_line(tmp_path, capsys, tiny_disk):
    """What disk-full left before this fix (MLflow migrating in place): some tables, an intermediate schema
    version, and every later stage failing on `table ... already exists`."""
    import sqlalchemy
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    db_path = tmp_path / "mlflow.db"
    with pytest.raises(sqlalchemy.exc.OperationalError, match="database or disk is full"):
        SqlAlchemyStore(f"sqlite:///{db_path}", (tmp_path / "artifacts").as_uri())
    tiny_disk()
    SqlAlchemyStore._engine_map.pop(f"sqlite:///{db_path}").dispose()
    half_tables = _tables(db_path)
    tracking.ensure_database(f"sqlite:///{db_path}")
    err = capsys.readouterr().err
    ours = [line for line in err.splitlines() if "mlflow.store" not in line]  # MLflow logs its migrations itself
    assert len(ours) == 1 and ours[0].startswith("warning: ") and "was half-created" in ours[0], err
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("mlflow.db.half-made-")]
    assert len(kept) == 1 and _tables(kept[0]) == half_tables
    assert {"experiments", "runs", "metrics", "evaluation_datasets"} <= _tables(db_path)


def test_a_corrupt_store_is_one_line(tmp_path):
    from filterlab.core.errors import TrackingError

    db_path = tmp_path / "mlflow.db"
    db_path.write_bytes(b"this is not an sqlite database, it was overwritten by accident\n" * 100)
    with pytest.raises(TrackingError) as caught:
        tracking.ensure_database(f"sqlite:///{db_path}")
    message = str(caught.value)
    assert message.startswith(f"{db_path}: not a usable MLflow database") and "\n" not in message, message
    assert db_path.read_bytes().startswith(b"this is not")  # kept for the user to look at


def test_disk_full_while_logging_is_one_line_naming_the_store(mlflow_uri, monkeypatch):
    import mlflow

    from filterlab.core.errors import DiskFull

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    with pytest.raises(DiskFull, match=r"mlflow\.db: no space left on the device"):
        with tracking.start_run("unit", "full") as run:
            monkeypatch.setattr(mlflow, "log_metrics", full)
            run.log_metrics({"loss": 1.0})
    assert _run(run.run_id).info.status == "FAILED"


def test_a_run_left_running_by_kill_9_is_marked_killed_by_the_next_run(mlflow_uri, capsys):
    from mlflow.tracking import MlflowClient

    from filterlab.core import parent_death

    code = (
        "import os, signal\nfrom filterlab.core import tracking\n"
        "with tracking.start_run('unit', 'f8_k3_s1') as run:\n"
        "    print(run.run_id, flush=True)\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**os.environ}
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    dead_id = killed.stdout.split()[0]
    assert _run(dead_id).info.status == "RUNNING"
    client = MlflowClient(mlflow_uri)
    # A live process's run of the same name (this test process) and another variant's dead run stay RUNNING.
    experiment = client.get_experiment_by_name("unit").experiment_id
    live = client.create_run(experiment, tags={tracking.RUN_TAG: "f8_k3_s1", **parent_death.identity()})
    other = client.create_run(experiment, tags={**_run(dead_id).data.tags, tracking.RUN_TAG: "f8_k3_s2"})
    with tracking.start_run("unit", "f8_k3_s1") as run:
        pass
    assert _run(dead_id).info.status == "KILLED"
    assert _run(run.run_id).info.status == "FINISHED"
    assert _run(live.info.run_id).info.status == "RUNNING" and _run(other.info.run_id).info.status == "RUNNING"
    err = capsys.readouterr().err
    assert f"({dead_id}) was left RUNNING by process" in err and err.count("marked KILLED") == 1


def test_a_store_with_runs_at_another_schema_is_left_alone_with_one_line(mlflow_uri):
    with tracking.start_run("unit", "kept"):
        pass
    db_path = Path(mlflow_uri.removeprefix("sqlite:///"))
    with sqlite3.connect(db_path) as db:
        db.execute("update alembic_version set version_num = '0584bdc529eb'")  # an older MLflow's schema
    # A fresh process, as a stage is: this one's MLflow has the store open and cached.
    code = (
        "import sys\nfrom filterlab.core import stage, tracking\n"
        "sys.exit(stage.run(lambda: tracking.ensure_database(sys.argv[1])))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, mlflow_uri], capture_output=True, text=True, timeout=300)
    ours = [line for line in result.stderr.splitlines() if "mlflow.store" not in line]
    assert result.returncode == 1 and len(ours) == 1, result.stderr[-3000:]
    assert ours[0].startswith(f"error: {db_path}: ") and "mlflow db upgrade" in ours[0], ours
    assert not list(db_path.parent.glob("mlflow.db.half-made-*"))


def test_a_store_gone_mid_run_leaves_one_warning_and_the_stage_goes_on(mlflow_uri, monkeypatch, capsys):
    import mlflow
    from mlflow.exceptions import MlflowException

    def gone(*args, **kwargs):
        raise MlflowException("API request to http://127.0.0.1:5001/api/2.0/mlflow/runs/log-batch failed\nretries")

    monkeypatch.setenv("DVC_STAGE", "train@8-3-1")
    with tracking.start_run("train", "f8_k3_s1") as run:
        run.log_metrics({"loss": 1.0}, step=1)
        monkeypatch.setattr(mlflow, "log_metrics", gone)
        monkeypatch.setattr(mlflow.tracking.MlflowClient, "set_terminated", gone)  # what end_run calls last
        run.log_metrics({"loss": 0.5}, step=2)
        run.log_metrics({"loss": 0.25}, step=3)  # skipped: no second attempt, no second warning
        run.set_tags({"after": "outage"})
        finished = "the stage's own work"
    assert finished and run.incomplete and "log-batch failed" in run.incomplete
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: MLflow run")]
    assert len(warnings) == 1, warnings
    assert "python -m filterlab.log_missing train@8-3-1" in warnings[0] and "retries" not in warnings[0]
    monkeypatch.undo()
    assert mlflow.active_run() is None  # forgotten locally, so the next run can start


def test_an_unreachable_server_is_one_line_before_any_work(monkeypatch):
    port = closed_port()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://mlflow:s3cret@127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    started = time.monotonic()
    with pytest.raises(tracking.TrackingError) as caught, tracking.start_run("train", "f8_k3_s1"):
        pytest.fail("the run body must not start")
    assert time.monotonic() - started < 30
    message = str(caught.value)
    assert "\n" not in message and "s3cret" not in message and f"127.0.0.1:{port}" in message


def test_http_deadlines_are_set_once_and_the_environment_wins(monkeypatch):
    for key in tracking.HTTP_DEADLINES:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "90")
    tracking.bound_http_calls()
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "90"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == tracking.HTTP_DEADLINES["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]


def test_a_copied_clone_refuses_the_original_artifact_folder(tmp_path, monkeypatch, mlflow_uri):
    """A copied mlflow.db still names the original's mlartifacts/: one line, and nothing written there."""
    import shutil

    with tracking.start_run("train", "f8_k3_s1") as run:
        run.log_metrics({"loss": 1.0})
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copyfile(tmp_path / "mlflow.db", copy / "mlflow.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{copy / 'mlflow.db'}")
    before = sorted(path for path in tmp_path.rglob("*") if "copy" not in path.parts)
    with pytest.raises(tracking.TrackingError, match=r"not in this clone .* move mlflow.db and mlartifacts/ aside"):
        with tracking.start_run("train", "f8_k3_s1"):
            pytest.fail("the run body must not start")
    assert sorted(path for path in tmp_path.rglob("*") if "copy" not in path.parts) == before


def test_internal_tags_sit_under_mlflow_system_prefix(mlflow_uri):
    from mlflow.tracking import MlflowClient

    with tracking.start_run("train", "f8_k3_s1") as run:
        pass
    tags = MlflowClient(mlflow_uri).get_run(run.run_id).data.tags
    internal = [key for key in tags if "pid" in key or "host" in key or key.endswith(".run")]
    assert internal and all(key.startswith("mlflow.filterlab.") for key in internal), internal


def test_mlflow_internals_resolve_on_the_pinned_mlflow_and_fail_loudly_when_gone():
    assert callable(tracking.mlflow_internal("mlflow.store.db.utils", "_get_latest_schema_revision"))
    assert isinstance(
        tracking.mlflow_internal("mlflow.store.tracking.sqlalchemy_store", "SqlAlchemyStore._engine_map"), dict
    )
    with pytest.raises(
        tracking.TrackingError, match=r"MLflow \S+ has no mlflow.store.db.utils._renamed_in_a_new_release"
    ):
        tracking.mlflow_internal("mlflow.store.db.utils", "_renamed_in_a_new_release")
