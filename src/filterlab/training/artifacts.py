"""The train stage's files, written by `train@<variant>` and read by `filters@<variant>`.

One module owns the contract, so the writer and the reader cannot drift apart:
  model.keras   the trained Keras model (load with safe_mode=True)
  filters.npz   `kernels` (epochs + 1, kh, kw, 1, filters; index 0 at init), `epochs`, `bias`
  run.json      the variant's geometry (variant, filters, kernel_size, stride)
Nothing here is run-specific: the MLflow run is found by its `filterlab.core.tracking.FILTERS_TAG`
tag, so a forced re-run with the same inputs writes byte-identical files. Keras is
never imported here; `save_model` takes the model it is given.
"""

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from filterlab.config.geometry import VariantSpec
from filterlab.core import atomic
from filterlab.core.errors import DataError

MODEL_FILE = "model.keras"
FILTERS_FILE = "filters.npz"
RUN_FILE = "run.json"
FILTERS_KEYS = ("kernels", "epochs", "bias")
RUN_KEYS = ("variant", "filters", "kernel_size", "stride")
# The zip timestamp numpy also uses for .npz members: the earliest a zip can store.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def stable_keras_zip(payload: bytes) -> bytes:
    """A .keras archive with fixed member timestamps and no save date, so equal weights give equal bytes."""
    source = zipfile.ZipFile(io.BytesIO(payload))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                metadata.pop("date_saved", None)
                data = json.dumps(metadata, sort_keys=True).encode()
            elif info.filename == "config.json":
                data = json.dumps(_renumber_shared(json.loads(data), {})).encode()
            target.writestr(zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH), data)
    return out.getvalue()


def _renumber_shared(node: Any, numbers: dict[int, int]) -> Any:
    """Keras names objects shared between layers by their Python id(), new in every process;
    numbering them in order of appearance keeps which layers share what, and nothing else."""
    if isinstance(node, dict):
        return {
            key: numbers.setdefault(value, len(numbers) + 1)
            if key == "shared_object_id"
            else _renumber_shared(value, numbers)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_renumber_shared(item, numbers) for item in node]
    return node


def save_model(model: Any, path: Path) -> None:
    """Keras only writes to a path ending in .keras, so its temp file keeps that suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.stem}.{os.getpid()}.keras")
    try:
        model.save(temp)
        atomic.write_bytes(path, stable_keras_zip(temp.read_bytes()))
    finally:
        temp.unlink(missing_ok=True)


def write_filters(model_dir: Path, kernels: np.ndarray, bias: np.ndarray, variant: VariantSpec) -> str:
    """filters.npz and run.json; returns filters.npz's sha256, the key to the variant's MLflow run."""
    atomic.save_npz(
        model_dir / FILTERS_FILE,
        kernels=kernels,
        epochs=np.arange(len(kernels)),
        bias=np.asarray(bias, dtype=np.float32),
    )
    atomic.write_json(model_dir / RUN_FILE, {"variant": variant.name, **vars(variant)})
    return file_sha256(model_dir / FILTERS_FILE)


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_filters(filters_path: Path, run_path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """filters.npz and run.json, checked against each other; DataError on anything missing or inconsistent.

    run.json is read first: the variant it names says which `train@` stage rebuilds a broken filters.npz.
    """
    if not run_path.is_file():
        raise DataError(f"{run_path}: not found; run `dvc repro train` for this variant first")
    try:
        run = json.loads(run_path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise DataError(f"{run_path}: not valid JSON ({error}); re-run the train stage") from None
    missing = [key for key in RUN_KEYS if not isinstance(run, dict) or key not in run]
    if missing:
        raise DataError(f"{run_path}: missing {', '.join(missing)}; re-run the train stage")
    stage = VariantSpec(run["filters"], run["kernel_size"], run["stride"]).stage_name("train")
    if not filters_path.is_file():
        raise DataError(f"{filters_path}: not found; run `dvc repro {stage}` first")
    arrays = atomic.load_npz(filters_path, rebuild=f"re-run `dvc repro -f {stage}`")
    if not set(FILTERS_KEYS) <= set(arrays) or arrays["kernels"].ndim != 5:
        raise DataError(f"{filters_path}: expected `kernels` (epochs+1, kh, kw, 1, filters), `epochs`, `bias`")
    if arrays["kernels"].shape[4] != run["filters"] or arrays["kernels"].shape[1] != run["kernel_size"]:
        raise DataError(f"{filters_path}: shape {arrays['kernels'].shape} does not match {run_path.name}")
    return arrays, run
