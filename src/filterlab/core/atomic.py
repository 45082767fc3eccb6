"""Crash-safe writers: every file lands through a temp file in the same folder and a rename, and a folder
(data/raw) through a temp folder and a rename (`landing_folder`).

A reader (or DVC) therefore sees either the old file or folder or the complete new one, never a
partial write; a full disk (ENOSPC) becomes one `DiskFull` line naming the file. Figures
are saved here too, so matplotlib is imported only by callers that pass a figure.
"""

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from filterlab.core.errors import DataError, DiskFull, is_disk_full

if TYPE_CHECKING:  # NumPy loads only in the functions that need it, after the numeric path is pinned
    import numpy as np


@contextlib.contextmanager
def landing(path: str | os.PathLike[str], *, sidecars: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield a new empty temp file beside `path` for the block to fill; rename it over `path` only if the
    block succeeds. The one temp-file-and-rename of the project: every writer lands through here.

    The temp file and any `sidecars` (suffixes of files a writer makes beside it, such as sqlite's
    `-journal`) are removed whatever happens. A full disk is one `DiskFull` naming `path`, the old file
    still in place.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as error:
        if is_disk_full(error):
            raise DiskFull(target) from None
        raise
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        # mkstemp makes the file 0600; give it the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~current_umask())
        yield tmp
        with open(tmp, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(tmp, target)
    except BaseException as error:
        if is_disk_full(error):
            raise DiskFull(target) from None
        raise
    finally:
        for leftover in (tmp, *(Path(f"{tmp}{suffix}") for suffix in sidecars)):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


@contextlib.contextmanager
def landing_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """The folder counterpart of `landing`: yield a new empty temp folder beside `path` for
    the block to fill; put it at `path` only if the block succeeds, the old folder moved aside first and removed
    after. A kill mid-way leaves `.<name>.*.tmp` or `.<name>.old.*` folders, never a half-filled `path`; the
    download stage removes those on its next run."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    try:
        yield staging
        # mkdtemp made the folder private (0700); give it the permissions a plain mkdir would.
        os.chmod(staging, 0o777 & ~current_umask())
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
            os.replace(target, old / target.name)
        os.replace(staging, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Yield a stream to a temp file beside `path`; rename it over `path` only if the block succeeds."""
    with landing(path) as tmp, open(tmp, mode) as stream:
        yield stream


def current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with replacing(path, "wb") as stream:
        stream.write(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with replacing(path, "w") as stream:
        stream.write(text)


def write_json(path: str | os.PathLike[str], payload: Any) -> None:
    """Pretty, key-sorted JSON so `git diff` of committed metrics stays readable."""
    write_text(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def save_npz(path: str | os.PathLike[str], **arrays: "np.ndarray") -> None:
    """Compressed npz of plain arrays; object arrays are refused so loads never need pickle."""
    import numpy as np

    for name, array in arrays.items():
        if np.asarray(array).dtype == object:
            raise ValueError(f"{name}: object arrays would need pickle to load")
    with replacing(path, "wb") as stream:
        np.savez_compressed(stream, **arrays)  # type: ignore[arg-type]  # numpy's stub reads a key as allow_pickle


def load_npz(
    path: str | os.PathLike[str], *, rebuild: str = "re-run the stage that writes it"
) -> dict[str, "np.ndarray"]:
    """Read every array of an npz written by `save_npz`, without pickle; anything else is one DataError line
    naming the file and ending with `rebuild`, what to run to write it again.

    NumPy reads a file that is not a zip as a pickle, which `allow_pickle=False` refuses with advice to trust
    the file: that, object arrays, a truncated zip and a damaged member are all the same one line.
    """
    import zipfile
    import zlib

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except zipfile.BadZipFile as error:
        found = f"not a readable npz ({error})"
    except ValueError as error:  # object arrays, a malformed array header, a file that is no zip at all
        text = " ".join(str(error).split())
        found = "not an npz archive; pickles are never loaded" if "pickled" in text else text
    except (OSError, EOFError, zlib.error) as error:  # truncated or damaged members
        found = f"damaged ({type(error).__name__}: {error})"
    raise DataError(f"{path}: {found}; {rebuild}")


def save_figure(path: str | os.PathLike[str], figure: Any, **kwargs: Any) -> None:
    """Save a matplotlib figure atomically; the format comes from the suffix."""
    suffix = Path(path).suffix.lstrip(".") or "png"
    with replacing(path, "wb") as stream:
        figure.savefig(stream, format=suffix, **kwargs)
