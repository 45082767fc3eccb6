"""Stage `prepare`: reads data/raw/ (IDX files + manifest.json) and params `seed`, `numerics`, `prepare`.

Writes data/prepared/mnist.npz (float32 images in [0, 1], int64 labels; train/val/test)
and reports/details/data.json (images per split and per class, and where they came from).
The test split is MNIST's t10k for downloaded data, a stratified hold-out for the bundled subset.
"""

import argparse
from pathlib import Path

from filterlab.config.params import load_section, load_seed
from filterlab.config.sections import PrepareParams, open_params
from filterlab.core import atomic, stage


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", required=True, help="params.yaml")
    parser.add_argument("--raw", required=True, type=Path, help="the download stage's folder (data/raw)")
    parser.add_argument("--out", required=True, type=Path, help="prepared dataset (data/prepared/mnist.npz)")
    parser.add_argument("--details", required=True, type=Path, help="data details (reports/details/data.json)")
    return parser.parse_args(argv)


def prepare(args: argparse.Namespace) -> None:
    params = open_params(args.params)
    seed, section = load_seed(params), load_section(params, "prepare", PrepareParams)
    from filterlab.data import dataset, idx  # NumPy loads after the pin

    manifest = dataset.load_manifest(args.raw)
    has_t10k = manifest["test_split"] == "t10k"
    # What the report and MLflow tags show: the kind, and for a copy the user chose, where it came from.
    source = {"remote": "remote", "bundled": "bundled", "pypi": manifest["url"]}.get(
        manifest["source"], f"{manifest['source']}:{manifest['url']}"
    )
    prepared = dataset.split_and_scale(
        idx.read_split(args.raw, "train"),
        idx.read_split(args.raw, "t10k") if has_t10k else None,
        val_fraction=section.val_fraction,
        test_fraction=section.bundled_test_fraction,
        seed=seed,
        source=source,
        raw_sha256=dataset.raw_digest(manifest["files"]),
    )
    dataset.save_prepared(args.out, prepared)
    test_split = "t10k" if has_t10k else f"stratified hold-out of train ({section.bundled_test_fraction:g})"
    atomic.write_json(
        args.details,
        {"source": source, "test_split": test_split, "raw_sha256": prepared.raw_sha256, "counts": prepared.counts()},
    )
    counts = {split: entry["total"] for split, entry in prepared.counts().items()}
    print(f"{args.out}: {source} digits, {counts}, test = {test_split}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return stage.run(lambda: prepare(args))


if __name__ == "__main__":
    stage.entry(main)
