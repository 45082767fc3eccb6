"""The one seam to MLflow: every run, param, metric, tag and artifact goes through here.

Logs to the store `filterlab.core.run_context.tracking_uri` names (default: the repo's
`mlflow.db`) and writes only to that tracking store. MLflow is imported lazily: stages that track pay for it, the
others do not.

Tracking never costs a stage its outputs: a store that can't be reached when a run opens is one line before any
work; one that goes away mid-run turns the rest of the run's calls into no-ops and one warning naming
`python -m filterlab.log_missing`, which replays the run from the stage's DVC outputs later.
"""

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from filterlab.core import mlflow_sqlite, parent_death
from filterlab.core.errors import (
    DiskFull,
    Terminated,
    TrackingError,
    causes,
    filled_path,
    is_disk_full,
    raise_terminated,
    signals_held,
)
from filterlab.core.run_context import (
    INTERNAL_TAG_PREFIX,
    SWEEP_TAG,
    artifact_root,
    git_commit,
    run_label,
    sqlite_path,
    sweep_id,
    tracking_uri,
)
from filterlab.core.secrets import mask_text, mask_url

# sha256 of the variant's filters.npz: how the log_figures stage finds the run that trained it.
FILTERS_TAG = f"{INTERNAL_TAG_PREFIX}filters_sha256"
# sha256 over a variant's figures and filter details: the log_figures stage adds them once per content.
FIGURES_TAG = f"{INTERNAL_TAG_PREFIX}figures_sha256"
# The run's name without the sweep: what "the same stage and variant" means when settling dead runs.
RUN_TAG = f"{INTERNAL_TAG_PREFIX}run"

# Deadlines for every HTTP call to a tracking server. MLflow's own defaults (120 s per request, 7 retries with
# exponential backoff) held a stage for many minutes when the database behind `mlflow server` stopped. A value
# already set in the environment wins, so a slow team server can be given more.
HTTP_DEADLINES = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}


def bound_http_calls() -> None:
    """Give MLflow's HTTP client the deadlines above (environment values win); before any MLflow call."""
    for key, value in HTTP_DEADLINES.items():
        os.environ.setdefault(key, value)


def tracking_errors() -> tuple[type[BaseException], ...]:
    """What a tracking store that is gone or broken raises through MLflow: its own, HTTP, database and OS errors."""
    import requests
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    return MlflowException, requests.RequestException, SQLAlchemyError, OSError


# How much of an error's first line a one-line message keeps.
FIRST_LINE_CHARS = 300


def first_line(error: BaseException) -> str:
    """The first line of an error's message, whitespace collapsed, any password in a URL masked, cut at a word.

    A database error speaks through the driver's own message (`orig`, anywhere in the chain: MLflow wraps
    SQLAlchemy's errors in its own): SQLAlchemy puts its notes, such as "(raised as a result of Query-invoked
    autoflush ...)", on the line before it.
    """
    drivers = (getattr(link, "orig", None) for link in causes(error))
    error = next((driver for driver in drivers if isinstance(driver, BaseException)), error)
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    lines = [line for line in str(text).splitlines() if line.strip()] or [type(error).__name__]
    line = mask_text(" ".join(lines[0].split()))
    if len(line) <= FIRST_LINE_CHARS:
        return line
    cut = line[: FIRST_LINE_CHARS - 1]
    word_end = cut.rfind(" ")
    # At the last word if one ends near the limit; a long URL or path is cut where the limit falls.
    return (cut[:word_end] if word_end > FIRST_LINE_CHARS - 40 else cut) + "…"


