"""`python -m filterlab.cluster --scheduler tcp://HOST:8786`: every stage of dvc.yaml's grid that the team remote
lacks, one Dask task each, with live progress. The gather step then is a plain `dvc repro --pull` here
(`make cluster` runs both; `--gather` too).

Reads: MLFLOW_TRACKING_URI (a tracking server every worker reaches; a sqlite file is refused), this clone's HEAD
(the commit every task clones; uncommitted changes to what the stages run are refused), .dvc/config and
.dvc/config.local (the remote), params.yaml (train.threads: the CPU a task claims). Writes: a temp clone where the
upstream stages (validate, download, prepare) run or are restored once, then pushed with `make push`'s script,
removed at the end; the tasks (each pushes its stage: filterlab.cluster.workspace); with --summary, a JSON file of
what ran where and the seconds of each step. Never this clone's dvc.lock or outputs: the gather step writes them.
"""

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filterlab.cluster import plan, workspace
from filterlab.core.secrets import mask_text, mask_url

# What the stages run: a change here that is not committed would be trained by nobody (workers clone the commit).
COMMITTED_PATHS = ("dvc.yaml", "params.yaml", "pipeline", "src", ".dvc/config")
# Remote options that may hold credentials: never sent with a task (workers bring their own).
SECRET_WORDS = ("secret", "password", "token", "key", "credential", "passphrase")
POLL_SECONDS = 1.0
STOP_WAIT_SECONDS = 120  # how long running stages get to stop after a failure or Ctrl-C
EXIT_INTERRUPTED = 130


class Refused(Exception):
    """The fan-out cannot start: one line saying why and what to do."""


class TaskFailed(Exception):
    """A task of the fan-out failed: `line` names the stage and says why."""

    def __init__(self, line: str):
        super().__init__(line)
        self.line = line


def tracking_refusal(uri: str | None) -> str | None:
    """Why `uri` cannot take the runs of a fan-out, in one line; None when it can."""
    fix = "start the team server (`make server`, README: Team setup) and export MLFLOW_TRACKING_URI=http://HOST:5001"
    if not uri:
        return (
            "MLFLOW_TRACKING_URI is not set, so every stage would log to its own clone's sqlite mlflow.db, which "
            f"cluster workers cannot share; {fix}"
        )
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme.startswith("sqlite"):
        return (
            f"MLFLOW_TRACKING_URI={mask_url(uri)} is a sqlite file: cluster workers on other machines cannot share "
            f"this machine's sqlite file (and sqlite does not take concurrent writers over a network); {fix}"
        )
    if scheme in ("", "file"):
        return (
            f"MLFLOW_TRACKING_URI={mask_url(uri)} is a local folder, which cluster workers on other machines "
            f"cannot write; {fix}"
        )
    return None


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        raise Refused(f"git {args[0]} failed in {root}: {workspace.one_line(result.stderr or result.stdout)}")
    return result.stdout


def committed_head(root: Path) -> str:
    """HEAD, refused when the files the stages run differ from it."""
    changed = git(root, "status", "--porcelain", "--untracked-files=no", "--", *COMMITTED_PATHS).splitlines()
    if changed:
        names = ", ".join(line[3:] for line in changed[:4]) + (", ..." if len(changed) > 4 else "")
        raise Refused(f"uncommitted changes to {names}: commit them first, the workers clone the commit")
    return git(root, "rev-parse", "HEAD").strip()


def remote_settings(root: Path, name: str | None) -> tuple[str, dict[str, Any]]:
    """(the remote's name, its options without credentials, a relative path made absolute)."""
    from dvc.config import Config

    config = Config(dvc_dir=str(root / ".dvc"))
    remotes = config.get("remote", {})
    name = name or config.get("core", {}).get("remote")
    if not name or name not in remotes:
        known = ", ".join(sorted(remotes)) or "none"
        raise Refused(
            f"no DVC remote named {name!r} (configured: {known}): the workers exchange every output through one; "
            "add it with `dvc remote add -d team <url>`"
            if name
            else f"no default DVC remote (configured: {known}): pass --remote NAME or `dvc remote add -d team <url>`"
        )
    options: dict[str, Any] = {}
    for key, value in remotes[name].items():
        if not any(word in key.lower() for word in SECRET_WORDS):
            options[key] = value if isinstance(value, bool | int | float) else str(value)
    url = str(options["url"])
    if "://" not in url and not Path(url).is_absolute():
        options["url"] = str((root / ".dvc" / url).resolve())
    return name, options


