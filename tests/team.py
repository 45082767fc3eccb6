"""Support for the `team` tests: a committed copy of the repo, and real servers on loopback.

Reads the repository's tracked files and the pinned venv; writes only under the temp folders
it is given. The servers are real processes, started here and stopped (with their process
groups) after the test: PostgreSQL from Debian's binaries, moto's standalone S3 server, and
`mlflow server` on PostgreSQL, and a Dask scheduler with its workers (the `cluster` tests). Each
fixture skips its test, with the reason, where its server cannot run.
"""

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import helpers
from helpers import free_port, stop

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PG_BIN = Path(os.environ.get("FILTERLAB_PG_BIN", "/usr/lib/postgresql/15/bin"))
RUNNING = re.compile(r"Running stage '([^']+)'")


def sh(command: list[str], cwd: Path, env: dict, timeout: int = 1500) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def ran(output: str) -> list[str]:
    """The stages a `dvc repro` (or `dvc exp run`) actually ran, from its "Running stage" lines."""
    return sorted(set(RUNNING.findall(output)))


def repo_env(copy: Path) -> dict:
    # The CI script's inputs come from each test, never from the caller's environment (a CI job's secrets).
    ci_inputs = ("DVC_REMOTE_URL", "DVC_REMOTE_ENDPOINT", "DVC_REMOTE", "CI_PUSH", "GITHUB_REF")
    return helpers.repo_env(copy, who="team", dropped=("FILTERLAB_SWEEP_ID", *ci_inputs))


def committed_copy(copy: Path, overrides: dict | None = None) -> tuple[Path, dict]:
    """The project's files (no outputs, no dvc.lock) in `copy`, params shrunk to TINY plus `overrides`, committed."""
    return copy, helpers.repo_copy(copy, overrides, with_lock=False, env=repo_env(copy))


def git_clone(source: Path, dest: Path) -> tuple[Path, dict]:
    """A fresh clone of `source` (tracked files only: no DVC cache, no outputs)."""
    env = repo_env(dest)
    sh(["git", "clone", "-q", str(source), str(dest)], dest.parent, env)
    return dest, env


def _wait(url: str, process: subprocess.Popen, log: Path, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not answering in {seconds:.0f} s:\n{log.read_text()}")
        time.sleep(0.3)


def _serve(command: list[str], url: str, log: Path, what: str, env: dict | None = None):
    with open(log, "w") as out:
        # Own session, so teardown stops the whole process group (workers included).
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env or os.environ, start_new_session=True
        )
    _wait(url, process, log, what)
    return process


class Missing(Exception):
    """A server cannot run here; the fixtures turn it into a skip with this reason."""


def _as_postgres() -> list[str]:
    if not (PG_BIN / "initdb").exists():
        raise Missing(f"PostgreSQL binaries not found in {PG_BIN} (set FILTERLAB_PG_BIN)")
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            raise Missing("runuser not found: root runs PostgreSQL as the `postgres` user through it")
        return ["runuser", "-u", "postgres", "--"]
    return []


# DSN → (data folder, port, socket folder) of each cluster this process started: what `pg_ctl` needs.
CLUSTERS: dict[str, tuple[Path, int, Path]] = {}


