"""Helpers shared by the tests: the one params factory, stage loading, fake report inputs, loopback HTTP.

Imported by test modules as `from helpers import …` (fixtures stay in conftest.py, which pytest loads first
and which pins the CPU numeric path before NumPy loads). Writes only where a caller points it.
"""

import contextlib
import copy
import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml
from PIL import Image

from filterlab.config.sections import GridParams

if TYPE_CHECKING:
    from filterlab.config.sections import TrainParams

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


def repo_env(copy: Path, who: str = "smoke", dropped: tuple[str, ...] = ("FILTERLAB_SWEEP_ID", "MNIST_MIRROR")) -> dict:
    """The environment to run `dvc` in a repo copy: the venv first, an own MLflow store beside the copy, a git
    identity; `dropped` names the caller's variables that must not leak in."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MLFLOW_TRACKING_URI": f"sqlite:///{copy.parent / 'mlflow.db'}",
        **{
            f"GIT_{role}_{part}": value
            for role in ("AUTHOR", "COMMITTER")
            for part, value in (("NAME", who), ("EMAIL", f"{who}@example.invalid"))
        },
    }
    for name in dropped:
        env.pop(name, None)
    return env


def repo_copy(copy: Path, overrides: dict | None = None, *, with_lock: bool = True, env: dict | None = None) -> dict:
    """A committed git copy of the project's files at `copy` (no data, models or reports; no dvc.lock unless
    `with_lock`), params.yaml the smoke preset plus `overrides`; returns the environment to run `dvc` in it
    (`repo_env`'s unless `env` is given)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        kept = (ROOT / name).is_file() and not name.startswith(("data/", "models/", "reports/"))
        if kept and (with_lock or name != "dvc.lock"):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    write_params(copy / "params.yaml", TINY | (overrides or {}))
    env = env if env is not None else repo_env(copy)
    for command in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "copy"]):
        subprocess.run(command, cwd=copy, env=env, check=True, capture_output=True)
    return env


def mlflow_server_command(backend: str, artifacts: Path, port: int, workers: int = 1) -> list[str]:
    """`mlflow server` on loopback with its artifacts proxied to `artifacts`, as `make server` runs it."""
    return (
        [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", backend]
        + ["--artifacts-destination", str(artifacts), "--serve-artifacts", "--host", "127.0.0.1"]
        + ["--port", str(port), "--workers", str(workers)]
    )


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


def train_params(overrides: dict | None = None) -> "TrainParams":
    """The train section as a stage loads it, checks included: params.yaml, then the smoke preset's train keys,
    then `overrides` (keys under train: {"epochs": 2, "grid": {...}}). The one way tests build TrainParams, so a
    new field in the dataclass needs nothing here."""
    from filterlab.config.params import load_section
    from filterlab.config.sections import TrainParams

    def as_yaml(value: object) -> object:  # what params.yaml can hold: lists, not tuples or dataclasses
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        if isinstance(value, dict):
            return {key: as_yaml(item) for key, item in value.items()}
        return [as_yaml(item) for item in value] if isinstance(value, (list, tuple)) else value

    preset = {key: value for key, value in TINY.items() if key.startswith("train.")}
    given = {f"train.{key}": as_yaml(value) for key, value in (overrides or {}).items()}
    return load_section(with_overrides(real_params(), preset | given), "train", TrainParams)


def flags(**values: object) -> list[str]:
    """A stage's argv from keyword arguments: `flags(params=p, filters_npz=f)` → ["--params", p, "--filters-npz", f]."""
    return [item for name, value in values.items() for item in (f"--{name.replace('_', '-')}", str(value))]


def closed_port() -> int:
    """A loopback port nothing listens on: connections are refused at once, like an offline machine."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
