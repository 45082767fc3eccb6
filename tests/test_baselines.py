"""Tests for filterlab.training.baselines and the baselines stage: plans, frozen layers, and the stage end to end."""

import dataclasses
import json

import numpy as np
import pytest

from filterlab.config.sections import GridParams
from filterlab.core import stage
from filterlab.kernels import convolution
from filterlab.kernels.bank import KERNELS, select
from filterlab.training import baselines
from helpers import flags, load_stage
from helpers import train_params as train_section

baselines_stage = load_stage("baselines")

SEED = 99
STAGE_KERNELS = ["sobel_x", "sobel_y"]  # one family: four fits cover all four kinds


@pytest.fixture
def train_params():
    grid = GridParams(filters=(8,), kernel_size=(3,), stride=(1,))
    return train_section(
        {"grid": grid, "epochs": 1, "batch_size": 50, "learning_rate": 0.01}
        | {"block2_filters": 4, "dropout": 0.2, "threads": 2, "seeds": 1}
    )


def test_plan_has_every_kind_with_padded_sizes():
    plan = baselines.plan(select(["sobel_x", "sobel_y", "gabor_45", "peak_1x3", "peak_3x1"]), 1.0, SEED)
    by_name = {baseline.name: baseline for baseline in plan}
    assert list(by_name) == ["family:sobel", "family:gabor", "family:peak", "bank", "random", "pixels"]
    assert (by_name["family:sobel"].n_kernels, by_name["family:sobel"].kernel_size) == (2, 3)
    assert (by_name["family:peak"].n_kernels, by_name["family:peak"].kernel_size) == (2, 3)
    assert (by_name["bank"].n_kernels, by_name["bank"].kernel_size) == (5, 5)
    assert by_name["random"].written.shape == by_name["bank"].written.shape
    assert by_name["pixels"].written is None and by_name["pixels"].keras_weights() is None
    np.testing.assert_array_equal(
        by_name["family:sobel"].keras_weights(), convolution.to_keras_weights([KERNELS["sobel_x"], KERNELS["sobel_y"]])
    )


def test_random_bank_is_seeded_and_scaled():
    kernels = select(list(KERNELS))
    first = {b.name: b for b in baselines.plan(kernels, 2.0, SEED)}["random"].written
    again = {b.name: b for b in baselines.plan(kernels, 2.0, SEED)}["random"].written
    other = {b.name: b for b in baselines.plan(kernels, 2.0, SEED + 1)}["random"].written
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert first.std() == pytest.approx(2.0, rel=0.1) and abs(first.mean()) < 0.2


def test_frozen_first_layer_stays_frozen_while_the_rest_trains(tiny_prepared, train_params):
    sobel = baselines.plan(select(["sobel_x", "sobel_y"]), 1.0, SEED)[0]
    one = baselines.fit_baseline(tiny_prepared, sobel, train_params, SEED)
    two = baselines.fit_baseline(tiny_prepared, sobel, dataclasses.replace(train_params, epochs=2), SEED)
    for result in (one, two):
        conv1 = result.model.get_layer("conv1")
        assert not conv1.trainable
        kernel, bias = conv1.get_weights()
        np.testing.assert_array_equal(kernel, sobel.keras_weights())
        np.testing.assert_array_equal(bias, np.zeros(2, dtype=np.float32))
    # The same start trained one epoch more moved conv2: conv1 stayed put because it is frozen.
    conv2_one, conv2_two = (result.model.get_layer("conv2").get_weights()[0] for result in (one, two))
    assert not np.array_equal(conv2_one, conv2_two)
    assert len(one.history) == 1 and len(two.history) == 2
    assert one.history[0]["loss"] == two.history[0]["loss"]  # reseeded: reproducible whatever ran before


STAGE_PARAMS = {
    "baselines.kernels": STAGE_KERNELS,
    "train.epochs": 1,
    "train.batch_size": 50,
    "train.block2_filters": 4,
}


def _args(tmp_path, params, data):
    figures, metrics = tmp_path / "figures", tmp_path / "metrics" / "baselines"
    argv = flags(params=params, data=data, figures=figures, metrics=metrics)
    argv += flags(details=tmp_path / "details" / "baselines.json")
    return argv, figures, metrics


