"""The MLflow database stops in the middle of a fit: the stage finishes and writes every output, says once that
its run is incomplete, and `filterlab.log_missing` logs the whole run once the database is back.

Real processes on loopback: a throwaway PostgreSQL cluster behind `mlflow server`, the train stage as its own
process logging over HTTP, `pg_ctl -m immediate stop` at the first epoch.
"""

import subprocess
import sys
import time

import pytest

from filterlab import log_missing
from filterlab.config.params import read_params
from helpers import ROOT
from team import pg_ctl, pg_mlflow_server, postgres  # noqa: F401 (fixtures, used by name)
from test_train_stage import stage_args

pytestmark = pytest.mark.team
# Enough epochs that the fit is still going when the database stops after the first.
OUTAGE_TRAIN = {
    "train.grid": {"filters": [4, 8], "kernel_size": [5], "stride": [2]},
    "train.epochs": 30,
    "train.batch_size": 16,
    "train.threads": 1,
}


def _until_usable(url: str, seconds: float = 90) -> None:
    from mlflow.tracking import MlflowClient

    deadline = time.monotonic() + seconds
    while True:
        try:
            MlflowClient(url).search_experiments(max_results=1)
            return
        except Exception:  # the server's pool reconnecting to the restarted database
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def test_a_database_outage_mid_fit_costs_only_the_mlflow_run(  # noqa: F811
    postgres,  # noqa: F811
    pg_mlflow_server,  # noqa: F811
    tmp_path,
    tiny_npz,
    params_file,
    monkeypatch,  # noqa: F811
):
    from mlflow.tracking import MlflowClient

    params = params_file(OUTAGE_TRAIN)
    argv = stage_args(tmp_path, params, tiny_npz)
    env = {
        "PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin",
        "MLFLOW_TRACKING_URI": pg_mlflow_server,
        "DVC_STAGE": "train@4-5-2",
        "FILTERLAB_SWEEP_ID": "outage",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    stage = subprocess.Popen(
        [sys.executable, str(ROOT / "pipeline" / "train.py"), *argv],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in stage.stdout:
        if "epoch 1/30" in line:
            break
    assert stage.poll() is None, "the fit ended before the outage"
    pg_ctl(postgres, "stop", "-m", "immediate")
    stopped = time.monotonic()
    out, err = stage.communicate(timeout=600)
    after_outage = time.monotonic() - stopped

    assert stage.returncode == 0, err
    assert "epoch 30/30" in out  # training went on to the end
    warnings = [line for line in err.splitlines() if line.startswith("warning: MLflow run")]
    assert len(warnings) == 1 and "python -m filterlab.log_missing train@4-5-2" in warnings[0], err
    assert "Traceback" not in err
    for out_file in ("models/f4_k5_s2/model.keras", "reports/metrics/train/f4_k5_s2.json"):
        assert (tmp_path / out_file).is_file(), out_file
    assert after_outage < 120  # the deadlines: no call waits on the dead database for long

    pg_ctl(postgres, "start")
    _until_usable(pg_mlflow_server)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", pg_mlflow_server)
    monkeypatch.setenv("FILTERLAB_SWEEP_ID", "replay")
    command = "python pipeline/train.py " + " ".join(argv)
    (replay,) = log_missing.replays("train@4-5-2", command, read_params(params))
    run_id = log_missing.log(replay)

    client = MlflowClient(pg_mlflow_server)
    experiment = client.get_experiment_by_name("train").experiment_id
    runs = {run.info.run_id: run for run in client.search_runs([experiment])}
    assert runs[run_id].info.status == "FINISHED"
    assert len(client.get_metric_history(run_id, "val_accuracy")) == 30
    assert [run.info.status for run in runs.values()].count("RUNNING") == 0  # the cut-off run: KILLED
    assert sorted(run.info.status for run in runs.values()) == ["FINISHED", "KILLED"]
