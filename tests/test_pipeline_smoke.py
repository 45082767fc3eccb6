"""The whole `dvc repro` on a temp copy of the repo with shrunk params (bundled data, one variant, 1 epoch).

Proves on every test run that the stages fit together as dvc.yaml wires them: every
stage runs, the report exists, a second repro does nothing, `dvc plots show` renders
the training curves. Slow-marked, because they re-run the pipeline: `dvc metrics diff`
across two commits with different params, and `dvc exp run -S`.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGES = ("download", "prepare", "baselines", "train@", "filters@", "probes", "report")
VARIANT = "f4_k3_s2"


def shrink(params: dict) -> dict:
    params["data"]["source"] = "bundled"
    params["train"].update(grid={"filters": [4], "kernel_size": [3], "stride": [2]}, epochs=1, threads=1)
    params["baselines"]["kernels"] = ["sobel_x", "sobel_y", "laplacian_8"]
    probes = params["probes"]
    probes["single_image"].update(epochs=5)
    probes["peak"].update(n_sequences=200, epochs=2)
    probes["recovery"].update(kernels=["sobel_x"], n_images=16, epochs=5)
    return params


def sh(command: list[str], cwd: Path, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A committed temp copy of the project's files after one full `dvc repro`; yields (path, env)."""
    copy = tmp_path_factory.mktemp("smoke") / "repo"
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file() and not name.startswith(("data/", "models/", "reports/")):
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    params = shrink(yaml.safe_load((copy / "params.yaml").read_text()))
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # The top-level plots list the default grid's files; point them at the shrunk grid's one variant.
    pipeline = yaml.safe_load((copy / "dvc.yaml").read_text())
    for plot in pipeline["plots"]:
        (spec,) = plot.values()
        (field,) = set(spec["y"].values())
        spec["y"] = {f"reports/plots/train/{VARIANT}.csv": field}
    (copy / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "TF_CPP_MIN_LOG_LEVEL": "2",
           "MLFLOW_TRACKING_URI": f"sqlite:///{copy.parent / 'mlflow.db'}", "GIT_AUTHOR_NAME": "smoke",
           "GIT_AUTHOR_EMAIL": "smoke@example.invalid", "GIT_COMMITTER_NAME": "smoke",
           "GIT_COMMITTER_EMAIL": "smoke@example.invalid"}
    env.pop("FILTERLAB_SWEEP_ID", None)
    sh(["git", "init", "-q", "-b", "main"], copy, env)
    sh(["git", "add", "-A"], copy, env)
    sh(["git", "commit", "-q", "-m", "smoke"], copy, env)
    repro = sh(["dvc", "repro"], copy, env, timeout=1500)
    sh(["git", "add", "-A"], copy, env)
    sh(["git", "commit", "-q", "-m", "first run"], copy, env)
    return copy, env, repro.stdout


def test_every_stage_runs_and_writes_its_outputs(repo):
    copy, env, _ = repo
    lock = yaml.safe_load((copy / "dvc.lock").read_text())["stages"]
    for stage in STAGES:
        assert any(name == stage or (stage.endswith("@") and name.startswith(stage)) for name in lock), stage
    for path in ("reports/index.html", "reports/summary.md", "reports/metrics/data.json",
                 "reports/metrics/baselines.json",
                 "reports/metrics/train/f4_k3_s2.json", "reports/metrics/filters/f4_k3_s2.json",
                 "reports/metrics/probes.json", "models/f4_k3_s2/model.keras",
                 "reports/figures/filters/f4_k3_s2/init_vs_learned.png"):
        assert (copy / path).is_file(), path
    train = json.loads((copy / "reports/metrics/train/f4_k3_s2.json").read_text())
    assert train["data_source"] == "bundled" and 0.1 < train["test_accuracy"] <= 1
    page = (copy / "reports/index.html").read_text()
    assert "bundled-note" in page and "f4_k3_s2" in page and "not run" not in page


def test_second_repro_does_nothing_and_status_is_clean(repo):
    copy, env, _ = repo
    again = sh(["dvc", "repro"], copy, env)
    assert "Running stage" not in again.stdout
    status = sh(["dvc", "status"], copy, env)
    assert "up to date" in status.stdout, status.stdout


def test_plots_show_renders_every_variant_curve(repo):
    copy, env, _ = repo
    shown = sh(["dvc", "plots", "show", "--json"], copy, env)
    assert "reports/plots/train" in shown.stdout and "val_accuracy" in shown.stdout
    sh(["dvc", "plots", "show", "-o", str(copy.parent / "plots")], copy, env)
    assert (copy.parent / "plots" / "index.html").is_file()


@pytest.mark.slow
def test_metrics_diff_between_commits_shows_a_param_change(repo):
    copy, env, _ = repo
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["train"]["learning_rate"] = params["train"]["learning_rate"] * 2
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["dvc", "repro"], copy, env, timeout=1500)
    sh(["git", "add", "-A"], copy, env)
    sh(["git", "commit", "-q", "-m", "double the learning rate"], copy, env)
    params_diff = sh(["dvc", "params", "diff", "HEAD~1", "--md"], copy, env).stdout
    assert "train.learning_rate" in params_diff
    metrics_diff = sh(["dvc", "metrics", "diff", "HEAD~1", "--md"], copy, env).stdout
    assert "reports/metrics/train/f4_k3_s2.json" in metrics_diff and "test_accuracy" in metrics_diff


@pytest.mark.slow
def test_exp_run_with_a_set_param_retrains_and_is_listed(repo):
    copy, env, _ = repo
    run = sh(["dvc", "exp", "run", "-S", "train.epochs=2", "-n", "two-epochs"], copy, env, timeout=1500)
    assert "Running stage 'train@4-3-2'" in run.stdout
    shown = json.loads(sh(["dvc", "exp", "show", "--json"], copy, env).stdout)
    assert "two-epochs" in json.dumps(shown)
    train = json.loads((copy / f"reports/metrics/train/{VARIANT}.json").read_text())
    assert train["epochs"] == 2
