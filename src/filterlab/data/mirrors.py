"""Fetches the MNIST files from an ordered list of mirrors into a folder.

Reads URLs (http, https, file); writes each file into the folder it is given, streamed
into a temp file, verified, and only then renamed into place. A file is verified when its
`.gz` bytes are the published ones or when they decompress to the official IDX content
(`filterlab.data.official`), so re-gzipped copies pass; a mirror without the `.gz` is
asked for the uncompressed IDX file, which is checked the same way and stored gzipped.
Mirrors are tried in order per file, with bounded timeouts and retries, and each file has a
deadline: `timeout` plus its size at the minimum transfer rate, because a mirror that
trickles a byte every few seconds never trips a per-read timeout.
"""

import contextlib
import gzip
import hashlib
import http.client
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from filterlab.core import atomic
from filterlab.core.errors import DiskFull, DownloadError, is_disk_full
from filterlab.data import idx
from filterlab.data.official import EXPECTED_FILES, Expected

if TYPE_CHECKING:  # types only: tqdm loads when a download starts
    import urllib.response

    from tqdm import tqdm

CHUNK = 1 << 16
BACKOFF_SECONDS = 0.5


def gz_size_limit(want: Expected) -> int:
    """The largest `.gz` accepted for `want`: a stored (level 0) gzip of its content plus block headers."""
    return want.content_size + want.content_size // 100 + 1024


class _WrongFile(Exception):
    """The mirror answered, but not with the right file: retrying it cannot help."""


class _Missing(_WrongFile):
    """The mirror has no file of that name: it may still have the other form (`.gz` or uncompressed)."""


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


def _open(url: str, timeout: float, allowed: float) -> "http.client.HTTPResponse | urllib.response.addinfourl":
    """`urlopen(url)`, given up on after `allowed` seconds even while the status line and headers trickle in
    (each byte within `timeout` keeps the socket's own timeout from ever firing)."""
    outcome: dict[str, Any] = {}  # "response": what urlopen returned (Any in typeshed), or "error"

    def connect() -> None:
        try:
            outcome["response"] = urllib.request.urlopen(url, timeout=timeout)
        except BaseException as error:  # handed to the caller's thread below
            outcome["error"] = error

    opener = threading.Thread(target=connect, name="mirror-headers", daemon=True)
    opener.start()
    opener.join(allowed)
    if opener.is_alive():

        def close_when_answered() -> None:  # the abandoned connection is closed as soon as it completes
            opener.join()
            if "response" in outcome:
                outcome["response"].close()

        threading.Thread(target=close_when_answered, daemon=True).start()
        raise _TooSlow(f"too slow: no complete response headers in {allowed:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    response: http.client.HTTPResponse | urllib.response.addinfourl = outcome["response"]  # http(s) | file
    return response


def _receive(
    url: str,
    stream: BinaryIO,
    *,
    name: str,
    limit: int,
    exact: bool,
    timeout: float,
    progress: bool,
    min_rate: float,
    expected_size: int,
) -> tuple[str, int]:
    """Stream `url` into `stream`: at most `limit` bytes (exactly `limit` when `exact`); its SHA-256 and size.

    The deadline counts the size the mirror announces, or `expected_size` when it announces none.
    """
    digest, received = hashlib.sha256(), 0
    started = time.monotonic()  # the deadline covers the wait for the headers too
    with _open(url, timeout, deadline_seconds(expected_size, timeout, min_rate)) as response:
        announced = response.headers.get("Content-Length")
        if announced is not None and (int(announced) > limit or (exact and int(announced) != limit)):
            raise _WrongFile(f"{announced} bytes announced, expected {'' if exact else 'at most '}{limit}")
        allowed = deadline_seconds(int(announced) if announced is not None else expected_size, timeout, min_rate)
        deadline = started + allowed
        # read1: at most one receive per call, so the deadline is checked while bytes trickle in
        # (read(n) would wait for all n); each receive is still bounded by `timeout`.
        read = getattr(response, "read1", response.read)
        bar = _progress_bar(name, int(announced) if announced is not None else None, progress)
        with bar:
            while chunk := read(CHUNK):
                received += len(chunk)
                if received > limit:
                    raise _WrongFile(f"more than the {'expected' if exact else 'largest accepted'} {limit} bytes")
                digest.update(chunk)
                stream.write(chunk)
                bar.update(len(chunk))
                if time.monotonic() > deadline:
                    raise _TooSlow(
                        f"too slow: {received} of {announced or f'up to {limit}'} bytes in "
                        f"{allowed:.0f} s (data.min_bytes_per_second is {min_rate:g})"
                    )
    if announced is not None and received < int(announced):
        raise _Unreachable(f"connection ended after {received} of {announced} bytes")
    if exact and received < limit:
        raise _WrongFile(f"{received} bytes, expected {limit}")
    return digest.hexdigest(), received


def _gunzipped_digest(path: str, limit: int) -> tuple[str, int] | None:
    """SHA-256 and size of the decompressed `path`, reading at most `limit` + 1 bytes; None if not gzip."""
    digest, size = hashlib.sha256(), 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > limit:
                    return digest.hexdigest(), size
                digest.update(chunk)
    except (OSError, EOFError, zlib.error):  # BadGzipFile is an OSError; a cut stream raises EOFError
        return None
    return digest.hexdigest(), size


def _download(url: str, target: Path, want: Expected, timeout: float, progress: bool, min_rate: float) -> str:
    """Land `target` (a `.gz` name) from `url` after verifying it, through `atomic.landing`; how it was received."""
    try:
        with atomic.landing(target) as tmp:
            if url.endswith(".gz"):
                # Unannounced, a re-packed .gz gets twice the official one's time: level 1 gzip is about 1.2x larger.
                with open(tmp, "wb") as stream:
                    found = _receive(
                        url,
                        stream,
                        name=target.name,
                        limit=gz_size_limit(want),
                        exact=False,
                        timeout=timeout,
                        progress=progress,
                        min_rate=min_rate,
                        expected_size=2 * want.size,
                    )
                if found == (want.sha256, want.size):
                    return "official .gz"
                content = _gunzipped_digest(str(tmp), want.content_size)
                if content != (want.content_sha256, want.content_size):
                    inside = "not gzip" if content is None else f"{content[1]} bytes inside"
                    raise _WrongFile(
                        f"neither the official .gz ({want.sha256[:12]}…) nor a re-packed copy of its "
                        f"content ({want.content_sha256[:12]}…): {inside}"
                    )
                return "re-gzipped .gz, content verified"
            with open(tmp, "wb") as stream:
                sha256, _size = _receive(
                    url,
                    stream,
                    name=target.name,
                    limit=want.content_size,
                    exact=True,
                    timeout=timeout,
                    progress=progress,
                    min_rate=min_rate,
                    expected_size=want.content_size,
                )
            if sha256 != want.content_sha256:
                raise _WrongFile(f"sha256 {sha256[:12]}… is not the official content {want.content_sha256[:12]}…")
            # Stored gzipped like every other source, so `prepare` has one reading path.
            tmp.write_bytes(idx.gzip_bytes(tmp.read_bytes()))
            return "uncompressed IDX, content verified"
    except urllib.error.HTTPError as error:
        if error.code >= 500:
            raise _Unreachable(f"HTTP {error.code}") from None
        if error.code in (404, 410):
            raise _Missing(f"HTTP {error.code}") from None
        raise _WrongFile(f"HTTP {error.code}") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, FileNotFoundError):
            raise _Missing("no such file") from None
        if isinstance(error.reason, socket.gaierror):
            raise _UnknownHost(f"host not found ({error.reason})") from None
        raise _Unreachable(str(error.reason)) from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        if is_disk_full(error):  # our disk, not the mirror: no retry, no fallback
            raise DiskFull(target) from None
        # OSError covers timeouts and resets; ValueError a malformed Content-Length.
        raise _Unreachable(f"{type(error).__name__}: {error}") from None


