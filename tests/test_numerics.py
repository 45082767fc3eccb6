"""filterlab.core.numerics: the CPU numeric path is pinned, and the pin is what makes weights equal.

Other CPUs are imitated downwards only (an instruction set the host lacks would crash):
oneDNN through ONEDNN_MAX_CPU_ISA, OpenBLAS through OPENBLAS_CORETYPE. Each run is a
fresh process (tests/isa_child.py), because both libraries read their caps once, at load.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from filterlab.core import numerics
from filterlab.core.errors import FilterlabError

CHILD = Path(__file__).with_name("isa_child.py")
# Hosts at or above the pin, as this machine can imitate them: (oneDNN cap, OpenBLAS core type); None = native.
HOSTS = [(None, None), ("AVX512_CORE", "SkylakeX"), ("AVX2", "Haswell")]


def _flags() -> set[str]:
    return numerics.cpu_flags() or set()


needs_avx512 = pytest.mark.skipif("avx512f" not in _flags(), reason="imitating other CPUs needs an AVX-512 host")


def run_child(mode: str, host: tuple[str | None, str | None]) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in numerics.PINNED_ENV}
    env.update({"ONEDNN_VERBOSE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"})
    for name, value in zip(("ONEDNN_MAX_CPU_ISA", "OPENBLAS_CORETYPE"), host, strict=True):
        if value is not None:
            env[name] = value
    done = subprocess.run([sys.executable, str(CHILD), mode], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    implementations, isa = set(), None
    for line in done.stdout.splitlines():
        fields = line.split(",")
        if line.startswith("onednn_verbose,v1,info,cpu,isa:"):
            isa = line.partition("isa:")[2]
        # onednn_verbose,v1,primitive,exec,cpu,<kind>,<implementation>,...
        if line.startswith("onednn_verbose") and "exec" in fields:
            at = fields.index("exec")
            implementations.add((fields[at + 2], fields[at + 3]))
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["implementations"], result["isa"] = implementations, isa
    return result


@needs_avx512
def test_pinned_weights_and_kernels_are_identical_on_every_imitated_host():
    runs = [run_child("avx2", host) for host in HOSTS]
    for host, run in zip(HOSTS[1:], runs[1:], strict=True):
        assert run["weights"] == runs[0]["weights"], f"weights differ on host {host}"
        assert run["blas"] == runs[0]["blas"], f"OpenBLAS result differs on host {host}"
        assert run["numpy"] == runs[0]["numpy"], f"NumPy's SIMD result differs on host {host}"
        assert run["implementations"] == runs[0]["implementations"], f"oneDNN kernels differ on host {host}"
        # The matrix products name no ISA in their lines (x64:gemm:jit, gemm_api): oneDNN's own
        # header says which instruction set it dispatches to.
        assert run["isa"] == runs[0]["isa"] == "Intel AVX2", run["isa"]
    picked = {implementation for _kind, implementation in runs[0]["implementations"]}
    assert not any("avx512" in name or "amx" in name for name in picked), picked
    assert any("avx2" in name for name in picked), picked


@needs_avx512
def test_without_the_pin_the_hosts_disagree():
    """The control: were the pin a no-op, the test above would pass for nothing."""
    runs = [run_child("native", host) for host in (HOSTS[0], HOSTS[-1])]
    assert runs[0]["weights"] != runs[1]["weights"] or runs[0]["blas"] != runs[1]["blas"]
    assert runs[0]["implementations"] != runs[1]["implementations"]


def test_pin_refuses_once_numpy_has_loaded():
    code = "import numpy\nfrom filterlab.core import numerics\nnumerics.pin('avx2')"
    env = {key: value for key, value in os.environ.items() if key not in numerics.PINNED_ENV}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "loaded before the CPU numeric path could be pinned" in done.stderr


def test_pin_sets_the_caps_in_a_fresh_process():
    code = (
        "import os\nfrom filterlab.core import numerics\nnumerics.pin('avx2')\nprint(os.environ['ONEDNN_MAX_CPU_ISA'])"
    )
    env = {key: value for key, value in os.environ.items() if key not in numerics.PINNED_ENV}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "AVX2", done.stderr


@pytest.mark.parametrize(
    "env, flags, message",
    [
        ({}, {"sse4_2", "avx"}, "needs a CPU with AVX2"),
        ({"ONEDNN_MAX_CPU_ISA": "AVX"}, {"avx2", "fma"}, "ONEDNN_MAX_CPU_ISA=AVX is below"),
        ({"OPENBLAS_CORETYPE": "Sandybridge"}, {"avx2", "fma"}, "OPENBLAS_CORETYPE=SANDYBRIDGE is older"),
    ],
)
def test_hosts_below_the_pin_are_refused(env, flags, message):
    with pytest.raises(FilterlabError, match=message):
        numerics.check_pinnable(env, flags)


def test_hosts_at_or_above_the_pin_pass():
    numerics.check_pinnable({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "OPENBLAS_CORETYPE": "SkylakeX"}, {"avx2", "fma"})
    numerics.check_pinnable({}, None)  # not Linux: nothing to read, nothing refused


def test_native_leaves_the_environment_alone():
    assert numerics.is_pinned("native", {}) and numerics.environment("native") == {}
    assert not numerics.is_pinned("avx2", {})
