"""Stage train@<filters>-<kernel_size>-<stride>: trains one variant of the grid.

Reads params.yaml (seed, numerics, train) and the prepared npz. Writes <model-dir>/model.keras,
<model-dir>/filters.npz (conv1 kernels at init and after each epoch) and <model-dir>/run.json
(the contract in filterlab.training.artifacts), the metrics JSON (test accuracy with its 95 %
Wilson interval), the details JSON (size, test predictions for the report's paired tests),
the per-epoch history CSV, and one MLflow run in experiment `train`.
"""

import argparse
from pathlib import Path

from filterlab.config.geometry import VariantSpec
from filterlab.config.params import load_section, load_seed
from filterlab.config.sections import TrainParams, open_params
from filterlab.core import stage
from filterlab.core.errors import ParamError

# The variant's flags and the VariantSpec field each one fills.
VARIANT_FLAGS = {"--filter-count": "filters", "--kernel-size": "kernel_size", "--stride": "stride"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", required=True)
    parser.add_argument("--data", required=True)
    for flag, field in VARIANT_FLAGS.items():
        parser.add_argument(flag, dest=field, type=int, required=True)
    for flag in ("--model-dir", "--metrics", "--details", "--history"):
        parser.add_argument(flag, type=Path, required=True)
    return parser.parse_args(argv)


def check_in_grid(train: TrainParams, variant: VariantSpec) -> None:
    # dvc.yaml's matrix reads the same lists, so a mismatch means a hand-run with stale arguments.
    for flag, key in VARIANT_FLAGS.items():
        value, allowed = getattr(variant, key), getattr(train.grid, key)
        if value not in allowed:
            raise ParamError(f"train.grid.{key}", f"{value} (from {flag}) is not in {list(allowed)}")


def train(args: argparse.Namespace) -> None:
    params = open_params(args.params)
    seed, section = load_seed(params), load_section(params, "train", TrainParams)
    variant = VariantSpec(args.filters, args.kernel_size, args.stride)
    check_in_grid(section, variant)

    from filterlab.data.dataset import load_prepared  # NumPy loads after the pin

    data = load_prepared(args.data)

    from filterlab.core import atomic, tracking  # TensorFlow and MLflow load only once the inputs are valid
    from filterlab.training import artifacts, fit, records, stats

    tags = {"data.source": data.source, "data.sha256": data.raw_sha256, "variant": variant.name}
    with tracking.start_run("train", variant.name, params=records.run_params(variant, section, seed), tags=tags) as run:

        def on_epoch(row: dict) -> None:
            print(
                f"{variant.name} epoch {row['epoch']}/{section.epochs}: loss {row['loss']:.4f} accuracy "
                f"{row['accuracy']:.4f} val_accuracy {row['val_accuracy']:.4f} ({row['epoch_seconds']:.1f} s)",
                flush=True,
            )
            run.log_metrics({key: row[key] for key in fit.LOGGED}, step=row["epoch"])

        result = fit.train_variant(data, variant, section, seed, on_epoch=on_epoch)
        correct = int((result.predictions == data.y_test).sum())
        low, high = stats.wilson(correct, len(data.y_test))
        run.log_metrics(records.evaluation_metrics(result, low, high))
        artifacts.save_model(result.model, args.model_dir / artifacts.MODEL_FILE)
        # The final bias lets the filters stage draw conv1's feature maps without TensorFlow.
        bias = result.model.get_layer("conv1").get_weights()[1]
        digest = artifacts.write_filters(args.model_dir, result.kernels, bias, variant)
        run.set_tags({tracking.FILTERS_TAG: digest})
        run.log_artifacts(args.model_dir)
        headline = fit.headline_metrics(result, low, high)
        if section.seeds > 1:  # replicates after the saved model, so seeds: 1 and the first seed agree exactly
            accuracies, seconds = fit.replicates(
                data,
                variant,
                section,
                seed,
                result,
                on_start=lambda number, replicate_seed: print(
                    f"{variant.name} [{number}/{section.seeds}] seed {replicate_seed}", flush=True
                ),
            )
            spread = stats.across_seeds(accuracies)
            headline |= spread
            run.log_metrics(
                {f"test_{key}": spread[key] for key in ("accuracy_seed_mean", "accuracy_seed_sd")}
                | {"replicates_fit_seconds": seconds - result.seconds}
            )
        atomic.write_json(args.metrics, headline)
        atomic.write_json(args.details, fit.details(result, data.y_test, section.epochs))
        atomic.write_text(args.history, fit.history_csv(result.history))
    print(f"{variant.name}: test_accuracy {result.test_accuracy:.4f} in {result.seconds:.1f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return stage.run(lambda: train(args))


if __name__ == "__main__":
    stage.entry(main)
