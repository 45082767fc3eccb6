"""Probe 1: full-size (28x28) filters trained on ONE digit turn into copies of it.

Pure: takes the image and params, returns numbers and a figure; the probes stage writes
and logs them. The model is conv (n_filters, 28x28, 'valid', so each filter sees the
whole image once: its output is the dot product filter·image) → dense softmax over the
10 digits, trained to call the image by its own digit. With one input x the gradient of
every filter is (a scalar) × x, so training can only move the filters along ±x; from a
random init (correlation with x near 0) they end up strongly (anti-)correlated with it.
Adam alone leaves the init untouched where x is 0 (zero gradient there), capping |r| near
0.75; a small L2 penalty (`l2`) decays that leftover, so the optimum is exactly ±x.
Conv1 computes cross-correlation, but a kernel as large as the image is applied at one
position only, unflipped, so filter and image are compared pixel by pixel as they are.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from filterlab.config.geometry import IMAGE_SIDE, NUM_CLASSES
from filterlab.config.sections import SingleImageProbe
from filterlab.core.errors import DataError
from filterlab.kernels.similarity import cosine

if TYPE_CHECKING:  # Keras and matplotlib load only in the functions that train and draw
    import keras
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class SingleImageResult:
    image_index: int  # position of the image in the prepared training split
    image: np.ndarray  # 28 × 28
    init: np.ndarray  # 28 × 28 × n_filters
    learned: np.ndarray  # 28 × 28 × n_filters
    digit_probability: float  # softmax probability of the image's own digit after training
    predicted: int

    def correlations(self, which: str) -> list[float]:
        filters = getattr(self, which)
        return [cosine(filters[:, :, k], self.image, centred=True) for k in range(filters.shape[2])]

    def metrics(self) -> dict[str, Any]:
        init, learned = self.correlations("init"), self.correlations("learned")
        return {
            "image_index": self.image_index,
            "corr_init": init,
            "corr_learned": learned,
            "abs_corr_init_mean": float(np.mean(np.abs(init))),
            "abs_corr_learned_mean": float(np.mean(np.abs(learned))),
            "abs_corr_learned_min": float(np.min(np.abs(learned))),
            "digit_probability": self.digit_probability,
            "predicted": self.predicted,
        }


def first_of_digit(x_train: np.ndarray, y_train: np.ndarray, digit: int) -> int:
    matches = np.flatnonzero(y_train == digit)
    if matches.size == 0:
        raise DataError(f"the prepared training split holds no image of the digit {digit}")
    return int(matches[0])


def build(n_filters: int, l2: float) -> "keras.Model":
    import keras
    from keras import layers

    inputs = keras.Input(shape=(IMAGE_SIDE, IMAGE_SIDE, 1), name="image")
    x = layers.Conv2D(
        n_filters,
        IMAGE_SIDE,
        padding="valid",
        name="conv1",
        kernel_regularizer=keras.regularizers.L2(l2) if l2 else None,
    )(inputs)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name="single_image_probe")


def run(x_train: np.ndarray, y_train: np.ndarray, params: SingleImageProbe, seed: int) -> SingleImageResult:
    """Train on the first `params.digit` of the training split; seeds first, then builds."""
    import keras

    from filterlab.core import determinism

    index = first_of_digit(x_train, y_train, params.digit)
    image = x_train[index : index + 1]
    determinism.configure(seed)
    model = build(params.n_filters, params.l2)
    conv1 = model.get_layer("conv1")
    init = np.array(conv1.get_weights()[0][:, :, 0, :])
    model.compile(
        optimizer=keras.optimizers.Adam(params.learning_rate), loss="sparse_categorical_crossentropy", jit_compile=False
    )
    # One epoch over `epochs` copies: the same optimizer steps as `epochs` epochs of one
    # image, without Keras' per-epoch overhead (benchmarks/ measures the probes).
    copies = np.repeat(image, params.epochs, axis=0)
    model.fit(copies, np.full(params.epochs, params.digit), epochs=1, batch_size=1, verbose=0)
    probabilities = model.predict(image, verbose=0)[0]
    return SingleImageResult(
        image_index=index,
        image=image[0, :, :, 0],
        init=init,
        learned=np.array(conv1.get_weights()[0][:, :, 0, :]),
        digit_probability=float(probabilities[params.digit]),
        predicted=int(np.argmax(probabilities)),
    )


def figure(result: SingleImageResult, digit: int, colormap: str) -> "Figure":
    """The digit, then every filter at init (top row) and after training (bottom row)."""
    from matplotlib.figure import Figure

    n_filters = result.init.shape[2]
    fig = Figure(figsize=(1.6 * (n_filters + 1), 3.6), layout="constrained")
    grid = fig.subplots(2, n_filters + 1, squeeze=False)
    grid[0, 0].imshow(result.image, cmap="gray_r", vmin=0, vmax=1)
    grid[0, 0].set_title(f"training image\n(digit {digit}, #{result.image_index})", fontsize=8)
    grid[1, 0].set_axis_off()
    corr = {"init": result.correlations("init"), "learned": result.correlations("learned")}
    for row, which in enumerate(("init", "learned")):
        weights = getattr(result, which)
        for k in range(n_filters):
            scale = max(float(np.abs(weights[:, :, k]).max()), 1e-12)
            axes = grid[row, k + 1]
            axes.imshow(weights[:, :, k], cmap=colormap, vmin=-scale, vmax=scale)
            axes.set_title(f"{which} #{k}\nr = {corr[which][k]:+.2f}", fontsize=8)
    for axes in grid.flat:
        axes.set_xticks([])
        axes.set_yticks([])
    fig.suptitle(
        "Single-image probe: Keras conv1 weights (cross-correlation), 28x28 filters\n"
        "r = Pearson correlation with the image; each filter on its own ±max|w| scale, 0 = white",
        fontsize=9,
    )
    return fig
