"""filterlab.core.stage.run's one-line contract for faults, and filterlab.core.parent_death's process checks."""

import errno
import os
import signal
import subprocess
import sys

from filterlab.core import parent_death, stage


def _wrapped_enospc():
    try:
        raise OSError(errno.ENOSPC, "No space left on device", "/out/models/f8_k3_s1/.model.42.keras")
    except OSError as error:
        raise RuntimeError("Unable to synchronously create file") from error  # how h5py / Keras wrap it


def test_disk_full_however_wrapped_is_one_line_naming_the_file(capsys):
    assert stage.run(_wrapped_enospc) == stage.EXIT_FAILED
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "error: /out/models/f8_k3_s1/.model.42.keras: no space left on the device; "
        "free some space and re-run (the previous outputs are kept)"
    ], err


def test_sqlite_disk_full_is_one_line(capsys):
    import sqlite3

    def full():
        raise sqlite3.OperationalError("database or disk is full")

    assert stage.run(full) == stage.EXIT_FAILED
    assert capsys.readouterr().err.startswith("error: a file this stage writes: no space left on the device")


def test_alive_tells_a_live_process_from_a_dead_or_reused_pid():
    me = parent_death.identity()
    assert parent_death.alive(me) is True
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert parent_death.alive({**me, parent_death.PID_TAG: str(child.pid)}) is False
    assert (
        parent_death.alive({**me, parent_death.STARTED_TAG: "12.00"}) is False
    )  # this pid, but another process's start
    assert parent_death.alive({**me, parent_death.HOST_TAG: "elsewhere.invalid"}) is None
    assert parent_death.alive({}) is None


def test_the_owner_skips_shells_between_dvc_and_the_stage():
    """`sh -c 'python ...'` (dash does not exec): the owner is the process above the shell, here this one."""
    code = "from filterlab.core import parent_death; print(parent_death.owner().pid)"
    out = subprocess.run(
        ["/bin/sh", "-c", f'"{sys.executable}" -c "{code}"; true'],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert int(out) == os.getpid()


def test_a_stage_process_never_imports_scikit_learn():
    """keras imports it for wrappers no stage uses (about 1 s a training stage); keras must still load."""
    script = (
        "import sys\n"
        "from filterlab.core import stage\n"
        "stage.block_unused_imports()\n"
        "import keras\n"
        "from keras import layers\n"
        "inputs = keras.Input((4,))\n"
        "assert keras.Model(inputs, layers.Dense(2)(inputs)).count_params() == 10\n"
        "print('sklearn' in sys.modules and sys.modules['sklearn'] is not None)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_sigterm_while_the_interpreter_exits_is_quiet():
    """A library's atexit callback (MLflow ends its runs there) still running when SIGTERM comes: the stage
    has finished, so the signal ends the process without an 'Exception ignored in atexit' traceback."""
    script = (
        "import atexit, sys, time\n"
        "from filterlab.core import stage\n"
        "def at_exit():\n"
        "    print('in atexit', flush=True)\n"
        "    time.sleep(30)\n"
        "def main(argv):\n"
        "    atexit.register(at_exit)  # registered late, as MLflow's is: runs first at exit\n"
        "    return 0\n"
        "stage.entry(main)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "in atexit"  # main has returned and the interpreter is exiting
    child.send_signal(signal.SIGTERM)
    _out, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGTERM
    assert "Exception ignored" not in err and "Traceback" not in err and "Terminated" not in err, err
