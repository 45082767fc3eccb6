"""What the CPU numeric pin costs: training throughput with `numerics: avx2` against `native`.

Reads params.yaml (seed, prepare, train) and the bundled subset; writes the
`numerics_pin` entry of reports/benchmarks.json (or --out), keeping the other entries.
Each fit runs in a fresh process, because oneDNN and OpenBLAS read their caps once, at
load; the two modes alternate, so both see the same machine load.

    python benchmarks/numerics.py               # 5 repetitions of each mode after a warm-up pair
    python benchmarks/numerics.py --child avx2  # one fit, prints images/s (used by the above)
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import measure

REPO = Path(__file__).resolve().parents[1]
MODES = ("avx2", "native")
VARIANT = (32, 3, 1)


def child(mode: str, epochs: int) -> None:
    from filterlab.core import numerics

    numerics.pin(mode)
    from filterlab.config.geometry import VariantSpec
    from filterlab.config.params import load_section, load_seed, read_params
    from filterlab.config.sections import TrainParams
    from filterlab.training import fit

    params = read_params(REPO / "params.yaml")
    seed = load_seed(params)
    train = load_section(params, "train", TrainParams)
    train = type(train)(**{**vars(train), "epochs": epochs})
    data = measure.bundled_split(params)
    result = fit.train_variant(data, VariantSpec(*VARIANT), train, seed)
    print(json.dumps({"images_per_second": epochs * len(data.x_train) / result.seconds}))


def one_fit(mode: str, epochs: int) -> float:
    from filterlab.core import numerics

    env = {key: value for key, value in os.environ.items() if key not in numerics.PINNED_ENV}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--epochs", str(epochs)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["images_per_second"]


def compare(repeats: int, epochs: int) -> dict:
    one_fit("avx2", epochs), one_fit("native", epochs)  # warm-up: page cache, compiled kernels
    speeds = {mode: [] for mode in MODES}
    for _ in range(repeats):
        for mode in MODES:
            speeds[mode].append(one_fit(mode, epochs))
    ratios = [pinned / native for pinned, native in zip(speeds["avx2"], speeds["native"], strict=True)]
    return {
        "variant": "f{}_k{}_s{}".format(*VARIANT),
        "epochs": epochs,
        "images_per_second": {mode: measure.summary(values) for mode, values in speeds.items()},
        "ratio_avx2_to_native": measure.summary(ratios),
        "target": "the pin costs little on an AVX-512 machine (AVX2 kernels are oneDNN's mainstream path)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=MODES)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "benchmarks.json")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.epochs)
        return
    entry = compare(args.repeats, args.epochs)
    measure.merge_into(args.out, {"numerics_pin": entry})
    ratio = entry["ratio_avx2_to_native"]
    print(
        f"numerics pin: avx2 / native throughput {ratio['median']:.3f} ({ratio['min']:.3f}-{ratio['max']:.3f}), "
        f"{entry['images_per_second']['avx2']['median']:.0f} vs {entry['images_per_second']['native']['median']:.0f} "
        "images/s"
    )


if __name__ == "__main__":
    main()