def pg_ctl(dsn: str, action: str, *options: str) -> None:
    """Stop or start the cluster behind `dsn` as a database outage would: `pg_ctl(dsn, "stop", "-m", "immediate")`."""
    data, port, base = CLUSTERS[dsn]
    listen = (
        ["-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {base}", "-l", str(base / "log")]
        if action == "start"
        else []
    )
    command = [*_as_postgres(), str(PG_BIN / "pg_ctl"), "-D", str(data), *listen, *options, "-w", action]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """DSN of a throwaway PostgreSQL cluster on 127.0.0.1 (trust auth, loopback only) with an empty database."""
    as_pg = _as_postgres()
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as `postgres`.
    base = Path(tempfile.mkdtemp(prefix="filterlab-pg-"))
    if as_pg:
        shutil.chown(base, "postgres", "postgres")
    port, data = free_port(), base / "data"
    CLUSTERS[f"postgresql://postgres@127.0.0.1:{port}/mlflow"] = (data, port, base)
    try:
        subprocess.run(
            [*as_pg, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [
                *as_pg,
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(base / "log"),
                "-w",
                "-t",
                "60",
                "-o",
                f"-c listen_addresses=127.0.0.1 -p {port} -k {base}",
                "start",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [*as_pg, str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "mlflow"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield f"postgresql://postgres@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run(
            [*as_pg, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server_on(backend: str, folder: Path) -> Iterator[str]:
    """URL of `mlflow server` on `backend`, artifacts proxied to folder/artifacts, as `make server` runs it."""
    try:
        import psycopg  # noqa: F401
    except ImportError as error:
        raise Missing("the PostgreSQL driver is in the team extra: make test-team") from error
    port = free_port()
    command = helpers.mlflow_server_command(backend, folder / "artifacts", port, workers=2)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = _serve(command, f"http://127.0.0.1:{port}/health", folder / "server.log", "mlflow server", env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(server)


def _skipping(manager):
    try:
        return manager.__enter__()
    except Missing as reason:
        pytest.skip(str(reason))


@pytest.fixture
def postgres():
    """DSN of a throwaway PostgreSQL cluster on loopback; skips, with the reason, where it cannot run."""
    cluster = postgres_cluster()
    try:
        yield _skipping(cluster)
    finally:
        cluster.__exit__(None, None, None)


@pytest.fixture
def pg_mlflow_server(postgres, tmp_path):
    """URL of `mlflow server` on the PostgreSQL backend, artifacts proxied to tmp_path/artifacts."""
    server = mlflow_server_on(postgres, tmp_path)
    try:
        yield _skipping(server)
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def s3_server(tmp_path):
    """(endpoint URL, credentials env) of moto's S3 server on 127.0.0.1 with an empty bucket `filterlab`."""
    if not (BIN / "moto_server").exists():
        pytest.skip("moto's S3 server is in the team-test extra: make test-team")
    boto3 = pytest.importorskip("boto3", reason="boto3 comes with the team extra: make test-team")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = _serve(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], endpoint, tmp_path / "moto.log", "moto_server"
    )
    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        client.create_bucket(Bucket="filterlab")
        yield endpoint, credentials
    finally:
        stop(server)


def wait_for(predicate, seconds: float, what: str, log: Path | None = None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"{what} not seen in {seconds:.0f} s" + (f":\n{log.read_text()[-3000:]}" if log else ""))


@contextlib.contextmanager
def dask_cluster(
    folder: Path, env: dict, workers: int = 2, cpu: int = 1
) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """(address, the worker processes) of `dask scheduler` and `workers` `dask worker` processes on 127.0.0.1, each
    in its own session, each offering `cpu` CPU (the resource a fan-out's task claims) and one thread."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    started: list[subprocess.Popen] = []

    def launch(command: list[str], log: Path) -> subprocess.Popen:
        with open(log, "w") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        started.append(process)
        return process

    dask = str(BIN / "dask")
    scheduler = [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port)]
    # The dashboard (bokeh is in the cluster lock) on a free loopback port, as the submitter's link expects.
    scheduler += ["--dashboard-address", f"127.0.0.1:{free_port()}"]
    worker = [dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--resources", f"CPU={cpu}"]
    try:
        scheduler_log = folder / "scheduler.log"
        launch(scheduler, scheduler_log)
        wait_for(lambda: "Scheduler at:" in scheduler_log.read_text(), 120, "the scheduler", scheduler_log)
        started_workers = [
            launch(
                [*worker, "--no-dashboard", "--name", f"w{index}", "--local-directory", str(folder / f"w{index}")],
                folder / f"worker{index}.log",
            )
            for index in range(1, workers + 1)
        ]
        registered = f"{workers} workers"
        wait_for(lambda: scheduler_log.read_text().count("Register worker") >= workers, 180, registered, scheduler_log)
        yield address, started_workers
    finally:
        for process in reversed(started):
            stop(process)
