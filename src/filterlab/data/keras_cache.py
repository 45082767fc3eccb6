"""MNIST from Keras's cache file `mnist.npz` (what `keras.datasets.mnist.load_data()` leaves in ~/.keras/datasets).

Reads the npz it is given (`allow_pickle=False`); returns its four arrays under the official
`.gz` names for `filterlab.data.official.write_arrays`, which checks them against the official
content. Imports no Keras.
"""

import os
import zipfile
from pathlib import Path

import numpy as np

from filterlab.core.errors import DataError
from filterlab.data import idx

# npz key → the official file holding the same digits.
KEYS = {
    "x_train": idx.file_name("train", "images"),
    "y_train": idx.file_name("train", "labels"),
    "x_test": idx.file_name("t10k", "images"),
    "y_test": idx.file_name("t10k", "labels"),
}


# No member of a real mnist.npz is larger than this (x_train: 47,040,000 bytes plus the .npy header), so a
# header claiming more is refused before NumPy allocates for it.
MAX_MEMBER_BYTES = 48 * 1024 * 1024


def read(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """{official `.gz` name: uint8 array} from a Keras `mnist.npz`; DataError naming the file otherwise."""
    path = Path(path).expanduser()
    try:
        with zipfile.ZipFile(path) as archive:
            sizes = {info.filename: info.file_size for info in archive.infolist()}
        if any(size > MAX_MEMBER_BYTES for size in sizes.values()):
            raise DataError(f"{path}: a member is larger than any array of MNIST ({max(sizes.values()):,} bytes)")
        with np.load(path, allow_pickle=False) as archive:
            if set(archive.files) != set(KEYS):
                raise DataError(
                    f"{path}: holds {', '.join(sorted(archive.files)) or 'no arrays'}; a Keras "
                    f"mnist.npz holds exactly {', '.join(sorted(KEYS))}"
                )
            arrays = {KEYS[key]: archive[key] for key in KEYS}
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, MemoryError) as error:
        # allow_pickle=False turns an object array into a ValueError; a cut file is a BadZipFile or EOFError;
        # a header claiming a shape beyond its bytes a ValueError or MemoryError.
        raise DataError(f"{path}: not a readable npz file ({' '.join(str(error).split())})") from None
    for name, array in arrays.items():
        if array.dtype != np.uint8:
            raise DataError(f"{path}: {name.removesuffix('.gz')} is {array.dtype}, expected uint8")
    return arrays
