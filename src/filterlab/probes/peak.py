"""Probe 2: the 1-D peak detector [-1, 1, -1], applied by hand and learned from data.

Pure: vectors and params in, numbers and a figure out; the probes stage writes them.
[-1, 1, -1] is symmetric, so convolution and Keras' cross-correlation give the same
response and no flip is needed anywhere in this probe. Its response at point i is
x_i - x_(i-1) - x_(i+1): positive exactly where a point rises above the SUM of its two
neighbours, a sharp isolated peak for non-negative data.

The learned half trains Conv1D(1 filter of size 3, bias) → global max-pool → sigmoid
(`restarts` such detectors from independent random inits, the most accurate kept) on
seeded random sequences in [0, 1), labelled 1 when some point is such a peak (its
[-1, 1, -1] response exceeds `margin`; sequences within ±margin of 0 are dropped, so
the two classes keep a gap and the label never hinges on rounding). That rule is realisable by the model exactly with
the filter ∝ [-1, 1, -1], so gradient descent from a random filter should find that shape;
how close it gets is the reported cosine.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from filterlab.config.sections import PeakProbe
from filterlab.core.errors import ParamError
from filterlab.kernels.similarity import cosine

if TYPE_CHECKING:  # matplotlib loads only in the function that draws
    from matplotlib.figure import Figure

PEAK = np.array([-1.0, 1.0, -1.0])
CENTRE = 0.5


def respond(vector: np.ndarray, kernel: np.ndarray = PEAK) -> np.ndarray:
    """'valid' response; entry j is centred on point j + 2 (1-based) for a size-3 kernel."""
    return np.convolve(np.asarray(vector, dtype=np.float64), kernel[::-1], mode="valid")


def hand_applied(vector: tuple[float, ...]) -> dict[str, Any]:
    """(a): the response, the 1-based points it is centred on, the positives, the max-pool's winner."""
    response = respond(np.array(vector))
    centres = np.arange(2, len(vector))  # a size-3 'valid' window drops the first and last point
    return {
        "vector": list(vector),
        "kernel": PEAK.tolist(),
        "response": response.tolist(),
        "response_points": centres.tolist(),
        "positive_points": centres[response > 0].tolist(),
        "max_pool_point": int(centres[np.argmax(response)]),
    }


# Draws of 4 x count random sequences before the probe gives up balancing its two classes.
MAX_BATCHES = 50


def batch_bytes(count: int, length: int) -> int:
    """Memory one draw of `make_sequences` holds at once: 4 x count float64 sequences and their responses."""
    return 2 * 4 * count * length * 8


def share_without_peak(length: int, margin: float, samples: int = 20_000) -> float:
    """Share of random sequences in [0, 1) whose best [-1, 1, -1] response is below -margin (label 0): it falls
    fast with the length, and below 1 / (8 MAX_BATCHES) `make_sequences` cannot balance its classes."""
    rng = np.random.default_rng(0)
    hits = 0
    for start in range(0, samples, 2000):  # chunks keep a length-1000 estimate at 16 MB
        x = rng.random((min(2000, samples - start), length))
        hits += int(((x[:, 1:-1] - x[:, :-2] - x[:, 2:]).max(axis=1) < -margin).sum())
    return hits / samples


