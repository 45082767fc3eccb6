"""The one seam to MLflow: every run, param, metric, tag and artifact goes through here.

Logs to the store `filterlab.core.origin.tracking_uri` names (default: the repo's
`mlflow.db`) and writes only to that tracking store. MLflow is imported lazily: stages that track pay for it, the
others do not.
"""

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from filterlab.core import lifeline, store
from filterlab.core.errors import DiskFull, Terminated, TrackingError, filled_path, is_disk_full, raise_terminated
from filterlab.core.origin import SWEEP_TAG, artifact_root, git_commit, run_label, sqlite_path, sweep_id, tracking_uri

# sha256 of the variant's filters.npz: how the log_figures stage finds the run that trained it.
FILTERS_TAG = "filterlab.filters_sha256"
# sha256 over a variant's figures and filter details: the log_figures stage adds them once per content.
FIGURES_TAG = "filterlab.figures_sha256"
# The run's name without the sweep: what "the same stage and variant" means when settling dead runs.
RUN_TAG = "filterlab.run"


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
            from mlflow.store.db.utils import _get_latest_schema_revision  # the schema a complete store has

            found = store.state(db_path, _get_latest_schema_revision())
            if found == store.HALF_MADE:
                store.set_aside(db_path)
                found = store.ABSENT
            if found == store.ABSENT:
                store.build(db_path, _migrate)
            _check_schema(uri, db_path)
    if (made := _identity(db_path)) is not None:
        _CHECKED[uri] = made


# The stores this process has created or checked, by inode: the baselines stage opens 14 runs, and each check
# costs about 0.25 s of MLflow's schema verification. A store moved away or rebuilt since is checked again (one
# overwritten in place, keeping its inode, is not: within one stage's lifetime that is not worth a check per run).
_CHECKED: dict[str, tuple[int, int]] = {}


