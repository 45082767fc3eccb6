"""Stage baselines: hand-designed kernels on digits, and classifiers with a frozen first layer.

Reads params.yaml (seed, numerics, figures, baselines, train) and the prepared npz. Writes
<figures>/feature_maps.png, one metrics JSON per baseline under --metrics (the same five
columns as a grid variant's), the details JSON (what each baseline is, its size and test
predictions), and one MLflow run per baseline in experiment `baselines`, each with a figure
of its kernels.
"""

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from filterlab.config.geometry import IMAGE_SIDE, final_side
from filterlab.config.params import load_section, load_seed
from filterlab.config.sections import BaselinesParams, FiguresParams, TrainParams, open_params
from filterlab.core import stage
from filterlab.core.errors import ParamError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--params", "--data", "--figures", "--metrics", "--details"):
        parser.add_argument(flag, type=Path, required=True)
    return parser.parse_args(argv)


def select_kernels(section: BaselinesParams) -> list:
    from filterlab.kernels import bank, convolution

    selected = bank.select(section.kernels, "baselines.kernels")
    side = convolution.common_size(selected)
    if side > IMAGE_SIDE or final_side(side, 1) < 1:
        message = f"a {side}x{side} kernel leaves no feature map on {IMAGE_SIDE}x{IMAGE_SIDE} digits"
        raise ParamError("baselines.kernels", message)
    return selected


@contextlib.contextmanager
def open_run(tracking, name: str, params: dict, tags: dict, *, first: bool, tracked: bool) -> Iterator:
    """The baseline's MLflow run, or None once the tracking store has gone away during this stage.

    A store that cannot be reached before the first model trains fails the stage in one line; one that goes
    away later leaves the remaining models untracked (one warning), so every output is still written and
    `python -m filterlab.log_missing baselines` logs the runs once tracking is back.
    """
    from filterlab.core.errors import TrackingError

    with contextlib.ExitStack() as stack:
        run = None
        if tracked:
            try:
                run = stack.enter_context(tracking.start_run("baselines", name, params=params, tags=tags))
            except TrackingError as error:
                if first:
                    raise
                print(
                    f"warning: {error}; the remaining baselines train untracked. Once tracking is back: "
                    "python -m filterlab.log_missing baselines",
                    file=sys.stderr,
                    flush=True,
                )
        yield run


def fit_all(args: argparse.Namespace) -> None:
    params = open_params(args.params)
    seed, style = load_seed(params), load_section(params, "figures", FiguresParams)
    section, train = load_section(params, "baselines", BaselinesParams), load_section(params, "train", TrainParams)
    selected = select_kernels(section)

    # NumPy, Keras, TensorFlow and MLflow load only after the pin, once the inputs are valid.
    from filterlab.core import atomic, determinism, tracking
    from filterlab.data.dataset import first_of_each_class, load_prepared
    from filterlab.figures.baselines import feature_maps_figure, kernels_figure
    from filterlab.training import baselines, fit, records, stats

    data = load_prepared(args.data)
    digits, labels = first_of_each_class(data.x_test, data.y_test)
    atomic.save_figure(
        args.figures / "feature_maps.png", feature_maps_figure(selected, digits, labels, style.colormap), dpi=style.dpi
    )

    determinism.configure(seed, train.threads)
    tags = {"data.source": data.source, "data.sha256": data.raw_sha256}
    plan = baselines.plan(selected, section.random_std, seed)
    results: dict[str, dict] = {}
    tracked = True
    for index, baseline in enumerate(plan, start=1):
        run_params = baselines.run_params(baseline, train, section.random_std, seed)
        with open_run(tracking, baseline.name, run_params, tags, first=index == 1, tracked=tracked) as run:

            def on_epoch(row: dict, run=run) -> None:
                if run is not None:
                    run.log_metrics({key: row[key] for key in fit.LOGGED}, step=row["epoch"])

            result = baselines.fit_baseline(data, baseline, train, seed, on_epoch=on_epoch)
            low, high = stats.wilson(int((result.predictions == data.y_test).sum()), len(data.y_test))
            if run is not None:
                run.log_metrics(records.evaluation_metrics(result, low, high))
                if baseline.written is not None:
                    names = baseline.kernel_names or [f"random {i}" for i in range(baseline.n_kernels)]
                    figure = kernels_figure(baseline.written, names, baseline.name, style.colormap)
                    run.log_figure(figure, "kernels.png")
            tracked = run is not None and run.incomplete is None
        atomic.write_json(args.metrics / baselines.file_name(baseline), fit.headline_metrics(result, low, high))
        results[baseline.name] = baselines.describe(baseline) | fit.details(result, data.y_test, train.epochs)
        print(
            f"[{index}/{len(plan)}] {baseline.name}: test_accuracy {result.test_accuracy:.4f} "
            f"in {result.seconds:.1f} s",
            flush=True,
        )
    atomic.write_json(
        args.details, {"data_source": data.source, "data_sha256": data.raw_sha256, "seed": seed, "baselines": results}
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return stage.run(lambda: fit_all(args))


if __name__ == "__main__":
    stage.entry(main)
