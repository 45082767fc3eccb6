"""One stage in its own clone of the exact commit: `python -m filterlab.cluster.workspace`, run by a Dask task.

Reads a JSON spec on stdin (the stage, the commit and where git fetches it, the DVC remote's name and options, the
dvc.lock entries of the stages it reads from, the sweep id and the tracking URI), the git repository and the remote.
Writes a temp folder (the clone, with its own DVC cache), removed at the end whatever happens; the stage's outputs,
its run-cache entry and their objects to the remote through the commit's `.ci/push_run_cache.py` (`make push`); the
stage's MLflow run, through the stage itself. Prints one JSON line on stdout: the stage's dvc.lock entry, whether it
ran or was already on the remote, and the seconds of each step; or, when it fails, the one line that says why. The
stage's own output goes to stderr (the worker's log), each line prefixed with the stage's name.

The clone's dvc.lock is written with exactly the entries the stage reads, so `dvc pull` fetches only its inputs and
`dvc repro --single-item` runs it alone; it is thrown away with the clone. The submitter's dvc.lock is never written:
the gather step (`dvc repro --pull` on the submitting machine) writes it once.

Exit codes: 0 done; 1 the stage failed (its one line on stderr); 2 stopped (SIGTERM or SIGINT: the fan-out was
cancelled, or the worker that started this process is gone); 3 the workspace failed (git, the remote, a push).
"""

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from filterlab.core.secrets import mask_text

STAGE_FAILED, STOPPED, WORKSPACE_FAILED = 1, 2, 3
PR_SET_PDEATHSIG = 1
PARENT_POLL_SECONDS = 0.5
STOP_GRACE_SECONDS = 60  # a stopped stage ends its MLflow run and removes its temp files in this time


class Stopped(Exception):
    """SIGTERM or SIGINT arrived: stop the current command and clean up."""


class StepFailed(Exception):
    """A command of the workspace failed: `line` says what, in one line; `code` is the exit code to report."""

    def __init__(self, line: str, code: int = WORKSPACE_FAILED):
        super().__init__(line)
        self.line = line
        self.code = code


def _raise_stopped(signum: int, _frame: Any) -> None:
    raise Stopped(signal.Signals(signum).name)


def _die_with_parent() -> None:
    """In a child, before exec: SIGTERM when the process that started it dies (Linux; elsewhere nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def watch_parent() -> None:
    """SIGTERM this process once the process that started it (the Dask worker) is gone: a killed worker leaves no
    stage training on."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def one_line(text: str) -> str:
    return mask_text(" ".join(text.split()))[:400]


def error_line(lines: Sequence[str]) -> str:
    """The line that says why a command failed: the stage's own `error: …` line; else, after a traceback, its
    exception line; else DVC's `ERROR: …`; else the last line."""
    kept = [line.rstrip() for line in lines if line.strip()]
    own = [line for line in kept if line.startswith("error:")]
    if own:
        return one_line(own[-1].removeprefix("error:"))
    starts = [index for index, line in enumerate(kept) if line.startswith("Traceback (most recent call last)")]
    if starts:
        after = [line for line in kept[starts[-1] + 1 :] if not line[:1].isspace() and not line.startswith("ERROR:")]
        if after:
            return one_line(after[-1])
    dvc = [line for line in kept if line.startswith("ERROR:")]
    if dvc:
        return one_line(dvc[-1].removeprefix("ERROR:"))
    return one_line(kept[-1]) if kept else "no output"


def run_logged(
    command: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    prefix: str,
    failed: str,
    code_on_failure: int = WORKSPACE_FAILED,
) -> list[str]:
    """Run `command`, its output to stderr line by line behind `prefix`; its last lines. A nonzero exit raises
    StepFailed (`failed`, then the line that says why); Stopped stops the command's whole process group first."""
    tail: deque[str] = deque(maxlen=400)
    process = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,  # its own group: stopping it stops the stage under it too
        preexec_fn=_die_with_parent,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip("\n"))
            sys.stderr.write(f"[{prefix}] {mask_text(line.rstrip())}\n")
            sys.stderr.flush()
        code = process.wait()
    except BaseException:
        stop_group(process)
        raise
    if code != 0:
        raise StepFailed(f"{failed}: {error_line(list(tail))}", code_on_failure)
    return list(tail)


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_group(process: subprocess.Popen[str]) -> None:
    """SIGTERM to the command's process group, and a wait until every process of it is gone (DVC exits at once,
    the stage under it first ends its MLflow run KILLED and removes its temp files); SIGKILL after the grace
    period."""
    group = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_GRACE_SECONDS)
    while group_alive(group) and time.monotonic() < deadline:
        time.sleep(0.2)
    if group_alive(group) or process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        process.wait()


