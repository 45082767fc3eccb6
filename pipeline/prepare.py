"""Stage `prepare`: reads data/raw/ (IDX files + manifest.json) and params `seed`, `prepare`.

Writes data/prepared/mnist.npz (float32 images in [0, 1], int64 labels; train/val/test)
and reports/metrics/data.json (images per split and per class, and where they came from).
The test split is MNIST's t10k for downloaded data, a stratified hold-out for the bundled subset.
"""

import argparse
from pathlib import Path

from filterlab import atomic, dataset, idx, stage
from filterlab.params import load_section, load_seed, read_params
from filterlab.sections import PrepareParams


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", required=True, help="params.yaml")
    parser.add_argument("--raw", required=True, type=Path, help="the download stage's folder (data/raw)")
    parser.add_argument("--out", required=True, type=Path, help="prepared dataset (data/prepared/mnist.npz)")
    parser.add_argument("--metrics", required=True, type=Path, help="data metrics (reports/metrics/data.json)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    params = read_params(args.params)
    seed = load_seed(params)
    section = load_section(params, "prepare", PrepareParams)
    manifest = dataset.load_manifest(args.raw)
    has_t10k = manifest["test_split"] == "t10k"
    source = {"remote": "remote", "bundled": "bundled"}.get(manifest["source"], f"mirror:{manifest['url']}")
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
        args.metrics,
        {"source": source, "test_split": test_split, "raw_sha256": prepared.raw_sha256, "counts": prepared.counts()},
    )
    counts = {split: entry["total"] for split, entry in prepared.counts().items()}
    print(f"{args.out}: {source} digits, {counts}, test = {test_split}")


if __name__ == "__main__":
    stage.run(main)
