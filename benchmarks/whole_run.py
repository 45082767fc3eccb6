"""The whole run: a from-scratch `dvc repro` against the fits inside it, then the no-op median.

Works in a temp copy of the repo's git-tracked files (its own DVC cache and MLflow store),
so this checkout's dvc.lock and metrics never change; merges its figures into
reports/benchmarks.json (or --out) under "pipeline". The stages see this process's
environment, so `MNIST_MIRROR=<dir> python benchmarks/whole_run.py` measures full MNIST.

    python benchmarks/whole_run.py                     # params.yaml as committed (full MNIST)
    python benchmarks/whole_run.py --against 423f27d   # and an older commit, one after the other
    python benchmarks/whole_run.py --keep /tmp/run     # keep the copy: its dvc.lock, metrics, cache, mlflow.db

Each copy runs its own `src/` (PYTHONPATH), not the checkout the virtualenv installed, so
`--against` measures the older code, side by side in one run on the same machine.

Per-stage seconds come from timestamping DVC's "Running stage '<name>'" lines as they are
printed: a stage's wall time runs from its line to the next one (or to the end of the
run), so it includes DVC's own bookkeeping for that stage. Peak memory per stage is the
largest summed RSS of `dvc repro` and all its child processes, sampled every 0.2 s while
that stage was the current one. Fit seconds are what the stages logged to the copy's MLflow
store (`fit_seconds` of every grid variant, baseline and probe); commits from before that
wrote `train_seconds` into their metrics files, which are read instead.
"""

import argparse
import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[1]

from measure import machine, merge_into
from overhead import copy_repo, noop_repro, stage_env  # benchmarks/ is not a package: its siblings by name

STAGE_LINE = re.compile(r"^Running stage '([^']+)'")


def kind(stage: str) -> str:
    """`train@8-3-1` -> `train`: what the per-kind seconds are grouped by."""
    return stage.split("@", 1)[0]


def _tree_rss(process) -> int:
    """Resident bytes of `process` and every descendant (psutil.Process); 0 once it is gone."""
    import psutil

    total = 0
    try:
        for member in [process, *process.children(recursive=True)]:
            try:
                total += member.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        return 0
    return total


