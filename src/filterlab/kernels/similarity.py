"""Which classic kernel does a learned filter look like? Pure maths; reads and writes nothing.

Similarity is the sign-invariant cosine of two kernels after each is centred (mean 0)
and scaled to unit norm: |<a, b>|. Centring makes a filter that is an edge detector
plus a constant offset still match the edge detector; the absolute value makes -sobel_x
match sobel_x, because the next layer can flip a sign for free (ReLU aside).

A kernel whose entries are all equal (box blur) is all zeros after centring and has no
direction: its similarity to anything is defined as 0, not NaN.

Bank kernels are convolution kernels as people write them; conv1 weights are applied as
cross-correlation. `keras_bank` flips the bank once, through
`filterlab.convolution.to_keras_weights`, so every comparison here is Keras layout
against Keras layout.
"""

from collections.abc import Mapping

import numpy as np

# Below this norm (after centring) a kernel counts as constant.
ZERO_NORM = 1e-8


def centred_unit(kernel: np.ndarray) -> np.ndarray | None:
    """`kernel` minus its mean, scaled to unit norm; None when nothing is left after centring."""
    values = np.asarray(kernel, dtype=np.float64)
    centred = values - values.mean()
    norm = np.linalg.norm(centred)
    if norm < ZERO_NORM * max(1.0, float(np.abs(values).max(initial=0.0))):
        return None
    return centred / norm


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
    """Sign-invariant cosine of the centred kernels, in [0, 1]; 0 when either is constant."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"kernels of different shapes {a.shape} and {b.shape} cannot be compared")
    unit_a, unit_b = centred_unit(a), centred_unit(b)
    if unit_a is None or unit_b is None:
        return 0.0
    return float(min(1.0, abs(np.sum(unit_a * unit_b))))


def keras_bank(bank: Mapping[str, object], shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """The bank's kernels of `shape`, flipped to the cross-correlation layout conv1 uses.

    `bank` maps names to `filterlab.kernels.Kernel` objects (anything with `.weights`).
    """
    from filterlab.kernels.convolution import to_keras_weights

    if len(shape) != 2 or shape[0] != shape[1]:
        # to_keras_weights pads to a square; conv1 filters are square, so only squares are compared.
        raise ValueError(f"only square filters can be compared with the bank, got shape {tuple(shape)}")
    result = {}
    for name, kernel in bank.items():
        weights = np.asarray(kernel.weights, dtype=np.float64)
        if weights.shape == tuple(shape):
            result[name] = to_keras_weights([weights])[:, :, 0, 0].astype(np.float64)
    return result


def nearest(filter_2d: np.ndarray, bank: Mapping[str, np.ndarray]) -> tuple[str | None, float]:
    """The most similar kernel of a (Keras-layout, same-shape) bank and its similarity.

    Ties go to the first name in bank order, so results do not depend on dict hashing.
    With no kernel of similarity > 0 the name is None.
    """
    best_name, best = None, 0.0
    for name, candidate in bank.items():
        score = similarity(filter_2d, candidate)
        if score > best:
            best_name, best = name, score
    return best_name, best


def _summary(scores: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(scores)), "max": float(np.max(scores))}


def compare_filters(init: np.ndarray, learned: np.ndarray, bank: Mapping[str, object]) -> dict:
    """Nearest classic kernel for every conv1 filter, before and after training.

    `init` and `learned` are conv1 kernels in Keras layout (kh, kw, 1, filters). Returns
    {"comparable", "similarity": {"init"/"learned": {"mean", "max"}}, "per_filter": [...]};
    with no bank kernel of that size, comparable is False and every number is None.
    """
    init, learned = np.asarray(init), np.asarray(learned)
    if init.shape != learned.shape or init.ndim != 4 or init.shape[2] != 1:
        raise ValueError(
            f"expected two (kh, kw, 1, filters) kernels of one shape, got {init.shape} and {learned.shape}"
        )
    candidates = keras_bank(bank, init.shape[:2])
    if not candidates:
        empty = {"mean": None, "max": None}
        return {"comparable": False, "bank_kernels": [], "similarity": {"init": empty, "learned": dict(empty)},
                "per_filter": []}
    per_filter, scores = [], {"init": [], "learned": []}
    for index in range(init.shape[3]):
        entry = {"index": index}
        for moment, kernels in (("init", init), ("learned", learned)):
            name, score = nearest(kernels[:, :, 0, index], candidates)
            entry[moment] = {"kernel": name, "similarity": score}
            scores[moment].append(score)
        per_filter.append(entry)
    return {
        "comparable": True,
        "bank_kernels": sorted(candidates),
        "similarity": {moment: _summary(values) for moment, values in scores.items()},
        "per_filter": per_filter,
    }
