"""Crash-safe writers: every file lands through a temp file in the same folder and a rename.

A reader (or DVC) therefore sees either the old file or the complete new one, never a
partial write; a full disk (ENOSPC) becomes one `DiskFull` line naming the file. Figures
are saved here too, so matplotlib is imported only by callers that pass a figure.
"""

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filterlab.core.errors import DiskFull, is_disk_full

if TYPE_CHECKING:  # NumPy loads only in the functions that need it, after the numeric path is pinned
    import numpy as np


@contextlib.contextmanager
def replacing(path: str | os.PathLike, mode: str = "wb") -> Iterator[io.IOBase]:
    """Yield a temp file beside `path`; rename it over `path` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as error:
        if is_disk_full(error):
            raise DiskFull(target) from None
        raise
    try:
        # mkstemp makes the file 0600; give it the mode a plain open() would have.
        os.chmod(tmp_name, 0o666 & ~current_umask())
        with os.fdopen(handle, mode) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp_name, target)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        if is_disk_full(error):  # one line naming the file, the old one still in place
            raise DiskFull(target) from None
        raise


def current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with replacing(path, "wb") as stream:
        stream.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with replacing(path, "w") as stream:
        stream.write(text)


def write_json(path: str | os.PathLike, payload: Any) -> None:
    """Pretty, key-sorted JSON so `git diff` of committed metrics stays readable."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def save_npz(path: str | os.PathLike, **arrays: "np.ndarray") -> None:
    """Compressed npz of plain arrays; object arrays are refused so loads never need pickle."""
    import numpy as np

    for name, array in arrays.items():
        if np.asarray(array).dtype == object:
            raise ValueError(f"{name}: object arrays would need pickle to load")
    with replacing(path, "wb") as stream:
        np.savez_compressed(stream, **arrays)


def load_npz(path: str | os.PathLike) -> dict[str, "np.ndarray"]:
    """Read every array of an npz written by `save_npz`, without pickle."""
    import numpy as np

    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def save_figure(path: str | os.PathLike, figure: Any, **kwargs: Any) -> None:
    """Save a matplotlib figure atomically; the format comes from the suffix."""
    suffix = Path(path).suffix.lstrip(".") or "png"
    with replacing(path, "wb") as stream:
        figure.savefig(stream, format=suffix, **kwargs)
