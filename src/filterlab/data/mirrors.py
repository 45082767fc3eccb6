"""Fetches the MNIST files from an ordered list of mirrors into a folder.

Reads URLs (http, https, file); writes each file into the folder it is given, streamed
into a temp file, checked against its known size and SHA-256, and only then renamed
into place. Mirrors are tried in order per file, with bounded timeouts and retries, and
each file has a deadline: `timeout` plus its size at the minimum transfer rate, because a
mirror that trickles a byte every few seconds never trips a per-read timeout.
"""

import contextlib
import hashlib
import http.client
import os
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from filterlab.core.errors import DiskFull, DownloadError, is_disk_full

CHUNK = 1 << 16
BACKOFF_SECONDS = 0.5


@dataclass(frozen=True)
class Expected:
    sha256: str
    size: int


# The published MNIST files; every mirror must serve exactly these bytes.
EXPECTED_FILES: Mapping[str, Expected] = {
    "train-images-idx3-ubyte.gz": Expected("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
    "train-labels-idx1-ubyte.gz": Expected("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
    "t10k-images-idx3-ubyte.gz": Expected("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
    "t10k-labels-idx1-ubyte.gz": Expected("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
}


class _WrongFile(Exception):
    """The mirror answered, but not with the right file: retrying it cannot help."""


class _Unreachable(Exception):
    """A network failure that a retry may cure (refused, timed out, cut off, 5xx)."""


class _UnknownHost(_Unreachable):
    """The host name does not resolve: offline or misspelt, so retrying only wastes time."""


class _TooSlow(_Unreachable):
    """The file's deadline passed: a retry would take as long again, so the mirror is skipped."""


def deadline_seconds(size: int, timeout: float, min_rate: float) -> float:
    """How long one file may take: the connection's `timeout` plus `size` bytes at `min_rate` bytes/s."""
    return timeout + size / min_rate


def mirror_url(value: str) -> str:
    """A URL for MNIST_MIRROR's value: URLs pass through, a directory becomes file://."""
    if "://" in value:
        return value
    return Path(value).expanduser().resolve().as_uri() + "/"


def _download(url: str, target: Path, want: Expected, timeout: float, progress: bool, min_rate: float) -> None:
    try:
        handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as error:
        if is_disk_full(error):
            raise DiskFull(target.parent) from None
        raise
    allowed = deadline_seconds(want.size, timeout, min_rate)
    deadline = time.monotonic() + allowed
    try:
        digest, received = hashlib.sha256(), 0
        with os.fdopen(handle, "wb") as tmp, urllib.request.urlopen(url, timeout=timeout) as response:
            announced = response.headers.get("Content-Length")
            if announced is not None and int(announced) != want.size:
                raise _WrongFile(f"{announced} bytes announced, expected {want.size}")
            # read1: at most one receive per call, so the deadline is checked while bytes trickle in
            # (read(n) would wait for all n); each receive is still bounded by `timeout`.
            read = getattr(response, "read1", response.read)
            bar = _progress_bar(target.name, want.size, progress)
            with bar:
                while chunk := read(CHUNK):
                    received += len(chunk)
                    if received > want.size:
                        raise _WrongFile(f"more than the expected {want.size} bytes")
                    digest.update(chunk)
                    tmp.write(chunk)
                    bar.update(len(chunk))
                    if time.monotonic() > deadline:
                        raise _TooSlow(f"too slow: {received} of {want.size} bytes in {allowed:.0f} s "
                                       f"(data.min_bytes_per_second is {min_rate:g})")
        if received < want.size:
            raise _Unreachable(f"connection ended after {received} of {want.size} bytes")
        if digest.hexdigest() != want.sha256:
            raise _WrongFile(f"sha256 {digest.hexdigest()[:12]}… does not match {want.sha256[:12]}…")
        os.replace(tmp_name, target)
    except urllib.error.HTTPError as error:
        if error.code >= 500:
            raise _Unreachable(f"HTTP {error.code}") from None
        raise _WrongFile(f"HTTP {error.code}") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, FileNotFoundError):
            raise _WrongFile("no such file") from None
        if isinstance(error.reason, socket.gaierror):
            raise _UnknownHost(f"host not found ({error.reason})") from None
        raise _Unreachable(str(error.reason)) from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        if is_disk_full(error):  # our disk, not the mirror: no retry, no fallback
            raise DiskFull(target.parent) from None
        # OSError covers timeouts and resets; ValueError a malformed Content-Length.
        raise _Unreachable(f"{type(error).__name__}: {error}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)


def _progress_bar(name: str, total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="B", unit_scale=True, leave=False, file=sys.stderr, disable=not enabled)


def fetch_all(
    mirrors: Sequence[str],
    dest: str | os.PathLike,
    expected: Mapping[str, Expected] = EXPECTED_FILES,
    *,
    timeout: float = 20.0,
    retries: int = 2,
    min_rate: float = 20_000.0,
    progress: bool | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, dict]:
    """Fetch every expected file into `dest`, trying `mirrors` in order for each.

    Returns {name: {"sha256", "bytes", "url"}}. A mirror that stays unreachable after
    `retries` is skipped for the remaining files. If any file cannot be had, the files
    this call landed are removed again and DownloadError lists what each mirror said.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if progress is None:
        progress = sys.stderr.isatty()
    dead: dict[str, str] = {}
    landed: dict[str, dict] = {}
    try:
        for name, want in expected.items():
            failures = []
            for base in mirrors:
                reason = dead.get(base) or _from_mirror(
                    base, name, dest, want, timeout, retries, progress, sleep, dead, min_rate)
                if reason is None:
                    landed[name] = {"sha256": want.sha256, "bytes": want.size, "url": base}
                    break
                failures.append(f"{base}: {reason}")
            else:
                raise DownloadError(f"no mirror delivered a verified {name} ({'; '.join(failures) or 'no mirrors'})")
    except BaseException:
        for name in landed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest / name)
        raise
    return landed


def _from_mirror(base, name, dest, want, timeout, retries, progress, sleep, dead,
                                                            min_rate) -> str | None:
    """None once `name` landed from `base`, else why not (recording `base` in `dead` if unreachable)."""
    url = base.rstrip("/") + "/" + name
    for attempt in range(retries + 1):
        try:
            _download(url, dest / name, want, timeout, progress, min_rate)
            return None
        except _WrongFile as error:
            return str(error)
        except _Unreachable as error:
            reason = str(error)
            if isinstance(error, _UnknownHost | _TooSlow):
                break
            if attempt < retries:
                sleep(BACKOFF_SECONDS * 2**attempt)
    dead[base] = f"unreachable ({reason})"
    return dead[base]
