"""Stage `filters@<variant>`: pictures of one variant's conv1 filters and how classic they are.

Reads params.yaml (seed, numerics, figures, filters), the prepared test split (--data) and the
train stage's filters.npz and run.json (filterlab.training.artifacts). conv1's feature maps
are recomputed from the saved kernel and bias, so this stage, which trains nothing, never
imports TensorFlow. Writes init_vs_learned.png, evolution.png, evolution.gif and
feature_maps.png and learned_vs_classic.png under --figures, the three similarity numbers
(init, learned, chance) to --metrics, and every filter's nearest classic kernel and the filters.npz
digest to --details. It never imports MLflow either: the log_figures stage adds every
variant's figures to its MLflow run in one process (MLflow's import and store check cost
more than most variants' figures).
"""

import argparse
from pathlib import Path

from filterlab.config.params import load_section, load_seed
from filterlab.config.sections import FiguresParams, FiltersParams, open_params
from filterlab.core import stage


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--params", "--data", "--filters-npz", "--run", "--figures", "--metrics", "--details"):
        parser.add_argument(flag, required=True, type=Path)
    return parser.parse_args(argv)


def draw(args: argparse.Namespace) -> None:
    params = open_params(args.params)
    seed, style = load_seed(params), load_section(params, "figures", FiguresParams)
    section = load_section(params, "filters", FiltersParams)

    from filterlab.core import atomic  # NumPy loads after the pin
    from filterlab.data.dataset import first_of_each_class, load_prepared
    from filterlab.figures import animation, classic, filters
    from filterlab.kernels import similarity
    from filterlab.kernels.bank import KERNELS
    from filterlab.training import artifacts

    arrays, run = artifacts.read_filters(args.filters_npz, args.run)
    kernels, epochs, variant = arrays["kernels"], arrays["epochs"], run["variant"]
    test = load_prepared(args.data)
    digits, classes = first_of_each_class(test.x_test, test.y_test)
    maps = filters.conv1_feature_maps(digits, kernels[-1], arrays["bias"], run["stride"])
    figures = {
        "init_vs_learned.png": filters.init_vs_learned(kernels[0], kernels[-1], style.colormap, variant),
        "evolution.png": filters.evolution_strip(kernels, epochs, style.colormap, variant),
        "feature_maps.png": filters.feature_maps(digits, classes, maps, kernels[-1], style.colormap, variant),
    }
    frames = animation.evolution_frames(kernels, style.colormap)
    for name, figure in figures.items():
        atomic.save_figure(args.figures / name, figure, dpi=style.dpi)
    atomic.write_bytes(args.figures / "evolution.gif", animation.gif_bytes(frames, section.gif_frame_ms))

    report = similarity.compare_filters(kernels[0], kernels[-1], KERNELS, seed)
    if report["comparable"]:
        pairs = classic.learned_vs_classic(kernels[-1], report, KERNELS, style.colormap, variant)
        atomic.save_figure(args.figures / "learned_vs_classic.png", pairs, dpi=style.dpi)
    atomic.write_json(args.metrics, similarity.headline(report))
    atomic.write_json(
        args.details,
        {key: run[key] for key in artifacts.RUN_KEYS}
        | {"filters_sha256": artifacts.file_sha256(args.filters_npz)}
        | report,
    )
    if report["comparable"]:
        found = sorted({entry["learned"]["kernel"] for entry in report["per_filter"]} - {None})
        summary = (
            f"nearest kernels {', '.join(found)}; similarity {report['similarity']['init']['mean']:.3f} at init "
            f"-> {report['similarity']['learned']['mean']:.3f} learned (chance {report['chance']['mean']:.3f})"
        )
    else:
        summary = "no bank kernel of this size"
    print(f"{variant}: {summary}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return stage.run(lambda: draw(args))


if __name__ == "__main__":
    stage.entry(main)
