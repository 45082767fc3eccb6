"""Keeps TensorFlow's known, harmless C++ log lines out of a stage's output; reads and writes fd 2.

TensorFlow's C++ side writes straight to file descriptor 2, before and beside any Python
logging, and TF_CPP_MIN_LOG_LEVEL does not reach all of it: every stage printed an absl
banner and a oneDNN notice at import, and one `use_unbounded_threadpool` error per epoch.
`install` routes fd 2 through a pipe and drops exactly the lines in NOISE; everything else,
real errors included, passes through unchanged and in order. Set FILTERLAB_TF_LOG=1 to see
everything.
"""

import atexit
import os
import re
import sys
import threading

NOISE = tuple(re.compile(pattern) for pattern in (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
    r"^I0000 .* port\.cc:\d+\] oneDNN custom operations are on\.",
    r"^I0000 .* cpu_feature_guard\.cc:\d+\] This TensorFlow binary is optimized",
    r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.$",
    r"^E0000 .* node_def_util\.cc:\d+\] NodeDef mentions attribute use_unbounded_threadpool",
))


def is_noise(line: str) -> bool:
    return any(pattern.search(line) for pattern in NOISE)


def _pump(source: int, target: int) -> None:
    with os.fdopen(source, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = [line + b"\n" for line in lines if not is_noise(line.decode("utf-8", "replace"))]
            if kept:
                os.write(target, b"".join(kept))
        if pending and not is_noise(pending.decode("utf-8", "replace")):
            os.write(target, pending)


def install() -> None:
    """Filter fd 2 for the rest of this process (a stage's script entry only, never a test process)."""
    if os.environ.get("FILTERLAB_TF_LOG") == "1":
        return
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(target=_pump, args=(read_end, original), name="filterlab-quiet", daemon=True)
    pump.start()

    def restore() -> None:
        # Closing our copy of the pipe's write end lets the pump drain what is left and stop.
        sys.stderr.flush()
        os.dup2(original, 2)
        pump.join(timeout=5)

    atexit.register(restore)
