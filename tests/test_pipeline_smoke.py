"""The whole `dvc repro` on a temp copy of the repo with the tiny params preset (bundled data, one variant, 1 epoch).

Proves on every test run that the stages fit together as dvc.yaml wires them: every
stage runs, the report exists, a second repro does nothing, `dvc plots show` renders
the training curves. Slow-marked, because they re-run the pipeline: `dvc metrics diff`
across two commits with different params, and `dvc exp run -S`.
"""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import TINY_VARIANT as VARIANT
from helpers import repo_copy

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGES = ("download", "prepare", "baselines", "train@", "filters@", "log_figures", "probes", "explorer", "report")


def sh(command: list[str], cwd: Path, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A committed temp copy of the project's files after one full `dvc repro`; yields (path, env)."""
    copy = tmp_path_factory.mktemp("smoke") / "repo"
    env = repo_copy(copy)
    repro = sh(["dvc", "repro"], copy, env, timeout=1500)
    sh(["git", "add", "-A"], copy, env)
    sh(["git", "commit", "-q", "-m", "first run"], copy, env)
    return copy, env, repro.stdout


def test_every_stage_runs_and_writes_its_outputs(repo):
    copy, env, _ = repo
    lock = yaml.safe_load((copy / "dvc.lock").read_text())["stages"]
    for stage in STAGES:
        assert any(name == stage or (stage.endswith("@") and name.startswith(stage)) for name in lock), stage
    for path in (
        "reports/index.html",
        "reports/explorer.html",
        "reports/summary.md",
        "reports/details/data.json",
        "reports/metrics/baselines/family-laplacian.json",
        "reports/details/baselines.json",
        "reports/metrics/train/f4_k3_s2.json",
        "reports/metrics/filters/f4_k3_s2.json",
        "reports/details/probes.json",
        "models/f4_k3_s2/model.keras",
        "reports/plots/history.csv",
        "reports/figures/filters/f4_k3_s2/init_vs_learned.png",
        "reports/figures/filters/f4_k3_s2/learned_vs_classic.png",
    ):
        assert (copy / path).is_file(), path
    train = json.loads((copy / "reports/metrics/train/f4_k3_s2.json").read_text())
    assert train["ci95_low"] < train["accuracy"] < train["ci95_high"] and 0.1 < train["accuracy"] <= 1
    page = (copy / "reports/index.html").read_text()
    assert "bundled-note" in page and "f4_k3_s2" in page and "not run" not in page


def test_second_repro_does_nothing_and_status_is_clean(repo):
    copy, env, _ = repo
    again = sh(["dvc", "repro"], copy, env)
    assert "Running stage" not in again.stdout
    status = sh(["dvc", "status"], copy, env)
    assert "up to date" in status.stdout, status.stdout


def test_plots_show_colours_each_variant_and_renders_offline(repo):
    copy, env, _ = repo
    shown = sh(["dvc", "plots", "show", "--json"], copy, env)
    assert "reports/plots/history.csv" in shown.stdout and '"field": "variant"' in shown.stdout
    sh(["dvc", "plots", "show", "-o", str(copy.parent / "plots")], copy, env)
    page = (copy.parent / "plots" / "index.html").read_text()
    # Vega, Vega-Lite and vega-embed come inlined from .dvc/plots/offline.html: no script from a CDN.
    assert "<script src=" not in page and "vegaEmbed" in page and "f4_k3_s2" in page


def test_metrics_show_fits_a_terminal(repo):
    """One row per model, the same short columns for variants and baselines; widths depend on names, not on
    how many variants there are, so the tiny grid measures what the default grid prints."""
    copy, env, _ = repo
    table = sh(["dvc", "metrics", "show"], copy, env).stdout
    width = max(len(line) for line in table.splitlines())
    assert width <= 200, table
    assert table.splitlines()[0].split()[:2] == ["Path", "accuracy"]


def test_mlflow_runs_have_true_durations_and_unique_names(repo):
    from mlflow.tracking import MlflowClient

    copy, env, _ = repo
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert runs and len({run.info.run_name for run in runs}) == len(runs)
    for run in runs:
        duration = (run.info.end_time - run.info.start_time) / 1000
        # The log_figures stage adds its images later without reopening the run, so the run lasts as long as training.
        assert 0 < run.data.metrics["fit_seconds"] <= duration < run.data.metrics["fit_seconds"] + 30, duration
        history = client.get_metric_history(run.info.run_id, "epoch_seconds")
        assert len(history) == 1 and history[0].value <= run.data.metrics["fit_seconds"]  # the tiny preset: 1 epoch
        assert "conv1_filters" in str(client.list_artifacts(run.info.run_id, "images"))


def readme_recipes() -> list[str]:
    """The terminal recipes the README promises fit 120 columns, between its two markers."""
    text = (ROOT / "README.md").read_text()
    block = text[text.index("<!-- exp show recipes") : text.index("<!-- end of exp show recipes -->")]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.startswith(("dvc ", "make "))]


