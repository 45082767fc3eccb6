"""Stage `probes`: three small experiments on how a filter gets its numbers.

Reads params.yaml (seed, probes) and the prepared training split (--data). Writes
single_image.png, peak.png and recovery.png under --figures, all numbers to --metrics,
and one MLflow run per probe in experiment `probes`.
"""

import argparse
from pathlib import Path

from filterlab import atomic, probes_peak, probes_recovery, probes_single, stage, tracking
from filterlab.dataset import load_prepared
from filterlab.kernels import KERNELS
from filterlab.params import load_section, load_seed, read_params
from filterlab.sections import ProbesParams

EXPERIMENT = "probes"


def log(name: str, section, seed: int, metrics: dict, figure_path: Path) -> None:
    scalars = {key: value for key, value in metrics.items() if type(value) in (int, float)}
    with tracking.start_run(EXPERIMENT, name, params={**vars(section), "seed": seed}) as run:
        run.log_metrics(scalars)
        run.log_artifact(figure_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for flag in ("--params", "--data", "--figures", "--metrics"):
        parser.add_argument(flag, required=True, type=Path)
    args = parser.parse_args()
    params = read_params(args.params)
    seed = load_seed(params)
    probes = load_section(params, "probes", ProbesParams)
    data = load_prepared(args.data)

    single = probes_single.run(data.x_train, data.y_train, probes.single_image, seed)
    hand = probes_peak.hand_applied(probes.peak.vector)
    learned = probes_peak.learn(probes.peak, seed)
    images = data.x_train[: probes.recovery.n_images]
    recovered = [
        probes_recovery.recover(images, KERNELS[name], probes.recovery, seed) for name in probes.recovery.kernels
    ]

    figures = {
        "single_image": probes_single.figure(single, probes.single_image.digit),
        "peak": probes_peak.figure(hand, learned),
        "recovery": probes_recovery.figure(recovered),
    }
    for name, figure in figures.items():
        atomic.save_figure(args.figures / f"{name}.png", figure, dpi=110)
    peak_metrics = hand | {
        "learned_filter": learned.learned.tolist(), "learned_bias": learned.bias, "train_accuracy": learned.accuracy,
        "cosine_to_peak": probes_peak.cosine(learned.learned, probes_peak.PEAK), "kept_restart": learned.kept,
        "restart_accuracies": learned.restart_accuracies, "restart_cosines": learned.restart_cosines,
    }
    recovery_metrics = {result.name: result.metrics() for result in recovered}
    recovery_metrics["max_abs_error"] = max(result.max_abs_error for result in recovered)
    metrics = {"seed": seed, "single_image": single.metrics(), "peak": peak_metrics, "recovery": recovery_metrics}
    atomic.write_json(args.metrics, metrics)

    log("single_image", probes.single_image, seed, metrics["single_image"], args.figures / "single_image.png")
    log("peak", probes.peak, seed, peak_metrics, args.figures / "peak.png")
    flat_recovery = {f"{result.name}.max_abs_error": result.max_abs_error for result in recovered}
    log("recovery", probes.recovery, seed, flat_recovery | {"max_abs_error": recovery_metrics["max_abs_error"]},
        args.figures / "recovery.png")


if __name__ == "__main__":
    stage.run(main)
