"""What a training run records in MLflow: its params and its final test metrics; reads and writes nothing.

Kept apart from `filterlab.training.fit` so that `filterlab.log_missing`, which replays runs from their DVC
outputs, builds the same records without importing Keras.
"""

import dataclasses
from typing import TYPE_CHECKING

from filterlab.config.geometry import VariantSpec
from filterlab.config.sections import TrainParams

if TYPE_CHECKING:
    from filterlab.training.fit import FitOutcome


def run_params(variant: VariantSpec, params: TrainParams, seed: int) -> dict[str, object]:
    """A grid run's MLflow params: the variant, every train setting but the grid (the variant stands for it),
    and the seed."""
    settings = {field.name: getattr(params, field.name) for field in dataclasses.fields(params) if field.name != "grid"}
    return {**vars(variant), **settings, "seed": seed}


def evaluation_metrics(outcome: "FitOutcome", low: float, high: float) -> dict[str, float]:
    """The MLflow run's final metrics: the test split's accuracy with its 95 % interval, loss, and fit seconds."""
    return {
        "test_accuracy": outcome.test_accuracy,
        "test_loss": outcome.test_loss,
        "test_accuracy_ci95_low": low,
        "test_accuracy_ci95_high": high,
        "fit_seconds": outcome.seconds,
    }
