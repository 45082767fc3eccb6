"""The sqlite file behind the MLflow store, checked and created all or nothing; no MLflow here.

Reads the database file with Python's sqlite3 (read-only) and writes only beside it:
a temp database that `build` renames into place once complete (through `filterlab.core.atomic`), and, for a store
left half-made by an older run, the set-aside copy. `filterlab.core.tracking` (the one
module that imports MLflow) passes in the function that runs MLflow's migrations.
"""

import contextlib
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

from filterlab.core import atomic
from filterlab.core.errors import TrackingError

ABSENT, READY, HALF_MADE = "absent", "ready", "half-made"


def state(db_path: Path, head: str) -> str:
    """ABSENT (no file, or no tables), HALF_MADE (a creation that never finished: schema not at MLflow's
    `head` and no run in it), else READY (MLflow itself refuses an old schema that holds runs); a file
    that is not a readable sqlite database is a TrackingError."""
    if not db_path.exists() or db_path.stat().st_size == 0:
        return ABSENT
    try:
        with contextlib.closing(sqlite3.connect(f"{db_path.as_uri()}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("select name from sqlite_master where type = 'table'")}
            version = runs = None
            if "alembic_version" in tables:
                version = (db.execute("select version_num from alembic_version").fetchone() or (None,))[0]
            if "runs" in tables:
                runs = db.execute("select count(*) from runs").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise TrackingError(
            f"{db_path}: not a usable MLflow database ({error}); move it away and re-run "
            "to start a new one, or point MLFLOW_TRACKING_URI elsewhere"
        ) from None
    if not tables - {"alembic_version"}:
        return ABSENT
    # sqlite commits each DDL statement: a migration cut off by a full disk leaves its tables and an
    # older version behind, and MLflow then fails on "table ... already exists" forever. A store with
    # no run in it lost nothing by being set aside; one with runs is the user's, left to `mlflow db upgrade`.
    return HALF_MADE if version != head and not runs else READY


def set_aside(db_path: Path) -> Path:
    """Rename a half-made store out of the way (kept, never deleted) and say so in one line."""
    kept = db_path.with_name(f"{db_path.name}.half-made-{time.strftime('%Y%m%dT%H%M%S')}")
    os.replace(db_path, kept)
    print(
        f"warning: {db_path} was half-created (its schema is not complete and it holds no run); "
        f"moved to {kept.name} and created anew",
        file=sys.stderr,
    )
    return kept


def build(db_path: Path, create: Callable[[str], None]) -> None:
    """Run `create(uri)` on a temp database beside `db_path`, then rename it into place: all or nothing."""
    with atomic.landing(db_path, sidecars=("-journal", "-wal", "-shm")) as tmp:
        create(f"sqlite:///{tmp}")