class Clock:
    """Seconds per step, for the result and the benchmark."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - started, 3)


def tool_env(clone: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every command in a clone: this venv's python and dvc first, the clone's own `src/` before
    the installed filterlab (so the stage runs the commit's code), no DVC analytics, no git prompts."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(clone / "src"), env.get("PYTHONPATH")]))
    env["DVC_NO_ANALYTICS"] = "1"
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra or {})
    return env


def clone_commit(git_url: str, commit: str, clone: Path, prefix: str) -> None:
    """`clone` holds `commit` from `git_url`, detached."""
    env = tool_env(clone)
    where = f"git clone of {mask_text(git_url)}"
    run_logged(["git", "clone", "--quiet", "--no-checkout", git_url, str(clone)], clone.parent, env, prefix, where)
    run_logged(
        ["git", "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit],
        clone,
        env,
        prefix,
        f"commit {commit[:12]} is not in {mask_text(git_url)} (push it where the workers fetch from)",
    )


def configure_remote(clone: Path, name: str, options: Mapping[str, Any]) -> None:
    """The remote as the clone's default, in its .dvc/config.local (credentials come from the worker's own
    environment, never from the spec)."""
    from dvc.config import Config

    config = Config(dvc_dir=str(clone / ".dvc"), validate=True)
    with config.edit("local") as local:
        local.setdefault("core", {})["remote"] = name
        local.setdefault("remote", {})[name] = dict(options)


def run_stage(spec: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """Clone, configure, look the stage up on the remote, pull its inputs, run it, push: the result line's fields."""
    from filterlab.cluster import plan

    stage = str(spec["stage"])
    remote = spec["remote"]
    produced: dict[str, dict[str, Any]] = dict(spec.get("produced", {}))
    clock = Clock()
    clone = folder / "repo"
    extra = {"FILTERLAB_SWEEP_ID": str(spec["sweep"])}
    if spec.get("tracking_uri"):
        extra["MLFLOW_TRACKING_URI"] = str(spec["tracking_uri"])
    env = tool_env(clone, extra)
    with clock.step("clone"):
        clone_commit(str(spec["git_url"]), str(spec["commit"]), clone, stage)
    with clock.step("configure"):
        configure_remote(clone, remote["name"], remote["options"])
        plan.write_lock(clone, produced)
    with clock.step("lookup"):
        try:
            entry = plan.done_on_remote(clone, remote["name"], stage, produced)
        except Exception as error:  # DVC's errors vary by remote: one line
            where = f"remote '{remote['name']}'"
            raise StepFailed(f"looking {stage} up on {where} failed: {one_line(str(error))}") from None
    status = "cached"
    if entry is None:
        status = "ran"
        inputs = [str(path) for path in spec.get("inputs", [])]
        if inputs:
            with clock.step("pull"):
                run_logged(
                    ["dvc", "pull", "-r", remote["name"], *inputs],
                    clone,
                    env,
                    stage,
                    f"dvc pull of {stage}'s inputs from remote '{remote['name']}' failed",
                )
        with clock.step("repro"):
            run_logged(["dvc", "repro", "--single-item", stage], clone, env, stage, stage, STAGE_FAILED)
        entry = plan.read_lock(clone)[stage]
        plan.write_lock(clone, {stage: entry})  # push exactly this stage's outputs (and the run-cache)
        with clock.step("push"):
            run_logged(
                [sys.executable, str(clone / ".ci" / "push_run_cache.py"), "-r", remote["name"]],
                clone,
                env,
                stage,
                "make push",
            )
    return {"stage": stage, "status": status, "entry": entry, "host": socket.gethostname(), "seconds": clock.seconds}


def report_failure(stage: str, line: str, code: int) -> int:
    """The one line on stderr (the worker's log) and, as JSON, on stdout (for the task); the exit code."""
    print(f"error: {line}", file=sys.stderr, flush=True)
    print(json.dumps({"stage": stage, "error": line}), flush=True)
    return code


def main() -> int:
    signal.signal(signal.SIGTERM, _raise_stopped)
    signal.signal(signal.SIGINT, _raise_stopped)
    watch_parent()
    spec = json.loads(sys.stdin.read())
    stage = str(spec.get("stage", "?"))
    folder: Path | None = None
    try:
        scratch = Path(spec.get("scratch") or tempfile.gettempdir())
        scratch.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"filterlab-{stage.replace('@', '-')}-", dir=scratch))
        result = run_stage(spec, folder)
    except Stopped as why:
        return report_failure(stage, f"{stage}: stopped by {why.args[0]}; nothing of it was pushed", STOPPED)
    except StepFailed as failure:
        return report_failure(stage, failure.line, failure.code)
    except OSError as error:
        return report_failure(stage, f"{stage}: workspace: {one_line(str(error))}", WORKSPACE_FAILED)
    finally:
        if folder is not None:
            with contextlib.suppress(Stopped):
                shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
