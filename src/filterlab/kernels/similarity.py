"""Which classic kernel does a learned filter look like, and is that more than chance? Pure maths.

Similarity is the sign-invariant cosine |<a, b>| / (|a| |b|) of the two kernels as they
are, mean included. The mean is kept because it is part of what a filter does: a box
blur (all mean) and an edge detector (no mean) answer different questions, and identity
and laplacian_8 differ only by their mean. The absolute value makes -sobel_x match
sobel_x, because the next layer can flip a sign (ReLU aside).

Bank kernels are grouped into classes first: kernels with similarity 1 to each other
(the same direction) are one class, named "a = b", so the answer never depends on
which of two equal kernels rounding happens to prefer. Among classes, scores within
TIE_TOLERANCE of the best count as a tie, which goes to the first class in bank order.

The chance level is the same nearest-class similarity for random filters drawn like
Keras' default initialiser (i.i.d. uniform; cosine ignores the scale), by seeded Monte
Carlo. Conv1 weights are applied as cross-correlation, so the bank is flipped once
(`filterlab.kernels.convolution.to_keras_weights`) and compared Keras layout to Keras layout.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, SupportsFloat

import numpy as np

# Two bank kernels whose similarity is this close to 1 point the same way: one class.
EQUIVALENT_TOLERANCE = 1e-9
# Class scores this close to the best one are a tie: far above rounding noise, far below real differences.
TIE_TOLERANCE = 1e-9
CHANCE_SAMPLES = 20_000
# Reported numbers are rounded: the last bits of a float sum are not a finding.
DIGITS = 6


def cosine(a: np.ndarray, b: np.ndarray, *, centred: bool = False) -> float:
    """Signed cosine of two arrays over all entries; `centred` subtracts each mean first (Pearson's r).

    0 when either side has no direction (all zeros, or constant once centred).
    """
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    if centred:
        a, b = a - a.mean(), b - b.mean()
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denominator) if denominator > 0 else 0.0


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Sign-invariant cosine of the kernels as they are, in [0, 1]; 0 when either is all zeros."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"kernels of different shapes {a.shape} and {b.shape} cannot be compared")
    return min(1.0, abs(cosine(a, b)))


class WeightedKernel(Protocol):
    """What the bank's entries must offer here: `filterlab.kernels.bank.Kernel`, or anything with `.weights`."""

    @property
    def weights(self) -> np.ndarray: ...


@dataclass(frozen=True)
class KernelClass:
    """Bank kernels that point the same way (similarity 1), as one unit vector in Keras layout."""

    name: str
    members: tuple[str, ...]
    unit: np.ndarray


def kernel_classes(bank: Mapping[str, WeightedKernel], shape: tuple[int, int]) -> list[KernelClass]:
    """The bank's kernels of `shape`, flipped to conv1's layout and grouped into classes, in bank order.

    `bank` maps names to `filterlab.kernels.bank.Kernel` objects (anything with `.weights`).
    """
    from filterlab.kernels.convolution import to_keras_weights

    if len(shape) != 2 or shape[0] != shape[1]:
        # to_keras_weights pads to a square; conv1 filters are square, so only squares are compared.
        raise ValueError(f"only square filters can be compared with the bank, got shape {tuple(shape)}")
    groups: list[tuple[list[str], np.ndarray]] = []
    for name, kernel in bank.items():
        weights = np.asarray(kernel.weights, dtype=np.float64)
        if weights.shape != tuple(shape) or not np.any(weights):
            continue
        unit = to_keras_weights([weights])[:, :, 0, 0].astype(np.float64).ravel()
        unit /= np.linalg.norm(unit)
        for members, first in groups:
            if abs(float(unit @ first)) >= 1 - EQUIVALENT_TOLERANCE:
                members.append(name)
                break
        else:
            groups.append(([name], unit))
    return [KernelClass(" = ".join(members), tuple(members), unit) for members, unit in groups]


def class_scores(filters: np.ndarray, classes: list[KernelClass]) -> np.ndarray:
    """(n_filters, n_classes) similarities of flattened filters (n_filters, kh*kw) to each class."""
    filters = np.asarray(filters, dtype=np.float64).reshape(len(filters), -1)
    norms = np.linalg.norm(filters, axis=1, keepdims=True)
    units = np.divide(filters, norms, out=np.zeros_like(filters), where=norms > 0)
    scores: np.ndarray = np.minimum(1.0, np.abs(units @ np.stack([c.unit for c in classes]).T))
    return scores


def nearest(filter_2d: np.ndarray, classes: list[KernelClass]) -> tuple[str | None, float]:
    """The nearest class and its similarity; ties (within TIE_TOLERANCE) go to the first in bank order."""
    scores = class_scores(np.asarray(filter_2d)[np.newaxis], classes)[0]
    best = float(scores.max(initial=0.0))
    if best == 0.0:
        return None, 0.0
    return classes[int(np.flatnonzero(scores >= best - TIE_TOLERANCE)[0])].name, best


def chance(
    shape: tuple[int, int], classes: list[KernelClass], seed: int, samples: int = CHANCE_SAMPLES
) -> dict[str, Any]:
    """Nearest-class similarity of random filters drawn like conv1's initialiser: mean, sd and 95th percentile."""
    draws = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(samples, shape[0] * shape[1]))
    best = class_scores(draws, classes).max(axis=1)
    return {
        "mean": _round(best.mean()),
        "sd": _round(best.std(ddof=1)),
        "p95": _round(np.quantile(best, 0.95)),
        "samples": samples,
    }