def make_sequences(count: int, length: int, margin: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Balanced sequences in [0, 1) and their labels: 1 where some response is > margin."""
    wanted = {0: count // 2, 1: count - count // 2}
    kept_x, kept_y = [], []
    for _ in range(MAX_BATCHES):
        if wanted[0] + wanted[1] == 0:
            break
        batch = rng.random((4 * count, length))
        best = np.max(np.stack([respond(row) for row in batch]), axis=1)
        for label, chosen in ((0, best < -margin), (1, best > margin)):
            rows = np.array(batch[chosen][: wanted[label]])  # a copy: a view would keep the whole batch alive
            kept_x.append(rows)
            kept_y.append(np.full(len(rows), label))
            wanted[label] -= len(rows)
    else:
        if wanted[0] + wanted[1] > 0:
            raise ParamError(
                "probes.peak.sequence_length",
                f"{length}: too few random sequences of this length "
                f"lack a peak above margin {margin} to balance the classes; use a shorter length",
            )
    x, y = np.concatenate(kept_x), np.concatenate(kept_y)
    order = rng.permutation(len(y))
    return x[order, :, np.newaxis].astype(np.float32), y[order].astype(np.float32)


@dataclass(frozen=True)
class LearnedPeak:
    initial: np.ndarray  # (3,) the kept detector's filter at init, Keras (cross-correlation) layout
    learned: np.ndarray  # (3,) the same filter after training
    bias: float
    accuracy: float  # of the kept detector, on the training sequences
    kept: int  # which restart was kept
    restart_accuracies: list[float]
    restart_cosines: list[float]


def learn(params: PeakProbe, seed: int) -> LearnedPeak:
    """(b): train `params.restarts` one-filter detectors side by side; keep the most accurate.

    The max-pool makes the loss non-convex: from about half of random inits the filter
    settles on the valley detector [+, -, +] (~72 % accuracy) and never leaves. Each
    column of the Conv1D is an independent detector (its own max-pool and sigmoid, the
    loss a plain sum over columns), so one fit trains every restart at the same cost.
    """
    import keras
    from keras import layers

    from filterlab.core import determinism

    x, y = make_sequences(params.n_sequences, params.sequence_length, params.margin, np.random.default_rng(seed))
    determinism.configure(seed)
    inputs = keras.Input(shape=(params.sequence_length, 1), name="sequence")
    conv = layers.Conv1D(params.restarts, 3, padding="valid", name="peak_filters")
    outputs = layers.Activation("sigmoid", name="sigmoid")(layers.GlobalMaxPooling1D(name="max_pool")(conv(inputs)))
    model = keras.Model(inputs, outputs, name="peak_probe")
    initial = np.array(conv.get_weights()[0][:, 0, :])
    model.compile(optimizer=keras.optimizers.Adam(params.learning_rate), loss="binary_crossentropy", jit_compile=False)
    # Inputs centred on 0 so that the label rule needs only a bias shift: response - 0.5.
    targets = np.repeat(y[:, np.newaxis], params.restarts, axis=1)
    model.fit(x - CENTRE, targets, epochs=params.epochs, batch_size=params.batch_size, verbose=0)
    kernel, bias = conv.get_weights()
    predictions = model.predict(x - CENTRE, verbose=0) > 0.5
    accuracies = (predictions == targets.astype(bool)).mean(axis=0)
    kept = int(np.argmax(accuracies))
    return LearnedPeak(
        initial=initial[:, kept],
        learned=np.array(kernel[:, 0, kept]),
        bias=float(bias[kept]),
        accuracy=float(accuracies[kept]),
        kept=kept,
        restart_accuracies=accuracies.round(4).tolist(),
        restart_cosines=[round(cosine(kernel[:, 0, k], PEAK), 4) for k in range(params.restarts)],
    )


def figure(hand: Mapping[str, Any], learned: LearnedPeak) -> "Figure":
    """Left: the vector with its response at the window centres. Right: the filters."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[2.2, 1])
    points = np.arange(1, len(hand["vector"]) + 1)
    left.bar(points, hand["vector"], color="0.75", label="vector")
    colours = ["tab:red" if r > 0 else "tab:blue" for r in hand["response"]]
    left.scatter(hand["response_points"], hand["response"], c=colours, zorder=3, label="[-1, 1, -1] response")
    left.plot(hand["response_points"], hand["response"], color="0.4", lw=0.8)
    left.axhline(0, color="black", lw=0.8)
    winner = hand["max_pool_point"]
    left.annotate(
        "max-pool",
        (winner, max(hand["response"])),
        xytext=(0, 12),
        textcoords="offset points",
        ha="center",
        arrowprops={"arrowstyle": "->"},
    )
    left.set_xticks(points)
    left.set_xlabel("point (1-based); response drawn at its window's centre")
    left.set_title(f"positive at points {hand['positive_points']}, max-pool lands on point {winner}", fontsize=9)
    left.legend(fontsize=8, loc="lower left")
    taps = np.arange(3)
    for offset, values, label in (
        (-0.25, PEAK, "[-1, 1, -1]"),
        (0.0, learned.initial, "init"),
        (0.25, learned.learned / np.abs(learned.learned).max(), "learned (÷max|w|)"),
    ):
        right.bar(taps + offset, values, width=0.25, label=label)
    right.axhline(0, color="black", lw=0.8)
    right.set_xticks(taps, ["left", "centre", "right"])
    right.set_title(
        f"Conv1D filter, cosine to [-1, 1, -1]\n= {cosine(learned.learned, PEAK):.3f} (symmetric: no flip)", fontsize=9
    )
    right.legend(fontsize=7, loc="lower center")
    return fig