def _identity(db_path: Path) -> tuple[int, int] | None:
    try:
        found = db_path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _migrate(uri: str) -> None:
    """Create MLflow's tables at `uri`, then let go of the engine: the file is about to be renamed."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    created = SqlAlchemyStore(uri, (sqlite_path(uri).parent / "mlartifacts").as_uri())
    created.engine.dispose()
    SqlAlchemyStore._engine_map.pop(uri, None)


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
# Opens the experiment in the UI's classic machine-learning view, not the GenAI one (traces, judges).
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def use_experiment(mlflow_module: Any, name: str, uri: str) -> None:
    """Make `name` the active experiment, created with our artifact root, description and kind if it is new."""
    tags = {**EXPERIMENT_KIND, **({"mlflow.note.content": DESCRIPTIONS[name]} if name in DESCRIPTIONS else {})}
    if mlflow_module.get_experiment_by_name(name) is None:
        # Parallel stages may race to create it; the loser simply uses the winner's.
        with contextlib.suppress(mlflow_module.exceptions.MlflowException):
            mlflow_module.create_experiment(name, artifact_location=artifact_root(uri, name), tags=tags)
    experiment = mlflow_module.set_experiment(name)
    for key, value in tags.items():
        if experiment.tags.get(key) != value:  # an experiment made before these tags existed
            mlflow_module.set_experiment_tag(key, value)


def rounded(value: float) -> float:
    """Seven significant digits: what a float32 metric holds, without its float64 tail (0.9674999713897705)."""
    return float(f"{float(value):.7g}")


class Run:
    """The handle a stage logs through; counts the seconds spent in MLflow calls."""

    def __init__(self, mlflow_module: Any, run: Any, db_path: Path | None = None):
        self._mlflow = mlflow_module
        self._db_path = db_path or Path("the tracking store")
        self.run_id: str = run.info.run_id
        self.experiment_id: str = run.info.experiment_id
        self.seconds = 0.0

    @contextlib.contextmanager
    def _timed(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            with _disk_guard(self._db_path):
                yield
        finally:
            self.seconds += time.perf_counter() - started

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """All metrics of one step in one call (one batch to the store)."""
        with self._timed():
            self._mlflow.log_metrics({k: rounded(v) for k, v in metrics.items()}, step=step)

    def log_params(self, params: Mapping[str, Any]) -> None:
        with self._timed():
            self._mlflow.log_params(dict(params))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        with self._timed():
            self._mlflow.set_tags({k: str(v) for k, v in tags.items() if v is not None})

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        with self._timed():
            self._mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def log_artifacts(self, directory: str | os.PathLike, artifact_path: str | None = None) -> None:
        with self._timed():
            self._mlflow.log_artifacts(str(directory), artifact_path=artifact_path)

    def log_image(self, image: Any, key: str, step: int | None = None) -> None:
        """An image (array in [0, 1] or uint8, or PIL) under `key`; with `step` the UI gets a slider."""
        with self._timed():
            self._mlflow.log_image(image, key=key, step=step)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        with self._timed():
            self._mlflow.log_figure(figure, artifact_file)


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

    uri = tracking_uri()
    db_path = sqlite_path(uri) or Path("the tracking store")
    ensure_database(uri)
    with _disk_guard(db_path):
        mlflow.set_tracking_uri(uri)
        use_experiment(mlflow, experiment, uri)
        origin = {
            SWEEP_TAG: sweep_id(),
            "mlflow.source.git.commit": git_commit(),
            "dvc.stage": os.environ.get("DVC_STAGE"),
            "dvc.exp_name": os.environ.get("DVC_EXP_NAME"),
            RUN_TAG: run_name,
            **lifeline.identity(),
        }
        all_tags = {**origin, **(tags or {})}
        mark_dead_runs(mlflow.tracking.MlflowClient(uri), experiment, run_name)
        # "f8_k3_s1 (dvc-20261125T001200-4242)": one name per variant per sweep, never ten runs called f8_k3_s1.
        active = mlflow.start_run(run_name=f"{run_name} ({run_label()})")
    handle = Run(mlflow, active, db_path)
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    status = "FAILED"
    try:
        handle.set_tags(all_tags)
        if params:
            handle.log_params(params)
        yield handle
        status = "FINISHED"
    except (KeyboardInterrupt, Terminated):
        status = "KILLED"
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        with _disk_guard(db_path):
            mlflow.end_run(status=status)


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
        if lifeline.alive(run.data.tags) is False:
            client.set_terminated(run.info.run_id, status="KILLED")
            settled.append(run.info.run_id)
            print(f"note: run {run.info.run_name} ({run.info.run_id}) was left RUNNING by process "
                  f"{run.data.tags.get(lifeline.PID_TAG)}, which is gone; marked KILLED", file=sys.stderr)
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
        self._client.log_batch(self.run_id, metrics=[
            Metric(key, rounded(value), stamp, step or 0) for key, value in metrics.items()
        ])

    def log_image(self, image: Any, key: str, step: int | None = None) -> None:
        self._client.log_image(self.run_id, image, key=key, step=step)

    def log_artifacts(self, directory: str | os.PathLike, artifact_path: str | None = None) -> None:
        self._client.log_artifacts(self.run_id, str(directory), artifact_path=artifact_path)

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        self._client.log_artifact(self.run_id, str(path), artifact_path=artifact_path)


def finished_run(experiment: str, tags: Mapping[str, str]) -> FinishedRun | None:
    """The newest run of `experiment` carrying every one of `tags`; None when there is none.

    None is normal when DVC restored the training stage from its run-cache: no run was
    logged for it in this tracking store.
    """
    from mlflow.tracking import MlflowClient

    uri = tracking_uri()
    ensure_database(uri)
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    query = " and ".join(f"tags.`{key}` = '{value}'" for key, value in tags.items())
    runs = client.search_runs([found.experiment_id], filter_string=query, order_by=["attributes.start_time DESC"],
                              max_results=1)
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
