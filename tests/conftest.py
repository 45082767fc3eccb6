"""Shared fixtures: tiny real digits, a tiny prepared npz, an isolated MLflow store, the one params
factory, fake report inputs and a real MLflow server on loopback.

Everything here is network-free and small, so tests shrink the real configuration
(tiny data, 1 epoch) instead of mocking it.
"""

import contextlib
import copy
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
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

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from PIL import Image  # noqa: E402

from filterlab.config.sections import GridParams  # noqa: E402


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
        x_train=x[:200], y_train=y[:200], x_val=x[200:250], y_val=y[200:250], x_test=x[250:], y_test=y[250:],
        source="bundled", raw_sha256="0" * 64,
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


ROOT = Path(__file__).resolve().parents[1]


def with_overrides(params: dict, overrides: dict) -> dict:
    """`params` with dotted keys replaced ("train.grid.filters": [4]); a value of `DELETE` removes the key."""
    result = copy.deepcopy(params)
    for dotted, value in overrides.items():
        *parents, last = dotted.split(".")
        node = result
        for key in parents:
            node = node[key]
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return result


DELETE = object()


@pytest.fixture
def params_file(tmp_path):
    """The one way tests shrink the configuration: the real params.yaml with overrides, written to tmp_path.

    `params_file({"train.epochs": 1})` returns the path; `text=` writes raw text instead (broken files).
    """

    def make(overrides: dict | None = None, *, name: str = "params.yaml", text: str | None = None) -> Path:
        path = tmp_path / name
        if text is None:
            real = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
            text = yaml.safe_dump(with_overrides(real, overrides or {}), sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return make


def load_stage(name: str):
    """The module pipeline/<name>.py, imported by path (pipeline/ is not a package): call its main(argv)."""
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "pipeline" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Fake report inputs, in the formats the stages write: shared by test_report and test_browser.
GRID = GridParams(filters=(4, 8), kernel_size=(3, 7), stride=(1,))
# Accuracies chosen so the order is neither the grid order nor alphabetical.
ACCURACY = {"f4_k3_s1": 0.91, "f4_k7_s1": 0.95, "f8_k3_s1": 0.88, "f8_k7_s1": 0.97}


def _png(path: Path, shade: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((12, 20, 3), shade, dtype=np.uint8)).save(path)


def _train(name: str, accuracy: float, source: str) -> dict:
    filters, kernel, stride = (int(part[1:]) for part in name.split("_"))
    return {"test_accuracy": accuracy, "test_loss": 1 - accuracy, "best_val_accuracy": accuracy, "train_seconds": 2.5,
            "params_count": 1000 * filters + kernel, "epochs": 1, "data_source": source, "filters": filters,
            "kernel_size": kernel, "stride": stride}


def make_reports(root: Path, source: str = "bundled", probes: bool = True, baselines: bool = True) -> tuple[Path, Path]:
    metrics, figures = root / "metrics", root / "figures"
    counts = {split: {"total": total} for split, total in (("train", 4050), ("val", 450), ("test", 500))}
    files = {"data.json": {"source": source, "test_split": "stratified hold-out of train", "counts": counts}}
    for name, accuracy in ACCURACY.items():
        files[f"train/{name}.json"] = _train(name, accuracy, source)
        comparable = "_k3_" in name
        files[f"filters/{name}.json"] = {
            "variant": name, "comparable": comparable,
            "similarity": {"init": {"mean": 0.3 if comparable else None},
                           "learned": {"mean": 0.6 if comparable else None}},
        }
        _png(figures / "filters" / name / "init_vs_learned.png", 40)
        _png(figures / "filters" / name / "evolution.png", 80)
    files["train/f64_k5_s2.json"] = _train("f64_k5_s2", 0.999, source)  # a variant no longer in the grid
    if baselines:
        files["baselines.json"] = {"data_source": source, "baselines": {
            "family:sobel": {"kind": "family", "n_kernels": 2, "test_accuracy": 0.9, "params_count": 500},
            "bank": {"kind": "bank", "n_kernels": 22, "test_accuracy": 0.93, "params_count": 900},
            "random": {"kind": "random", "n_kernels": 22, "test_accuracy": 0.89, "params_count": 900},
            "pixels": {"kind": "pixels", "n_kernels": 0, "test_accuracy": 0.85, "params_count": 7850}}}
        _png(figures / "baselines" / "feature_maps.png", 120)
    if probes:
        files["probes.json"] = {"peak": {"positive_points": [2, 5, 7], "cosine": 0.98},
                                "recovery": [{"kernel": "sobel_x", "max_abs_error": 1e-4}]}
        _png(figures / "probes" / "single_image.png", 160)
    for relative, payload in files.items():
        (metrics / relative).parent.mkdir(parents=True, exist_ok=True)
        (metrics / relative).write_text(json.dumps(payload))
    return metrics, figures


def loaded_metrics(metrics: Path) -> dict:
    return {p.relative_to(metrics).as_posix(): json.loads(p.read_text()) for p in metrics.rglob("*.json")}


# A real MLflow server on loopback: shared by test_mlflow_server and test_browser.
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(base: str, path: str, body: dict | None = None, query: dict | None = None) -> dict:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def mlflow_server(tmp_path):
    """Base URL of a fresh `mlflow server` bound to 127.0.0.1; stopped (and reaped) after the test."""
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server",
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination", str(tmp_path / "artifacts"), "--serve-artifacts",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]
    # The server's background job runner (GenAI jobs) is not needed here and costs a dozen processes.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    # Own session, so teardown can stop the server's whole process group (uvicorn workers included).
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env,
                              start_new_session=True)
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


def stop(server: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):  # whatever ignored SIGTERM
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()
