"""Ties a stage process to the `dvc` that started it; reads /proc (through psutil), writes nothing.

DVC does not stop its command when it is itself killed: a SIGTERM to `dvc repro` left
train.py running on its own, finishing its MLflow run and writing outputs that
dvc.lock never recorded. On Linux the kernel can signal a child when its parent dies
(prctl PR_SET_PDEATHSIG). DVC runs each command through `$SHELL -c`, and a shell
that does not exec its last command stays between DVC and the stage, so its death
would never come: for that case a daemon thread watches the first ancestor that is
not a shell and sends this process SIGTERM once that ancestor is gone. Either way
SIGTERM then runs the stage's own clean-up (temp folders removed, run marked KILLED).
`identity` and `alive` let the next run tell a run left RUNNING by `kill -9` from a live one.
"""

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from typing import Any

from filterlab.core.run_context import INTERNAL_TAG_PREFIX

PR_SET_PDEATHSIG = 1
SHELLS = frozenset({"sh", "dash", "bash", "zsh", "fish", "ksh", "mksh", "busybox"})
POLL_SECONDS = 0.5


def _set_parent_death_signal(signum: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def owner() -> Any:
    """The first ancestor that is not a shell (DVC, under `dvc repro`), as a psutil.Process; None if unknown."""
    import psutil

    with contextlib.suppress(psutil.Error):
        process = psutil.Process().parent()
        while process is not None and process.name() in SHELLS:
            process = process.parent()
        return process
    return None


def _watch(target: Any, signum: int) -> None:
    import psutil

    while True:
        time.sleep(POLL_SECONDS)
        try:
            alive = target.is_running() and target.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            alive = False
        if not alive:
            os.kill(os.getpid(), signum)
            return


def install(signum: int = signal.SIGTERM) -> None:
    """Die (by `signum`) with the parent process, and with the owner above any shell in between."""
    if not sys.platform.startswith("linux"):
        return  # prctl is Linux-only; elsewhere a stage may outlive dvc, as before
    parent = os.getppid()
    _set_parent_death_signal(signum)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signum)
        return
    target = owner()
    if target is not None and target.pid != parent:
        threading.Thread(target=_watch, args=(target, signum), name="parent-death", daemon=True).start()


HOST_TAG, PID_TAG, STARTED_TAG = (f"{INTERNAL_TAG_PREFIX}{name}" for name in ("host", "pid", "pid_started"))


def identity() -> dict[str, str]:
    """Tags that let a later process tell whether this one still runs: host, pid, and the pid's start time."""
    import socket

    import psutil

    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(os.getpid()),
        STARTED_TAG: f"{psutil.Process().create_time():.2f}",
    }


def alive(tags: dict[str, str]) -> bool | None:
    """Whether the process named by `identity` tags still runs; None when it cannot be told (other host, no tags)."""
    import socket

    import psutil

    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return None
    try:
        started = psutil.Process(int(tags[PID_TAG])).create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return None
    # The same pid with another start time is a new process that reused the number.
    return bool(abs(started - float(tags.get(STARTED_TAG) or started)) < 1.0)
