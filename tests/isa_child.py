"""Child process for tests/test_numerics.py: pin the numeric path, train a tiny variant, report.

Run as `python tests/isa_child.py <avx2|native>` with the caps of an imitated host in the
environment. Prints one JSON line: the sha256 of every weight after one epoch, of a NumPy
float32 matmul (OpenBLAS), and the oneDNN implementations that ran (ONEDNN_VERBOSE=1).
"""

import hashlib
import json
import sys

from filterlab.core import numerics

numerics.pin(sys.argv[1])

import numpy as np  # the pin must come first: that is what is tested

from filterlab.config.geometry import VariantSpec
from filterlab.data.dataset import Prepared
from helpers import train_params


def main() -> None:
    from filterlab.training import fit

    rng = np.random.default_rng(0)
    images = rng.random((320, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, 320)
    data = Prepared(
        images[:256], labels[:256], images[256:288], labels[256:288], images[288:], labels[288:], "synthetic", "0" * 64
    )
    params = train_params(
        {"batch_size": 32, "learning_rate": 0.002, "block2_filters": 8, "dropout": 0.2, "threads": 2, "seeds": 1}
    )
    result = fit.train_variant(data, VariantSpec(4, 3, 2), params, seed=7)
    weights = hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in result.model.get_weights())).hexdigest()
    blas = hashlib.sha256((rng.random((4096, 9), dtype=np.float32) @ rng.random((9, 22), dtype=np.float32)).tobytes())
    exp = hashlib.sha256(np.exp(rng.random(4096, dtype=np.float32)).tobytes()).hexdigest()  # NumPy's own SIMD
    print(
        json.dumps({"weights": weights, "blas": blas.hexdigest(), "numpy": exp, "loss": result.test_loss}), flush=True
    )


if __name__ == "__main__":
    main()