def cpu_per_task(root: Path) -> int:
    """train.threads (at least 1): the CPU resource every TensorFlow stage claims."""
    from filterlab.config.params import load_section, read_params
    from filterlab.config.sections import TrainParams

    threads = load_section(read_params(root / "params.yaml"), "train", TrainParams).threads
    return max(1, threads)


def resources_for(stage: str, cpu: int, gpu: bool) -> dict[str, float]:
    """Dask worker resources a stage's task claims: TensorFlow stages the train threads (and a GPU when asked),
    the figure stages one CPU."""
    if plan.kind(stage) == "filters":
        return {"CPU": 1}
    return {"CPU": cpu, **({"GPU": 1} if gpu and plan.kind(stage) == "train" else {})}


@dataclass
class Upstream:
    clone: Path
    entries: dict[str, plan.Entry]
    ran: list[str]


def run_upstream(root: Path, commit: str, remote: str, folder: Path) -> Upstream:
    """validate, download and prepare in a clone of `commit`: restored from the remote's run-cache or run, then
    pushed with `make push`'s script, so that every task finds them there."""
    clone = folder / "repo"
    workspace.clone_commit(str(root), commit, clone, "upstream")
    local = root / ".dvc" / "config.local"
    if local.is_file():  # this machine's remote settings, credentials included; they stay on this machine
        shutil.copy2(local, clone / ".dvc" / "config.local")
        os.chmod(clone / ".dvc" / "config.local", 0o600)
    from dvc.config import Config

    with Config(dvc_dir=str(clone / ".dvc")).edit("local") as config:
        config.setdefault("core", {})["remote"] = remote  # `dvc repro --pull` pulls from the default remote
    env = workspace.tool_env(clone)
    tail = workspace.run_logged(
        ["dvc", "repro", "--pull", *plan.UPSTREAM_STAGES], clone, env, "upstream", "the upstream stages"
    )
    ran = sorted({line.split("'")[1] for line in tail if line.startswith("Running stage '")})
    lock = plan.read_lock(clone)
    entries = {name: lock[name] for name in plan.UPSTREAM_STAGES}
    plan.write_lock(clone, entries)  # `make push` sends these outputs, not the commit's whole dvc.lock
    workspace.run_logged(
        [sys.executable, str(clone / ".ci" / "push_run_cache.py"), "-r", remote], clone, env, "upstream", "make push"
    )
    return Upstream(clone, entries, ran)


def connect(address: str, wait_seconds: float) -> Any:
    """A Dask client of the scheduler at `address`, with at least one worker."""
    from distributed import Client

    try:
        client = Client(address, timeout=wait_seconds)
    except (OSError, TimeoutError) as error:
        raise Refused(
            f"no Dask scheduler answers at {address} ({workspace.one_line(str(error))}); start one with "
            "`dask scheduler` (docs/many-machines.md)"
        ) from None
    try:
        client.wait_for_workers(1, timeout=wait_seconds)
    except TimeoutError:
        client.close()
        raise Refused(
            f"the scheduler at {address} has no worker after {wait_seconds:.0f} s; start one with "
            f"`dask worker {address} --resources CPU=<cores>`"
        ) from None
    return client


def check_resources(client: Any, address: str, claims: Sequence[Mapping[str, float]]) -> None:
    """Refuse a fan-out whose tasks no worker can take: they would wait forever."""
    workers = client.scheduler_info()["workers"].values()
    for claim in claims:
        if not any(all(w.get("resources", {}).get(k, 0) >= v for k, v in claim.items()) for w in workers):
            wanted = ",".join(f"{k}={v:g}" for k, v in claim.items())
            raise Refused(
                f"no worker of {address} offers the resources {wanted} that a task claims (CPU: train.threads); "
                f"start workers with `dask worker {address} --resources {wanted}`"
            )


def dashboard(client: Any) -> str | None:
    """The scheduler's dashboard link when it serves one (bokeh installed where the scheduler runs)."""
    services = client.scheduler_info().get("services", {})
    return str(client.dashboard_link) if "dashboard" in services else None


