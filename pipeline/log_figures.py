"""Stage `log_figures`: adds every grid variant's filter figures to its MLflow training run, in one process.

Reads params.yaml (numerics, train: the grid says which variants are current), each
variant's figures under --figures/<variant>/ and its details JSON under --details (which
holds the filters.npz digest that tags the run train@<variant> logged). Adds to MLflow:
the figures and details as artifacts under `filters/`, the GIF's frames as one image per
epoch (the UI's step slider), the similarity metrics, and a tag with the digest of all of
that, so a run gets each version of its figures once. Writes --out: per variant, the two
digests that tie its MLflow run to these files (what was logged where is printed: it
depends on the tracking store, so it is not an output). The out gives the stage a
run-cache entry like every other stage (DVC keeps none for a stage without outs), so a
clone that lacks this dvc.lock entry restores it instead of running it.
One process for every variant pays MLflow's import and store check once, not once per variant.
The GIF's frames go to the UI's step slider twice: whole (key conv1_filters) and the first 16
filters alone (conv1_filters_0-15), which stay legible in the slider's 256-pixel thumbnails.
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

from filterlab.config.geometry import VariantSpec
from filterlab.config.params import load_section
from filterlab.config.sections import TrainParams, open_params
from filterlab.core import stage
from filterlab.core.errors import DataError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--params", "--figures", "--details", "--out"):
        parser.add_argument(flag, required=True, type=Path)
    return parser.parse_args(argv)


def content_sha256(figures: Path, details: Path) -> str:
    """One digest over every figure file (name and bytes) and the details: what a run already holds."""
    digest = hashlib.sha256()
    for path in [*sorted(figures.iterdir()), details]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def variant_digests(variant: VariantSpec, figures: Path, details_path: Path) -> tuple[dict[str, str], dict]:
    """The digests that tie a variant's figures to its run, and its filter details; no MLflow."""
    stage_name = f"filters@{variant.filters}-{variant.kernel_size}-{variant.stride}"
    for needed in (details_path, figures):
        if not needed.exists():
            raise DataError(f"{needed}: not found; run `dvc repro {stage_name}` first")
    details = json.loads(details_path.read_text(encoding="utf-8"))
    if "filters_sha256" not in details:
        raise DataError(
            f"{details_path}: no filters_sha256 (an older filters stage wrote it); run `dvc repro -f {stage_name}`"
        )
    digests = {"filters_sha256": details["filters_sha256"], "figures_sha256": content_sha256(figures, details_path)}
    return digests, details


def log_variant(variant: VariantSpec, figures: Path, digests: dict[str, str], details_path: Path, details: dict) -> str:
    """Add one variant's figures to its run; what happened (for the log)."""
    from filterlab.core import tracking
    from filterlab.figures import animation
    from filterlab.kernels import similarity

    run = tracking.finished_run("train", {tracking.FILTERS_TAG: digests["filters_sha256"]})
    if run is None:
        return "no MLflow run holds these filters (train@ restored from DVC's run-cache?); not logged"
    if run.tags.get(tracking.FIGURES_TAG) == digests["figures_sha256"]:
        return f"run {run.run_id} has these figures already"
    # The GIF holds one frame per snapshot, init first (filters.npz's `epochs` is 0..N): frame i is epoch i.
    frames = animation.gif_frames((figures / "evolution.gif").read_bytes())
    for epoch, frame in enumerate(frames):
        run.log_image(frame, key="conv1_filters", step=epoch)
        # The slider's thumbnails are 256 pixels: the first 16 filters alone stay readable there.
        run.log_image(
            animation.first_tiles(frame, variant.kernel_size, variant.filters), key="conv1_filters_0-15", step=epoch
        )
    run.log_artifacts(figures, artifact_path="filters")
    run.log_artifact(details_path, artifact_path="filters")
    if details["comparable"]:
        run.log_metrics(similarity.headline(details))
    run.set_tags({tracking.FIGURES_TAG: digests["figures_sha256"]})
    return f"figures added to run {run.run_id}"


def log_all(args: argparse.Namespace) -> None:
    params = open_params(args.params)
    grid = load_section(params, "train", TrainParams).grid
    from filterlab.core import atomic, tracking
    from filterlab.core.errors import TrackingError

    manifest, gone = {}, None
    for variant in grid.variants():
        figures, details_path = args.figures / variant.name, args.details / f"{variant.name}.json"
        manifest[variant.name], details = variant_digests(variant, figures, details_path)
        if gone is None:
            try:
                outcome = log_variant(variant, figures, manifest[variant.name], details_path, details)
            except (TrackingError, *tracking.tracking_errors()) as error:
                gone = tracking.first_line(error)
                print(
                    f"warning: MLflow is not usable ({gone}); the figures are not logged, the stage's output is "
                    "written. Once tracking is back: dvc repro -f log_figures",
                    file=sys.stderr,
                    flush=True,
                )
        print(f"{variant.name}: {outcome if gone is None else 'not logged (MLflow is not usable)'}", flush=True)
    atomic.write_json(args.out, manifest)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return stage.run(lambda: log_all(args))


if __name__ == "__main__":
    stage.entry(main)
