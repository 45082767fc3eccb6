"""Stage `probes`: three small experiments on how a filter gets its numbers.

Reads params.yaml (seed, numerics, figures, probes) and the prepared training split
(--data). Writes single_image.png, peak.png and recovery.png under --figures, all numbers
to --details, and one MLflow run per probe in experiment `probes`, whose `fit_seconds` (the
probe's training time) the whole-run benchmark counts as fitting.
"""

import argparse
import sys
import time
from pathlib import Path

from filterlab.config.geometry import RECOVERY_SHAPE
from filterlab.config.params import load_section, load_seed
from filterlab.config.sections import FiguresParams, ProbesParams, open_params
from filterlab.core import stage

EXPERIMENT = "probes"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--params", "--data", "--figures", "--details"):
        parser.add_argument(flag, required=True, type=Path)
    return parser.parse_args(argv)


def log(name: str, section, seed: int, metrics: dict, figure_path: Path, fit_seconds: float) -> bool:
    """One probe's MLflow run; False when the tracking store is gone (the probes' outputs are written already,
    so the stage still succeeds: `python -m filterlab.log_missing probes` logs the runs later)."""
    from filterlab.core import tracking
    from filterlab.core.errors import TrackingError

    scalars = {key: value for key, value in metrics.items() if type(value) in (int, float)}
    scalars["fit_seconds"] = fit_seconds
    try:
        with tracking.start_run(EXPERIMENT, name, params={**vars(section), "seed": seed}) as run:
            run.log_metrics(scalars)
            run.log_artifact(figure_path)
    except TrackingError as error:
        print(
            f"warning: {error}; the probes' outputs are written. Once tracking is back: "
            "python -m filterlab.log_missing probes",
            file=sys.stderr,
        )
        return False
    return run.incomplete is None


def probe(args: argparse.Namespace) -> None:
    params = open_params(args.params)
    seed, style = load_seed(params), load_section(params, "figures", FiguresParams)
    probes = load_section(params, "probes", ProbesParams)
    from filterlab.kernels import bank

    kernels = bank.select(probes.recovery.kernels, "probes.recovery.kernels", shape=RECOVERY_SHAPE)

    from filterlab.core import atomic  # NumPy and TensorFlow load after the pin
    from filterlab.data.dataset import load_prepared
    from filterlab.probes import peak, recovery, single_image

    data = load_prepared(args.data)
    seconds = {}  # each probe's training, logged to MLflow: durations stay out of the git-tracked details
    started = time.perf_counter()
    print("[1/3] single-image probe", flush=True)
    single = single_image.run(data.x_train, data.y_train, probes.single_image, seed)
    seconds["single_image"], started = time.perf_counter() - started, time.perf_counter()
    print("[2/3] peak probe", flush=True)
    hand = peak.hand_applied(probes.peak.vector)
    learned = peak.learn(probes.peak, seed)
    seconds["peak"], started = time.perf_counter() - started, time.perf_counter()
    print(f"[3/3] recovery probe: {', '.join(kernel.name for kernel in kernels)}", flush=True)
    images = data.x_train[: probes.recovery.n_images]
    recovered = [recovery.recover(images, kernel, probes.recovery, seed) for kernel in kernels]
    seconds["recovery"] = time.perf_counter() - started

    figures = {
        "single_image": single_image.figure(single, probes.single_image.digit, style.colormap),
        "peak": peak.figure(hand, learned),
        "recovery": recovery.figure(recovered, style.colormap),
    }
    for name, figure in figures.items():
        atomic.save_figure(args.figures / f"{name}.png", figure, dpi=style.dpi)
    peak_metrics = hand | {
        "learned_filter": learned.learned.tolist(),
        "learned_bias": learned.bias,
        "train_accuracy": learned.accuracy,
        "cosine_to_peak": peak.cosine(learned.learned, peak.PEAK),
        "kept_restart": learned.kept,
        "restart_accuracies": learned.restart_accuracies,
        "restart_cosines": learned.restart_cosines,
    }
    recovery_metrics = {result.name: result.metrics() for result in recovered}
    recovery_metrics["max_abs_error"] = max(result.max_abs_error for result in recovered)
    metrics = {"seed": seed, "single_image": single.metrics(), "peak": peak_metrics, "recovery": recovery_metrics}
    atomic.write_json(args.details, metrics)

    flat_recovery = {f"{result.name}.max_abs_error": result.max_abs_error for result in recovered}
    runs = [
        ("single_image", probes.single_image, metrics["single_image"]),
        ("peak", probes.peak, peak_metrics),
        ("recovery", probes.recovery, flat_recovery | {"max_abs_error": recovery_metrics["max_abs_error"]}),
    ]
    for name, section, logged in runs:  # once the store is gone, the remaining runs wait for log_missing too
        if not log(name, section, seed, logged, args.figures / f"{name}.png", seconds[name]):
            break
    print(
        f"probes: single-image |r| {metrics['single_image']['abs_corr_learned_mean']:.4f}, "
        f"peak cosine {peak_metrics['cosine_to_peak']:.4f}, "
        f"recovery max error {recovery_metrics['max_abs_error']:.1e}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return stage.run(lambda: probe(args))


if __name__ == "__main__":
    stage.entry(main)
