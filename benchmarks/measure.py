"""Helpers shared by the benchmark scripts: repetition statistics, the machine record, the results file.

Reads /proc/cpuinfo and library versions; `merge_into` writes reports/benchmarks.json (or
the --out a script was given). Benchmarks report ratios measured side by side in one
process, because this machine is shared and noisy.
"""

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def summary(samples: list[float]) -> dict:
    """Median and min–max of the repetitions (the warm-up is never among them)."""
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "n": len(samples),
        "samples": [round(sample, 6) for sample in samples],
    }


def merge_into(path: Path, entries: dict, drop: tuple[str, ...] = ()) -> None:
    """Put `entries` into the results file at `path`, leaving every other entry as it is (`drop` removes
    entries that would no longer match); written atomically, key-sorted like every JSON here."""
    from filterlab.core import atomic

    results = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    atomic.write_json(path, {key: value for key, value in results.items() if key not in drop} | entries)


def timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def machine(threads: int) -> dict:
    """Cores, CPU model, library versions and the TensorFlow thread pools in force."""
    cpu = {"model name": platform.processor() or "unknown"}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                key, _, value = line.partition(":")
                if not key.strip() and cpu.get("cpu family"):
                    break  # the first processor is enough
                cpu.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    record = {
        "cores": os.cpu_count(),
        "cpu_model": cpu["model name"],
        # Family, model and caches tell apart two CPUs with one marketing name: oneDNN sizes some kernels'
        # blocks from the caches, which the numeric pin cannot fix (docs/reproducibility.md).
        "cpu_id": {key: cpu.get(key) for key in ("vendor_id", "cpu family", "model", "stepping", "cache size")},
        "caches": caches(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tf_threads": {"intra_op": threads, "inter_op": threads},
    }
    try:
        import keras
        import tensorflow as tf

        record["tensorflow"] = tf.__version__
        record["keras"] = keras.__version__
        record["tf_threads"] = {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        }
    except ImportError:
        pass
    return record


def caches() -> dict[str, str]:
    """Each cache level of CPU 0 as Linux reports it (`L1d`, `L2`, …: size), empty where sysfs is absent."""
    found = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind, size = ((index / name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        found[f"L{level}{'d' if kind == 'Data' else 'i' if kind == 'Instruction' else ''}"] = size
    return found


def bundled_split(params: dict):
    """The bundled subset split exactly as the prepare stage splits it, from params.yaml's seed and prepare."""
    from filterlab.config.params import load_section, load_seed
    from filterlab.config.sections import PrepareParams
    from filterlab.data import bundled, dataset

    prepare = load_section(params, "prepare", PrepareParams)
    return dataset.split_and_scale(
        bundled.load(),
        None,
        val_fraction=prepare.val_fraction,
        test_fraction=prepare.bundled_test_fraction,
        seed=load_seed(params),
        source="bundled",
        raw_sha256=bundled.sha256(),
    )
