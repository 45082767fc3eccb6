"""Tests for filterlab.log_missing: a train@ run cut off by a tracking outage is logged again, whole, from the
stage's DVC outputs; the runs of the other tracked stages are rebuilt from theirs."""

import json
import shlex
import subprocess
import sys

import pytest

from filterlab import log_missing
from filterlab.config.params import read_params
from filterlab.core import tracking
from helpers import load_stage
from test_train_stage import TRAIN, stage_args


def _command(argv: list[str]) -> str:
    return "python pipeline/train.py " + shlex.join(argv)


def _run_data(client, run_id):
    run = client.get_run(run_id)
    history = {step.step: step.value for step in client.get_metric_history(run_id, "val_accuracy")}
    return run, history


def test_an_outage_mid_fit_loses_nothing_and_the_run_is_replayed_whole(
    tmp_path, tiny_npz, mlflow_uri, monkeypatch, capsys, params_file
):
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DVC_STAGE", "train@4-5-2")
    params = params_file(TRAIN)
    argv = stage_args(tmp_path, params, tiny_npz)
    real_log_metrics = mlflow.log_metrics

    def store_goes_away_after_epoch_1(metrics, step=None, **kwargs):
        if step is not None and step >= 2 or step is None:
            raise MlflowException("API request to http://127.0.0.1:5001/api/2.0/mlflow/runs/log-batch failed")
        return real_log_metrics(metrics, step=step, **kwargs)

    monkeypatch.setattr(mlflow, "log_metrics", store_goes_away_after_epoch_1)
    assert load_stage("train").main(argv) == 0  # training finished and every output was written
    err = capsys.readouterr().err
    assert err.count("warning: MLflow run") == 1 and "python -m filterlab.log_missing train@4-5-2" in err
    assert "Traceback" not in err
    for out in ("models/f4_k5_s2/model.keras", "reports/metrics/train/f4_k5_s2.json"):
        assert (tmp_path / out).is_file(), out
    monkeypatch.undo()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("FILTERLAB_SWEEP_ID", "replay-sweep")

    (replay,) = log_missing.replays("train@4-5-2", _command(argv), read_params(params))
    run_id = log_missing.log(replay)
    client = MlflowClient(mlflow_uri)
    run, history = _run_data(client, run_id)
    assert run.info.status == "FINISHED" and run.data.tags[log_missing.REPLAYED_TAG] == log_missing.REPLAYED
    assert run.data.tags["dvc.stage"] == "train@4-5-2"
    assert sorted(history) == [1, 2]  # both epochs, where the cut-off run had only the first
    metrics = (tmp_path / "reports" / "metrics" / "train" / "f4_k5_s2.json").read_text()
    assert run.data.metrics["test_accuracy"] == pytest.approx(json.loads(metrics)["accuracy"], abs=1e-6)
    assert {"filters", "kernel_size", "stride", "epochs", "batch_size", "seed", "threads"} <= set(run.data.params)
    artifacts = {entry.path for entry in client.list_artifacts(run_id)}
    assert artifacts == {"filters.npz", "model.keras", "run.json"}
    from filterlab.training import artifacts as train_artifacts

    digest = train_artifacts.file_sha256(tmp_path / "models" / "f4_k5_s2" / "filters.npz")
    assert run.data.tags[tracking.FILTERS_TAG] == digest  # log_figures finds the replayed run by it


def test_a_replay_equals_the_run_logged_live(tmp_path, tiny_npz, mlflow_uri, monkeypatch, params_file):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    params = params_file(TRAIN)
    argv = stage_args(tmp_path, params, tiny_npz)
    assert load_stage("train").main(argv) == 0
    client = MlflowClient(mlflow_uri)
    (live,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    live_history = {step.step: step.value for step in client.get_metric_history(live.info.run_id, "loss")}

    (replay,) = log_missing.replays("train@4-5-2", _command(argv), read_params(params))
    replayed_id = log_missing.log(replay)
    replayed, _ = _run_data(client, replayed_id)
    assert replayed.data.params == live.data.params
    live_tags = {key: value for key, value in live.data.tags.items() if key.startswith(("data.", "variant"))}
    assert live_tags and all(replayed.data.tags[key] == value for key, value in live_tags.items())
    assert replayed.data.tags[tracking.FILTERS_TAG] == live.data.tags[tracking.FILTERS_TAG]
    assert {step.step: step.value for step in client.get_metric_history(replayed_id, "loss")} == live_history
    for key in ("test_accuracy", "test_loss", "test_accuracy_ci95_low", "test_accuracy_ci95_high"):
        assert replayed.data.metrics[key] == pytest.approx(live.data.metrics[key], abs=1e-4), key

    # The replay is built from files alone: no Keras or TensorFlow (seconds of start and their log noise).
    script = (
        "import sys\n"
        "from filterlab import log_missing\n"
        "from filterlab.config.params import read_params\n"
        f"log_missing.replays('train@4-5-2', {_command(argv)!r}, read_params({str(params)!r}))\n"
        "print(sorted(name for name in ('tensorflow', 'keras') if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_missing_outputs_and_untracked_stages_are_one_line(tmp_path, tiny_npz, params_file):
    params = read_params(params_file(TRAIN))
    argv = stage_args(tmp_path, params_file(TRAIN), tiny_npz)
    with pytest.raises(log_missing.DataError, match=r"f4_k5_s2/filters.npz: not found; `dvc checkout train@4-5-2`"):
        log_missing.replays("train@4-5-2", _command(argv), params)
    with pytest.raises(log_missing.FilterlabError, match=r"report: logs nothing to MLflow; stages that do: train"):
        log_missing.replays("report", "python pipeline/report.py", params)


def test_the_stage_flags_are_read_from_the_resolved_command():
    flags = log_missing.stage_flags("python pipeline/train.py --filter-count 8 --model-dir 'models/a b' --stride 1")
    assert flags == {"--filter-count": "8", "--model-dir": "models/a b", "--stride": "1"}


@pytest.mark.filterwarnings("ignore:TensorFlow thread pools already started")
def test_baselines_are_replayed_one_run_per_model_from_the_metrics_files(
    tmp_path, tiny_npz, mlflow_uri, monkeypatch, params_file
):
    from mlflow.tracking import MlflowClient

    from test_baselines import STAGE_PARAMS, _args

    monkeypatch.chdir(tmp_path)
    params = params_file(STAGE_PARAMS)
    argv, _figures, _metrics = _args(tmp_path, params, tiny_npz)
    assert load_stage("baselines").main(argv) == 0
    client = MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name("baselines").experiment_id
    live = {run.data.tags[tracking.RUN_TAG]: run for run in client.search_runs([experiment])}

    monkeypatch.setenv("FILTERLAB_SWEEP_ID", "replay")
    found = log_missing.replays("baselines", "python pipeline/baselines.py " + shlex.join(argv), read_params(params))
    assert sorted(replay.run_name for replay in found) == sorted(live)
    for replay in found:
        replayed = client.get_run(log_missing.log(replay))
        assert replayed.data.params == live[replay.run_name].data.params
        for key in ("test_accuracy", "test_loss"):
            assert replayed.data.metrics[key] == pytest.approx(live[replay.run_name].data.metrics[key], abs=1e-5)
