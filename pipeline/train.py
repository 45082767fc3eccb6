"""Stage train@<filters>-<kernel_size>-<stride>: trains one variant of the grid.

Reads params.yaml (seed, train) and the prepared npz. Writes <model-dir>/model.keras,
<model-dir>/filters.npz (conv1 kernels at init and after each epoch), <model-dir>/run.json,
the metrics JSON and the per-epoch history CSV, and one MLflow run in experiment `train`.
"""

import argparse
import os
from pathlib import Path

import numpy as np

from filterlab import atomic, stage
from filterlab.dataset import load_prepared
from filterlab.errors import ParamError
from filterlab.params import load_section, load_seed, read_params
from filterlab.sections import TrainParams

LOGGED = ("loss", "accuracy", "val_loss", "val_accuracy")
TRAIN_KEYS = ("epochs", "batch_size", "learning_rate", "block2_filters", "dropout", "threads")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--filters", type=int, required=True)
    parser.add_argument("--kernel-size", type=int, required=True)
    parser.add_argument("--stride", type=int, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--history", type=Path, required=True)
    return parser.parse_args(argv)


def check_in_grid(train: TrainParams, args: argparse.Namespace) -> None:
    # dvc.yaml's matrix reads the same lists, so a mismatch means a hand-run with stale arguments.
    for key, value in (("filters", args.filters), ("kernel_size", args.kernel_size), ("stride", args.stride)):
        allowed = getattr(train.grid, key)
        if value not in allowed:
            raise ParamError(f"train.grid.{key}", f"{value} (from --{key.replace('_', '-')}) is not in {list(allowed)}")


def save_model(model, path: Path) -> None:
    # Keras only writes to a path ending in .keras, so the temp file keeps that suffix.
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.stem}.{os.getpid()}.keras")
    try:
        model.save(temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = read_params(args.params)
    seed = load_seed(params)
    train = load_section(params, "train", TrainParams)
    check_in_grid(train, args)
    data = load_prepared(args.data)

    from filterlab import tracking, training  # TensorFlow and MLflow load only once the inputs are valid

    variant = training.VariantSpec(args.filters, args.kernel_size, args.stride)
    run_params = {**vars(variant), **{key: getattr(train, key) for key in TRAIN_KEYS}, "seed": seed}
    tags = {"data.source": data.source, "data.sha256": data.raw_sha256, "variant": variant.name}
    with tracking.start_run("train", variant.name, params=run_params, tags=tags) as run:

        def on_epoch(row: dict) -> None:
            print(
                f"{variant.name} epoch {row['epoch']}/{train.epochs}: loss {row['loss']:.4f} "
                f"accuracy {row['accuracy']:.4f} val_accuracy {row['val_accuracy']:.4f} ({row['seconds']:.1f} s)",
                flush=True,
            )
            run.log_metrics({key: row[key] for key in LOGGED}, step=row["epoch"])

        result = training.train_variant(data, variant, train, seed, on_epoch=on_epoch)
        run.log_metrics({"test_accuracy": result.test_accuracy, "test_loss": result.test_loss})
        model_path, filters_path = args.model_dir / "model.keras", args.model_dir / "filters.npz"
        save_model(result.model, model_path)
        # The final bias lets the filters stage draw conv1's feature maps without TensorFlow.
        bias = np.asarray(result.model.get_layer("conv1").get_weights()[1], dtype=np.float32)
        atomic.save_npz(filters_path, kernels=result.kernels, epochs=np.arange(len(result.kernels)), bias=bias)
        run_info = {"run_id": run.run_id, "experiment_id": run.experiment_id, "variant": variant.name, **vars(variant)}
        atomic.write_json(args.model_dir / "run.json", run_info)
        run.log_artifact(model_path)
        run.log_artifact(filters_path)
        atomic.write_json(args.metrics, {
            "test_accuracy": result.test_accuracy, "test_loss": result.test_loss,
            "best_val_accuracy": result.best_val_accuracy, "train_seconds": result.seconds,
            "params_count": result.params_count, "epochs": train.epochs, "data_source": data.source,
            **vars(variant),
        })
        atomic.write_text(args.history, training.history_csv(result.history))
    print(f"{variant.name}: test_accuracy {result.test_accuracy:.4f} in {result.seconds:.1f} s", flush=True)


if __name__ == "__main__":
    stage.run(main)
