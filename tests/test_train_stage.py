"""Tests for pipeline/train.py: declared outputs, the MLflow run, parameter errors (in-process), and real signals
(a process of its own: the signal is the point)."""

import csv
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from helpers import flags, load_stage

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "pipeline" / "train.py"
TRAIN = {
    "train.grid": {"filters": [4, 8], "kernel_size": [5], "stride": [2]},
    "train.epochs": 2,
    "train.batch_size": 50,
    "train.learning_rate": 0.01,
    "train.block2_filters": 8,
    "train.dropout": 0.2,
    "train.threads": 2,
}


def tiny_npz_labels(path: Path) -> np.ndarray:
    with np.load(path, allow_pickle=False) as archive:
        return archive["y_test"]


def stage_args(tmp_path: Path, params: Path, data: Path, filters: int = 4) -> list[str]:
    variant = f"f{filters}_k5_s2"
    reports = tmp_path / "reports"
    return flags(params=params, data=data, filter_count=filters, kernel_size=5, stride=2) + flags(
        model_dir=tmp_path / "models" / variant,
        metrics=reports / "metrics" / "train" / f"{variant}.json",
        details=reports / "details" / "train" / f"{variant}.json",
        history=reports / "plots" / "train" / f"{variant}.csv",
    )


def test_stage_writes_declared_outputs_and_one_finished_run(
    tmp_path, tiny_npz, mlflow_uri, capsys, monkeypatch, params_file
):
    import keras
    from mlflow.tracking import MlflowClient

    from filterlab.core import tracking
    from filterlab.training import artifacts

    monkeypatch.chdir(tmp_path)
    assert load_stage("train").main(stage_args(tmp_path, params_file(TRAIN), tiny_npz)) == 0
    model_dir = tmp_path / "models" / "f4_k5_s2"
    assert sorted(path.name for path in model_dir.iterdir()) == ["filters.npz", "model.keras", "run.json"]

    with np.load(model_dir / "filters.npz", allow_pickle=False) as archive:
        kernels, epochs = archive["kernels"], archive["epochs"]
    assert kernels.shape == (3, 5, 5, 1, 4) and epochs.tolist() == [0, 1, 2]
    model = keras.models.load_model(model_dir / "model.keras", safe_mode=True)
    assert np.array_equal(keras.ops.convert_to_numpy(model.get_layer("conv1").kernel), kernels[-1])

    metrics = json.loads((tmp_path / "reports" / "metrics" / "train" / "f4_k5_s2.json").read_text())
    # The four short columns of `dvc metrics show`; the rest is in the details file.
    assert set(metrics) == {"accuracy", "ci95_low", "ci95_high", "loss"}
    assert metrics["ci95_low"] <= metrics["accuracy"] <= metrics["ci95_high"]
    details = json.loads((tmp_path / "reports" / "details" / "train" / "f4_k5_s2.json").read_text())
    assert details["params"] == model.count_params() and details["epochs"] == 2
    assert len(details["labels"]) == len(details["predicted"]) == len(tiny_npz_labels(tiny_npz))
    correct = sum(a == b for a, b in zip(details["labels"], details["predicted"], strict=True))
    assert correct / len(details["labels"]) == pytest.approx(metrics["accuracy"], abs=1e-6)
    with open(tmp_path / "reports" / "plots" / "train" / "f4_k5_s2.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]  # no durations in git
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert details["best_val_accuracy"] == pytest.approx(max(float(row["val_accuracy"]) for row in rows), abs=1e-6)

    # run.json names the variant only: nothing run-specific, so a forced re-run writes the same bytes.
    assert json.loads((model_dir / "run.json").read_text()) == {
        "variant": "f4_k5_s2",
        "filters": 4,
        "kernel_size": 5,
        "stride": 2,
    }
    client = MlflowClient(tracking_uri=mlflow_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "f4_k5_s2 (test-sweep)"
    assert run.data.tags[tracking.FILTERS_TAG] == artifacts.file_sha256(model_dir / "filters.npz")
    seed = str(yaml.safe_load((ROOT / "params.yaml").read_text())["seed"])
    assert run.data.params == {
        "filters": "4",
        "kernel_size": "5",
        "stride": "2",
        "epochs": "2",
        "batch_size": "50",
        "learning_rate": "0.01",
        "block2_filters": "8",
        "dropout": "0.2",
        "threads": "2",
        "seeds": "1",
        "seed": seed,
    }
    assert run.data.tags["data.source"] == "bundled" and run.data.tags["data.sha256"] == "0" * 64
    assert run.data.metrics["test_accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-6)
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [(m.step, m.value) for m in history] == [
        (int(r["epoch"]), pytest.approx(float(r["val_accuracy"]))) for r in rows
    ]
    assert {artifact.path for artifact in client.list_artifacts(run.info.run_id)} == {
        "model.keras",
        "filters.npz",
        "run.json",
    }

    lines = capsys.readouterr().out.splitlines()
    epoch_lines = [line for line in lines if " epoch " in line]
    assert [line.split(":")[0] for line in epoch_lines] == ["f4_k5_s2 epoch 1/2", "f4_k5_s2 epoch 2/2"]
    assert all("val_accuracy" in line and line.endswith(" s)") for line in epoch_lines)
    assert len(lines) <= 4  # no per-batch progress


def test_seed_replicates_add_mean_and_spread_and_keep_the_first_seed(
    tmp_path, tiny_npz, mlflow_uri, params_file, monkeypatch
):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    one, three = tmp_path / "one", tmp_path / "three"
    assert load_stage("train").main(stage_args(one, params_file(TRAIN), tiny_npz)) == 0
    assert load_stage("train").main(stage_args(three, params_file({**TRAIN, "train.seeds": 3}), tiny_npz)) == 0
    single, replicated = (
        json.loads((root / "reports/metrics/train/f4_k5_s2.json").read_text()) for root in (one, three)
    )
    # The first seed is the saved model: its numbers and files do not depend on how many replicates follow.
    assert replicated["accuracy"] == single["accuracy"] and replicated["loss"] == single["loss"]
    assert (one / "models/f4_k5_s2/filters.npz").read_bytes() == (three / "models/f4_k5_s2/filters.npz").read_bytes()
    assert "seeds" not in single and replicated["seeds"] == 3
    assert replicated["accuracy_seed_sd"] >= 0 and 0 < replicated["accuracy_seed_mean"] <= 1
    client = MlflowClient(tracking_uri=mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("train").experiment_id], "params.seeds = '3'")
    assert runs[0].data.metrics["test_accuracy_seed_mean"] == pytest.approx(replicated["accuracy_seed_mean"])
    # Two more fits than the saved model's: their seconds are in MLflow, never in the git-tracked metrics.
    assert runs[0].data.metrics["replicates_fit_seconds"] > runs[0].data.metrics["fit_seconds"] * 1.5


@pytest.mark.parametrize(
    ("train", "filters", "expected"),
    [
        ({"train.grid": {"filters": [4], "kernel_size": [5, 27], "stride": [2]}}, 4, "train.grid: kernel_size 27"),
        ({}, 16, "train.grid.filters: 16 (from --filter-count) is not in [4, 8]"),
        ({"train.epochs": 0}, 4, "train.epochs: 0 is out of range"),
    ],
)
def test_bad_params_fail_in_one_line_before_any_work(
    tmp_path, tiny_npz, params_file, capsys, monkeypatch, train, filters, expected
):
    monkeypatch.chdir(tmp_path)
    assert load_stage("train").main(stage_args(tmp_path, params_file(TRAIN | train), tiny_npz, filters)) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [err.strip()]
    assert err.startswith("error: params.yaml: ") and expected in err
    assert not (tmp_path / "models").exists() and not (tmp_path / "reports").exists()
    assert not list(tmp_path.glob("mlflow.db*"))


def test_missing_data_is_one_line_exit_1(tmp_path, params_file, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_stage("train").main(stage_args(tmp_path, params_file(TRAIN), tmp_path / "absent.npz")) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "prepared dataset not found" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("signum", "exit_code"),
    [(signal.SIGTERM, 128 + signal.SIGTERM), pytest.param(signal.SIGINT, 128 + signal.SIGINT, marks=pytest.mark.slow)],
)
def test_signal_mid_training_marks_run_killed(tmp_path, tiny_npz, mlflow_uri, params_file, signum, exit_code):
    from mlflow.tracking import MlflowClient

    args = stage_args(tmp_path, params_file(TRAIN | {"train.epochs": 1000}), tiny_npz)
    stderr = open(tmp_path / "stderr.txt", "w+")
    process = subprocess.Popen(
        [sys.executable, str(STAGE), *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=stderr, text=True
    )
    try:
        first = process.stdout.readline()  # the first epoch line: the run is open and training
        assert first.startswith("f4_k5_s2 epoch 1/1000:"), (first, (tmp_path / "stderr.txt").read_text()[-2000:])
        process.send_signal(signum)
        assert process.wait(timeout=60) == exit_code
    finally:
        if process.poll() is None:
            process.kill()
        stderr.close()
    runs = MlflowClient(tracking_uri=mlflow_uri).search_runs(
        [MlflowClient(tracking_uri=mlflow_uri).get_experiment_by_name("train").experiment_id]
    )
    assert [(run.info.run_name, run.info.status) for run in runs] == [("f4_k5_s2 (test-sweep)", "KILLED")]
    assert not (tmp_path / "reports").exists()  # nothing half-written beside the killed run
