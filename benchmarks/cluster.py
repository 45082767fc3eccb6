"""The grid fanned out to local Dask workers against a sequential `dvc repro` of the same grid, on this machine.

Both arms run one commit (a committed copy of this checkout's tracked files, params shrunk by --preset) in temp
clones, one after the other: (a) a plain `dvc repro`; (b) `python -m filterlab.cluster` on a loopback scheduler with
--workers `dask worker` processes, a directory remote and `mlflow server` on a throwaway PostgreSQL (tests/team.py,
as `make test-cluster` starts them), then the gather step, `dvc repro --pull`. Reports the wall-time ratio; each
task's overhead beside the stage it runs (process start, clone, configure, run-cache lookup, pull, push: the
seconds filterlab.cluster.workspace measures); and, from the measured task times, the wall time the same grid
would take on N workers (greedy list scheduling of each variant's train + filters chain, plus the upstream and
gather steps, which do not fan out). Adds the `cluster` entry to reports/benchmarks.json (or --out) and leaves
every other entry as it is. On 2 cores, 2 workers cap the gain at 2x.

    python benchmarks/cluster.py                  # the small grid: 4 variants, 2 epochs, bundled digits
    python benchmarks/cluster.py --preset tiny    # 2 variants, 1 epoch: checks that the script runs
    python benchmarks/cluster.py --preset full    # params.yaml as committed (full MNIST: hours on 2 cores)
"""

import argparse
import heapq
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "tests")]

import measure
from helpers import TINY
from team import committed_copy, dask_cluster, git_clone, mlflow_server_on, postgres_cluster, ran, sh
from whole_run import timed_repro

PRESETS = {
    "tiny": {**TINY, "train.grid": {"filters": [4], "kernel_size": [3], "stride": [1, 2]}},
    "small": {
        **TINY,
        "train.grid": {"filters": [8, 16], "kernel_size": [3, 5], "stride": [2]},
        "train.epochs": 2,
    },
    "full": {},
}
OVERHEAD_STEPS = ("process", "clone", "configure", "lookup", "pull", "push")
PROJECTED_WORKERS = (1, 2, 4, 8, 16, 32, 64)


def makespan(jobs: list[float], workers: int) -> float:
    """Wall seconds of `jobs` on `workers` workers, longest first, each to the first free worker."""
    free = [0.0] * workers
    for job in sorted(jobs, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + job)
    return max(free) if jobs else 0.0


def chains(tasks: dict[str, dict]) -> list[float]:
    """Each variant's train + filters task seconds as one job (filters waits for its train), the others alone."""
    total = {stage: sum(task["seconds"].values()) for stage, task in tasks.items()}
    jobs = []
    for stage, seconds in total.items():
        if stage.startswith("filters@"):
            continue
        follower = stage.replace("train@", "filters@") if stage.startswith("train@") else None
        jobs.append(seconds + total.get(follower, 0.0) if follower else seconds)
    return jobs


def median_steps(tasks: dict[str, dict]) -> dict[str, float]:
    return {
        step: round(statistics.median(task["seconds"].get(step, 0.0) for task in tasks.values()), 2)
        for step in (*OVERHEAD_STEPS, "repro")
    }


def measure_both(work: Path, preset: str, workers: int, cpu: int) -> dict:
    origin, _env = committed_copy(work / "origin", PRESETS[preset] or None)
    sequential, env = git_clone(origin, work / "sequential")
    with open(work / "sequential.log", "w", encoding="utf-8") as log:
        wall_sequential, stage_seconds, _peaks, _output = timed_repro(["dvc", "repro"], sequential, env, log)

    with postgres_cluster() as dsn, mlflow_server_on(dsn, work) as server:
        clone, env = git_clone(origin, work / "fanned")
        env["MLFLOW_TRACKING_URI"] = server
        sh(["dvc", "remote", "add", "--local", "-d", "team", str(work / "remote")], clone, env)
        with dask_cluster(work, env, workers=workers, cpu=cpu) as (address, _processes):
            summary_path = work / "summary.json"
            started = time.perf_counter()
            command = [
                sys.executable,
                "-m",
                "filterlab.cluster",
                "--scheduler",
                address,
                "--summary",
                str(summary_path),
            ]
            sh(command, clone, env, timeout=20000)
            fanned = time.perf_counter() - started
            started = time.perf_counter()
            gather = sh(["dvc", "repro", "--pull"], clone, env, timeout=20000)
            gathered = time.perf_counter() - started
    assert ran(gather.stdout) == ["explorer", "log_figures", "report"], gather.stdout
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    tasks = summary["tasks"]
    wall_cluster = fanned + gathered
    outside = fanned - summary["wall_seconds"]  # the submitter's own start, before its clock
    fixed = wall_cluster - makespan(chains(tasks), workers)  # upstream, planning, gather: what never fans out
    steps = median_steps(tasks)
    return {
        "preset": preset,
        "params": {key: value for key, value in PRESETS[preset].items()} or "params.yaml as committed",
        "workers": workers,
        "cpu_per_worker": cpu,
        "tasks": len(tasks),
        "sequential_wall_seconds": round(wall_sequential, 1),
        "fanned_out_wall_seconds": round(wall_cluster, 1),
        "fan_out_seconds": round(fanned, 1),
        "gather_seconds": round(gathered, 1),
        "submitter_start_seconds": round(outside, 1),
        "speedup": round(wall_sequential / wall_cluster, 3),
        "sequential_stage_seconds": {name: round(value, 2) for name, value in stage_seconds.items()},
        "task_median_seconds": steps,
        "task_overhead_median_seconds": round(sum(steps[step] for step in OVERHEAD_STEPS), 2),
        "task_seconds": {stage: task["seconds"] for stage, task in sorted(tasks.items())},
        "not_fanned_out_seconds": round(fixed, 1),
        "projected_wall_seconds": {str(n): round(fixed + makespan(chains(tasks), n), 1) for n in PROJECTED_WORKERS},
        "projection": "greedy list scheduling of the measured train+filters chains and the baselines and probes "
        "tasks on N workers, plus the seconds that do not fan out (upstream stages, planning, gather); "
        "ignores the remote's bandwidth and the run-cache transfers, which grow with N and the grid",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "benchmarks.json")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cpu", type=int, default=1, help="CPU each worker offers (params' train.threads per task)")
    parser.add_argument("--keep", type=Path, help="work in this new folder and keep it (clones, logs, summary)")
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True)
        result = measure_both(args.keep, args.preset, args.workers, args.cpu)
    else:
        with tempfile.TemporaryDirectory(prefix="filterlab-bench-cluster-") as temp:
            result = measure_both(Path(temp), args.preset, args.workers, args.cpu)
    measure.merge_into(args.out, {"cluster": result})
    print(
        f"[{args.preset}] sequential dvc repro {result['sequential_wall_seconds']:.0f} s; fanned out to "
        f"{args.workers} workers {result['fanned_out_wall_seconds']:.0f} s (gather "
        f"{result['gather_seconds']:.0f} s): {result['speedup']:.2f}x\n"
        f"per task, median: overhead {result['task_overhead_median_seconds']:.1f} s "
        f"({', '.join(f'{k} {v:.1f}' for k, v in result['task_median_seconds'].items())})\n"
        f"projected wall seconds by workers: {result['projected_wall_seconds']}"
    )


if __name__ == "__main__":
    main()
