"""Pins the CPU numeric path before NumPy or TensorFlow load; reads and writes only os.environ.

oneDNN (TensorFlow's CPU kernels, its GEMM included) and OpenBLAS (NumPy, SciPy)
choose their code paths by the CPU's instruction set, and different paths round
differently, so one seed gives different weights on an AVX-512 and an AVX2 machine.
Both libraries read a cap from the environment once, when they load: `pin` sets it
for this process, so it must run before the first `import numpy`. With `avx2` every
x86-64 CPU that has AVX2 (Intel since 2013, AMD since 2015) runs the same kernels.
"""

import os
import sys
from typing import Literal

from filterlab.core.errors import FilterlabError

Mode = Literal["avx2", "native"]
MODES: tuple[str, ...] = ("avx2", "native")

# What each mode puts in the environment; `native` removes the caps instead.
PINNED_ENV = {
    # oneDNN's runtime dispatch: never above AVX2 (no AVX-512 or AMX kernels).
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    # OpenBLAS' DYNAMIC_ARCH kernels: the Haswell (AVX2 + FMA) ones on every CPU.
    "OPENBLAS_CORETYPE": "Haswell",
    # NumPy's own SIMD loops (exp, log, sums of float32...): nothing beyond AVX2.
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL "
    "AVX512_ICL AVX512_SPR AVX512FP16",
}
LIBRARIES = ("numpy", "tensorflow", "scipy")


def environment(mode: Mode) -> dict[str, str | None]:
    """The variables `mode` sets (None: removed)."""
    if mode == "avx2":
        return dict(PINNED_ENV)
    return {name: None for name in PINNED_ENV}


def is_pinned(mode: Mode, env: os._Environ | dict = os.environ) -> bool:
    return all(env.get(name) == value for name, value in environment(mode).items())


def pin(mode: Mode) -> None:
    """Put `mode`'s caps in this process's environment; refuse once a numeric library is loaded.

    A library that has loaded already chose its kernels, so changing the variables
    afterwards would only pretend to pin them.
    """
    if is_pinned(mode):
        return
    loaded = [name for name in LIBRARIES if name in sys.modules]
    if loaded:
        raise FilterlabError(
            f"numerics: {', '.join(loaded)} loaded before the CPU numeric path could be pinned to {mode!r}; "
            f"start a new process with {' '.join(f'{k}={v!r}' for k, v in environment(mode).items())}"
        )
    for name, value in environment(mode).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
