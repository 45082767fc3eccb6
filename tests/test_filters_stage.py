"""The `filters` stage end to end on a fake, tiny variant directory written by the test."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from filterlab.core import atomic
from filterlab.kernels.bank import KERNELS

ROOT = Path(__file__).resolve().parents[1]
FILTERS, KERNEL_SIZE, STRIDE, EPOCHS = 4, 3, 1, 2
VARIANT = f"f{FILTERS}_k{KERNEL_SIZE}_s{STRIDE}"


def load_stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", ROOT / "pipeline" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_variant(model_dir: Path) -> np.ndarray:
    """What the filters stage reads of the train stage's output: filters.npz (init + 2 epochs), run.json with a real run."""
    from filterlab.core import tracking

    rng = np.random.default_rng(1)
    kernels = rng.normal(scale=0.3, size=(EPOCHS + 1, KERNEL_SIZE, KERNEL_SIZE, 1, FILTERS)).astype(np.float32)
    # After training filter #0 holds sobel_x's Keras weights (flipped: -sobel_x), filter #1 its negation.
    kernels[-1, :, :, 0, 0] = -KERNELS["sobel_x"].weights
    kernels[-1, :, :, 0, 1] = KERNELS["sobel_x"].weights
    model_dir.mkdir(parents=True)
    atomic.save_npz(model_dir / "filters.npz", kernels=kernels, epochs=np.arange(EPOCHS + 1),
                    bias=np.zeros(FILTERS, np.float32))
    with tracking.start_run("train", VARIANT) as run:
        run_id, experiment_id = run.run_id, run.experiment_id
    info = {"run_id": run_id, "experiment_id": experiment_id, "variant": VARIANT,
            "filters": FILTERS, "kernel_size": KERNEL_SIZE, "stride": STRIDE}
    atomic.write_json(model_dir / "run.json", info)
    return kernels


def run_stage(monkeypatch, tmp_path, tiny_npz, model_dir):
    figures, metrics = tmp_path / "figures" / VARIANT, tmp_path / "metrics" / f"{VARIANT}.json"
    argv = ["filters.py", "--params", str(ROOT / "params.yaml"), "--data", str(tiny_npz),
            "--model-dir", str(model_dir), "--figures", str(figures), "--metrics", str(metrics)]
    monkeypatch.setattr(sys, "argv", argv)
    stage = load_stage("filters")
    from filterlab.core.stage import run

    run(stage.main)
    return figures, metrics


def test_stage_writes_figures_metrics_and_logs_to_the_variant_run(monkeypatch, tmp_path, tiny_npz, mlflow_uri):
    from mlflow.tracking import MlflowClient
    from PIL import Image

    model_dir = tmp_path / "models" / VARIANT
    fake_variant(model_dir)
    figures, metrics_path = run_stage(monkeypatch, tmp_path, tiny_npz, model_dir)

    names = {"init_vs_learned.png", "evolution.png", "evolution.gif", "feature_maps.png"}
    assert {path.name for path in figures.iterdir()} == names  # exactly the declared outs, no temp files
    with Image.open(figures / "evolution.gif") as gif:
        assert gif.n_frames == EPOCHS + 1
        assert gif.info["duration"] == 600  # params.yaml filters.gif_frame_ms
    with Image.open(figures / "feature_maps.png") as png:
        assert png.width > 200 and png.height > 200

    metrics = json.loads(metrics_path.read_text())
    assert metrics["variant"] == VARIANT and metrics["comparable"] is True
    learned = [entry["learned"] for entry in metrics["per_filter"]]
    assert len(learned) == FILTERS
    assert learned[0] == {"kernel": "sobel_x", "similarity": pytest.approx(1.0)}
    assert learned[1] == {"kernel": "sobel_x", "similarity": pytest.approx(1.0)}
    assert metrics["similarity"]["learned"]["max"] == pytest.approx(1.0)
    assert metrics["similarity"]["init"]["max"] < 1.0

    client = MlflowClient(mlflow_uri)
    run_id = json.loads((model_dir / "run.json").read_text())["run_id"]
    logged = {Path(item.path).name for item in client.list_artifacts(run_id, "filters")}
    assert names | {f"{VARIANT}.json"} <= logged
    assert client.get_run(run_id).data.metrics["filters.similarity_learned_max"] == pytest.approx(1.0)
    # One image per epoch under the same key: the UI's step slider.
    images = [item.path for item in client.list_artifacts(run_id, "images")]
    assert sum("conv1_filters" in path and path.endswith(".png") for path in images) == EPOCHS + 1


def test_missing_filters_npz_is_a_one_line_data_error(monkeypatch, tmp_path, tiny_npz, mlflow_uri, capsys):
    model_dir = tmp_path / "models" / VARIANT
    fake_variant(model_dir)
    (model_dir / "filters.npz").unlink()
    capsys.readouterr()  # drop MLflow's database-creation log lines
    with pytest.raises(SystemExit) as exit_info:
        run_stage(monkeypatch, tmp_path, tiny_npz, model_dir)
    assert exit_info.value.code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and str(model_dir / "filters.npz") in error and "\n" not in error
    assert not (tmp_path / "figures").exists()
