"""The prepared dataset: stratified splits, and the `mnist.npz` every training stage reads.

`split_and_scale` is pure (arrays in, arrays out). `save_prepared` writes the npz
through a temp file; `load_prepared` reads it without pickle and checks its keys.
Besides the six arrays the npz carries two 0-d string arrays: `source` (where the
digits came from) and `raw_sha256` (one digest over the raw files), for tracking.
"""

import os
from dataclasses import dataclass

import numpy as np

from filterlab import atomic
from filterlab.errors import DataError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Prepared:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    raw_sha256: str

    def counts(self) -> dict[str, dict]:
        """Images per split and per class, as written to the data metrics."""
        result = {}
        for split in SPLITS:
            labels = getattr(self, f"y_{split}")
            per_class = np.bincount(labels, minlength=10)
            result[split] = {"total": int(labels.size), "per_class": {str(d): int(n) for d, n in enumerate(per_class)}}
        return result


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held_out): `fraction` of every class held out, at least one per class."""
    rng = np.random.default_rng(seed)
    kept, held = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_held = max(1, int(round(fraction * members.size)))
        if n_held >= members.size:
            raise DataError(f"class {label} has {members.size} images: too few to hold out {fraction:.0%}")
        held.append(members[:n_held])
        kept.append(members[n_held:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(held))


def scale(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) → float32 (N, 28, 28, 1) in [0, 1]."""
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


def save_prepared(path: str | os.PathLike, data: Prepared) -> None:
    arrays = {f"{kind}_{split}": getattr(data, f"{kind}_{split}") for split in SPLITS for kind in ("x", "y")}
    atomic.save_npz(path, **arrays, source=np.array(data.source), raw_sha256=np.array(data.raw_sha256))


def load_prepared(path: str | os.PathLike) -> Prepared:
    if not os.path.isfile(path):
        raise DataError(f"{path}: prepared dataset not found; run `dvc repro prepare`")
    arrays = atomic.load_npz(path)
    missing = [name for name in Prepared.__dataclass_fields__ if name not in arrays]
    if missing:
        raise DataError(f"{path}: missing arrays {', '.join(missing)}; re-run `dvc repro prepare`")
    return Prepared(
        **{name: arrays[name] for name in Prepared.__dataclass_fields__ if name not in ("source", "raw_sha256")},
        source=str(arrays["source"]),
        raw_sha256=str(arrays["raw_sha256"]),
    )