def timed_repro(
    command: list[str], copy: Path, env: dict, log=None
) -> tuple[float, dict[str, float], dict[str, int], str]:
    """Wall seconds of `command` (`dvc repro`), seconds and peak tree RSS per stage it announced, its output.

    `log`, a text file, receives the output as it comes (a long run can be followed with `tail -f`).
    """
    import psutil

    started = time.perf_counter()
    marks: list[tuple[str, float]] = []
    peaks: dict[str, int] = defaultdict(int)
    lines = []
    done = threading.Event()
    with subprocess.Popen(
        command, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        tree = psutil.Process(process.pid)

        def sample() -> None:
            while not done.wait(0.2):
                if marks:
                    name = marks[-1][0]
                    peaks[name] = max(peaks[name], _tree_rss(tree))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            for line in process.stdout:
                lines.append(line)
                if log is not None:
                    log.write(line)
                    log.flush()
                if match := STAGE_LINE.match(line):
                    marks.append((match.group(1), time.perf_counter()))
        finally:
            done.set()
            sampler.join()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{''.join(lines[-40:])}")
    ends = [at for _name, at in marks[1:]] + [started + wall]
    seconds = {name: end - at for (name, at), end in zip(marks, ends, strict=True)}
    return wall, seconds, dict(peaks), "".join(lines)


def logged_fit_seconds(database: Path) -> dict[str, float]:
    """Fit seconds the stages logged to MLflow, summed per experiment (train, baselines, probes); {} if none."""
    if not database.is_file():
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        rows = connection.execute(
            "SELECT e.name, SUM(m.value) FROM latest_metrics m JOIN runs r ON m.run_uuid = r.run_uuid "
            "JOIN experiments e ON r.experiment_id = e.experiment_id "
            "WHERE m.key IN ('fit_seconds', 'replicates_fit_seconds') AND r.lifecycle_stage = 'active' "
            "GROUP BY e.name"
        ).fetchall()
    return {name: total for name, total in rows}


def fit_seconds(copy: Path, database: Path) -> dict[str, float]:
    """The stages' own fit seconds, by kind: every grid variant, every baseline, and the probes' training
    (their optimiser steps are fitting too; a pipeline from before they were recorded counts them as 0)."""
    logged = logged_fit_seconds(database)
    if logged:
        return {kind: logged.get(kind, 0.0) for kind in ("train", "baselines", "probes")}
    totals = {}  # an older commit: its metrics files carry the seconds
    for folder in ("train", "baselines"):
        files = sorted((copy / "reports" / "metrics" / folder).glob("*.json"))
        totals[folder] = sum(json.loads(path.read_text())["train_seconds"] for path in files)
    probes = copy / "reports" / "details" / "probes.json"
    totals["probes"] = json.loads(probes.read_text()).get("train_seconds", 0.0) if probes.is_file() else 0.0
    return totals


def commit(repo: Path, revision: str) -> str:
    """The full commit id `revision` names; CalledProcessError when it names none."""
    return subprocess.run(
        ["git", "rev-parse", "--verify", f"{revision}^{{commit}}"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def copy_revision(repo: Path, revision: str, into: Path) -> Path:
    """`revision`'s tracked files (git archive) in a fresh git repo under `into`."""
    target = into / "repo"
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", revision], cwd=repo, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    for args in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", f"benchmark copy of {revision}"],
    ):
        subprocess.run(["git", *args], cwd=target, check=True, capture_output=True)
    return target


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def sizes(copy: Path, workdir: Path) -> dict[str, int]:
    """Bytes on disk of what the run leaves: DVC cache, MLflow store and artifacts, the report."""
    report = [copy / "reports" / "index.html", copy / "reports" / "summary.md"]
    return {
        "dvc_cache": _folder_bytes(copy / ".dvc" / "cache"),
        "mlflow_db": (workdir / "mlflow.db").stat().st_size if (workdir / "mlflow.db").is_file() else 0,
        "mlflow_artifacts": _folder_bytes(workdir / "mlartifacts"),
        "report_page_and_summary": sum(p.stat().st_size for p in report if p.is_file()),
        "report_figures": _folder_bytes(copy / "reports" / "figures"),
    }


def measure(repo: Path, repeats: int, revision: str | None = None, keep: Path | None = None) -> dict:
    with contextlib.ExitStack() as stack:
        if keep is None:
            temp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="filterlab-bench-pipeline-")))
        else:
            keep.mkdir(parents=True)
            temp = keep
        copy = copy_revision(repo, revision, temp) if revision else copy_repo(repo, temp)
        env = stage_env(temp)
        env.pop("FILTERLAB_SWEEP_ID", None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(copy / "src"), env.get("PYTHONPATH")]))
        dvc = str(Path(sys.executable).parent / "dvc")
        with open(temp / "repro.log", "w", encoding="utf-8") as log:
            wall, stages, peaks, _output = timed_repro([dvc, "repro"], copy, env, log)
        fits = fit_seconds(copy, temp / "mlflow.db")
        source = json.loads((copy / "reports" / "details" / "data.json").read_text()).get("source", "unknown")
        on_disk = sizes(copy, temp)
        noop = noop_repro(copy, repeats)  # a warm-up, then `repeats` timed no-op runs
    per_kind: dict[str, list[float]] = defaultdict(list)
    peak_per_kind: dict[str, int] = defaultdict(int)
    for stage, seconds in stages.items():
        per_kind[kind(stage)].append(seconds)
        peak_per_kind[kind(stage)] = max(peak_per_kind[kind(stage)], peaks.get(stage, 0))
    fit_total = sum(fits.values())
    return {
        "revision": revision or f"working tree of {commit(repo, 'HEAD')}",
        "data_source": source,
        "mnist_mirror": bool(os.environ.get("MNIST_MIRROR")),
        "stages_run": len(stages),
        "wall_seconds": round(wall, 1),
        "fit_seconds": {key: round(value, 1) for key, value in fits.items()} | {"total": round(fit_total, 1)},
        "overhead_seconds": round(wall - fit_total, 1),
        "overhead_share": round((wall - fit_total) / wall, 3),
        "seconds_per_stage_kind": {
            name: {"stages": len(values), "total": round(sum(values), 1), "mean": round(sum(values) / len(values), 2)}
            for name, values in per_kind.items()
        },
        "stage_seconds": {name: round(seconds, 2) for name, seconds in stages.items()},
        "peak_rss_mb_per_stage_kind": {name: round(peak / 2**20) for name, peak in peak_per_kind.items()},
        "peak_rss_mb_per_stage": {name: round(peaks.get(name, 0) / 2**20) for name in stages},
        "bytes_on_disk": on_disk,
        "noop_repro_seconds": noop.get("seconds", noop),  # or why it was skipped
        "targets": {
            "overhead_share": "<= 0.30 offline, <= 0.10 on full MNIST",
            "wall_seconds": "<= 360 offline",
            "noop_repro_seconds": "median <= 2",
        },
    }


