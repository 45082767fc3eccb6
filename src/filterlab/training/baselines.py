"""Classification baselines with a frozen first layer; arrays and params in, results out.

Pure: reads no files and logs nowhere (the baselines stage does both). Every baseline
uses the training grid's model and the train section's epochs, batch size, learning
rate and dropout, so its accuracy is comparable with the learned variants:
  family:<name>  one kernel family frozen as conv1 (padded to the family's largest side)
  bank           every selected kernel frozen as conv1 (padded to the bank's largest side)
  random         a frozen random-normal bank of the same count and size
  pixels         no convolution: the softmax head on raw pixels
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from filterlab.config.sections import TrainParams
from filterlab.data.dataset import Prepared
from filterlab.kernels import convolution
from filterlab.kernels.bank import Kernel, by_family

if TYPE_CHECKING:  # training imports Keras at import time; planning baselines needs no Keras
    from filterlab.training.fit import FitOutcome

KINDS = ("family", "bank", "random", "pixels")
# conv1 of the frozen baselines always slides one pixel at a time, like a hand-applied kernel.
STRIDE = 1


@dataclass(frozen=True, eq=False)
class Baseline:
    """One classifier to train; `written` holds its kernels as written (n, s, s), None for pixels.

    `kernel_names` names bank kernels; it is empty for the random bank and for pixels.
    """

    name: str
    kind: str
    kernel_names: tuple[str, ...]
    written: np.ndarray | None

    @property
    def n_kernels(self) -> int:
        return 0 if self.written is None else int(self.written.shape[0])

    @property
    def kernel_size(self) -> int | None:
        return None if self.written is None else int(self.written.shape[1])

    def keras_weights(self) -> np.ndarray | None:
        """conv1's frozen weights in Keras layout (flipped by `convolution.to_keras_weights`)."""
        return None if self.written is None else convolution.to_keras_weights(list(self.written))


def plan(kernels: Sequence[Kernel], random_std: float, seed: int) -> list[Baseline]:
    """Every baseline for the selected kernels: one per family, the bank, random, pixels."""
    if len(kernels) == 0:
        raise ValueError("no kernels selected")
    baselines = [
        Baseline(f"family:{family}", "family", tuple(k.name for k in members), convolution.stack(members))
        for family, members in by_family(kernels).items()
    ]
    bank = convolution.stack(kernels)
    baselines.append(Baseline("bank", "bank", tuple(k.name for k in kernels), bank))
    random_bank = np.random.default_rng(seed).normal(0.0, random_std, size=bank.shape)
    baselines.append(Baseline("random", "random", (), random_bank))
    baselines.append(Baseline("pixels", "pixels", (), None))
    return baselines


def fit_baseline(
    data: Prepared,
    baseline: Baseline,
    params: TrainParams,
    seed: int,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> "FitOutcome":
    """Reseed, build, then the grid's own fit-and-evaluate loop.

    The caller runs `determinism.configure` once; the reseed here makes each baseline
    reproducible on its own, whatever ran before it.
    """
    import keras

    from filterlab.training import models
    from filterlab.training.fit import fit_and_evaluate

    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model_name = "baseline_" + baseline.name.replace(":", "_")
    if baseline.kind == "pixels" or baseline.kernel_size is None:
        model = models.build_pixel_model(dropout=params.dropout, name=model_name)
    else:
        model = models.build_model(
            baseline.n_kernels,
            baseline.kernel_size,
            STRIDE,
            block2_filters=params.block2_filters,
            dropout=params.dropout,
            conv1_weights=baseline.keras_weights(),
            name=model_name,
        )
    return fit_and_evaluate(model, data, params, on_epoch=on_epoch)


def file_name(baseline: Baseline) -> str:
    """`family:sobel` -> `family-sobel.json`: one metrics file per baseline, a name every filesystem takes."""
    return baseline.name.replace(":", "-") + ".json"


def describe(baseline: Baseline) -> dict[str, Any]:
    """What the baseline is, for its entry in the details file."""
    return {
        "kind": baseline.kind,
        "kernels": list(baseline.kernel_names),
        "n_kernels": baseline.n_kernels,
        "kernel_size": baseline.kernel_size,
    }


def run_params(baseline: Baseline, train: TrainParams, random_std: float, seed: int) -> dict[str, Any]:
    """The MLflow params of one baseline's run: what it freezes and how it was trained, as the grid logs them."""
    return {
        "kind": baseline.kind,
        "kernels": ",".join(baseline.kernel_names) or baseline.kind,
        "n_kernels": baseline.n_kernels,
        "kernel_size": baseline.kernel_size,
        "epochs": train.epochs,
        "batch_size": train.batch_size,
        "learning_rate": train.learning_rate,
        "seed": seed,
        **({"random_std": random_std} if baseline.kind == "random" else {}),
    }
