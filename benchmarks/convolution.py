"""Benchmark: batched true convolution against a per-image scipy.ndimage.convolve loop.

Reads the bundled MNIST subset (or --data, a prepared npz) and the kernel bank; prints
JSON and writes nothing. Both paths convolve every image with every kernel in the same
process, one after the other in each repetition, so the ratio survives a noisy machine.
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
import measure  # noqa: E402  (benchmarks/ is not a package)

from filterlab import convolution  # noqa: E402

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


def run(images: np.ndarray, kernels: list, repeats: int = 5) -> dict:
    """Warm-up, then `repeats` rounds of (batched, reference); equal results are checked, not assumed."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    images = np.asarray(images, dtype=np.float64)
    images = images[..., 0] if images.ndim == 4 else images
    batched_out = convolution.convolve_batch(images, kernels)  # warm-up, and the result to compare
    _, worst = _reference(images, kernels, batched_out)
    if worst > TOLERANCE:
        raise RuntimeError(f"batched convolution differs from scipy.ndimage.convolve by {worst:.3g} > {TOLERANCE}")
    del batched_out
    batched, reference = [], []
    for _ in range(repeats):
        batched.append(measure.timed(lambda: convolution.convolve_batch(images, kernels)))
        reference.append(_reference(images, kernels, None)[0])
    batched_stats, reference_stats = measure.summary(batched), measure.summary(reference)
    pairs = len(images) * len(kernels)
    return {
        "images": len(images),
        "kernels": len(kernels),
        "kernel_names": [kernel.name for kernel in kernels],
        "padded_side": convolution.common_size(kernels),
        "chunk_images": convolution.CHUNK_IMAGES,
        "max_abs_difference": worst,
        "reference_seconds": reference_stats,
        "batched_seconds": batched_stats,
        "reference_us_per_image_kernel": 1e6 * reference_stats["median"] / pairs,
        "batched_us_per_image_kernel": 1e6 * batched_stats["median"] / pairs,
        "speedup_median": reference_stats["median"] / batched_stats["median"],
        # Each repetition ran both paths back to back, so per-repetition ratios share the load.
        "speedup_per_repeat": measure.summary([r / b for r, b in zip(reference, batched, strict=True)]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a prepared npz (its x_train); default: the bundled subset")
    parser.add_argument("--images", type=int, default=0, help="use only the first N images (0: all)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from filterlab import bundled, dataset, kernels
    from filterlab.params import load_section, read_params
    from filterlab.sections import BaselinesParams

    repo = Path(__file__).resolve().parents[1]
    names = load_section(read_params(repo / "params.yaml"), "baselines", BaselinesParams).kernels
    images = dataset.load_prepared(args.data).x_train[..., 0] if args.data else dataset.scale(bundled.load()[0])[..., 0]
    if args.images:
        images = images[: args.images]
    result = run(images, kernels.select(names), args.repeats)
    result["machine"] = measure.machine(0)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
