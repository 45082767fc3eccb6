"""Exceptions that stages turn into one-line messages; reads and writes nothing.

Anything a user can cause (a bad parameter, a corrupt file, an unreachable mirror)
raises one of these, so `filterlab.core.stage.run` can print it without a traceback.
"""

import contextlib
import errno
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any


class FilterlabError(Exception):
    """Base class: the message is complete and meant for the user as is."""


class ParamError(FilterlabError):
    """A parameter is missing, unknown, of the wrong type or out of range."""

    def __init__(self, key: str, problem: str, *, file: str | None = None):
        # A problem with the file itself (unreadable, not YAML) names the file once, not
        # "params.yaml: params.yaml: ..."; a problem with one value names its dotted key.
        self.key = key
        super().__init__(f"{file}: {problem}" if file is not None else f"params.yaml: {key}: {problem}")

    @classmethod
    def in_file(cls, path: str, problem: str) -> "ParamError":
        return cls(path, problem, file=path)


class DataError(FilterlabError):
    """An input file is missing, truncated, corrupt or inconsistent."""


class DownloadError(FilterlabError):
    """No mirror delivered a verified file."""


class TrackingError(FilterlabError):
    """The MLflow store cannot be used: corrupt, half-created or from another MLflow version."""


class DiskFull(FilterlabError):
    """A write failed for lack of space (ENOSPC, EDQUOT): names the path that filled."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = str(path)
        super().__init__(
            f"{path}: no space left on the device; free some space and re-run (the previous outputs are kept)"
        )


def causes(error: BaseException | None) -> Iterator[BaseException]:
    """`error`, then what caused it, and so on (each exception once, however the chain loops)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def is_disk_full(error: BaseException) -> bool:
    """True for ENOSPC/EDQUOT, and for sqlite's "database or disk is full" however it is wrapped."""
    return any(
        (isinstance(link, OSError) and link.errno in (errno.ENOSPC, errno.EDQUOT))
        or "database or disk is full" in str(link)
        for link in causes(error)
    )


def filled_path(error: BaseException) -> str | None:
    """The file name an OSError somewhere in `error`'s chain carries: which path filled."""
    return next((str(link.filename) for link in causes(error) if isinstance(link, OSError) and link.filename), None)


class Terminated(BaseException):
    """SIGTERM arrived; a BaseException so that `except Exception` cannot swallow it."""

    def __init__(self, signum: int):
        self.signum = signum
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        super().__init__(f"terminated by {name}")


def raise_terminated(signum: int, _frame: object) -> None:
    """A signal handler: SIGTERM becomes `Terminated`, so `finally` blocks run and the stage says one line."""
    raise Terminated(signum)


# The signals a user or DVC stops a stage with.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGTERM and SIGINT until the block ends, then act on the first that came, with the handler it had.

    For calls that must not be cut in half: an exception raised inside a sqlite write leaves its transaction
    open, and the lock it holds makes every later write to that store (ending the run as KILLED) fail.
    Python runs signal handlers only in the main thread, so elsewhere the block runs unguarded; an ignored
    signal and a handler set outside Python (`getsignal` gives None) are left alone.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved: dict[int, Any] = {}
    arrived: list[int] = []
    ended = False

    def act(signum: int, frame: Any) -> None:
        handler = saved[signum]
        if callable(handler):
            handler(signum, frame)
        elif handler == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    def hold(signum: int, frame: Any) -> None:
        # Once the block has ended, a signal that slips in before its own handler is back is acted on at once.
        if ended:
            act(signum, frame)
        elif not arrived:
            arrived.append(signum)

    try:
        for signum in STOP_SIGNALS:
            handler = signal.getsignal(signum)
            if handler is not None and handler != signal.SIG_IGN:  # an ignored signal must not displace another
                saved[signum] = handler
                signal.signal(signum, hold)
        yield
    finally:
        ended = True
        for number, handler in saved.items():
            signal.signal(number, handler)
        if arrived:
            act(arrived[0], None)