def ensure_database(uri: str) -> None:
    """Create or migrate a sqlite store under an exclusive lock, before any run logs to it.

    Two processes opening a fresh database at once would both run the schema
    migrations; the lock makes the first one create it and the others wait. A new
    database is built beside the final path and renamed into place, so a full disk or
    a kill mid-migration never leaves a half-made store (which MLflow would then try to
    migrate again, failing on `table ... already exists` for good).
    """
    db_path = sqlite_path(uri)
    if db_path is None:
        return
    found = _identity(db_path)
    if found is not None and _CHECKED.get(uri) == found:  # checked by this process already, still the same file
        return
    with _disk_guard(db_path):
        db_path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{db_path}.lock", "w") as lock:
            try:
                import fcntl

                fcntl.flock(lock, fcntl.LOCK_EX)
            except ImportError:  # no flock on Windows: accept the (rare) race there
                pass
            schema_head = mlflow_internal("mlflow.store.db.utils", "_get_latest_schema_revision")()
            state = mlflow_sqlite.state(db_path, schema_head)
            if state == mlflow_sqlite.HALF_MADE:
                mlflow_sqlite.set_aside(db_path)
                state = mlflow_sqlite.ABSENT
            if state == mlflow_sqlite.ABSENT:
                mlflow_sqlite.build(db_path, _migrate)
            _check_schema(uri, db_path)
    if (made := _identity(db_path)) is not None:
        _CHECKED[uri] = made


# The stores this process has created or checked, by inode: the baselines stage opens 14 runs, and MLflow's
# schema verification is not worth repeating for each. A store moved away or rebuilt since is checked again (one
# overwritten in place, keeping its inode, is not: within one stage's lifetime that is not worth a check per run).
_CHECKED: dict[str, tuple[int, int]] = {}


def _identity(db_path: Path) -> tuple[int, int] | None:
    try:
        found = db_path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


def mlflow_internal(module: str, name: str) -> Any:
    """The one door to MLflow's private API: `module`'s attribute `name` (dotted names walk attributes).

    MLflow has no public call for the schema revision a complete store has, nor for dropping the engine it
    caches per URI, and building the store beside its final path needs both. An MLflow that renamed either
    fails here in one line naming the upgrade, not somewhere inside a migration.
    """
    import importlib

    import mlflow

    try:
        found: Any = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        raise TrackingError(
            f"MLflow {mlflow.__version__} has no {module}.{name}, which filterlab.core.tracking "
            "uses to create the sqlite store: install the pinned MLflow (make install) or update "
            "filterlab.core.tracking.mlflow_internal's callers for this MLflow"
        ) from None
    return found


def _migrate(uri: str) -> None:
    """Create MLflow's tables at `uri`, then let go of the engine: the file is about to be renamed."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    db_path = sqlite_path(uri)
    if db_path is None:
        raise ValueError(f"not a sqlite tracking URI: {uri}")
    store_class: Any = SqlAlchemyStore  # MLflow's stores are untyped
    created = store_class(uri, (db_path.parent / "mlartifacts").as_uri())
    created.engine.dispose()
    mlflow_internal("mlflow.store.tracking.sqlalchemy_store", "SqlAlchemyStore._engine_map").pop(uri, None)


def _check_schema(uri: str, db_path: Path) -> None:
    """Open the store as every stage will; a schema from another MLflow version is one line."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient
    from sqlalchemy.exc import SQLAlchemyError

    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except (MlflowException, SQLAlchemyError) as error:  # an old schema; a store with runs cut off mid-upgrade
        if is_disk_full(error):
            raise
        text = str(error.message if isinstance(error, MlflowException) else str(error).splitlines()[0])
        first = " ".join(text.split()).split(". ")[0]
        raise TrackingError(f"{db_path}: {first}; run `mlflow db upgrade {uri}` or move the file away") from None


