"""The prepared dataset: stratified splits, and the `mnist.npz` every training stage reads.

`split_and_scale` is pure (arrays in, arrays out). `load_manifest` reads the download
stage's manifest.json and checks the raw files against it. `save_prepared` writes the npz
through a temp file; `load_prepared` reads it without pickle and checks its keys, shapes
and dtypes, so a damaged file is one DataError line, never a traceback.
Besides the six arrays the npz carries two 0-d string arrays: `source` (where the
digits came from) and `raw_sha256` (one digest over the raw files), for tracking.
"""

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from filterlab.config.geometry import IMAGE_SIDE, NUM_CLASSES
from filterlab.core import atomic
from filterlab.core.errors import DataError

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

    def counts(self) -> dict[str, dict[str, Any]]:
        """Images per split and per class, as written to the data metrics."""
        result = {}
        for split in SPLITS:
            labels = getattr(self, f"y_{split}")
            per_class = np.bincount(labels, minlength=NUM_CLASSES)
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


def split_and_scale(
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray] | None,
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    source: str,
    raw_sha256: str,
) -> Prepared:
    """uint8 images and labels → a scaled `Prepared`; `test` None holds out a stratified test set.

    The validation split always comes from the training images (seeded with `seed`); the
    test hold-out, when needed, is drawn first with `seed + 1` so the two draws differ.
    """
    images, labels = train
    if test is None:
        kept, held = stratified_split(labels, test_fraction, seed + 1)
        test = (images[held], labels[held])
        images, labels = images[kept], labels[kept]
    kept, held = stratified_split(labels, val_fraction, seed)
    return Prepared(
        x_train=scale(images[kept]),
        y_train=labels[kept].astype(np.int64),
        x_val=scale(images[held]),
        y_val=labels[held].astype(np.int64),
        x_test=scale(test[0]),
        y_test=np.asarray(test[1]).astype(np.int64),
        source=source,
        raw_sha256=raw_sha256,
    )


def raw_digest(files: Mapping[str, Mapping[str, Any]]) -> str:
    """One SHA-256 naming the exact raw data: over the files' digests, in name order."""
    text = "".join(f"{name} {files[name]['sha256']}\n" for name in sorted(files))
    return hashlib.sha256(text.encode()).hexdigest()


def load_manifest(raw_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The download stage's manifest.json, after checking every listed file's size and sha256."""
    path = Path(raw_dir) / "manifest.json"
    try:
        manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run `dvc repro download`") from None
    except ValueError as error:  # UnicodeDecodeError too
        raise DataError(f"{path}: not valid JSON ({error})") from None
    missing = {"source", "url", "files", "test_split"} - set(manifest if isinstance(manifest, dict) else ())
    if missing:
        raise DataError(f"{path}: not a download manifest; missing {', '.join(sorted(missing))}")
    if manifest["source"] not in ("remote", "mirror", "keras", "pypi", "bundled"):
        raise DataError(f"{path}: unknown source {manifest['source']!r}")
    files = manifest["files"]
    if not isinstance(files, dict) or not files:
        raise DataError(f"{path}: `files` must map each raw file to its bytes and sha256; re-run `dvc repro download`")
    for name, entry in files.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("bytes"), int) or "sha256" not in entry:
            raise DataError(f"{path}: entry {name!r} lacks `bytes` or `sha256`; re-run `dvc repro download`")
        try:
            payload = (Path(raw_dir) / name).read_bytes()
        except FileNotFoundError:
            raise DataError(f"{Path(raw_dir) / name}: listed in manifest.json but missing") from None
        if len(payload) != entry["bytes"] or hashlib.sha256(payload).hexdigest() != entry["sha256"]:
            raise DataError(f"{Path(raw_dir) / name}: does not match manifest.json; re-run `dvc repro download`")
    return manifest


def first_of_each_class(images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first image of every class present, in class order, and those classes: one digit per column of a figure."""
    classes = np.unique(labels)
    first = np.array([np.flatnonzero(labels == label)[0] for label in classes])
    return images[first], classes


def save_prepared(path: str | os.PathLike[str], data: Prepared) -> None:
    arrays = {f"{kind}_{split}": getattr(data, f"{kind}_{split}") for split in SPLITS for kind in ("x", "y")}
    atomic.save_npz(path, **arrays, source=np.array(data.source), raw_sha256=np.array(data.raw_sha256))


def load_prepared(path: str | os.PathLike[str]) -> Prepared:
    """The npz `save_prepared` wrote; anything else (truncated, corrupt, object arrays, wrong shapes or
    dtypes) is one DataError line telling how to rebuild it."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: prepared dataset not found; run `dvc repro prepare`")
    rebuild = "re-run `dvc repro -f prepare`"
    arrays = atomic.load_npz(path, rebuild=rebuild)
    missing = [name for name in Prepared.__dataclass_fields__ if name not in arrays]
    if missing:
        raise DataError(f"{path}: missing arrays {', '.join(missing)}; re-run `dvc repro prepare`")
    _check_layout(path, arrays, rebuild)
    return Prepared(
        **{name: arrays[name] for name in Prepared.__dataclass_fields__ if name not in ("source", "raw_sha256")},
        source=str(arrays["source"]),
        raw_sha256=str(arrays["raw_sha256"]),
    )


def _check_layout(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], rebuild: str) -> None:
    """float32 (N, 28, 28, 1) images with N int labels in [0, 10) per split; 0-d strings for the rest."""
    for split in SPLITS:
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.dtype != np.float32 or images.ndim != 4 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE, 1):
            raise DataError(
                f"{path}: x_{split} is {images.dtype} {images.shape}, expected float32 "
                f"(N, {IMAGE_SIDE}, {IMAGE_SIDE}, 1); {rebuild}"
            )
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or labels.shape[0] != images.shape[0]:
            raise DataError(
                f"{path}: y_{split} is {labels.dtype} {labels.shape}, expected "
                f"{images.shape[0]} integer labels; {rebuild}"
            )
        if images.shape[0] == 0 or labels.min() < 0 or labels.max() >= NUM_CLASSES:
            raise DataError(f"{path}: y_{split} is empty or holds labels outside [0, {NUM_CLASSES}); {rebuild}")
    for name in ("source", "raw_sha256"):
        if arrays[name].ndim != 0 or arrays[name].dtype.kind != "U":
            raise DataError(f"{path}: {name} is not a string; {rebuild}")
