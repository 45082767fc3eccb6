"""Every section of params.yaml checked at once, for the `validate` stage; reads a mapping, writes nothing.

DVC removes a stage's outputs before it runs the stage's command, so a parameter that a
stage rejects would already have cost that stage's last good outputs. The `validate`
stage runs this first (every other stage depends on its stamp), so bad params stop
`dvc repro` before any output is touched. `stamp()` is what it writes: it describes the
schema that was checked and never the values, so a valid change to params.yaml leaves
its bytes alone and re-runs only the stages whose own params changed.
"""

import dataclasses
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from filterlab.config import sections
from filterlab.config.geometry import RECOVERY_SHAPE
from filterlab.config.params import load_numerics, load_section, load_seed
from filterlab.core.errors import ParamError

if TYPE_CHECKING:  # typeshed's name for what dataclasses.fields accepts; no runtime module
    from _typeshed import DataclassInstance

# Above this many variants `dvc repro` alone takes long to plan and hours to train on one machine: a warning.
LARGE_GRID = 100

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

    `filterlab.config.sections.open_params` has already refused unknown top-level sections; kernel names are
    checked against the bank here too, because the baselines and probes stages would
    otherwise find a typo only after DVC removed their outputs.
    """
    load_seed(params)
    load_numerics(params)
    loaded: dict[str, Any] = {name: load_section(params, name, cls) for name, cls in SECTIONS.items()}
    from filterlab.kernels import bank  # NumPy: imported after the stage pinned the numeric path

    bank.select(loaded["baselines"].kernels, "baselines.kernels")
    bank.select(loaded["probes"].recovery.kernels, "probes.recovery.kernels", shape=RECOVERY_SHAPE)
    check_colormap(loaded["figures"].colormap)
    check_peak_probe(loaded["probes"].peak, available_memory())
    variants = len(loaded["train"].grid.variants())
    if variants > LARGE_GRID:
        print(
            f"WARNING: train.grid has {variants} variants (more than {LARGE_GRID}): one machine trains them one "
            "after another; see the README on running the grid on many machines",
            file=sys.stderr,
        )


def check_colormap(name: str) -> None:
    """The figure stages' colormap, against matplotlib's registry (a typo would fail only after DVC removed them)."""
    import matplotlib

    if name not in matplotlib.colormaps:
        diverging = ", ".join(n for n in ("RdBu_r", "coolwarm", "seismic", "bwr", "PiYG") if n in matplotlib.colormaps)
        raise ParamError("figures.colormap", f"{name!r} is not a matplotlib colormap (diverging ones: {diverging})")


def available_memory() -> int:
    """Bytes of memory this machine has available now (psutil), or all of it where psutil cannot tell."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except (ImportError, OSError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_peak_probe(peak: sections.PeakProbe, memory: int) -> None:
    """The peak probe's sequences must fit in half the available memory and be able to balance their classes."""
    from filterlab.probes import peak as probe

    need = probe.batch_bytes(peak.n_sequences, peak.sequence_length)
    if need > memory // 2:
        fits = max(1, (memory // 2) // probe.batch_bytes(1, peak.sequence_length))
        raise ParamError(
            "probes.peak.n_sequences",
            f"{peak.n_sequences} sequences of length {peak.sequence_length} "
            f"need about {need / 2**30:.1f} GiB at once, over half of the {memory / 2**30:.1f} GiB "
            f"available: at most {fits:,} here",
        )
    share = probe.share_without_peak(peak.sequence_length, peak.margin)
    if share < 1 / (8 * probe.MAX_BATCHES):
        raise ParamError(
            "probes.peak.sequence_length",
            f"{peak.sequence_length}: only {100 * share:.2f}% of random "
            f"sequences this long lack a peak above margin {peak.margin}, too few to balance the "
            "classes; use a shorter length (28 or less at the default margin)",
        )


def _fields(cls: "type[DataclassInstance] | DataclassInstance") -> str:
    parts = []
    for field in dataclasses.fields(cls):
        nested = field.type if dataclasses.is_dataclass(field.type) else None
        parts.append(f"{field.name}({_fields(nested)})" if nested else field.name)
    return ", ".join(parts)


def stamp() -> str:
    """The validate stage's output: the checked schema, one line per section, no values."""
    lines = ["params.yaml checked by filterlab.validate; sections and keys:", "seed", "numerics"]
    lines += [f"{name}: {_fields(cls)}" for name, cls in SECTIONS.items()]
    return "\n".join(lines) + "\n"
