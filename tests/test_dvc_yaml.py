"""dvc.yaml against params.yaml: the wiring DVC itself does not check. Reads both files, writes nothing."""

import itertools
from pathlib import Path

import yaml

from filterlab.config.params import load_section, read_params
from filterlab.config.sections import TrainParams

ROOT = Path(__file__).resolve().parents[1]


def grid_variants() -> set[str]:
    grid = load_section(read_params(ROOT / "params.yaml"), "train", TrainParams).grid
    return {f"f{f}_k{k}_s{s}" for f, k, s in itertools.product(grid.filters, grid.kernel_size, grid.stride)}


def test_top_level_plots_overlay_exactly_the_grid_variants():
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    assert pipeline["plots"], "dvc.yaml has no top-level plots"
    for plot in pipeline["plots"]:
        (name, spec), = plot.items()
        plotted = {Path(path).stem for path in spec["y"]}
        drift = sorted(plotted ^ grid_variants())
        assert plotted == grid_variants(), f"plot {name} lists {drift} out of step with train.grid"


def test_grid_params_are_not_a_dependency_of_the_train_stages():
    # Depending on train.grid would retrain every variant whenever one value is added.
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name in ("train", "filters"):
        params = stages[name]["params"]
        assert "train" not in params and not any(str(p).startswith("train.grid") for p in params), name
        assert set(stages[name]["matrix"]) == {"filters", "kernel_size", "stride"}
