"""The team path, measured: a second clone restoring from the run-cache, and MLflow on PostgreSQL.

(a) wall time of a second clone's `dvc pull --run-cache && dvc repro --pull` against a from-scratch
    `dvc repro`, same machine, same run, both on the SHRUNK pipeline (tests/helpers.py's TINY
    params: bundled data, one variant, 1 epoch) in temp copies, through a directory remote;
(b) MLflow's share of fit time when the train loop logs to `mlflow server` on PostgreSQL against
    a local sqlite store, arms interleaved.
Starts a throwaway PostgreSQL and `mlflow server` on 127.0.0.1 (tests/team.py, as `make test-team`
does); needs the team extras (`make bench-team` installs them). Adds the `team` entry to
reports/benchmarks.json (or --out) and leaves every other entry as it is.

    python benchmarks/team_setup.py            # about 4 minutes on 2 cores
"""

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO / "tests")]

from filterlab.config.params import load_numerics, load_section, load_seed, read_params
from filterlab.core import numerics

PARAMS = read_params(REPO / "params.yaml")
numerics.pin(load_numerics(PARAMS))  # before NumPy loads, as in run.py

import measure
from filterlab.config.geometry import VariantSpec
from filterlab.config.sections import TrainParams
from filterlab.core import determinism
from team import committed_copy, git_clone, mlflow_server_on, postgres_cluster, ran, sh

SHRUNK = "tiny params (tests/helpers.py TINY): bundled data, one variant f4_k3_s2, 1 epoch"


def restore_against_scratch(work: Path) -> dict:
    """(a): a from-scratch `dvc repro` in clone A, then `dvc pull --run-cache && dvc repro --pull` in fresh clone B."""
    a, env_a = committed_copy(work / "a")
    sh(["dvc", "remote", "add", "--local", "-d", "team", str(work / "remote")], a, env_a)
    scratch = measure.timed(lambda: sh(["dvc", "repro"], a, env_a))
    sh(["python", str(REPO / ".ci/push_run_cache.py"), "-r", "team"], a, env_a)  # `make push`
    b, env_b = git_clone(a, work / "b")
    sh(["dvc", "remote", "add", "--local", "-d", "team", str(work / "remote")], b, env_b)
    started = time.perf_counter()
    sh(["dvc", "pull", "--run-cache", "--allow-missing", "-r", "team"], b, env_b)
    pulled = time.perf_counter() - started
    repro = sh(["dvc", "repro", "--pull"], b, env_b)
    restored = time.perf_counter() - started
    assert ran(repro.stdout) == [], repro.stdout
    return {
        "pipeline": SHRUNK,
        "remote": "directory",
        "scratch_repro_seconds": round(scratch, 3),
        "pull_seconds": round(pulled, 3),
        "pull_and_repro_seconds": round(restored, 3),
        "restore_share_of_scratch": round(restored / scratch, 4),
        "stages_run_in_second_clone": 0,
    }


def logging_share(uris: dict[str, str], variant: VariantSpec, repeats: int) -> dict:
    """(b): the train stage's loop logging to each store in turn; tracking seconds over fit seconds."""
    import throughput  # loads TensorFlow

    seed, train = load_seed(PARAMS), load_section(PARAMS, "train", TrainParams)
    determinism.configure(seed, train.threads)
    warnings.filterwarnings("ignore", message="TensorFlow thread pools already started")
    data = measure.bundled_split(PARAMS)
    samples = {name: {"fit": [], "tracking": []} for name in uris}
    for round_ in range(repeats + 1):  # round 0 warms up each store (schema, experiment creation)
        for name, uri in uris.items():
            os.environ["MLFLOW_TRACKING_URI"] = uri  # read by tracking.start_run at each run
            fit_seconds, tracking_seconds = throughput.our_fit(data, variant, train, seed)
            if round_:
                samples[name]["fit"].append(fit_seconds)
                samples[name]["tracking"].append(tracking_seconds)
    os.environ.pop("MLFLOW_TRACKING_URI")
    result = {"variant": variant.name, "epochs": train.epochs, "data": "bundled subset, full train.epochs"}
    for name, arm in samples.items():
        shares = [t / f for t, f in zip(arm["tracking"], arm["fit"], strict=True)]
        result[name] = {
            "fit_seconds": measure.summary(arm["fit"]),
            "tracking_seconds": measure.summary(arm["tracking"]),
            "share_of_fit": measure.summary(shares),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "benchmarks.json")
    parser.add_argument("--repeats", type=int, default=3, help="fits per store after the warm-up")
    parser.add_argument("--variant", default="8,3,2", help="filters,kernel_size,stride of the fit to time")
    args = parser.parse_args()
    variant = VariantSpec(*(int(part) for part in args.variant.split(",")))
    results = {
        "machine": measure.machine(load_section(PARAMS, "train", TrainParams).threads),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with tempfile.TemporaryDirectory(prefix="filterlab-bench-team-") as temp:
        work = Path(temp)
        print("[1/2] from-scratch dvc repro, then a second clone's dvc pull --run-cache && dvc repro", flush=True)
        results["run_cache_restore"] = restore_against_scratch(work)
        print(f"[2/2] MLflow logging share of fit, {variant.name}: PostgreSQL server against sqlite", flush=True)
        (work / "server").mkdir()
        with postgres_cluster() as dsn, mlflow_server_on(dsn, work / "server") as url:
            uris = {"sqlite": f"sqlite:///{work / 'mlflow.db'}", "postgres_server": url}
            results["mlflow_logging_backends"] = logging_share(uris, variant, args.repeats)
    measure.merge_into(args.out, {"team": results})
    restore, logging = results["run_cache_restore"], results["mlflow_logging_backends"]
    print(
        f"  second clone pull+repro {restore['pull_and_repro_seconds']:.1f} s against scratch repro "
        f"{restore['scratch_repro_seconds']:.1f} s ({SHRUNK})"
    )
    for name in ("sqlite", "postgres_server"):
        print(f"  MLflow share of fit, {name}: {100 * logging[name]['share_of_fit']['median']:.2f}%")


if __name__ == "__main__":
    main()
