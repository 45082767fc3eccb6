"""Benchmark: batched true convolution against a per-image scipy.ndimage.convolve loop.

Reads the bundled MNIST subset (or --data, a prepared npz) and the kernel bank; prints
JSON and writes nothing. Two batched paths (NumPy im2col + matmul, and TensorFlow's
conv2d) and the reference convolve every image with every kernel in the same process,
one after the other in each repetition, so the ratios survive a noisy machine.
`run(images, kernels, repeats)` is what benchmarks/run.py calls.

    python benchmarks/convolution.py                 # 5,000 bundled digits, 22 kernels, 5 repeats
    python benchmarks/convolution.py --images 500 --repeats 5
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import measure  # benchmarks/ is not a package: its siblings by name
from filterlab.kernels import convolution

TOLERANCE = 1e-5


def _reference(images: np.ndarray, kernels: list, check_against: np.ndarray | None) -> tuple[float, float]:
    """Seconds spent in the scipy loop (timed per kernel), and the largest difference to `check_against`."""
    from scipy import ndimage

    seconds, worst = 0.0, 0.0
    out = np.empty(images.shape, dtype=np.float64)
    for index, kernel in enumerate(kernels):
        weights = kernel.weights
        started = time.perf_counter()
        for image_index, image in enumerate(images):
            out[image_index] = ndimage.convolve(image, weights, mode="constant", cval=0.0)
        seconds += time.perf_counter() - started
        # Compared outside the timed part: the check must not slow the reference down.
        if check_against is not None:
            worst = max(worst, float(np.abs(check_against[..., index] - out).max()))
    return seconds, worst


ENGINES = {"numpy": convolution.convolve_batch, "tensorflow": convolution.convolve_batch_tf}


def run(images: np.ndarray, kernels: list, repeats: int = 5) -> dict:
    """Warm-up, then `repeats` rounds of (numpy, tensorflow, reference); equal results are checked, not assumed."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    images = np.asarray(images, dtype=np.float64)
    images = images[..., 0] if images.ndim == 4 else images
    worst = {}
    for name, engine in ENGINES.items():  # warm-up, and the results to compare
        _, worst[name] = _reference(images, kernels, engine(images, kernels))
        if worst[name] > TOLERANCE:
            raise RuntimeError(f"{name} batched convolution differs from scipy.ndimage.convolve by {worst[name]:.3g}")
    seconds = {name: [] for name in (*ENGINES, "reference")}
    for _ in range(repeats):
        for name, engine in ENGINES.items():
            seconds[name].append(measure.timed(lambda engine=engine: engine(images, kernels)))
        seconds["reference"].append(_reference(images, kernels, None)[0])
    pairs = len(images) * len(kernels)
    result = {
        "images": len(images),
        "kernels": len(kernels),
        "kernel_names": [kernel.name for kernel in kernels],
        "padded_side": convolution.common_size(kernels),
        "max_abs_difference": worst,
        "reference_seconds": measure.summary(seconds["reference"]),
        "reference_us_per_image_kernel": 1e6 * measure.summary(seconds["reference"])["median"] / pairs,
        "target": ">= 20x",
        "engines": {},
    }
    for name in ENGINES:
        # Each repetition ran every path back to back, so per-repetition ratios share the load.
        ratios = [r / b for r, b in zip(seconds["reference"], seconds[name], strict=True)]
        result["engines"][name] = {
            "batched_seconds": measure.summary(seconds[name]),
            "us_per_image_kernel": 1e6 * measure.summary(seconds[name])["median"] / pairs,
            "speedup_per_repeat": measure.summary(ratios),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a prepared npz (its x_train); default: the bundled subset")
    parser.add_argument("--images", type=int, default=0, help="use only the first N images (0: all)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from filterlab.config.params import load_section, read_params
    from filterlab.config.sections import BaselinesParams
    from filterlab.data import bundled, dataset
    from filterlab.kernels import bank

    repo = Path(__file__).resolve().parents[1]
    names = load_section(read_params(repo / "params.yaml"), "baselines", BaselinesParams).kernels
    images = dataset.load_prepared(args.data).x_train[..., 0] if args.data else dataset.scale(bundled.load()[0])[..., 0]
    if args.images:
        images = images[: args.images]
    result = run(images, bank.select(names), args.repeats)
    result["machine"] = measure.machine(0)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
