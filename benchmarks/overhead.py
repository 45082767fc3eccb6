"""Benchmarks 2 and 3: a forced `dvc repro` of one train variant against its bare fit, and a no-op `dvc repro`.

Benchmark 2 works in a temp copy of the repo (git-tracked files only, its own MLflow store),
so it never touches this checkout's dvc.lock or metrics. Benchmark 3 times `dvc repro` in
this checkout, and only when `dvc status` says everything is up to date: a no-op by
construction, so it changes nothing.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import summary, timed


def stage_env(workdir: Path) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir / 'mlflow.db'}"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def _dvc(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )


def copy_repo(repo: Path, into: Path) -> Path:
    """The git-tracked files of `repo` in a fresh git repo under `into` (DVC needs git)."""
    target = into / "repo"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = repo / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for args in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-qm", "benchmark copy"],
    ):
        subprocess.run(["git", *args], cwd=target, check=True, capture_output=True)
    return target


def stage_overhead(repo: Path, stage: str, bare_fit_seconds: list[float], repeats: int) -> dict:
    """Wall time of `dvc repro -f -s <stage>` (process start, imports, data load, MLflow, saving, DVC)."""
    with tempfile.TemporaryDirectory(prefix="filterlab-bench-") as temp:
        copy = copy_repo(repo, Path(temp))
        env = stage_env(Path(temp))
        _dvc(["repro", "prepare"], copy, env)  # inputs of the stage; not timed
        _dvc(["repro", "-f", "-s", stage], copy, env)  # warm-up
        walls = [timed(lambda: _dvc(["repro", "-f", "-s", stage], copy, env)) for _ in range(repeats)]
    bare = sorted(bare_fit_seconds)[len(bare_fit_seconds) // 2]
    overheads = [wall - bare for wall in walls]
    return {
        "stage": stage,
        "stage_wall_seconds": summary(walls),
        "bare_fit_seconds_median": bare,
        "overhead_seconds": summary(overheads),
        "overhead_share_of_stage": summary([over / wall for over, wall in zip(overheads, walls, strict=True)]),
        "target": "<= 10% of the stage on full-size MNIST; on the bundled subset, the seconds",
    }


def noop_repro(repo: Path, repeats: int) -> dict:
    """Median of `repeats` no-op `dvc repro` runs on the built pipeline in `repo`."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    status = _dvc(["status"], repo, env).stdout
    if "up to date" not in status:
        return {
            "skipped": "the pipeline in this checkout is not fully built (`dvc status` is not clean); run `make repro`"
        }
    _dvc(["repro"], repo, env)  # warm-up: fills DVC's state database
    walls = [timed(lambda: _dvc(["repro"], repo, env)) for _ in range(repeats)]
    return {"seconds": summary(walls), "target": "<= 2 s"}
