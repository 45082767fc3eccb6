"""One place per knob: a params section's fields reach dvc.yaml's `params:` for every stage that loads it, and
a new field needs params.yaml, the dataclass and dvc.yaml only (the loader and the MLflow params follow).

Reads pipeline/*.py (to see which sections each stage loads) and dvc.yaml; imports the train stage module."""

import ast
import dataclasses
from pathlib import Path

import pytest
import yaml

from filterlab.config import sections
from filterlab.config.params import load_section
from filterlab.validate import SECTIONS
from helpers import ROOT, real_params, with_overrides

# Fields a stage deliberately leaves out of its `params:`, with the reason; everything else must be listed.
NOT_DEPENDED_ON = {
    ("train", "train"): {"grid"},  # the matrix gives each train@ its variant: a new grid value trains only itself
    ("baselines", "train"): {"grid", "seeds"},  # baselines train once, on no grid variant
}
# Stages that read only some fields of a section they load (and must list exactly those).
READS_ONLY = {
    ("log_figures", "train"): {"grid"},
    ("explorer", "train"): {"grid"},
    ("explorer", "baselines"): {"kernels"},
    ("explorer", "figures"): {"colormap"},
}


def loaded_sections(stage_file: Path) -> set[str]:
    """The sections a stage module loads: the string argument of every `load_section(params, "name", Cls)`."""
    found = set()
    for node in ast.walk(ast.parse(stage_file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "load_section" and len(node.args) >= 2:
            found.add(node.args[1].value)
    return found


def missing_params(dvc_stages: dict, classes: dict[str, type]) -> list[str]:
    """`stage: section.field` for each field a stage loads but neither lists nor deliberately leaves out."""
    missing = []
    for stage_name, definition in dvc_stages.items():
        stage_file = ROOT / "pipeline" / f"{stage_name}.py"
        if not stage_file.exists():
            continue
        listed = set(definition.get("params") or [])
        for section_name in sorted(loaded_sections(stage_file)):
            if section_name in listed:
                continue
            skipped = NOT_DEPENDED_ON.get((stage_name, section_name), set())
            read = READS_ONLY.get((stage_name, section_name))
            for field in dataclasses.fields(classes[section_name]):
                key = f"{section_name}.{field.name}"
                needed = field.name in read if read is not None else field.name not in skipped
                if needed and key not in listed:
                    missing.append(f"{stage_name}: {key}")
    return missing


def dvc_stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def test_every_field_a_stage_loads_is_in_its_dvc_params():
    assert loaded_sections(ROOT / "pipeline" / "train.py") == {"train"}
    assert missing_params(dvc_stages(), dict(SECTIONS)) == []


def test_a_new_train_knob_needs_params_yaml_the_dataclass_and_dvc_yaml_only():
    fields = [(field.name, field.type, field) for field in dataclasses.fields(sections.TrainParams)]
    knob = dataclasses.field(metadata={"allowed": "a number in [0, 1]", "check": lambda value: 0 <= value <= 1})
    with_knob = dataclasses.make_dataclass("TrainParams", [*fields, ("label_smoothing", float, knob)], frozen=True)
    classes = {**SECTIONS, "train": with_knob}

    # 1. dvc.yaml: the test names exactly the stages whose `params:` lack it.
    assert missing_params(dvc_stages(), classes) == ["baselines: train.label_smoothing", "train: train.label_smoothing"]
    # 2. params.yaml: the loader checks and reads it with no other change.
    params = with_overrides(real_params(), {"train.label_smoothing": 0.1})
    loaded = load_section(params, "train", with_knob)
    assert loaded.label_smoothing == 0.1
    with pytest.raises(Exception, match=r"train.label_smoothing: 2 is out of range; allowed: a number in \[0, 1\]"):
        load_section(with_overrides(params, {"train.label_smoothing": 2}), "train", with_knob)
    # 3. The train stage (and its replay) logs it to MLflow with the other settings, from the dataclass's fields.
    from filterlab.config.geometry import VariantSpec
    from filterlab.training import records

    assert records.run_params(VariantSpec(8, 3, 1), loaded, 42)["label_smoothing"] == 0.1
