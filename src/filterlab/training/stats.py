"""Which accuracy differences are real: Wilson intervals and exact McNemar tests; pure maths, no I/O.

One test split of n digits gives an accuracy with a standard error near sqrt(p(1-p)/n):
about ±0.5 points on the 1,000 digits of the offline subset. Two variants scored on the
SAME digits are compared pairwise on the digits where exactly one of them is right, so
the test is far sharper than comparing two intervals.
"""

import math
from collections.abc import Sequence

Z95 = 1.959963984540054  # two-sided 95 % normal quantile
ALPHA = 0.05


def wilson(correct: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of `correct` successes in `total` trials (95 % by default)."""
    if total <= 0:
        raise ValueError("an interval needs at least one trial")
    if not 0 <= correct <= total:
        raise ValueError(f"{correct} correct out of {total} is impossible")
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Two-sided exact McNemar p-value: of the digits exactly one model gets right, is the split 50:50?"""
    if only_first < 0 or only_second < 0:
        raise ValueError("discordant counts cannot be negative")
    n = only_first + only_second
    if n == 0:
        return 1.0
    low = min(only_first, only_second)
    tail: float = sum(math.comb(n, k) for k in range(low + 1)) / 2**n
    return min(1.0, 2 * tail)


def discordant(first: Sequence[bool], second: Sequence[bool]) -> tuple[int, int]:
    """(right only in `first`, right only in `second`) over the same examples."""
    if len(first) != len(second):
        raise ValueError(f"paired comparison needs the same examples: {len(first)} against {len(second)}")
    only_first = sum(1 for a, b in zip(first, second, strict=True) if a and not b)
    only_second = sum(1 for a, b in zip(first, second, strict=True) if b and not a)
    return only_first, only_second


def across_seeds(accuracies: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation of one variant's test accuracy over its seed replicates."""
    if len(accuracies) < 2:
        raise ValueError("a spread across seeds needs at least two replicates")
    mean = sum(accuracies) / len(accuracies)
    sd = math.sqrt(sum((a - mean) ** 2 for a in accuracies) / (len(accuracies) - 1))
    return {"seeds": len(accuracies), "accuracy_seed_mean": round(mean, 6), "accuracy_seed_sd": round(sd, 6)}


def tied_with(best: Sequence[bool], other: Sequence[bool], alpha: float = ALPHA) -> tuple[bool, float]:
    """Whether `other` is statistically indistinguishable from `best` on the same digits, and the p-value."""
    p = mcnemar_exact(*discordant(best, other))
    return p >= alpha, p
