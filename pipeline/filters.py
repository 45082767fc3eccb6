"""Stage `filters@<variant>`: pictures of one variant's conv1 filters and how classic they are.

Reads the `filters` params, the prepared test split (--data) and the train stage's
--model-dir (filters.npz, run.json). conv1's feature maps are recomputed from the saved
kernel and bias, so this stage, which trains nothing, never imports TensorFlow. Writes init_vs_learned.png,
evolution.png, evolution.gif and feature_maps.png under --figures, the similarity
metrics to --metrics, and logs all of it to the variant's own MLflow run.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from filterlab import atomic, filter_figures, similarity, stage, tracking
from filterlab.dataset import first_of_each_class, load_prepared
from filterlab.errors import DataError
from filterlab.kernels import KERNELS
from filterlab.params import load_section, read_params
from filterlab.sections import FiltersParams

RUN_KEYS = ("run_id", "variant", "filters", "kernel_size", "stride")


def read_variant(model_dir: Path) -> tuple[dict[str, np.ndarray], dict]:
    """filters.npz (kernels (epochs+1, kh, kw, 1, filters), epochs, bias) and run.json; DataError on anything missing."""
    for name in ("filters.npz", "run.json"):
        if not (model_dir / name).is_file():
            raise DataError(f"{model_dir / name}: not found; run `dvc repro train` for this variant first")
    arrays = atomic.load_npz(model_dir / "filters.npz")
    if not {"kernels", "epochs", "bias"} <= set(arrays) or arrays["kernels"].ndim != 5:
        raise DataError(f"{model_dir / 'filters.npz'}: expected `kernels` (epochs+1, kh, kw, 1, filters), `epochs`, `bias`")
    run = json.loads((model_dir / "run.json").read_text(encoding="utf-8"))
    missing = [key for key in RUN_KEYS if key not in run]
    if missing:
        raise DataError(f"{model_dir / 'run.json'}: missing {', '.join(missing)}; re-run the train stage")
    if arrays["kernels"].shape[4] != run["filters"] or arrays["kernels"].shape[1] != run["kernel_size"]:
        raise DataError(f"{model_dir}: filters.npz shape {arrays['kernels'].shape} does not match run.json")
    return arrays, run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for flag in ("--params", "--data", "--model-dir", "--figures", "--metrics"):
        parser.add_argument(flag, required=True, type=Path)
    args = parser.parse_args()
    params = load_section(read_params(args.params), "filters", FiltersParams)
    arrays, run = read_variant(args.model_dir)
    kernels, epochs = arrays["kernels"], arrays["epochs"]
    test = load_prepared(args.data)
    variant = run["variant"]
    digits, classes = first_of_each_class(test.x_test, test.y_test)
    figures = {
        "init_vs_learned.png": filter_figures.init_vs_learned(kernels[0], kernels[-1], params.colormap, variant),
        "evolution.png": filter_figures.evolution_strip(kernels, epochs, params.colormap, variant),
        "feature_maps.png": filter_figures.feature_maps(
            digits, classes, filter_figures.conv1_feature_maps(digits, kernels[-1], arrays["bias"], run["stride"]),
            params.colormap, variant,
        ),
    }
    frames = filter_figures.evolution_frames(kernels, params.colormap)
    for name, figure in figures.items():
        atomic.save_figure(args.figures / name, figure, dpi=110)
    atomic.write_bytes(args.figures / "evolution.gif", filter_figures.gif_bytes(frames, params.gif_frame_ms))

    report = similarity.compare_filters(kernels[0], kernels[-1], KERNELS)
    metrics = {key: run[key] for key in ("variant", "filters", "kernel_size", "stride")} | report
    atomic.write_json(args.metrics, metrics)

    with tracking.start_run("train", variant, run_id=run["run_id"]) as mlflow_run:
        for epoch, frame in zip(epochs, frames, strict=True):
            mlflow_run.log_image(frame, key="conv1_filters", step=int(epoch))
        mlflow_run.log_artifacts(args.figures, artifact_path="filters")
        mlflow_run.log_artifact(args.metrics, artifact_path="filters")
        if report["comparable"]:
            mlflow_run.log_metrics({
                f"filters.similarity_{moment}_{stat}": report["similarity"][moment][stat]
                for moment in ("init", "learned") for stat in ("mean", "max")
            })


if __name__ == "__main__":
    stage.run(main)
