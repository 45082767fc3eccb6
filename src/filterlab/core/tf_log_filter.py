"""Keeps TensorFlow's known, harmless C++ log lines out of a stage's output; reads and writes fd 2.

TensorFlow's C++ side writes straight to file descriptor 2, before and beside any Python
logging, and TF_CPP_MIN_LOG_LEVEL does not reach all of it: every stage printed an absl
banner and a oneDNN notice at import, and one `use_unbounded_threadpool` error per epoch.
`install` routes fd 2 through a pipe to a small forked filter process that drops exactly
the lines in NOISE; everything else, real errors included, passes through unchanged and
in order. The filter is a process, not a thread, so a stage that crashes or is killed
still has everything it wrote drained to the real stderr. Set FILTERLAB_TF_LOG=1 to see
everything.
"""

import atexit
import contextlib
import os
import re
import signal
import sys
import time

NOISE = tuple(
    re.compile(pattern)
    for pattern in (
        r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
        r"^I0000 .* port\.cc:\d+\] oneDNN custom operations are on\.",
        r"^I0000 .* cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
        r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.$",
        r"^E0000 .* node_def_util\.cc:\d+\] NodeDef mentions attribute use_unbounded_threadpool",
    )
)


def is_noise(line: str) -> bool:
    return any(pattern.search(line) for pattern in NOISE)


def pump(source: int, target: int) -> None:
    """Copy lines from `source` to `target` until every writer has closed, dropping the noise."""
    pending = b""
    while chunk := os.read(source, 65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = [line + b"\n" for line in lines if not is_noise(line.decode("utf-8", "replace"))]
        if kept:
            os.write(target, b"".join(kept))
    if pending and not is_noise(pending.decode("utf-8", "replace")):
        os.write(target, pending)


def _filter_process(read_end: int, target: int) -> None:
    # Ctrl-C and SIGTERM reach the whole process group: the filter outlives them and stops
    # only at end of file, once the stage (and anything it started) has closed fd 2.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    status = 0
    try:
        pump(read_end, target)
    except OSError:
        status = 1
    os._exit(status)


def install() -> None:
    """Filter fd 2 for the rest of this process (a stage's script entry only, never a test process).

    Must run before any thread starts (it forks): stage.entry calls it first thing.
    """
    if os.environ.get("FILTERLAB_TF_LOG") == "1" or not hasattr(os, "fork"):
        return
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(write_end)
        _filter_process(read_end, 2)
    os.close(read_end)
    original = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)

    def restore() -> None:
        # Our fd 2 was the pipe's last writer (children aside): closing it lets the filter drain and exit.
        sys.stderr.flush()
        os.dup2(original, 2)
        # Bounded: a process this stage started may still hold the pipe; the filter then ends with it.
        deadline = time.monotonic() + 5
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(child, os.WNOHANG) == (0, 0) and time.monotonic() < deadline:
                time.sleep(0.01)

    atexit.register(restore)
