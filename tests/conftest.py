"""Shared fixtures: tiny real digits, a tiny prepared npz, and an isolated MLflow store.

Everything here is network-free and small, so tests shrink the real configuration
(tiny data, 1 epoch) instead of mocking it.
"""

import copy
import importlib.util
import os
import shutil
from pathlib import Path

from filterlab.core import numerics

# Stages pin the CPU numeric path before NumPy loads; in-process stage tests share this
# process, so it is pinned here, first, the way params.yaml's `numerics: avx2` pins a stage.
numerics.pin("avx2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402


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