@contextlib.contextmanager
def _disk_guard(db_path: Path) -> Iterator[None]:
    """A full disk anywhere in MLflow (sqlite's "database or disk is full", ENOSPC on an artifact) is one line."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as error:
        if not is_disk_full(error):
            raise
        raise DiskFull(filled_path(error) or db_path) from None


DESCRIPTIONS = {
    "train": "One run per grid variant (filters x kernel size x stride) of the train@ stages: params, per-epoch "
    "curves, test accuracy with its 95% interval; the log_figures stage adds conv1 images and figures.",
    "baselines": "Frozen first layers: each hand-designed kernel family, the whole bank, a random bank and raw "
    "pixels, trained exactly like the grid.",
    "probes": "Three small experiments: 28x28 filters trained on one digit, the [-1 1 -1] peak detector, and "
    "kernel recovery by regression.",
}
# The experiment-type tag MLflow's UI reads to tell model-training experiments from GenAI ones (traces, judges).
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def use_experiment(mlflow_module: Any, name: str, uri: str) -> None:
    """Make `name` the active experiment, created with our artifact root, description and kind if it is new."""
    tags = {**EXPERIMENT_KIND, **({"mlflow.note.content": DESCRIPTIONS[name]} if name in DESCRIPTIONS else {})}
    if mlflow_module.get_experiment_by_name(name) is None:
        # Parallel stages may race to create it; the loser simply uses the winner's.
        with contextlib.suppress(mlflow_module.exceptions.MlflowException):
            mlflow_module.create_experiment(name, artifact_location=artifact_root(uri, name), tags=tags)
    experiment = mlflow_module.set_experiment(name)
    check_artifacts_inside(experiment, uri)
    for key, value in tags.items():
        if experiment.tags.get(key) != value:  # an experiment made before these tags existed
            mlflow_module.set_experiment_tag(key, value)


def check_artifacts_inside(experiment: Any, uri: str) -> None:
    """Refuse, in one line, a sqlite store whose experiment keeps its artifacts in another folder.

    MLflow stores an experiment's artifact location as an absolute URI: the runs of a copied or moved clone
    would write their files into the original's tree.
    """
    expected = artifact_root(uri, experiment.name)
    if expected is None or experiment.artifact_location == expected:
        return
    raise TrackingError(
        f"{sqlite_path(uri)}: experiment '{experiment.name}' keeps its artifacts in "
        f"{experiment.artifact_location}, not in this clone (the database was copied or moved "
        "from there); move mlflow.db and mlartifacts/ aside to start a new store here"
    )


def rounded(value: float) -> float:
    """Seven significant digits: what a float32 metric holds, without its float64 tail (0.9674999713897705)."""
    return float(f"{float(value):.7g}")


def replay_command() -> str:
    """How to log this stage's run once tracking is back (`filterlab.log_missing`), for the one-line warnings."""
    stage_name = os.environ.get("DVC_STAGE")
    return f"python -m filterlab.log_missing {stage_name}" if stage_name else "python -m filterlab.log_missing STAGE"


