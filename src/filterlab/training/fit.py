"""The fit loop of one grid variant: arrays and params in, a trained model and its record out.

Pure: reads no files and logs nowhere. The train stage passes `on_epoch` to print and
track each epoch; the benchmark calls the same loop to compare it with a bare `fit`.
The callbacks stay cheap on purpose: a numpy copy of conv1's kernel per epoch and one
call per epoch, nothing per batch.
"""

import csv
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from filterlab.config.geometry import VariantSpec
from filterlab.config.sections import TrainParams
from filterlab.core import determinism
from filterlab.data.dataset import Prepared
from filterlab.training import models

# The per-epoch history that goes to git and `dvc plots`: results only, so an unchanged re-run writes the same
# bytes. Each epoch's wall seconds go to MLflow (`epoch_seconds`) with the other per-epoch metrics.
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")
# The per-epoch metrics every fit logs to MLflow: the history's results and the epoch's wall seconds.
LOGGED = (*HISTORY_COLUMNS[1:], "epoch_seconds")


@dataclass(frozen=True)
class FitOutcome:
    """What one fit-and-evaluate leaves: shared by the grid variants and the baselines."""

    model: keras.Model
    history: tuple[dict[str, float], ...]  # one row per epoch, keys HISTORY_COLUMNS
    test_loss: float
    test_accuracy: float
    seconds: float  # wall time of model.fit, callbacks included
    predictions: np.ndarray  # (test images,) predicted class per test digit: paired comparisons need them

    @property
    def best_val_accuracy(self) -> float:
        return max(row["val_accuracy"] for row in self.history)

    @property
    def params_count(self) -> int:
        return int(self.model.count_params())


@dataclass(frozen=True)
class TrainResult(FitOutcome):
    kernels: np.ndarray  # (epochs + 1, kh, kw, 1, filters); index 0 is the kernel at init


class KernelSnapshots(keras.callbacks.Callback):
    """Copies conv1's kernel before training and after every epoch."""

    def __init__(self, layer_name: str = "conv1"):
        super().__init__()
        self.layer_name = layer_name
        self.snapshots: list[np.ndarray] = []

    def _snapshot(self) -> None:
        kernel = self.model.get_layer(self.layer_name).kernel
        self.snapshots.append(np.array(keras.ops.convert_to_numpy(kernel), dtype=np.float32, copy=True))

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.snapshots = []
        self._snapshot()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._snapshot()


class EpochRecorder(keras.callbacks.Callback):
    """One history row per epoch (epoch counted from 1), handed to `on_epoch` as it is made."""

    def __init__(self, on_epoch: Callable[[dict[str, float]], None] | None = None):
        super().__init__()
        self.on_epoch = on_epoch
        self.rows: list[dict[str, float]] = []
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        row = {"epoch": epoch + 1, **{key: float(logs[key]) for key in HISTORY_COLUMNS[1:]}}
        row["epoch_seconds"] = time.perf_counter() - self._started
        self.rows.append(row)
        if self.on_epoch is not None:
            self.on_epoch(row)


