"""Stage baselines: hand-designed kernels on digits, and classifiers with a frozen first layer.

Reads params.yaml (seed, baselines, train) and the prepared npz. Writes
<figures>/feature_maps.png, the metrics JSON (one entry per baseline) and one MLflow
run per baseline in experiment `baselines`, each with a figure of its kernels.
"""

import argparse
from pathlib import Path

from filterlab import atomic, stage
from filterlab.dataset import first_of_each_class, load_prepared
from filterlab.errors import ParamError
from filterlab.params import load_section, load_seed, read_params
from filterlab.sections import IMAGE_SIDE, BaselinesParams, TrainParams, final_side

LOGGED = ("loss", "accuracy", "val_loss", "val_accuracy")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--params", "--data"):
        parser.add_argument(name, required=True)
    parser.add_argument("--figures", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    return parser.parse_args(argv)


def select_kernels(section: BaselinesParams) -> list:
    from filterlab import convolution, kernels

    selected = kernels.select(section.kernels, "baselines.kernels")
    side = convolution.common_size(selected)
    if side > IMAGE_SIDE or final_side(side, 1) < 1:
        message = f"a {side}x{side} kernel leaves no feature map on {IMAGE_SIDE}x{IMAGE_SIDE} digits"
        raise ParamError("baselines.kernels", message)
    return selected


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = read_params(args.params)
    seed = load_seed(params)
    section = load_section(params, "baselines", BaselinesParams)
    train = load_section(params, "train", TrainParams)
    selected = select_kernels(section)
    data = load_prepared(args.data)

    # Keras, TensorFlow and MLflow load only once the inputs are valid.
    from filterlab import baseline_figures, baselines, determinism, tracking

    digits, labels = first_of_each_class(data.x_test, data.y_test)
    figure = baseline_figures.feature_maps_figure(selected, digits, labels)
    atomic.save_figure(args.figures / "feature_maps.png", figure, dpi=110)

    determinism.configure(seed, train.threads)
    tags = {"data.source": data.source, "data.sha256": data.raw_sha256}
    results = {}
    for baseline in baselines.plan(selected, section.random_std, seed):
        run_params = {
            "kind": baseline.kind, "kernels": ",".join(baseline.kernel_names) or baseline.kind,
            "n_kernels": baseline.n_kernels, "kernel_size": baseline.kernel_size, "epochs": train.epochs,
            "batch_size": train.batch_size, "learning_rate": train.learning_rate, "seed": seed,
            **({"random_std": section.random_std} if baseline.kind == "random" else {}),
        }
        with tracking.start_run("baselines", baseline.name, params=run_params, tags=tags) as run:
            def on_epoch(row: dict, run=run) -> None:
                run.log_metrics({key: row[key] for key in LOGGED}, step=row["epoch"])

            result = baselines.fit_baseline(data, baseline, train, seed, on_epoch=on_epoch)
            run.log_metrics({"test_accuracy": result.test_accuracy, "test_loss": result.test_loss})
            if baseline.written is not None:
                names = baseline.kernel_names or [f"random {i}" for i in range(baseline.n_kernels)]
                run.log_figure(baseline_figures.kernels_figure(baseline.written, names, baseline.name), "kernels.png")
        results[baseline.name] = baselines.summary(baseline, result)
        print(f"{baseline.name}: test_accuracy {result.test_accuracy:.4f} in {result.seconds:.1f} s", flush=True)
    atomic.write_json(args.metrics, {
        "data_source": data.source, "data_sha256": data.raw_sha256, "epochs": train.epochs, "seed": seed,
        "baselines": results,
    })


if __name__ == "__main__":
    stage.run(main)