class Run:
    """The handle a stage logs through; counts the seconds spent in MLflow calls.

    The first call that fails because the store is gone marks the run incomplete and prints one warning;
    later calls are skipped, so training goes on and the stage still writes its outputs.
    On a sqlite store (`db_path`) each call that writes to it finishes before a SIGTERM or Ctrl-C takes effect:
    cut mid-write, it would leave the database locked and the run could not be marked KILLED.
    """

    def __init__(self, mlflow_module: Any, run: Any, db_path: Path | None = None):
        self._mlflow = mlflow_module
        self._sqlite = db_path
        self._db_path = db_path or Path("the tracking store")
        self.run_id: str = run.info.run_id
        self.experiment_id: str = run.info.experiment_id
        self.run_name: str = run.info.run_name
        self.seconds = 0.0
        self.incomplete: str | None = None

    def give_up(self, error: BaseException) -> None:
        """Mark the run incomplete because of `error` and say so once, with the command that completes it."""
        if self.incomplete is None:
            self.incomplete = first_line(error)
            print(
                f"warning: MLflow run {self.run_name} is incomplete ({self.incomplete}); the stage's outputs "
                f"are not affected. Once tracking is back: {replay_command()}",
                file=sys.stderr,
                flush=True,
            )

    @contextlib.contextmanager
    def _timed(self, *, writes_store: bool = True) -> Iterator[None]:
        """Time the call, and turn the store going away into one warning; a call that writes to a sqlite store
        (`writes_store`) runs to its end before a signal acts."""
        started = time.perf_counter()
        try:
            with _held(self._sqlite if writes_store else None), _disk_guard(self._db_path):
                yield
        except DiskFull:
            raise
        except tracking_errors() as error:
            if is_disk_full(error):
                raise
            self.give_up(error)
        finally:
            self.seconds += time.perf_counter() - started

    def _active(self) -> bool:
        return self.incomplete is None

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """All metrics of one step in one call (one batch to the store)."""
        if not self._active():
            return
        with self._timed():
            self._mlflow.log_metrics({k: rounded(v) for k, v in metrics.items()}, step=step)

    def log_params(self, params: Mapping[str, Any]) -> None:
        if not self._active():
            return
        with self._timed():
            self._mlflow.log_params(dict(params))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if not self._active():
            return
        with self._timed():
            self._mlflow.set_tags({k: str(v) for k, v in tags.items() if v is not None})

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        if not self._active():
            return
        with self._timed(writes_store=False):
            self._mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def log_artifacts(self, directory: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        if not self._active():
            return
        with self._timed(writes_store=False):
            self._mlflow.log_artifacts(str(directory), artifact_path=artifact_path)

    def log_image(self, image: Any, key: str, step: int | None = None) -> None:
        """An image (array in [0, 1] or uint8, or PIL) under `key`; with `step` the UI gets a slider."""
        if not self._active():
            return
        with self._timed():
            self._mlflow.log_image(image, key=key, step=step)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        if not self._active():
            return
        with self._timed(writes_store=False):
            self._mlflow.log_figure(figure, artifact_file)

    def end(self, status: str) -> None:
        """End the run with `status`, even after a failed call: MLflow forgets the run locally before it calls
        the store, so a store that is gone leaves only the warning."""
        with self._timed():
            self._mlflow.end_run(status=status)


@contextlib.contextmanager
def start_run(
    experiment: str,
    run_name: str,
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> Iterator[Run]:
    """Open a run named after `run_name` and this sweep; it always ends FINISHED, FAILED or KILLED.

    SIGTERM is turned into `Terminated` while the run is open, so a killed stage marks
    its run KILLED (as Ctrl-C does) instead of leaving it RUNNING forever; a run that
    `kill -9` left RUNNING is marked KILLED by the next run of the same name.
    """
    import mlflow

    bound_http_calls()
    uri = tracking_uri()
    db_path = sqlite_path(uri)
    ensure_database(uri)
    with _disk_guard(db_path or Path("the tracking store")), _unreachable_is_one_line(uri):
        mlflow.set_tracking_uri(uri)
        use_experiment(mlflow, experiment, uri)
        context = {
            SWEEP_TAG: sweep_id(),
            "mlflow.source.git.commit": git_commit(),
            "dvc.stage": os.environ.get("DVC_STAGE"),
            "dvc.exp_name": os.environ.get("DVC_EXP_NAME"),
            RUN_TAG: run_name,
            **parent_death.identity(),
        }
        all_tags = {**context, **(tags or {})}
        mark_dead_runs(mlflow.tracking.MlflowClient(uri), experiment, run_name)
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    status = "FAILED"
    handle: Run | None = None
    try:
        # Held on every store (a server's request is bounded by HTTP_DEADLINES): a request cut short could leave
        # a run this process never learns of. The signal acts once `handle` exists, so the run is ended KILLED.
        # Created with its tags, so even a run left behind carries what `mark_dead_runs` looks for.
        with _disk_guard(db_path or Path("the tracking store")), _unreachable_is_one_line(uri), signals_held():
            # "f8_k3_s1 (dvc-20261125T001200-4242)": one name per variant per sweep, never ten runs called f8_k3_s1.
            active = mlflow.start_run(
                run_name=f"{run_name} ({run_label()})",
                tags={key: str(value) for key, value in all_tags.items() if value is not None},
            )
            handle = Run(mlflow, active, db_path)
        if params:
            handle.log_params(params)
        yield handle
        status = "FINISHED"
    except (KeyboardInterrupt, Terminated):
        status = "KILLED"
        raise
    finally:
        try:
            # A signal here would leave the run to MLflow's exit hook, which ends it FINISHED.
            with signals_held():
                if handle is not None:
                    handle.end(status)
        finally:
            signal.signal(signal.SIGTERM, previous)


def _held(db_path: Path | None) -> contextlib.AbstractContextManager[None]:
    """`signals_held` for a sqlite store, whose writes must not be cut in half; nothing for a server, whose
    database finishes a request whatever happens to the client (so Ctrl-C is not kept waiting on a slow one)."""
    return signals_held() if db_path is not None else contextlib.nullcontext()


@contextlib.contextmanager
def _unreachable_is_one_line(uri: str) -> Iterator[None]:
    """A store that can't be reached or used when a run opens: one line, before the stage does any work."""
    try:
        yield
    except (DiskFull, TrackingError):
        raise
    except tracking_errors() as error:
        if is_disk_full(error):
            raise
        raise TrackingError(
            f"MLflow tracking store {mask_url(uri)} is not usable ({first_line(error)}); start "
            "it, or unset MLFLOW_TRACKING_URI to log to the repo's mlflow.db"
        ) from None


def mark_dead_runs(client: Any, experiment: str, run_name: str) -> list[str]:
    """Mark KILLED the RUNNING runs of the same stage and variant whose process is gone; their ids.

    `kill -9` (or a lost machine) leaves no chance to end a run, so the next run of the
    same name settles it: a run is dead when its host is this host and its pid is not
    the process that started it (`lifeline.alive`). Runs from other hosts, or without
    the tags, are left alone: whether they still run cannot be told from here.
    """
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    query = f"attributes.status = 'RUNNING' and tags.`{RUN_TAG}` = '{run_name}'"
    settled = []
    for run in client.search_runs([found.experiment_id], filter_string=query, max_results=100):
        if parent_death.alive(run.data.tags) is False:
            client.set_terminated(run.info.run_id, status="KILLED")
            settled.append(run.info.run_id)
            print(
                f"note: run {run.info.run_name} ({run.info.run_id}) was left RUNNING by process "
                f"{run.data.tags.get(parent_death.PID_TAG)}, which is gone; marked KILLED",
                file=sys.stderr,
            )
    return settled


class FinishedRun:
    """Adds metrics, images and artifacts to a run that has ended, without reopening it.

    Going through the client leaves the run's status and end time alone, so the MLflow
    UI keeps showing the training's own duration.
    """

    def __init__(self, client: Any, run_id: str, tags: Mapping[str, str] | None = None):
        self._client = client
        self.run_id = run_id
        self.tags = dict(tags or {})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        self._client.log_batch(self.run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()])
        self.tags.update({key: str(value) for key, value in tags.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self._client.log_batch(
            self.run_id, metrics=[Metric(key, rounded(value), stamp, step or 0) for key, value in metrics.items()]
        )

    def log_image(self, image: Any, key: str, step: int | None = None) -> None:
        self._client.log_image(self.run_id, image, key=key, step=step)

    def log_artifacts(self, directory: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        self._client.log_artifacts(self.run_id, str(directory), artifact_path=artifact_path)

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
        self._client.log_artifact(self.run_id, str(path), artifact_path=artifact_path)


def finished_run(experiment: str, tags: Mapping[str, str]) -> FinishedRun | None:
    """The newest run of `experiment` carrying every one of `tags`; None when there is none.

    None is normal when DVC restored the training stage from its run-cache: no run was
    logged for it in this tracking store.
    """
    from mlflow.tracking import MlflowClient

    bound_http_calls()
    uri = tracking_uri()
    ensure_database(uri)
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    query = " and ".join(f"tags.`{key}` = '{value}'" for key, value in tags.items())
    runs = client.search_runs(
        [found.experiment_id], filter_string=query, order_by=["attributes.start_time DESC"], max_results=1
    )
    return FinishedRun(client, runs[0].info.run_id, runs[0].data.tags) if runs else None


def ui_link(base: str, experiment: str = "train", metric: str = "test_accuracy") -> str:
    """The MLflow UI's runs table of `experiment`, best `metric` first; the experiments page if it has no runs yet."""
    from urllib.parse import urlencode

    from mlflow.tracking import MlflowClient

    found = MlflowClient(tracking_uri=tracking_uri()).get_experiment_by_name(experiment)
    if found is None:
        return f"{base}/#/experiments"
    query = urlencode({"orderByKey": f"metrics.`{metric}`", "orderByAsc": "false"})
    return f"{base}/#/experiments/{found.experiment_id}/runs?{query}"


if __name__ == "__main__":  # `make ui` asks for the link: python -m filterlab.core.tracking http://127.0.0.1:5000
    import sys

    print(ui_link(sys.argv[1].rstrip("/")))
