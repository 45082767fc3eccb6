"""Probe 3: can gradient descent recover a known 3x3 kernel from its outputs alone?

Pure: images, kernels and params in, numbers and a figure out; the probes stage writes
them. For each kernel the target is the kernel's true convolution of the images
(`filterlab.kernels.convolution.convolve_batch`: 'same' size, zero padding, like
scipy.ndimage.convolve with mode="constant"); a single bias-free 3x3 Conv2D with
padding="same" (also zero padding) learns from random init by MSE regression. The
problem is linear least squares with an exact solution, so the learned weights should
match the kernel's KERAS weights (flipped, `convolution.to_keras_weights`) to ~1e-4;
the error against the unflipped kernel is reported too, to show the flip is real.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from filterlab.config.sections import RecoveryProbe
from filterlab.kernels.bank import Kernel

if TYPE_CHECKING:  # matplotlib loads only in the function that draws
    from matplotlib.figure import Figure

TARGET_ERROR = 1e-3


@dataclass(frozen=True)
class Recovered:
    name: str
    true_keras: np.ndarray  # 3 × 3, the kernel flipped to Keras (cross-correlation) layout
    learned: np.ndarray  # 3 × 3, the trained Conv2D weights
    unflipped_error: float  # max |learned - kernel as written|

    @property
    def max_abs_error(self) -> float:
        return float(np.max(np.abs(self.learned - self.true_keras)))

    def metrics(self) -> dict[str, Any]:
        return {
            "max_abs_error": self.max_abs_error,
            "max_abs_error_unflipped": self.unflipped_error,
            "within_target": self.max_abs_error <= TARGET_ERROR,
            "learned": self.learned.round(6).tolist(),
        }


def recover(images: np.ndarray, kernel: Kernel, params: RecoveryProbe, seed: int) -> Recovered:
    """Train one bias-free 3x3 Conv2D (full batch: the optimum is exact) to mimic `kernel`."""
    import keras
    from keras import layers

    from filterlab.core import determinism
    from filterlab.kernels.convolution import convolve_batch, to_keras_weights

    targets = convolve_batch(images, [kernel])
    determinism.configure(seed)
    inputs = keras.Input(shape=images.shape[1:], name="image")
    conv = layers.Conv2D(1, 3, padding="same", use_bias=False, name="conv1")
    model = keras.Model(inputs, conv(inputs), name=f"recover_{kernel.name}")
    # The step size decays to 1 % of its start: Adam's steps stay ~lr in size while the
    # gradient's sign is consistent, so a constant rate would hover around the optimum.
    schedule = keras.optimizers.schedules.CosineDecay(params.learning_rate, params.epochs, alpha=0.01)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse", jit_compile=False)
    # Full batch: an epoch is one step. Steps of one long epoch skip Keras' per-epoch
    # overhead, which here costs more than the step itself.
    import tensorflow as tf

    batches = tf.data.Dataset.from_tensors((images, targets)).repeat(params.epochs)
    model.fit(batches, epochs=1, shuffle=False, verbose=0)
    learned = np.array(conv.get_weights()[0][:, :, 0, 0], dtype=np.float64)
    return Recovered(
        name=kernel.name,
        true_keras=to_keras_weights([kernel])[:, :, 0, 0].astype(np.float64),
        learned=learned,
        unflipped_error=float(np.max(np.abs(learned - kernel.weights))),
    )


def figure(results: list[Recovered], colormap: str) -> "Figure":
    """Per kernel: the true Keras weights, the learned ones, and their difference (in e-notation)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 2.1 * len(results) + 0.6), layout="constrained")
    grid = fig.subplots(len(results), 3, squeeze=False)
    for row, result in enumerate(results):
        scale = max(float(np.abs(result.true_keras).max()), 1e-12)
        panels = (
            ("true (Keras layout)", result.true_keras, scale),
            ("learned", result.learned, scale),
            ("learned - true", result.learned - result.true_keras, None),
        )
        for col, (title, values, limit) in enumerate(panels):
            axes = grid[row, col]
            limit = limit or max(float(np.abs(values).max()), 1e-12)
            axes.imshow(values, cmap=colormap, vmin=-limit, vmax=limit)
            for (i, j), value in np.ndenumerate(values):
                # Errors are ~1e-5: fixed-point would print 0.00; dark cells get white text.
                text = f"{value:.1e}" if col == 2 else f"{value:.2f}"
                colour = "white" if abs(value) > 0.6 * limit else "black"
                axes.text(j, i, text, ha="center", va="center", fontsize=6 if col == 2 else 7, color=colour)
            axes.set_xticks([])
            axes.set_yticks([])
            axes.set_title(f"{result.name}: {title}" if col == 0 else title, fontsize=8)
        grid[row, 2].set_xlabel(f"max |error| = {result.max_abs_error:.1e}", fontsize=8)
    fig.suptitle(
        "Kernel recovery: Keras conv1 weights (cross-correlation) learned from the true convolution", fontsize=9
    )
    return fig
