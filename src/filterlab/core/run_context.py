"""Where runs are logged and what names them: the repo root, the tracking URI, the sweep; reads only.

Reads `MLFLOW_TRACKING_URI` (default: `sqlite:///<repo root>/mlflow.db`, absolute, so
`dvc exp run --queue` workers in temp copies log to the same database), `DVC_ROOT`,
`DVC_EXP_NAME`, the process tree (for the sweep id) and `git rev-parse HEAD`. No MLflow:
`filterlab.core.tracking` builds on these.
"""

import contextlib
import os
import subprocess
import time
from pathlib import Path

SWEEP_ENV = "FILTERLAB_SWEEP_ID"
SWEEP_TAG = "filterlab.sweep_id"
# Tags only filterlab itself reads (which process ran a run, which files it logged). MLflow's UI hides tags under
# `mlflow.`, its namespace for system tags, so these stay off every run page.
INTERNAL_TAG_PREFIX = "mlflow.filterlab."


def repo_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The project root; inside a DVC queue worker's temp copy, the repo it was copied from."""
    here = Path(start or os.environ.get("DVC_ROOT") or Path.cwd()).resolve()
    parts = here.parts
    # Queued experiments run in <repo>/.dvc/tmp/exps/<id>/: log to <repo>'s database.
    for index in range(len(parts) - 2):
        if parts[index : index + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:index])
    for candidate in (here, *here.parents):
        if (candidate / "dvc.yaml").exists() or (candidate / ".dvc").is_dir():
            return candidate
    return here


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def sweep_id() -> str:
    """Shared by every run of one `dvc repro`: derived from the dvc process that started us."""
    if os.environ.get(SWEEP_ENV):
        return os.environ[SWEEP_ENV]
    import psutil

    for process in psutil.Process().parents():
        with contextlib.suppress(psutil.Error):
            if any(Path(arg).name == "dvc" for arg in process.cmdline()[:2]):
                started = time.strftime("%Y%m%dT%H%M%S", time.localtime(process.create_time()))
                return f"dvc-{started}-{process.pid}"
    return f"manual-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"


def git_commit(root: Path | None = None) -> str | None:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root or repo_root(), capture_output=True, text=True, check=True
        )
        return out.stdout.strip() or None
    return None


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` tracking URI; None for any other store (a server, PostgreSQL)."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def artifact_root(uri: str, experiment: str) -> str | None:
    """`mlartifacts/<experiment>/` beside a sqlite database; None lets other stores choose.

    MLflow's own default is `./mlruns` under the current directory: a hidden output in
    the workspace, and lost with a queued experiment's temp copy.
    """
    db_path = sqlite_path(uri)
    return None if db_path is None else (db_path.parent / "mlartifacts" / experiment).as_uri()


def run_label() -> str:
    """What makes a run name unique: the DVC experiment's name, or else the sweep (one `dvc repro`)."""
    return os.environ.get("DVC_EXP_NAME") or sweep_id()
