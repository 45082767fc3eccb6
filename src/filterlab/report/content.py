"""Comparison report, data side: metric payloads in, `Results` and the Markdown summary out.

Reads nothing from disk itself: the `report` stage hands over every JSON under
reports/metrics/ as {relative path: payload} and the list of figure paths. The
training grid decides which variants belong in the report, so metrics left behind by
a variant removed from params.yaml are never shown as current. Train metrics are
required; baselines, filters and probes metrics are optional and show as "not run".
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from filterlab.config.sections import GridParams
from filterlab.core.errors import DataError

TRAIN_KEYS = (
    "test_accuracy", "test_loss", "train_seconds", "params_count", "epochs", "filters", "kernel_size", "stride",
)
NOT_RUN = "not run"
BUNDLED_NOTE = (
    "Trained on the bundled 5,000-digit MNIST subset (no MNIST mirror was used): "
    "accuracies are lower than on full MNIST and not comparable with published numbers."
)


@dataclass(frozen=True)
class Variant:
    name: str
    filters: int
    kernel_size: int
    stride: int
    params_count: int
    test_accuracy: float
    test_loss: float
    train_seconds: float
    epochs: int
    data_source: str
    similarity: float | None  # mean learned filter↔classic-kernel similarity; None with `similarity_note`
    similarity_note: str


@dataclass(frozen=True)
class Results:
    title: str
    data_source: str
    data: Mapping[str, Any] | None
    variants: tuple[Variant, ...]  # best test accuracy first
    baselines: Mapping[str, Mapping[str, Any]] | None
    probes: Mapping[str, Any] | None
    warnings: tuple[str, ...]

    @property
    def best(self) -> Variant:
        return self.variants[0]

    @property
    def worst(self) -> Variant:
        return self.variants[-1]


def grid_variants(grid: GridParams) -> list[str]:
    return [variant.name for variant in grid.variants()]


def collect(title: str, grid: GridParams, metrics: Mapping[str, Any]) -> Results:
    """Check and join the metric payloads (keys: paths relative to reports/metrics)."""
    variants = [_variant(name, metrics) for name in grid_variants(grid)]
    variants.sort(key=lambda v: (-v.test_accuracy, v.name))
    data = metrics.get("data.json")
    sources = {v.data_source for v in variants}
    declared = data.get("source") if isinstance(data, Mapping) else None
    warnings = []
    if len(sources) > 1:
        warnings.append(f"variants were trained on different data sources: {', '.join(sorted(sources))}")
    if declared is not None and sources != {declared}:
        warnings.append(f"data.json says source {declared!r} but training used {', '.join(sorted(sources))}")
    return Results(
        title=title,
        data_source=declared if declared is not None else ", ".join(sorted(sources)),
        data=data,
        variants=tuple(variants),
        baselines=_baselines(metrics.get("baselines.json")),
        probes=metrics.get("probes.json"),
        warnings=tuple(warnings),
    )


def is_bundled(results: Results) -> bool:
    return "bundled" in results.data_source


def _variant(name: str, metrics: Mapping[str, Any]) -> Variant:
    path = f"train/{name}.json"
    train = metrics.get(path)
    if train is None:
        raise DataError(f"reports/metrics/{path}: missing; the train stage of variant {name} has not run")
    missing = [key for key in TRAIN_KEYS if not isinstance(train.get(key), int | float) or isinstance(train[key], bool)]
    if missing:
        raise DataError(f"reports/metrics/{path}: missing or non-numeric {', '.join(missing)}")
    similarity, note = _similarity(metrics.get(f"filters/{name}.json"))
    return Variant(
        name=name,
        **{key: train[key] for key in TRAIN_KEYS},
        data_source=str(train.get("data_source", "unknown")),
        similarity=similarity,
        similarity_note=note,
    )


def _similarity(payload: Mapping[str, Any] | None) -> tuple[float | None, str]:
    if payload is None:
        return None, NOT_RUN
    if payload.get("comparable") is False:
        return None, "no bank kernel of this size"
    try:
        value = payload["similarity"]["learned"]["mean"]
    except (KeyError, TypeError):
        raise DataError("filters metrics: expected similarity.learned.mean") from None
    return (float(value), "") if value is not None else (None, "not comparable")


def _baselines(payload: Mapping[str, Any] | None) -> Mapping[str, Mapping[str, Any]] | None:
    if payload is None:
        return None
    entries = payload.get("baselines", payload)
    table = {name: entry for name, entry in entries.items() if isinstance(entry, Mapping)}
    broken = [name for name, entry in table.items() if not isinstance(entry.get("test_accuracy"), int | float)]
    if not table or broken:
        raise DataError(f"reports/metrics/baselines.json: no test_accuracy for {', '.join(broken) or 'any baseline'}")
    return table


def flatten(payload: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, scalar) rows of a nested payload, for showing probe results as they are."""
    if isinstance(payload, Mapping):
        rows = []
        for key, value in payload.items():
            rows += flatten(value, f"{prefix}.{key}" if prefix else str(key))
        return rows
    if isinstance(payload, list) and any(isinstance(item, Mapping | list) for item in payload):
        return [row for index, item in enumerate(payload) for row in flatten(item, f"{prefix}[{index}]")]
    return [(prefix, payload)]


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return ", ".join(fmt(v, digits) for v in value) if isinstance(value, list) else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return "nan" if math.isnan(value) else f"{value:.{digits}g}"


def pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def figure_choice(results: Results, available: Sequence[str]) -> dict[str, list[str]]:
    """Which figures (paths relative to reports/figures) each report section shows."""
    def under(folder: str, word: str = "") -> list[str]:
        return sorted(
            p for p in available if p.startswith(folder) and p.endswith(".png") and word in p.rsplit("/", 1)[-1]
        )

    return {
        "best": under(f"filters/{results.best.name}/", "init"),
        "worst": under(f"filters/{results.worst.name}/", "init") if len(results.variants) > 1 else [],
        "baselines": under("baselines/"),
        "probes": under("probes/"),
    }