def _progress_bar(name: str, total: int | None, enabled: bool) -> "tqdm[Any]":
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="B", unit_scale=True, leave=False, file=sys.stderr, disable=not enabled)


def fetch_all(
    mirrors: Sequence[str],
    dest: str | os.PathLike[str],
    expected: Mapping[str, Expected] = EXPECTED_FILES,
    *,
    timeout: float = 20.0,
    retries: int = 2,
    min_rate: float = 20_000.0,
    progress: bool | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, dict[str, Any]]:
    """Fetch every expected file into `dest`, trying `mirrors` in order for each.

    Returns {name: {"sha256", "bytes", "content_sha256", "url", "received"}}: the stored file's own digest
    and size, the official content digest it was verified against, the mirror, and in which form it came.
    A mirror that stays unreachable after `retries` is skipped for the remaining files. If any file cannot
    be had, the files this call landed are removed again and DownloadError lists what each mirror said.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if progress is None:
        progress = sys.stderr.isatty()
    dead: dict[str, str] = {}
    landed: dict[str, dict[str, Any]] = {}
    try:
        for name, want in expected.items():
            failures = []
            for base in mirrors:
                outcome = dead.get(base) or _from_mirror(
                    base,
                    name,
                    dest,
                    want,
                    timeout=timeout,
                    retries=retries,
                    progress=progress,
                    sleep=sleep,
                    dead=dead,
                    min_rate=min_rate,
                )
                if isinstance(outcome, _Landed):
                    payload = (dest / name).read_bytes()
                    landed[name] = {
                        "sha256": hashlib.sha256(payload).hexdigest(),
                        "bytes": len(payload),
                        "content_sha256": want.content_sha256,
                        "url": base,
                        "received": outcome.how,
                    }
                    break
                failures.append(f"{base}: {outcome}")
            else:
                raise DownloadError(f"no mirror delivered a verified {name} ({'; '.join(failures) or 'no mirrors'})")
    except BaseException:
        for name in landed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest / name)
        raise
    return landed


@dataclass(frozen=True)
class _Landed:
    how: str


def _from_mirror(
    base: str,
    name: str,
    dest: Path,
    want: Expected,
    *,
    timeout: float,
    retries: int,
    progress: bool,
    sleep: Callable[[float], None],
    dead: dict[str, str],
    min_rate: float,
) -> "_Landed | str":
    """`_Landed` once `name` landed from `base`, else why not (recording `base` in `dead` if unreachable).

    The `.gz` is asked for first; only when the mirror has no such file, the uncompressed IDX file.
    """
    reasons = []
    for url in (base.rstrip("/") + "/" + name, base.rstrip("/") + "/" + name.removesuffix(".gz")):
        for attempt in range(retries + 1):
            try:
                return _Landed(_download(url, dest / name, want, timeout, progress, min_rate))
            except _Missing as error:
                reasons.append(f"{url.rsplit('/', 1)[-1]}: {error}")
                break
            except _WrongFile as error:
                return str(error)
            except _Unreachable as error:
                reason = str(error)
                if isinstance(error, _UnknownHost | _TooSlow) or attempt == retries:
                    dead[base] = f"unreachable ({reason})"
                    return dead[base]
                sleep(BACKOFF_SECONDS * 2**attempt)
    return "; ".join(reasons)
