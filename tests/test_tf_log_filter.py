"""filterlab.core.tf_log_filter in real processes: the noise goes, everything else stays, even when the stage dies."""

import os
import signal
import subprocess
import sys

NOISE = (
    "E0000 00:00:1764640000.123 1234 node_def_util.cc:680] NodeDef mentions attribute use_unbounded_threadpool "
    "which is not in the op definition"
)
SCRIPT = """
import os, sys
from filterlab.core import tf_log_filter
tf_log_filter.install()
os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n")
os.write(2, {noise!r}.encode() + b"\\n")
print("a real error line", file=sys.stderr, flush=True)
os.write(2, b"no newline at the end")
{ending}
"""


def run(ending: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT.format(noise=NOISE, ending=ending)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_known_noise_is_dropped_and_the_rest_kept_in_order():
    result = run()
    assert result.returncode == 0
    assert result.stderr == "a real error line\nno newline at the end"


def test_a_stage_killed_outright_still_gets_its_lines_out():
    # SIGKILL: no atexit, no flush; the forked filter still drains the pipe to the real stderr.
    result = run("os.kill(os.getpid(), 9)")
    assert result.returncode == -signal.SIGKILL
    assert "a real error line" in result.stderr and "use_unbounded_threadpool" not in result.stderr


def test_a_crash_traceback_is_kept():
    result = run("raise RuntimeError('boom')")
    assert result.returncode == 1 and "RuntimeError: boom" in result.stderr and "InitializeLog" not in result.stderr


def test_filterlab_tf_log_shows_everything():
    result = run(env={**os.environ, "FILTERLAB_TF_LOG": "1"})
    assert "use_unbounded_threadpool" in result.stderr and "InitializeLog" in result.stderr