def test_the_readmes_terminal_recipes_fit_120_columns(repo):
    """Each recipe on this pipeline, with the default grid's best variant swapped for the tiny grid's one; the
    recipes name no per-variant pattern, so their width does not grow with the grid."""
    import shlex

    copy, env, _ = repo
    recipes = readme_recipes()
    assert len(recipes) >= 4 and any(r.startswith("dvc exp show") for r in recipes)
    wide = {**env, "COLUMNS": "1000"}  # no truncation: measure what the table needs
    for recipe in recipes:
        command = shlex.split(recipe.replace("f8_k5_s1", VARIANT))
        if command[:2] == ["make", "compare"]:
            command = [sys.executable, "-m", "filterlab.compare", *(a.split("=", 1)[1] for a in command[2:])]
        shown = sh(command, copy, wide).stdout
        assert shown.strip() or "metrics diff" in recipe, recipe  # a diff against this very commit is empty
        width = max((len(line.rstrip()) for line in shown.splitlines()), default=0)
        assert width <= 120, f"{recipe}: {width} columns\n{shown}"
        if "exp show" in recipe:
            assert "train.epochs" in shown or "epochs" in shown, shown


def _hashes(copy: Path) -> dict[str, str]:
    """sha256 of every output the pipeline writes, byte for byte: none of them holds a duration."""
    outputs = (p for folder in ("data", "models", "reports") for p in (copy / folder).rglob("*") if p.is_file())
    return {
        path.relative_to(copy).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(outputs)
    }


def test_forced_rerun_writes_byte_identical_outputs_and_leaves_git_clean(repo):
    copy, env, _ = repo
    before, lock = _hashes(copy), (copy / "dvc.lock").read_bytes()
    sh(["dvc", "repro", "-f"], copy, env, timeout=1500)
    after = _hashes(copy)
    assert before.keys() == after.keys()
    changed = sorted(path for path in before if before[path] != after[path])
    assert not changed, f"forced re-run changed {changed}"
    assert (copy / "dvc.lock").read_bytes() == lock
    assert sh(["git", "status", "--porcelain"], copy, env).stdout == ""


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
    assert "reports/metrics/train/f4_k3_s2.json" in metrics_diff and "accuracy" in metrics_diff


@pytest.mark.slow
def test_exp_run_with_a_set_param_retrains_and_is_listed(repo):
    copy, env, _ = repo
    run = sh(["dvc", "exp", "run", "-S", "train.epochs=2", "-n", "two-epochs"], copy, env, timeout=1500)
    assert "Running stage 'train@4-3-2'" in run.stdout
    shown = json.loads(sh(["dvc", "exp", "show", "--json"], copy, env).stdout)
    assert "two-epochs" in json.dumps(shown)
    details = json.loads((copy / f"reports/details/train/{VARIANT}.json").read_text())
    assert details["epochs"] == 2