def _round(value: SupportsFloat) -> float:
    return round(float(value), DIGITS)


def headline(report: Mapping[str, Any]) -> dict[str, Any]:
    """The three numbers `dvc metrics show` lists per variant; empty when no bank kernel has its size."""
    if not report["comparable"]:
        return {}
    return {
        "similarity_init": report["similarity"]["init"]["mean"],
        "similarity_learned": report["similarity"]["learned"]["mean"],
        "similarity_chance": report["chance"]["mean"],
    }


def compare_filters(
    init: np.ndarray, learned: np.ndarray, bank: Mapping[str, WeightedKernel], seed: int
) -> dict[str, Any]:
    """Nearest classic kernel class for every conv1 filter, at init and learned, against the chance level.

    `init` and `learned` are conv1 kernels in Keras layout (kh, kw, 1, filters). With no
    bank kernel of that size, comparable is False and every number is None.
    """
    init, learned = np.asarray(init), np.asarray(learned)
    if init.shape != learned.shape or init.ndim != 4 or init.shape[2] != 1:
        raise ValueError(
            f"expected two (kh, kw, 1, filters) kernels of one shape, got {init.shape} and {learned.shape}"
        )
    classes = kernel_classes(bank, init.shape[:2])
    if not classes:
        empty = {"mean": None, "max": None}
        return {
            "comparable": False,
            "bank_classes": [],
            "similarity": {"init": empty, "learned": dict(empty)},
            "chance": None,
            "shift": None,
            "per_filter": [],
        }
    per_filter: list[dict[str, Any]]
    scores: dict[str, list[float]]
    per_filter, scores = [], {"init": [], "learned": []}
    for index in range(init.shape[3]):
        entry: dict[str, Any] = {"index": index}
        for moment, kernels in (("init", init), ("learned", learned)):
            name, score = nearest(kernels[:, :, 0, index], classes)
            entry[moment] = {"kernel": name, "similarity": _round(score)}
            scores[moment].append(score)
        per_filter.append(entry)
    level = chance(init.shape[:2], classes, seed)
    learned_scores = np.array(scores["learned"])
    shift = learned_scores - np.array(scores["init"])
    return {
        "comparable": True,
        "bank_classes": [c.name for c in classes],
        "similarity": {
            moment: {"mean": _round(np.mean(values)), "max": _round(np.max(values))}
            for moment, values in scores.items()
        },
        "chance": level,
        # Effect size: how many chance standard deviations the learned mean lies above chance.
        "shift": {
            "mean": _round(shift.mean()),
            "effect_size": _round((learned_scores.mean() - level["mean"]) / level["sd"]),
            "above_chance_p95": _round(np.mean(learned_scores > level["p95"])),
        },
        "per_filter": per_filter,
    }
