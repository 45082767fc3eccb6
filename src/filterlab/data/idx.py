"""The IDX format MNIST ships in: reads `.gz` (or plain) IDX files, encodes arrays as IDX bytes.

Readers check the magic number, the dimensions and the payload length, and turn a
truncated file or a corrupt gzip stream into a `DataError` naming the file. Encoders
return bytes (callers write them through `filterlab.core.atomic`); gzip output has mtime 0
so the same digits always give the same bytes, and DVC sees no change.
"""

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from filterlab.config.geometry import IMAGE_SIDE
from filterlab.core.errors import DataError

IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension

# Far above MNIST's 60,000; stops a corrupt header from asking for terabytes.
MAX_ITEMS = 10_000_000


def file_name(split: str, kind: str) -> str:
    """MNIST's own names: `file_name("train", "images")` → train-images-idx3-ubyte.gz."""
    dims = {"images": 3, "labels": 1}[kind]
    return f"{split}-{kind}-idx{dims}-ubyte.gz"


def _read_bytes(path: str | os.PathLike[str]) -> bytes:
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error) as error:
        # BadGzipFile is an OSError; a cut gzip stream raises EOFError.
        raise DataError(f"{path}: not a readable gzip file ({error})") from None


def decode(data: bytes, magic: int, name: str = "<bytes>") -> np.ndarray:
    """The uint8 array held in IDX `data`, after checking its magic number and length."""
    if len(data) < 4:
        raise DataError(f"{name}: truncated IDX header ({len(data)} bytes)")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        raise DataError(f"{name}: IDX magic number 0x{found:08x}, expected 0x{magic:08x}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated IDX header ({len(data)} bytes, need {header})")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    if shape[0] > MAX_ITEMS:
        raise DataError(f"{name}: header claims {shape[0]} items, more than {MAX_ITEMS}")
    expected = header + math.prod(shape)  # Python integers: a forged header cannot overflow into a match
    if len(data) != expected:
        state = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(f"{name}: {state}: {len(data)} bytes for shape {shape}, expected {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_images(path: str | os.PathLike[str]) -> np.ndarray:
    """uint8 (N, 28, 28) images from an IDX3 file."""
    images = decode(_read_bytes(path), IMAGES_MAGIC, str(path))
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{path}: images are {images.shape[1]}x{images.shape[2]}, expected {IMAGE_SIDE}x{IMAGE_SIDE}")
    return images


def read_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """uint8 (N,) digit labels from an IDX1 file."""
    labels = decode(_read_bytes(path), LABELS_MAGIC, str(path))
    if labels.size and labels.max() > 9:
        raise DataError(f"{path}: label {int(labels.max())} is not a digit 0-9")
    return labels


def item_count(path: str | os.PathLike[str]) -> int:
    """Number of items an IDX file's header declares, without decoding the payload."""
    try:
        with gzip.open(path, "rb") if Path(path).suffix == ".gz" else open(path, "rb") as stream:
            header = stream.read(8)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: not a readable IDX file ({error})") from None
    if len(header) < 8:
        raise DataError(f"{path}: truncated IDX header ({len(header)} bytes)")
    count: int = struct.unpack(">I", header[4:8])[0]
    return count


def read_split(directory: str | os.PathLike[str], split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one MNIST split ("train" or "t10k") from `directory`."""
    images_path = Path(directory) / file_name(split, "images")
    labels_path = Path(directory) / file_name(split, "labels")
    images, labels = read_images(images_path), read_labels(labels_path)
    if len(images) != len(labels):
        raise DataError(f"{images_path}: {len(images)} images but {labels_path.name} has {len(labels)} labels")
    return images, labels


def encode(array: np.ndarray) -> bytes:
    """IDX bytes for uint8 images (N, rows, cols) or labels (N,)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"IDX ubyte data must be uint8, got {array.dtype}")
    magic = {3: IMAGES_MAGIC, 1: LABELS_MAGIC}.get(array.ndim)
    if magic is None:
        raise ValueError(f"expected images (N, rows, cols) or labels (N,), got shape {array.shape}")
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip: no timestamp, no file name."""
    return gzip.compress(data, compresslevel=6, mtime=0)