# The stage pins TensorFlow's threads, which an earlier test in this process already started.
@pytest.mark.filterwarnings("ignore:TensorFlow thread pools already started")
def test_stage_end_to_end(tmp_path, tiny_npz, mlflow_uri, params_file):
    from mlflow.tracking import MlflowClient

    argv, figures, metrics = _args(tmp_path, params_file(STAGE_PARAMS), tiny_npz)
    assert baselines_stage.main(argv) == stage.EXIT_OK

    png = (figures / "feature_maps.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width > 800 and height > 300  # 11 columns (kernel + ten digits), 2 rows
    assert sorted(path.name for path in figures.iterdir()) == ["feature_maps.png"]

    report = json.loads((tmp_path / "details" / "baselines.json").read_text())
    expected = {"family:sobel", "bank", "random", "pixels"}
    assert report["data_source"] == "bundled" and set(report["baselines"]) == expected
    assert {entry["kind"] for entry in report["baselines"].values()} == set(baselines.KINDS)
    assert report["baselines"]["bank"]["n_kernels"] == 2 and report["baselines"]["bank"]["kernels"] == STAGE_KERNELS
    assert report["baselines"]["pixels"]["n_kernels"] == 0
    # One short metrics file per baseline, the same five columns as a grid variant's.
    files = sorted(path.name for path in metrics.iterdir())
    assert files == ["bank.json", "family-sobel.json", "pixels.json", "random.json"]
    for name, entry in report["baselines"].items():
        headline = json.loads((metrics / f"{name.replace(':', '-')}.json").read_text())
        assert set(headline) == {"accuracy", "ci95_low", "ci95_high", "loss"}
        assert headline["ci95_low"] <= headline["accuracy"] <= headline["ci95_high"] and entry["params"] > 0
        correct = sum(a == b for a, b in zip(entry["labels"], entry["predicted"], strict=True))
        assert correct / len(entry["labels"]) == pytest.approx(headline["accuracy"], abs=1e-6)

    client = MlflowClient(tracking_uri=mlflow_uri)
    experiment = client.get_experiment_by_name("baselines")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(run.info.run_name for run in runs) == sorted(f"{name} (test-sweep)" for name in expected)
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.tags["data.source"] == "bundled" and run.data.tags["data.sha256"] == "0" * 64
        assert run.data.params["epochs"] == "1" and "test_accuracy" in run.data.metrics
        assert [m.step for m in client.get_metric_history(run.info.run_id, "val_accuracy")] == [1]
        artifacts = [item.path for item in client.list_artifacts(run.info.run_id)]
        assert artifacts == ([] if run.info.run_name == "pixels (test-sweep)" else ["kernels.png"])


@pytest.mark.filterwarnings("ignore:TensorFlow thread pools already started")
def test_a_store_gone_after_the_first_model_leaves_the_rest_untracked_and_every_output(
    tmp_path, tiny_npz, mlflow_uri, params_file, monkeypatch, capsys
):
    import mlflow
    from mlflow.exceptions import MlflowException

    real = mlflow.log_metrics

    def gone_after_the_first_epoch(metrics, step=None, **kwargs):
        if step is not None and step > 1 or step is None:
            raise MlflowException("API request to http://127.0.0.1:5001/api/2.0/mlflow/runs/log-batch failed")
        return real(metrics, step=step, **kwargs)

    monkeypatch.setenv("DVC_STAGE", "baselines")
    monkeypatch.setattr(mlflow, "log_metrics", gone_after_the_first_epoch)
    argv, _figures, metrics = _args(tmp_path, params_file(STAGE_PARAMS | {"train.epochs": 2}), tiny_npz)
    assert baselines_stage.main(argv) == stage.EXIT_OK
    err = capsys.readouterr().err
    assert err.count("warning: MLflow run") == 1 and "python -m filterlab.log_missing baselines" in err, err
    assert "Traceback" not in err
    assert sorted(path.name for path in metrics.iterdir()) == [
        "bank.json",
        "family-sobel.json",
        "pixels.json",
        "random.json",
    ]
    assert json.loads((tmp_path / "details" / "baselines.json").read_text())["baselines"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"baselines.kernels": ["sobel_x", "sobel_q"]}, "unknown kernel 'sobel_q'"),
        ({"baselines.kernels": []}, "baselines.kernels"),
        ({"baselines.random_std": 0}, "baselines.random_std"),
    ],
)
def test_stage_rejects_bad_params_before_any_work(tmp_path, tiny_npz, capsys, params_file, change, message):
    argv, figures, metrics = _args(tmp_path, params_file(STAGE_PARAMS | change), tiny_npz)
    assert baselines_stage.main(argv) == stage.EXIT_PARAMS
    assert message in capsys.readouterr().err
    assert not figures.exists() and not metrics.exists()


def test_stage_rejects_kernels_larger_than_the_image(monkeypatch):
    from filterlab.config.sections import BaselinesParams
    from filterlab.core.errors import ParamError
    from filterlab.kernels import bank

    huge = bank.Kernel("huge", "blur", np.ones((29, 29)) / 29**2, "Too big for a digit.")
    monkeypatch.setitem(bank.KERNELS, "huge", huge)
    with pytest.raises(ParamError, match="29x29 kernel leaves no feature map"):
        baselines_stage.select_kernels(BaselinesParams(kernels=("sobel_x", "huge"), random_std=1.0))
