"""The function a Dask worker runs for one stage: `run_stage(spec, *producer_results)`.

Reads the task's spec and the results of the tasks it waits for (their dvc.lock entries). Starts
`python -m filterlab.cluster.workspace` in its own session, hands it the spec on stdin and reads its one JSON line;
writes nothing itself. While the stage runs it polls the fan-out's cancel event (a `distributed.Event` named in the
spec) and stops the workspace when it is set, which stops the stage (its MLflow run ends KILLED). The workspace
process watches this worker process in turn: a worker killed with `kill -9` takes its stage down with it, and the
scheduler gives the task to another worker (`distributed.scheduler.allowed-failures` times).

A stage that fails for real raises `StageFailed` with the stage's one line; the submitter submits with `retries=0`
so that it is never run again, and stops the fan-out.
"""

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

from filterlab.cluster import workspace

CANCEL_POLL_SECONDS = 2.0


class StageFailed(Exception):
    """The stage ran and failed: its one line. Not retried."""


class StageStopped(Exception):
    """The fan-out was cancelled while the stage ran, or before it started."""


class WorkspaceFailed(Exception):
    """The clone, the pull or the push failed (git, the remote): one line."""


def _cancel_event(name: str | None) -> Any:
    if not name:
        return None
    from distributed import Event

    return Event(name)


def _worker() -> Any:
    """The Dask worker running this task; None outside one."""
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):
        return None


def _announce(worker: Any, topic: str | None, stage: str) -> None:
    """Tell the submitter (an event on `topic`) that `stage` starts here: its live line counts it as running, and a
    second start on another worker is a retry."""
    if worker is not None and topic:
        worker.log_event(topic, {"stage": stage, "worker": str(worker.address)})


def run_stage(spec: Mapping[str, Any], *producer_results: Mapping[str, Any]) -> dict[str, Any]:
    """Run `spec["stage"]` in its own workspace; its result (dvc.lock entry, status, step seconds, worker)."""
    produced = dict(spec.get("produced", {}))
    for result in producer_results:
        produced[str(result["stage"])] = result["entry"]
    worker = _worker()
    address = str(worker.address) if worker is not None else "local"
    local_directory = str(worker.local_directory) if worker is not None else None
    full = {**spec, "produced": produced, "scratch": spec.get("scratch") or local_directory}
    stage = str(spec["stage"])
    cancel = _cancel_event(spec.get("cancel_event"))
    if cancel is not None and cancel.is_set():
        raise StageStopped(f"{stage}: the fan-out was cancelled before it started")
    _announce(worker, spec.get("progress_topic"), stage)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "filterlab.cluster.workspace"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a Ctrl-C meant for the worker's terminal reaches it only through this function
        env=os.environ.copy(),
    )
    given: str | None = json.dumps(full)
    try:
        while True:
            try:
                output, _ = process.communicate(given, timeout=CANCEL_POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                given = None  # communicate goes on writing what is left of it
                if cancel is not None and cancel.is_set():
                    process.send_signal(signal.SIGTERM)
    finally:
        if process.poll() is None:  # this function is failing: the stage must not go on without it
            process.send_signal(signal.SIGTERM)
            process.wait()
    lines = [line for line in output.splitlines() if line.strip()]
    reply: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    if process.returncode == 0 and "entry" in reply:
        seconds = reply.setdefault("seconds", {})
        seconds["process"] = round(time.perf_counter() - started - sum(seconds.values()), 3)
        reply["worker"] = address
        return reply
    line = reply.get("error") or f"{stage}: the workspace process ended with code {process.returncode}"
    if process.returncode == workspace.STAGE_FAILED:
        raise StageFailed(line)
    if process.returncode == workspace.STOPPED:
        raise StageStopped(line)
    raise WorkspaceFailed(line)
