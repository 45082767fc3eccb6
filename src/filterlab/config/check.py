"""Every section of params.yaml checked at once, for the `validate` stage; reads a mapping, writes nothing.

DVC removes a stage's outputs before it runs the stage's command, so a parameter that a
stage rejects would already have cost that stage's last good outputs. The `validate`
stage runs this first (every other stage depends on its stamp), so bad params stop
`dvc repro` before any output is touched. `STAMP` is what it writes: it describes the
schema that was checked and never the values, so a valid change to params.yaml leaves
its bytes alone and re-runs only the stages whose own params changed.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

from filterlab.config import sections
from filterlab.config.geometry import RECOVERY_SHAPE
from filterlab.config.params import load_numerics, load_section, load_seed

SECTIONS: Mapping[str, type] = {
    "data": sections.DataParams,
    "prepare": sections.PrepareParams,
    "train": sections.TrainParams,
    "baselines": sections.BaselinesParams,
    "figures": sections.FiguresParams,
    "filters": sections.FiltersParams,
    "probes": sections.ProbesParams,
    "report": sections.ReportParams,
}


def check_all(params: Mapping[str, Any]) -> None:
    """Raise the first ParamError any stage would raise on `params`, in params.yaml's order.

    `stage.open_params` has already refused unknown top-level sections; kernel names are
    checked against the bank here too, because the baselines and probes stages would
    otherwise find a typo only after DVC removed their outputs.
    """
    load_seed(params)
    load_numerics(params)
    loaded = {name: load_section(params, name, cls) for name, cls in SECTIONS.items()}
    from filterlab.kernels import bank  # NumPy: imported after the stage pinned the numeric path

    bank.select(loaded["baselines"].kernels, "baselines.kernels")
    bank.select(loaded["probes"].recovery.kernels, "probes.recovery.kernels", shape=RECOVERY_SHAPE)


def _fields(cls: type) -> str:
    parts = []
    for field in dataclasses.fields(cls):
        nested = field.type if dataclasses.is_dataclass(field.type) else None
        parts.append(f"{field.name}({_fields(nested)})" if nested else field.name)
    return ", ".join(parts)


def stamp() -> str:
    """The validate stage's output: the checked schema, one line per section, no values."""
    lines = ["params.yaml checked by filterlab.config.check; sections and keys:", "seed", "numerics"]
    lines += [f"{name}: {_fields(cls)}" for name, cls in SECTIONS.items()]
    return "\n".join(lines) + "\n"
