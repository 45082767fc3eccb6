"""Pins the CPU numeric path before NumPy or TensorFlow load; reads /proc/cpuinfo, writes os.environ.

oneDNN (TensorFlow's CPU kernels, its GEMM included) and OpenBLAS (NumPy, SciPy)
choose their code paths by the CPU's instruction set, and different paths round
differently, so one seed gives different weights on an AVX-512 and an AVX2 machine.
Both libraries read a cap from the environment once, when they load: `pin` sets it
for this process, so it must run before the first `import numpy`.

`avx2` caps oneDNN at AVX2, OpenBLAS at its Haswell kernels on one thread and NumPy's own
SIMD loops at AVX2, which every x86-64 CPU with AVX2 and FMA runs (Intel since 2013, AMD since
2015). An environment that already caps lower (imitating an older CPU) is refused, as
is a CPU without AVX2: it cannot run the pinned kernels. `native` leaves the
environment as it is: each CPU's fastest kernels, numbers that differ between CPUs.
"""

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from filterlab.core.errors import FilterlabError

MODES = ("avx2", "native")
# oneDNN's ISA names from oldest to newest (its docs: ONEDNN_MAX_CPU_ISA); the cap is the one before AVX2's successors.
ONEDNN_ISAS = (
    "SSE41",
    "AVX",
    "AVX2",
    "AVX2_VNNI",
    "AVX2_VNNI_2",
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16",
    "AVX10_1_512",
    "AVX512_CORE_FP16",
    "AVX10_1_512_AMX",
    "AVX512_CORE_AMX",
    "AVX10_1_512_AMX_FP16",
    "AVX512_CORE_AMX_FP16",
    "DEFAULT",
    "ALL",
)
ONEDNN_PIN = "AVX2"
# OpenBLAS core types older than Haswell: an environment naming one of them imitates a CPU the pin cannot serve.
OPENBLAS_OLDER = {
    "PRESCOTT",
    "CORE2",
    "PENRYN",
    "DUNNINGTON",
    "NEHALEM",
    "ATOM",
    "BOBCAT",
    "OPTERON",
    "BARCELONA",
    "SANDYBRIDGE",
    "BULLDOZER",
    "PILEDRIVER",
    "STEAMROLLER",
    "EXCAVATOR",
    "KATMAI",
    "COPPERMINE",
}
PINNED_ENV = {
    "ONEDNN_MAX_CPU_ISA": ONEDNN_PIN,
    "OPENBLAS_CORETYPE": "Haswell",
    # OpenBLAS splits a product differently for one thread than for several (measured with the
    # Haswell kernels), and the default follows the core count, which differs between machines.
    "OPENBLAS_NUM_THREADS": "1",
    # NumPy 2.4's runtime-dispatched loops (exp, log, ...) by group: X86_V4 is its AVX-512 level.
    # Names a CPU lacks are ignored, so the value is the same everywhere.
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
}
LIBRARIES = ("numpy", "scipy", "tensorflow", "keras")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str] | None:
    """The CPU's feature flags, or None where /proc/cpuinfo does not say (not Linux x86)."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("flags"):
                return set(line.partition(":")[2].split())
    except OSError:
        pass
    return None


def check_pinnable(env: Mapping[str, str], flags: set[str] | None) -> None:
    """FilterlabError when this machine, or the caps already in `env`, sit below the pin."""
    if flags is not None and not {"avx2", "fma"} <= flags:
        raise FilterlabError(
            "numerics: 'avx2' needs a CPU with AVX2 and FMA, which this one lacks; set numerics: native"
        )
    cap = env.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if cap and cap in ONEDNN_ISAS and ONEDNN_ISAS.index(cap) < ONEDNN_ISAS.index(ONEDNN_PIN):
        raise FilterlabError(
            f"numerics: ONEDNN_MAX_CPU_ISA={cap} is below the pinned AVX2; unset it or set numerics: native"
        )
    core = env.get("OPENBLAS_CORETYPE", "").upper()
    if core in OPENBLAS_OLDER:
        raise FilterlabError(
            f"numerics: OPENBLAS_CORETYPE={core} is older than the pinned Haswell; unset it or set numerics: native"
        )


def is_pinned(mode: str, env: Mapping[str, str] = os.environ) -> bool:
    return mode == "native" or all(env.get(name) == value for name, value in PINNED_ENV.items())


def pin(mode: str) -> None:
    """Put `mode`'s caps in this process's environment; refuse once a numeric library is loaded.

    A library that has loaded already chose its kernels, so changing the variables
    afterwards would only pretend to pin them.
    """
    if mode not in MODES:
        raise ValueError(f"unknown numerics mode {mode!r}; expected one of {MODES}")
    if is_pinned(mode):
        return
    check_pinnable(os.environ, cpu_flags())
    loaded = [name for name in LIBRARIES if name in sys.modules]
    if loaded:
        raise FilterlabError(
            f"numerics: {', '.join(loaded)} loaded before the CPU numeric path could be pinned; start the "
            f"process with {' '.join(f'{k}={v!r}' for k, v in PINNED_ENV.items())}"
        )
    os.environ.update(PINNED_ENV)


def environment(mode: str) -> dict[str, str]:
    """The variables `mode` sets: what a parent process puts in a child's environment to pin it up front."""
    return dict(PINNED_ENV) if mode == "avx2" else {}
