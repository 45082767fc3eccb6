"""The `filters` stage end to end on a fake, tiny variant directory written by the test."""

import json
from pathlib import Path

import numpy as np
import pytest

from filterlab.kernels.bank import KERNELS
from helpers import flags, load_stage

FILTERS, KERNEL_SIZE, STRIDE, EPOCHS = 4, 3, 1, 2
VARIANT = f"f{FILTERS}_k{KERNEL_SIZE}_s{STRIDE}"
STAGE = f"train@{FILTERS}-{KERNEL_SIZE}-{STRIDE}"


def fake_variant(model_dir: Path, mlflow_run: bool = True) -> str | None:
    """What the filters stage reads of the train stage's output (init + 2 epochs), and the run that made it."""
    from filterlab.config.geometry import VariantSpec
    from filterlab.core import tracking
    from filterlab.training import artifacts

    rng = np.random.default_rng(1)
    kernels = rng.normal(scale=0.3, size=(EPOCHS + 1, KERNEL_SIZE, KERNEL_SIZE, 1, FILTERS)).astype(np.float32)
    # After training filter #0 holds sobel_x's Keras weights (flipped: -sobel_x), filter #1 its negation.
    kernels[-1, :, :, 0, 0] = -KERNELS["sobel_x"].weights
    kernels[-1, :, :, 0, 1] = KERNELS["sobel_x"].weights
    digest = artifacts.write_filters(
        model_dir, kernels, np.zeros(FILTERS, np.float32), VariantSpec(FILTERS, KERNEL_SIZE, STRIDE)
    )
    if not mlflow_run:
        return None
    with tracking.start_run("train", VARIANT, tags={tracking.FILTERS_TAG: digest}) as run:
        return run.run_id


def run_args(tmp_path, tiny_npz, model_dir, params=None) -> list[str]:
    inputs = flags(params=params or tmp_path / "params.yaml", data=tiny_npz, filters_npz=model_dir / "filters.npz")
    outputs = flags(figures=tmp_path / "figures" / VARIANT, metrics=tmp_path / "metrics" / f"{VARIANT}.json")
    return (
        inputs + flags(run=model_dir / "run.json") + outputs + flags(details=tmp_path / "details" / f"{VARIANT}.json")
    )


def run_stage(tmp_path, params, tiny_npz, model_dir) -> tuple[int, Path, Path]:
    argv = run_args(tmp_path, tiny_npz, model_dir, params)
    return load_stage("filters").main(argv), tmp_path / "figures" / VARIANT, tmp_path / "metrics" / f"{VARIANT}.json"


def test_stage_writes_figures_metrics_and_details_without_mlflow(tmp_path, tiny_npz, params_file):
    import subprocess
    import sys

    from PIL import Image

    from filterlab.training import artifacts

    model_dir = tmp_path / "models" / VARIANT
    fake_variant(model_dir, mlflow_run=False)
    code, figures, metrics_path = run_stage(tmp_path, params_file(), tiny_npz, model_dir)
    assert code == 0

    names = {"init_vs_learned.png", "evolution.png", "evolution.gif", "feature_maps.png", "learned_vs_classic.png"}
    assert {path.name for path in figures.iterdir()} == names  # exactly the declared outs, no temp files
    with Image.open(figures / "evolution.gif") as gif:
        assert gif.n_frames == EPOCHS + 1
        assert gif.info["duration"] == 600  # params.yaml filters.gif_frame_ms
    with Image.open(figures / "feature_maps.png") as png:
        assert png.width > 200 and png.height > 200

    headline = json.loads(metrics_path.read_text())
    assert set(headline) == {"similarity_init", "similarity_learned", "similarity_chance"}
    metrics = json.loads((tmp_path / "details" / f"{VARIANT}.json").read_text())
    assert metrics["variant"] == VARIANT and metrics["comparable"] is True
    # How the log_figures stage finds the MLflow run that trained these filters.
    assert metrics["filters_sha256"] == artifacts.file_sha256(model_dir / "filters.npz")
    assert headline["similarity_learned"] == metrics["similarity"]["learned"]["mean"]
    learned = [entry["learned"] for entry in metrics["per_filter"]]
    assert len(learned) == FILTERS
    assert learned[0] == {"kernel": "sobel_x", "similarity": pytest.approx(1.0)}
    assert learned[1] == {"kernel": "sobel_x", "similarity": pytest.approx(1.0)}
    assert metrics["similarity"]["learned"]["max"] == pytest.approx(1.0)
    assert metrics["similarity"]["init"]["max"] < 1.0

    # The stage's whole import graph leaves out MLflow and TensorFlow (each costs seconds a process).
    argv = run_args(tmp_path / "again", tiny_npz, model_dir, params_file())
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parents[1] / 'pipeline')!r})\n"
        "import filters\n"
        f"assert filters.main({argv!r}) == 0\n"
        "print(sorted(name for name in ('mlflow', 'tensorflow', 'keras') if name in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_missing_filters_npz_is_a_one_line_data_error(tmp_path, tiny_npz, capsys, params_file):
    model_dir = tmp_path / "models" / VARIANT
    fake_variant(model_dir, mlflow_run=False)
    (model_dir / "filters.npz").unlink()
    code, _figures, _metrics = run_stage(tmp_path, params_file(), tiny_npz, model_dir)
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and str(model_dir / "filters.npz") in error and "\n" not in error
    assert not (tmp_path / "figures").exists()


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_filters_npz_is_one_line_and_never_unpickled(tmp_path, tiny_npz, capsys, params_file, damage):
    model_dir = tmp_path / "models" / VARIANT
    fake_variant(model_dir, mlflow_run=False)
    npz = model_dir / "filters.npz"
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x80\x04garbage, read as a pickle")
    code, _figures, _metrics = run_stage(tmp_path, params_file(), tiny_npz, model_dir)
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: {npz}: ") and "\n" not in error
    assert error.endswith(f"re-run `dvc repro -f {STAGE}`")  # the variant's own stage, from run.json
    assert "allow_pickle" not in error and "trust" not in error  # NumPy's advice to unpickle is not passed on