def failure_line(stage: str, error: BaseException) -> str:
    from distributed import KilledWorker

    from filterlab.cluster.tasks import StageFailed, StageStopped, WorkspaceFailed

    if isinstance(error, StageFailed | StageStopped | WorkspaceFailed):
        return mask_text(str(error))
    if isinstance(error, KilledWorker):
        return (
            f"{stage}: {error.allowed_failures + 1} workers died while running it "
            "(distributed.scheduler.allowed-failures); see their logs"
        )
    return f"{stage}: {type(error).__name__}: {workspace.one_line(str(error))}"


class Progress:
    """The live line: queued, running, done and failed tasks; a line of its own for each task that ends or moves."""

    def __init__(self, total: int, stream: Any = None):
        self.total = total
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last = ""

    def line(self, queued: int, running: int, done: int, failed: int) -> None:
        text = f"tasks: {queued} queued, {running} running, {done} done, {failed} failed (of {self.total})"
        if self.tty:
            self.stream.write(f"\r{text}\033[K")
            self.stream.flush()
        elif text != self.last:
            self.stream.write(f"{text}\n")
            self.stream.flush()
        self.last = text

    def event(self, text: str) -> None:
        clear = "\r\033[K" if self.tty else ""
        self.stream.write(f"{clear}{text}\n")
        self.stream.flush()
        if self.tty and self.last:
            self.stream.write(self.last)
            self.stream.flush()


