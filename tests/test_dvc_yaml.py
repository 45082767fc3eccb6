"""dvc.yaml against params.yaml: the wiring DVC itself does not check. Reads both files, writes nothing."""

import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_top_level_plots_draw_the_long_history_one_colour_per_variant():
    # One long file with a `variant` column (the report stage writes it) instead of a list of
    # per-variant files that drifts from train.grid; the template colours by that column.
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    # A stage plot, not a plain out: still in git (cache: false), and the stage keeps its run-cache entry.
    (history,) = pipeline["stages"]["report"]["plots"]
    spec = history["reports/plots/history.csv"]
    assert spec["cache"] is False and spec["template"] == "by_variant" and spec["y"] == "val_accuracy"
    template = json.loads((ROOT / ".dvc/plots/by_variant.json").read_text())
    assert template["encoding"]["color"]["field"] == "variant"
    assert pipeline["plots"], "dvc.yaml has no top-level plots"
    for plot in pipeline["plots"]:
        ((name, spec),) = plot.items()
        assert spec["template"] == "by_variant", name
        assert list(spec["y"]) == ["reports/plots/history.csv"], name


def test_only_metrics_and_plots_are_uncached():
    # DVC saves no run-cache entry for a stage with any other `cache: false` out, and the team
    # remote and CI restore stages from the run-cache (README: Team setup).
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        for out in stage.get("outs", []):
            assert not (isinstance(out, dict) and next(iter(out.values())).get("cache") is False), (name, out)


def test_grid_params_are_not_a_dependency_of_the_train_stages():
    # Depending on train.grid would retrain every variant whenever one value is added.
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name in ("train", "filters"):
        params = stages[name]["params"]
        assert "train" not in params and not any(str(p).startswith("train.grid") for p in params), name
        assert set(stages[name]["matrix"]) == {"filters", "kernel_size", "stride"}
