"""Tests for filterlab.training.fit: the fit loop is reproducible and records conv1 from init to the end."""

import dataclasses

import numpy as np
import pytest

from filterlab.config.sections import GridParams
from helpers import train_params

SEED = 1234


@pytest.fixture
def params():
    grid = GridParams(filters=(4,), kernel_size=(5,), stride=(2,))
    return train_params(
        {"grid": grid, "epochs": 2, "batch_size": 50, "learning_rate": 0.01}
        | {"block2_filters": 8, "dropout": 0.2, "threads": 2, "seeds": 1}
    )


@pytest.fixture
def variant():
    from filterlab.config.geometry import VariantSpec

    return VariantSpec(filters=4, kernel_size=5, stride=2)


def test_variant_name_matches_dvc_outs(variant):
    assert variant.name == "f4_k5_s2"


def test_same_seed_gives_bit_identical_weights_and_snapshots(tiny_prepared, variant, params):
    from filterlab.training.fit import train_variant

    first = train_variant(tiny_prepared, variant, params, SEED)
    second = train_variant(tiny_prepared, variant, params, SEED)
    first_weights, second_weights = first.model.get_weights(), second.model.get_weights()
    assert len(first_weights) == len(second_weights) > 0
    for a, b in zip(first_weights, second_weights, strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(first.kernels, second.kernels)
    assert [row["loss"] for row in first.history] == [row["loss"] for row in second.history]
    assert first.test_accuracy == second.test_accuracy


def test_another_seed_gives_another_init(variant, params):
    # Without this, bit-identical runs could come from an init that ignores the seed.
    import keras

    from filterlab.core import determinism
    from filterlab.training import models

    kernels = []
    for seed in (SEED, SEED, SEED + 1):
        determinism.configure(seed, params.threads)
        model = models.build_model(4, 5, 2, block2_filters=params.block2_filters, dropout=params.dropout)
        kernels.append(keras.ops.convert_to_numpy(model.get_layer("conv1").kernel))
    assert np.array_equal(kernels[0], kernels[1])
    assert not np.array_equal(kernels[0], kernels[2])


def test_snapshots_run_from_init_to_final_kernel(tiny_prepared, variant, params):
    import keras

    from filterlab.core import determinism
    from filterlab.training import models
    from filterlab.training.fit import train_variant

    calls = []
    result = train_variant(tiny_prepared, variant, params, SEED, on_epoch=calls.append)

    assert result.kernels.shape == (params.epochs + 1, 5, 5, 1, 4)
    assert result.kernels.dtype == np.float32
    # Index 0 is the untouched initialisation: the same seed rebuilds exactly that kernel.
    determinism.configure(SEED, params.threads)
    fresh = models.build_model(4, 5, 2, block2_filters=params.block2_filters, dropout=params.dropout)
    assert np.array_equal(result.kernels[0], keras.ops.convert_to_numpy(fresh.get_layer("conv1").kernel))
    final = keras.ops.convert_to_numpy(result.model.get_layer("conv1").kernel)
    assert np.array_equal(result.kernels[-1], final)
    # Every epoch moved the kernel, so the snapshots are copies, not views of one buffer.
    for before, after in zip(result.kernels[:-1], result.kernels[1:], strict=True):
        assert not np.array_equal(before, after)

    assert [row["epoch"] for row in calls] == [1, 2]
    assert list(result.history) == calls
    for row in result.history:
        assert set(row) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds"}
        assert row["epoch_seconds"] > 0 and 0 <= row["val_accuracy"] <= 1
    assert result.best_val_accuracy == max(row["val_accuracy"] for row in calls)
    assert 0 <= result.test_accuracy <= 1 and result.test_loss > 0
    assert result.seconds >= sum(row["epoch_seconds"] for row in calls) * 0.99
    assert result.params_count == result.model.count_params() > 0


def test_training_learns_the_tiny_set(tiny_prepared, variant, params):
    from filterlab.training.fit import train_variant

    longer = dataclasses.replace(params, epochs=6)
    result = train_variant(tiny_prepared, variant, longer, SEED)
    # 200 digits, 10 classes: chance is 10%; a working loop is far above it on held-out digits.
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    assert result.best_val_accuracy > 0.4


def test_history_csv_has_the_plot_columns():
    from filterlab.training.fit import history_csv

    rows = ({"epoch": 1, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.85, "epoch_seconds": 1.5},)
    assert history_csv(rows) == "epoch,loss,accuracy,val_loss,val_accuracy\n1,0.5,0.8,0.4,0.85\n"
