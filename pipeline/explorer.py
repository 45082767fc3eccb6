"""Stage `explorer`: every grid variant's model and conv1 snapshots in one offline page, reports/explorer.html.

Reads params.yaml (seed, numerics, train: the grid; baselines: the frozen bank's kernels; figures: the
colormap), the prepared test split (--data: 10 digits of each class, drawn with the seed) and, for each
variant of the grid, <models>/<variant>/model.keras (loaded in Keras' safe mode), filters.npz and run.json
(filterlab.training.artifacts), its train metrics under --metrics (test accuracy and its interval) and its
filters details under --details (each filter's nearest classic kernel and the chance level, as
filterlab.kernels.similarity found them). Writes --out: one self-contained HTML file whose script computes
the feature maps and the model's probabilities in the browser (filterlab.explorer), linking back to --report.
"""

import argparse
import json
import os
from pathlib import Path
from typing import Any

from filterlab.config.params import load_section, load_seed
from filterlab.config.sections import BaselinesParams, FiguresParams, TrainParams, open_params
from filterlab.core import stage
from filterlab.core.errors import DataError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--params", "--data", "--models", "--metrics", "--details", "--out"):
        parser.add_argument(flag, required=True, type=Path)
    parser.add_argument("--report", type=Path, help="the report page the explorer links back to")
    return parser.parse_args(argv)


def read_json(path: Path, rebuild: str) -> dict[str, Any]:
    """A JSON object a stage wrote; DataError naming the file and the stage that rebuilds it for anything else."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run `dvc repro {rebuild}` first") from None
    except json.JSONDecodeError as error:
        raise DataError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}); `dvc repro -f {rebuild}`"
        ) from None
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 (byte {error.start}); `dvc repro -f {rebuild}`") from None
    if not isinstance(payload, dict):
        raise DataError(f"{path}: a JSON {type(payload).__name__}, expected an object; `dvc repro -f {rebuild}`")
    return payload


def load_model(path: Path, rebuild: str) -> Any:
    """model.keras in Keras' safe mode (no arbitrary code); DataError naming the file when it cannot be read."""
    import keras

    if not path.is_file():
        raise DataError(f"{path}: not found; run `dvc repro {rebuild}` first")
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises ValueError, OSError, zipfile's and h5py's own errors
        problem = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{path}: not a Keras model this Keras loads ({problem}); `dvc repro -f {rebuild}`") from None


def build(args: argparse.Namespace) -> None:
    params = open_params(args.params)
    seed, grid = load_seed(params), load_section(params, "train", TrainParams).grid
    bank_names = load_section(params, "baselines", BaselinesParams).kernels
    colormap = load_section(params, "figures", FiguresParams).colormap

    from filterlab.core import atomic  # NumPy loads after the pin
    from filterlab.data.dataset import load_prepared
    from filterlab.explorer import export, page
    from filterlab.kernels import bank
    from filterlab.training import artifacts

    frozen_bank = bank.select(bank_names, key="baselines.kernels")
    test = load_prepared(args.data)
    digits = export.digits_payload(test.x_test, test.y_test, export.digit_sample(test.y_test, seed))
    variants, classes = [], {}
    for variant in grid.variants():
        folder, train = args.models / variant.name, variant.stage_name("train")
        arrays, run = artifacts.read_filters(folder / artifacts.FILTERS_FILE, folder / artifacts.RUN_FILE)
        if run["variant"] != variant.name:
            raise DataError(f"{folder / artifacts.RUN_FILE}: names {run['variant']!r}, not {variant.name}")
        model = load_model(folder / artifacts.MODEL_FILE, train)
        sized = classes.setdefault(variant.kernel_size, export.classic_classes(variant.kernel_size, bank.KERNELS))
        variants.append(
            export.variant_payload(
                model,
                arrays,
                variant,
                read_json(args.metrics / f"{variant.name}.json", train),
                read_json(args.details / f"{variant.name}.json", variant.stage_name("filters")),
                sized,
            )
        )
    classic = {size: export.classic_payload(sized, bank.KERNELS) for size, sized in classes.items()}
    payload = export.page_payload(variants, digits, export.bank_payload(frozen_bank), classic, colormap)
    report = Path(os.path.relpath(args.report, args.out.parent)).as_posix() if args.report else None
    html = page.render_html(payload, report).encode("utf-8")
    atomic.write_bytes(args.out, html)
    print(
        f"explorer: {len(variants)} variants, {len(digits['indices'])} test digits; "
        f"wrote {args.out} ({len(html) / 1e6:.1f} MB)",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return stage.run(lambda: build(args))


if __name__ == "__main__":
    stage.entry(main)