def compared(now: dict, before: dict) -> dict:
    """Ratios of the two runs (this one over the older one): below 1 is faster. The overhead here counts the
    probes' training as overhead in both, since a commit from before `train_seconds` in probes.json has no figure."""

    def overhead(entry: dict) -> float:
        return entry["wall_seconds"] - entry["fit_seconds"]["train"] - entry["fit_seconds"]["baselines"]

    return {
        "against": before["revision"],
        "wall_ratio": round(now["wall_seconds"] / before["wall_seconds"], 3),
        "overhead_ratio": round(overhead(now) / overhead(before), 3),
        "fit_ratio": round(
            (now["fit_seconds"]["train"] + now["fit_seconds"]["baselines"])
            / (before["fit_seconds"]["train"] + before["fit_seconds"]["baselines"]),
            3,
        ),
        "noop_median_ratio": round(now["noop_repro_seconds"]["median"] / before["noop_repro_seconds"]["median"], 3)
        if "median" in now["noop_repro_seconds"] and "median" in before["noop_repro_seconds"]
        else None,
    }


def stage_machine(repo: Path) -> dict:
    """The machine record (CPU family, model and caches tell apart two runs' last digits), with the thread pools
    the stages use (`train.threads`), not this process's."""
    import yaml

    threads = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))["train"]["threads"]
    return machine(threads) | {"tf_threads": {"intra_op": threads, "inter_op": threads}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "benchmarks.json")
    parser.add_argument("--repeats", type=int, default=5, help="no-op `dvc repro` repetitions after a warm-up")
    parser.add_argument("--against", metavar="REVISION", help="also measure this commit, right after, for ratios")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="run in DIR (new) and keep it: the copy's "
        "dvc.lock, results, DVC cache, mlflow.db and repro.log stay there",
    )
    args = parser.parse_args()
    against = commit(REPO, args.against) if args.against else None  # a typo fails now, not after the first run
    if args.keep is not None and args.keep.exists():
        parser.error(f"--keep {args.keep}: already exists; name a new folder")
    result = measure(REPO, args.repeats, keep=args.keep) | {"machine": stage_machine(REPO)}
    extra = {}
    if against:
        before = measure(REPO, args.repeats, against)
        extra = {"pipeline_before": before, "pipeline_change": compared(result, before)}
    # A run without --against leaves no comparison behind that no longer describes "pipeline".
    merge_into(args.out, {"pipeline": result} | extra, drop=("pipeline_before", "pipeline_change"))
    for label, entry in [("now", result), *([("before", extra["pipeline_before"])] if extra else [])]:
        kinds = ", ".join(f"{name} {k['mean']:.1f} s" for name, k in entry["seconds_per_stage_kind"].items())
        print(
            f"[{label}: {entry['revision']}] from-scratch dvc repro: {entry['wall_seconds']:.0f} s for "
            f"{entry['fit_seconds']['total']:.0f} s of fits ({100 * entry['overhead_share']:.0f}% overhead; "
            f"target <= 30%)\nper stage: {kinds}\n"
            f"no-op dvc repro: median {entry['noop_repro_seconds'].get('median', float('nan')):.2f} s "
            "(target <= 2 s)"
        )
    if extra:
        print(f"ratios now/before: {extra['pipeline_change']}")


if __name__ == "__main__":
    main()
