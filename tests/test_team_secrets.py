"""`make server` with a password in its PostgreSQL DSN: never on screen, never in any process's arguments.

The DSN is handed to `make server` the documented way, in the environment; the server runs on a throwaway
PostgreSQL cluster on loopback (trust auth, so the password is accepted and ignored). While it answers, every
process's /proc/<pid>/cmdline (what `ps` shows) and everything make printed are searched for the password.
"""

import os
import signal
import subprocess
from pathlib import Path

import pytest

from helpers import free_port
from team import ROOT, _wait, postgres  # noqa: F401 (fixture)

pytestmark = pytest.mark.team
PASSWORD = "Sup3r-s3cret-9f2c"


def _all_cmdlines() -> str:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:  # the process ended meanwhile
                continue
    return "\n".join(lines)


def test_make_server_shows_the_password_nowhere(postgres, tmp_path):  # noqa: F811
    dsn = postgres.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")
    port = free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "MLFLOW_BACKEND_URI": dsn}
    with open(log, "w") as out:
        process = subprocess.Popen(
            ["make", "-C", str(ROOT), "server", f"SERVER_PORT={port}", f"MLFLOW_ARTIFACTS={tmp_path / 'artifacts'}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        _wait(f"http://127.0.0.1:{port}/health", process, log, "make server", seconds=240)
        seen = _all_cmdlines()
        assert "mlflow server" in seen or "mlflow.server" in seen or "uvicorn" in seen  # it runs, and is looked at
        assert PASSWORD not in seen
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
    printed = log.read_text()
    assert PASSWORD not in printed
    assert "postgresql://postgres:***@127.0.0.1" in printed  # what it shows instead