def train_variant(
    data: Prepared,
    variant: VariantSpec,
    params: TrainParams,
    seed: int,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Seed, build, fit on train (validating on val), evaluate on test. Same inputs, same weights."""
    model = seeded_model(variant, params, seed)
    snapshots = KernelSnapshots()
    outcome = fit_and_evaluate(model, data, params, [snapshots], on_epoch)
    return TrainResult(**vars(outcome), kernels=np.stack(snapshots.snapshots))


def variant_model(variant: VariantSpec, params: TrainParams) -> keras.Model:
    """The grid's model for `variant`, named after it, with the train section's second block and dropout."""
    return models.build_model(
        variant.filters,
        variant.kernel_size,
        variant.stride,
        block2_filters=params.block2_filters,
        dropout=params.dropout,
        name=variant.name,
    )


def seeded_model(variant: VariantSpec, params: TrainParams, seed: int) -> keras.Model:
    """`variant_model` in a cleared Keras session, seeded and made deterministic: same seed, same initial weights."""
    # Whatever this process trained before (a test session, the benchmark) must not leak in.
    keras.backend.clear_session()
    determinism.configure(seed, params.threads)
    return variant_model(variant, params)


def replicates(
    data: Prepared,
    variant: VariantSpec,
    params: TrainParams,
    seed: int,
    first: TrainResult,
    on_start: Callable[[int, int], None] | None = None,
) -> tuple[list[float], float]:
    """Test accuracies of `first` and its retrainings with seed+1, seed+2, ... (`params.seeds` in all), and the
    fit seconds of all of them: the spread across seeds says how much of a difference the seed alone makes."""
    accuracies, seconds = [first.test_accuracy], first.seconds
    for replicate in range(1, params.seeds):
        if on_start is not None:  # the stage prints progress: (replicate counted from 1, its seed)
            on_start(replicate + 1, seed + replicate)
        again = train_variant(data, variant, params, seed + replicate)
        accuracies.append(again.test_accuracy)
        seconds += again.seconds
    return accuracies, seconds


def fit_and_evaluate(
    model: keras.Model,
    data: Prepared,
    params: TrainParams,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> FitOutcome:
    """Compile, fit on train (validating on val), evaluate on test: the one loop every model here goes through,
    so the grid and the baselines share data, epochs, batch size and learning rate by construction."""
    recorder = EpochRecorder(on_epoch)
    seconds = fit_model(model, data, params, [*callbacks, recorder])
    test = model.evaluate(data.x_test, data.y_test, batch_size=params.batch_size, verbose=0, return_dict=True)
    predictions = np.argmax(model.predict(data.x_test, batch_size=params.batch_size, verbose=0), axis=1)
    return FitOutcome(
        model=model,
        history=tuple(recorder.rows),
        test_loss=float(test["loss"]),
        test_accuracy=float(test["accuracy"]),
        predictions=predictions.astype(np.int64),
        seconds=seconds,
    )


def fit_model(
    model: keras.Model, data: Prepared, params: TrainParams, callbacks: Sequence[keras.callbacks.Callback] = ()
) -> float:
    """Compile and `model.fit` on train, validating on val; the seconds the fit took."""
    models.compile_model(model, params.learning_rate)
    started = time.perf_counter()
    model.fit(
        data.x_train,
        data.y_train,
        batch_size=params.batch_size,
        epochs=params.epochs,
        validation_data=(data.x_val, data.y_val),
        shuffle=True,
        verbose=0,
        callbacks=list(callbacks),
    )
    return time.perf_counter() - started


def headline_metrics(outcome: FitOutcome, low: float, high: float) -> dict[str, Any]:
    """What `dvc metrics show` lists per model: four short columns (test split), rounded past float32 noise.

    No durations: they differ on every run, and git-tracked results must not (fit seconds go to MLflow).

    The same keys for grid variants and baselines, so the table stays narrow; everything
    else (parameter count, best validation accuracy, predictions) goes to the details file.
    """
    return {
        "accuracy": round(outcome.test_accuracy, 6),
        "ci95_low": round(low, 4),
        "ci95_high": round(high, 4),
        "loss": round(outcome.test_loss, 6),
    }


def details(outcome: FitOutcome, labels: np.ndarray, epochs: int) -> dict[str, Any]:
    """The model's details file: sizes, validation, and the test predictions as digit strings,
    small and diffable, so any paired comparison can be recomputed."""
    return {
        "params": outcome.params_count,
        "epochs": epochs,
        "best_val_accuracy": round(outcome.best_val_accuracy, 6),
        "labels": "".join(map(str, np.asarray(labels).tolist())),
        "predicted": "".join(map(str, np.asarray(outcome.predictions).tolist())),
    }


def history_csv(rows: tuple[dict[str, float], ...]) -> str:
    """The per-epoch rows as the CSV that `dvc plots` reads (header HISTORY_COLUMNS)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
