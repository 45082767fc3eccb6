"""Comparison report, data side: metrics and details payloads in, `Results` out; reads no files.

The `report` stage hands over every JSON under reports/metrics/ (the short numbers DVC
shows) and reports/details/ (sizes, test predictions, per-filter answers, probes), keyed
by path relative to each folder. The training grid decides which variants belong in the
report, so files left behind by a variant removed from params.yaml are never shown as
current. Train metrics are required; baselines, filters and probes are optional and show
as "not run". Every accuracy carries its 95 % Wilson interval, and every model is compared
with the best variant on the same test digits (exact McNemar test).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from filterlab.config.sections import GridParams
from filterlab.core.errors import DataError
from filterlab.training import stats

# The metrics files' keys (test split) and the fields they fill.
HEADLINE_KEYS = {"accuracy": "test_accuracy", "ci95_low": "ci95_low", "ci95_high": "ci95_high", "loss": "test_loss"}
NOT_RUN = "not run"
BUNDLED_NOTE = (
    "Trained on the bundled 5,000-digit MNIST subset (no MNIST mirror was used): "
    "accuracies are lower than on full MNIST and not comparable with published numbers."
)


@dataclass(frozen=True)
class Model:
    """A grid variant or a baseline: its headline numbers and how it compares with the best variant."""

    name: str
    test_accuracy: float
    ci95_low: float
    ci95_high: float
    test_loss: float
    params_count: int | None
    tied_with_best: bool | None  # None: no predictions to compare
    p_value: float | None


@dataclass(frozen=True)
class Variant(Model):
    filters: int = 0
    kernel_size: int = 0
    stride: int = 0
    similarity: Mapping[str, float] | None = None  # init, learned, chance means; None with `similarity_note`
    similarity_note: str = ""
    seeds: int = 1  # train.seeds: above 1, the test accuracy's mean and spread across seed replicates
    seed_mean: float | None = None
    seed_sd: float | None = None


@dataclass(frozen=True)
class Baseline(Model):
    kind: str = ""
    n_kernels: int | None = None


@dataclass(frozen=True)
class Results:
    title: str
    data_source: str
    data: Mapping[str, Any] | None
    variants: tuple[Variant, ...]  # best test accuracy first
    baselines: tuple[Baseline, ...] | None  # best first
    probes: Mapping[str, Any] | None
    filters: Mapping[str, Mapping[str, Any]]  # variant -> per-filter details, comparable variants only
    context: Mapping[str, Any]
    warnings: tuple[str, ...]
    verdict: tuple[str, ...] = ()  # the answer at a glance (filterlab.report.verdict), one line per kernel size

    @property
    def best(self) -> Variant:
        return self.variants[0]

    @property
    def worst(self) -> Variant:
        return self.variants[-1]


def grid_variants(grid: GridParams) -> list[str]:
    return [variant.name for variant in grid.variants()]


def _correct(details: Mapping[str, Any] | None) -> list[bool] | None:
    if not isinstance(details, Mapping) or not {"labels", "predicted"} <= set(details):
        return None
    return [a == b for a, b in zip(details["labels"], details["predicted"], strict=True)]


def correct_answers(grid: GridParams, details: Mapping[str, Any]) -> dict[str, list[bool]]:
    """Each grid variant's and baseline's right/wrong answer per test digit, where its details carry them."""
    answers = {spec.name: _correct(details.get(f"train/{spec.name}.json")) for spec in grid.variants()}
    baselines = details.get("baselines.json")
    if isinstance(baselines, Mapping) and isinstance(baselines.get("baselines"), Mapping):
        answers |= {name: _correct(extra) for name, extra in baselines["baselines"].items()}
    return {name: correct for name, correct in answers.items() if correct is not None}


def _headline(path: str, payload: Any) -> dict[str, Any]:
    if payload is None:
        raise DataError(f"reports/metrics/{path}: missing; run its stage first")
    bad = [
        key for key in HEADLINE_KEYS if not isinstance(payload.get(key), int | float) or isinstance(payload[key], bool)
    ]
    if bad:
        raise DataError(f"reports/metrics/{path}: missing or non-numeric {', '.join(bad)}")
    return {field: float(payload[key]) for key, field in HEADLINE_KEYS.items()}


def _spread(payload: Mapping[str, Any]) -> dict[str, Any]:
    if "accuracy_seed_mean" not in payload:
        return {}
    return {
        "seeds": int(payload["seeds"]),
        "seed_mean": float(payload["accuracy_seed_mean"]),
        "seed_sd": float(payload["accuracy_seed_sd"]),
    }


def _compare(best: list[bool] | None, mine: list[bool] | None) -> dict[str, Any]:
    if best is None or mine is None or len(best) != len(mine):
        return {"tied_with_best": None, "p_value": None}
    tied, p = stats.tied_with(best, mine)
    return {"tied_with_best": tied, "p_value": p}


def collect(
    title: str,
    grid: GridParams,
    metrics: Mapping[str, Any],
    details: Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
) -> Results:
    """Check and join the payloads (keys: paths relative to reports/metrics and reports/details)."""
    rows = []
    for spec in grid.variants():
        headline = _headline(f"train/{spec.name}.json", metrics.get(f"train/{spec.name}.json"))
        # _headline raised above unless this payload is present.
        spread = _spread(cast("Mapping[str, Any]", metrics.get(f"train/{spec.name}.json")))
        rows.append((spec, headline | spread, details.get(f"train/{spec.name}.json")))
    rows.sort(key=lambda row: (-row[1]["test_accuracy"], row[0].name))
    best_correct = _correct(rows[0][2])
    variants = []
    for spec, headline, extra in rows:
        similarity, note = _similarity(metrics.get(f"filters/{spec.name}.json"))
        variants.append(
            Variant(
                name=spec.name,
                **headline,
                params_count=(extra or {}).get("params"),
                **_compare(best_correct, _correct(extra)),
                filters=spec.filters,
                kernel_size=spec.kernel_size,
                stride=spec.stride,
                similarity=similarity,
                similarity_note=note,
            )
        )
    data = details.get("data.json")
    source = data.get("source", "unknown") if isinstance(data, Mapping) else "unknown"
    filters = {
        v.name: details[f"filters/{v.name}.json"]
        for v in variants
        if v.similarity is not None and f"filters/{v.name}.json" in details
    }
    return Results(
        title=title,
        data_source=source,
        data=data,
        variants=tuple(variants),
        baselines=_baselines(metrics, details.get("baselines.json"), best_correct),
        probes=details.get("probes.json"),
        filters=filters,
        context=dict(context or {}),
        warnings=(),
    )


def is_bundled(results: Results) -> bool:
    return "bundled" in results.data_source


def _similarity(payload: Mapping[str, Any] | None) -> tuple[Mapping[str, float] | None, str]:
    if payload is None:
        return None, NOT_RUN
    if not payload:
        return None, "no bank kernel of this size"
    try:
        return {moment: float(payload[f"similarity_{moment}"]) for moment in ("init", "learned", "chance")}, ""
    except (KeyError, TypeError, ValueError):
        raise DataError("filters metrics: expected similarity_init, similarity_learned, similarity_chance") from None


def _baselines(
    metrics: Mapping[str, Any], details: Mapping[str, Any] | None, best_correct: list[bool] | None
) -> tuple[Baseline, ...] | None:
    files = {path: payload for path, payload in metrics.items() if path.startswith("baselines/")}
    if not files or not isinstance(details, Mapping):
        return None
    baselines = []
    for name, extra in details.get("baselines", {}).items():
        path = f"baselines/{name.replace(':', '-')}.json"
        baselines.append(
            Baseline(
                name=name,
                **_headline(path, files.get(path)),
                params_count=extra.get("params"),
                **_compare(best_correct, _correct(extra)),
                kind=str(extra.get("kind", name)),
                n_kernels=extra.get("n_kernels"),
            )
        )
    return tuple(sorted(baselines, key=lambda b: (-b.test_accuracy, b.name)))


def fmt(value: Any, digits: int = 4) -> str:
    """A number as a person reads it: integers with separators, seeds and counts never in e-notation."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, int | float):
        return ", ".join(fmt(v, digits) for v in value) if isinstance(value, list) else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value):
        return "nan"
    if value == 0:
        return "0"
    return f"{value:.1e}" if abs(value) < 1e-3 else f"{value:.{digits}g}"


def pct(value: float) -> str:
    # Two decimals: on t10k the 95 % interval is about ±0.2 points, so the second decimal still carries signal.
    return f"{100 * value:.2f}%"


def interval(model: Model) -> str:
    return f"{100 * model.ci95_low:.2f}–{100 * model.ci95_high:.2f}%"


def figure_choice(results: Results, available: Sequence[str]) -> dict[str, list[str]]:
    """Which figures (paths relative to reports/figures) each report section shows."""

    def under(folder: str, word: str = "", suffix: str = ".png") -> list[str]:
        return sorted(
            p for p in available if p.startswith(folder) and p.endswith(suffix) and word in p.rsplit("/", 1)[-1]
        )

    def variant(name: str) -> list[str]:
        # Init against learned, and the epoch-by-epoch animation beside it.
        return under(f"filters/{name}/", "init") + under(f"filters/{name}/", "evolution", ".gif")

    return {
        "classic": [path for v in results.variants for path in under(f"filters/{v.name}/", "learned_vs_classic")][:3],
        "best": variant(results.best.name),
        "worst": variant(results.worst.name) if len(results.variants) > 1 else [],
        "baselines": under("baselines/"),
        "probes": under("probes/"),
    }
