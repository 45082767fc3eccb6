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
    cpu_model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    record = {
        "cores": os.cpu_count(),
        "cpu_model": cpu_model,
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