class Starts:
    """The tasks' start events (filterlab.cluster.tasks announces each start on the fan-out's topic): where each
    stage runs now, and the retries (a second start on another worker after the first one was lost)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._new: list[tuple[str, str]] = []
        self.where: dict[str, str] = {}

    def handler(self, event: tuple[float, Mapping[str, str]]) -> None:
        _timestamp, message = event
        with self._lock:
            self._new.append((str(message["stage"]), str(message["worker"])))

    def drain(self) -> list[tuple[str, str, str | None]]:
        """(stage, worker, the worker it started on before, if any) for each start since the last call."""
        with self._lock:
            new, self._new = self._new, []
        found = []
        for stage, worker in new:
            found.append((stage, worker, self.where.get(stage)))
            self.where[stage] = worker
        return found


def watch(futures: Mapping[str, Any], starts: Starts, progress: Progress, results: dict[str, dict[str, Any]]) -> None:
    """Until every future ends: the live line, and the result of each finished task in `results`. The first
    failure raises TaskFailed (after the line that names it)."""
    while True:
        for stage, worker, before in starts.drain():
            if before is not None and before != worker:
                progress.event(f"retry: {stage} started again on {worker} (its worker {before} is gone)")
        for stage, future in futures.items():
            if future.status == "finished" and stage not in results:
                results[stage] = future.result()
                progress.event(describe(results[stage]))
        failed = [stage for stage, future in futures.items() if future.status in ("error", "cancelled")]
        done = len(results)
        running = sum(1 for stage, future in futures.items() if stage in starts.where and future.status == "pending")
        progress.line(len(futures) - done - running - len(failed), running, done, len(failed))
        if failed:
            line = failure_line(failed[0], futures[failed[0]].exception())
            progress.event(f"failed: {line}")
            raise TaskFailed(line)
        if done == len(futures):
            return
        time.sleep(POLL_SECONDS)


def describe(result: Mapping[str, Any]) -> str:
    seconds = result.get("seconds", {})
    steps = ", ".join(f"{name} {value:.1f} s" for name, value in seconds.items())
    verb = "ran" if result.get("status") == "ran" else "was already on the remote"
    return f"done: {result['stage']} {verb} on {result.get('worker', '?')} ({steps})"


def stop_fan_out(client: Any, futures: Mapping[str, Any], cancel: Any, starts: Starts) -> None:
    """Stop every task: the cancel event (running stages stop and end their MLflow runs KILLED; a task that starts
    now stops at once), the ones not started cancelled, and up to STOP_WAIT_SECONDS for the running ones to end."""
    cancel.set()
    starts.drain()
    client.cancel([future for stage, future in futures.items() if stage not in starts.where])
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    with contextlib.suppress(KeyboardInterrupt):
        while time.monotonic() < deadline and any(f.status == "pending" for f in futures.values()):
            time.sleep(POLL_SECONDS)
    client.cancel(list(futures.values()))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m filterlab.cluster", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scheduler",
        default=os.environ.get("DASK_SCHEDULER_ADDRESS"),
        help="the Dask scheduler's address, tcp://HOST:8786 (default: $DASK_SCHEDULER_ADDRESS)",
    )
    parser.add_argument("--remote", help="the DVC remote the workers share (default: the default remote)")
    parser.add_argument(
        "--git-url", help="where workers clone the commit from (default: this clone's folder, for a shared disk)"
    )
    parser.add_argument(
        "--stages",
        default=",".join(plan.FANNED_KINDS),
        help="which kinds of stage fan out (default: %(default)s); the rest run in the gather step",
    )
    parser.add_argument("--gpu", action="store_true", help="train@ tasks claim a GPU (workers with --resources GPU=1)")
    parser.add_argument("--scratch", help="where workers make their temp clones (default: each worker's local dir)")
    parser.add_argument("--wait-workers", type=float, default=60.0, help="seconds to wait for a first worker")
    parser.add_argument("--dry-run", action="store_true", help="run the upstream stages and plan; submit nothing")
    parser.add_argument("--gather", action="store_true", help="then run the gather step, `dvc repro --pull`, here")
    parser.add_argument("--summary", type=Path, help="write what ran where, with each step's seconds, as JSON")
    args = parser.parse_args(argv)
    kinds = [kind.strip() for kind in args.stages.split(",") if kind.strip()]
    unknown = sorted(set(kinds) - set(plan.FANNED_KINDS))
    if unknown:
        parser.error(f"--stages: {', '.join(unknown)} cannot fan out; choose from {', '.join(plan.FANNED_KINDS)}")
    args.kinds = kinds
    if not args.scheduler and not args.dry_run:
        parser.error("--scheduler tcp://HOST:8786 is required (or set DASK_SCHEDULER_ADDRESS)")
    return args


@contextlib.contextmanager
def temp_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="filterlab-cluster-upstream-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fan_out(args: argparse.Namespace, root: Path) -> int:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    refusal = tracking_refusal(uri)
    if refusal is not None:
        raise Refused(refusal)
    assert uri is not None
    commit = committed_head(root)
    git_url = args.git_url or str(root)
    if mask_url(git_url) != git_url:
        raise Refused(
            "--git-url holds a password, which every worker's process list would show; use a git "
            "credential helper or an SSH key instead"
        )
    remote, options = remote_settings(root, args.remote)
    cpu = cpu_per_task(root)
    client = None if args.dry_run else connect(args.scheduler, args.wait_workers)
    started = time.perf_counter()
    sweep = f"cluster-{time.strftime('%Y%m%dT%H%M%S')}-{commit[:8]}"
    try:
        with temp_folder() as folder:
            upstream = run_upstream(root, commit, remote, folder)
            print(
                f"upstream: {', '.join(upstream.ran) or 'nothing ran'}"
                f"{'' if upstream.ran else ' (restored from the remote)'}; pushed to remote '{remote}'"
            )
            try:
                plans = plan.plan(upstream.clone, remote, args.kinds)
            except Exception as error:  # DVC's errors vary by remote and version: one line
                raise Refused(f"planning against remote '{remote}' failed: {workspace.one_line(str(error))}") from None
        todo = [p for p in plans if not p.done]
        grid = sum(1 for p in plans if plan.kind(p.name) == "train")
        print(
            f"grid: {grid} train@ variants in dvc.yaml; {len(plans) - len(todo)} of {len(plans)} stages are on "
            f"remote '{remote}' already, {len(todo)} to run"
        )
        if not todo:
            print("nothing to submit; gather with `dvc repro --pull`")
            return 0
        if client is None:
            for p in todo:
                after = f" (after {', '.join(p.waits_for)})" if p.waits_for else ""
                print(f"would submit: {p.name}{after}")
            return 0
        return submit(args, client, root, commit, git_url, remote, options, cpu, sweep, uri, upstream, plans, started)
    finally:
        if client is not None:
            client.close()


def submit(
    args: argparse.Namespace,
    client: Any,
    root: Path,
    commit: str,
    git_url: str,
    remote: str,
    options: dict[str, Any],
    cpu: int,
    sweep: str,
    uri: str,
    upstream: Upstream,
    plans: list[plan.StagePlan],
    started: float,
) -> int:
    from distributed import Event

    from filterlab.cluster import runs, tasks

    known: dict[str, plan.Entry] = dict(upstream.entries)
    known.update({p.name: p.entry for p in plans if p.entry is not None})
    todo = [p for p in plans if not p.done]
    claims = [resources_for(p.name, cpu, args.gpu) for p in todo]
    check_resources(client, args.scheduler, claims)
    link = dashboard(client)
    print(
        f"submitting {len(todo)} tasks to {args.scheduler} (sweep {sweep})"
        f"{f'; dashboard: {link}' if link else '; no dashboard (bokeh is not installed where the scheduler runs)'}"
    )
    cancel = Event(f"filterlab-cancel-{sweep}", client=client)
    topic = f"filterlab-progress-{sweep}"
    starts = Starts()
    client.subscribe_topic(topic, starts.handler)
    futures: dict[str, Any] = {}
    for stage_plan, claim in zip(todo, claims, strict=True):
        missing = [p for p in stage_plan.waits_for if p not in futures]
        if missing:
            raise Refused(
                f"{stage_plan.name} reads {', '.join(missing)}, which is neither on the remote nor in this "
                "fan-out; add its kind to --stages"
            )
        spec = {
            "stage": stage_plan.name,
            "commit": commit,
            "git_url": git_url,
            "remote": {"name": remote, "options": options},
            "produced": {p: known[p] for p in stage_plan.producers if p in known},
            "inputs": list(stage_plan.inputs),
            "sweep": sweep,
            "tracking_uri": uri,
            "scratch": args.scratch,
            "cancel_event": cancel.name,
            "progress_topic": topic,
        }
        waits = [futures[p] for p in stage_plan.waits_for]
        futures[stage_plan.name] = client.submit(
            tasks.run_stage, spec, *waits, key=f"{stage_plan.name}-{sweep}", resources=claim, retries=0, pure=False
        )
    results: dict[str, dict[str, Any]] = {}
    progress = Progress(len(futures))
    code = 0
    failed_line = ""
    try:
        watch(futures, starts, progress, results)
    except KeyboardInterrupt:
        progress.event("interrupted: stopping the running stages and cancelling the queued ones")
        stop_fan_out(client, futures, cancel, starts)
        code = EXIT_INTERRUPTED
    except TaskFailed as failure:
        stop_fan_out(client, futures, cancel, starts)
        failed_line = failure.line
        code = 1
    finally:
        left = runs.end_left_running(uri, sweep)
        if left:
            progress.event(
                f"MLflow: {len(left)} runs of this fan-out were still RUNNING (their worker was lost, or they did "
                f"not stop in time); marked KILLED: {', '.join(left)}"
            )
        with contextlib.suppress(Exception):
            cancel.clear()
    elapsed = time.perf_counter() - started
    if args.summary is not None:
        summary = {
            "sweep": sweep,
            "commit": commit,
            "wall_seconds": round(elapsed, 1),
            "upstream_ran": upstream.ran,
            "tasks": results,
        }
        args.summary.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    if code == EXIT_INTERRUPTED:
        print(
            "error: interrupted: the fan-out is cancelled; what finished is on the remote, a re-run submits the rest",
            file=sys.stderr,
        )
        return code
    if code:
        print(f"error: {failed_line}; the other tasks are stopped (a re-run submits what is missing)", file=sys.stderr)
        return code
    ran = sum(1 for r in results.values() if r.get("status") == "ran")
    workers = sorted({str(r.get("worker")) for r in results.values()})
    print(
        f"done: {len(results)} stages ({ran} ran, {len(results) - ran} already on the remote) on {len(workers)} "
        f"workers in {elapsed:.0f} s; gather with `dvc repro --pull`"
    )
    if args.gather:
        return subprocess.run(["dvc", "repro", "--pull"], cwd=root, env=workspace.tool_env(root)).returncode
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return fan_out(args, Path(git(Path.cwd(), "rev-parse", "--show-toplevel").strip()))
    except Refused as refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    except workspace.StepFailed as failure:
        print(f"error: {failure.line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted before any task was submitted; nothing to cancel", file=sys.stderr)
        return EXIT_INTERRUPTED
