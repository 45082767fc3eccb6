"""The official MNIST files, named by their content: both digests of each, and the check against them.

Reads nothing; `write_arrays` writes the four `.gz` files into the folder it is given
(through `filterlab.core.atomic`). A copy of MNIST is accepted when its `.gz` bytes are the
published ones, or when its decompressed IDX bytes are: re-gzipped copies (torchvision's
`MNIST/raw`), uncompressed IDX files, Keras's `mnist.npz` and the PyPI pickle all carry the
same digits, and the IDX digest is what proves it.
"""

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from filterlab.core import atomic
from filterlab.core.errors import DataError
from filterlab.data import idx


@dataclass(frozen=True)
class Expected:
    """One MNIST file: SHA-256 and size of the published `.gz`, and of the IDX bytes inside it."""

    sha256: str
    size: int
    content_sha256: str
    content_size: int


# The published files (yann.lecun.com's, served unchanged by every mirror) and their decompressed IDX content.
EXPECTED_FILES: Mapping[str, Expected] = {
    "train-images-idx3-ubyte.gz": Expected(
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        9_912_422,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        47_040_016,
    ),
    "train-labels-idx1-ubyte.gz": Expected(
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        28_881,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        60_008,
    ),
    "t10k-images-idx3-ubyte.gz": Expected(
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        1_648_877,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        7_840_016,
    ),
    "t10k-labels-idx1-ubyte.gz": Expected(
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        4_542,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        10_008,
    ),
}


def expected_for(content: Mapping[str, bytes]) -> dict[str, Expected]:
    """An `expected` table for other IDX payloads ({`.gz` name: IDX bytes}): how tests stand in small files."""
    table = {}
    for name, data in content.items():
        packed = idx.gzip_bytes(data)
        table[name] = Expected(
            hashlib.sha256(packed).hexdigest(), len(packed), hashlib.sha256(data).hexdigest(), len(data)
        )
    return table


def check_content(source: str, name: str, data: bytes, want: Expected) -> None:
    """DataError naming `source` unless `data` is exactly the IDX content of `name`."""
    if len(data) != want.content_size:
        raise DataError(
            f"{source}: {name.removesuffix('.gz')} has {len(data):,} bytes, "
            f"expected {want.content_size:,} (the official MNIST content)"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != want.content_sha256:
        raise DataError(
            f"{source}: {name.removesuffix('.gz')} sha256 {digest[:12]}… is not the official "
            f"MNIST content {want.content_sha256[:12]}…"
        )


def write_arrays(
    dest: str | os.PathLike[str],
    arrays: Mapping[str, np.ndarray],
    source: str,
    expected: Mapping[str, Expected] = EXPECTED_FILES,
) -> dict[str, dict[str, Any]]:
    """Write {`.gz` name: uint8 array} as IDX `.gz` files after checking each against `expected`.

    Every array is checked before anything is written, so a wrong one leaves `dest` as it
    was. Returns the manifest's `files` entries.
    """
    if set(arrays) != set(expected):
        raise DataError(f"{source}: holds {', '.join(sorted(arrays))}; expected {', '.join(sorted(expected))}")
    payloads = {}
    for name, want in expected.items():
        try:
            content = idx.encode(arrays[name])
        except ValueError as error:  # not uint8 images (N, rows, cols) or labels (N,)
            raise DataError(f"{source}: {name.removesuffix('.gz')}: {error}") from None
        check_content(source, name, content, want)
        payloads[name] = content
    files = {}
    for name, content in payloads.items():
        packed = idx.gzip_bytes(content)
        atomic.write_bytes(Path(dest) / name, packed)
        files[name] = {
            "sha256": hashlib.sha256(packed).hexdigest(),
            "bytes": len(packed),
            "content_sha256": expected[name].content_sha256,
            "url": source,
        }
    return files
