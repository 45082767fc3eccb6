"""Fetches the MNIST files from an ordered list of mirrors into a folder.

Reads URLs (http, https, file); writes each file into the folder it is given, streamed
into a temp file, checked against its known size and SHA-256, and only then renamed
into place. Mirrors are tried in order per file, with bounded timeouts and retries.
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

from filterlab.core.errors import DownloadError

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


def mirror_url(value: str) -> str:
    """A URL for MNIST_MIRROR's value: URLs pass through, a directory becomes file://."""
    if "://" in value:
        return value
    return Path(value).expanduser().resolve().as_uri() + "/"


def _download(url: str, target: Path, want: Expected, timeout: float, progress: bool) -> None:
    handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        digest, received = hashlib.sha256(), 0
        with os.fdopen(handle, "wb") as tmp, urllib.request.urlopen(url, timeout=timeout) as response:
            announced = response.headers.get("Content-Length")
            if announced is not None and int(announced) != want.size:
                raise _WrongFile(f"{announced} bytes announced, expected {want.size}")
            bar = _progress_bar(target.name, want.size, progress)
            with bar:
                while chunk := response.read(CHUNK):
                    received += len(chunk)
                    if received > want.size:
                        raise _WrongFile(f"more than the expected {want.size} bytes")
                    digest.update(chunk)
                    tmp.write(chunk)
                    bar.update(len(chunk))
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
                reason = dead.get(base) or _from_mirror(base, name, dest, want, timeout, retries, progress, sleep, dead)
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


def _from_mirror(base, name, dest, want, timeout, retries, progress, sleep, dead) -> str | None:
    """None once `name` landed from `base`, else why not (recording `base` in `dead` if unreachable)."""
    url = base.rstrip("/") + "/" + name
    for attempt in range(retries + 1):
        try:
            _download(url, dest / name, want, timeout, progress)
            return None
        except _WrongFile as error:
            return str(error)
        except _Unreachable as error:
            reason = str(error)
            if isinstance(error, _UnknownHost):
                break
            if attempt < retries:
                sleep(BACKOFF_SECONDS * 2**attempt)
    dead[base] = f"unreachable ({reason})"
    return dead[base]
