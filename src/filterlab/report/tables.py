"""The report's tables and headline sentences, from `Results`; writes nothing.

The HTML page (`filterlab.report.page`) and the Markdown summary (`filterlab.report.summary`)
show the same tables, so both documents always agree.
"""

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from filterlab.report.collected import NOT_RUN, Model, Results, Variant, figure_choice, fmt, interval, pct

TIED = "tied with best"


@dataclass(frozen=True)
class Table:
    """Cells as shown, plus a sort key per cell (numbers sort as numbers in the HTML)."""

    headers: tuple[str, ...]
    rows: tuple[tuple[tuple[str, float | str], ...], ...]


def _versus(model: Model, best_name: str) -> tuple[str, float]:
    if model.name == best_name:
        return "best", 1.0
    if model.tied_with_best is None:
        return "–", -math.inf
    verdict = TIED if model.tied_with_best else "below best"
    # _compare sets p_value whenever tied_with_best is set.
    return f"{verdict} (p = {model.p_value:.2g})", cast(float, model.p_value)


def _number(value: float | None, digits: int = 3) -> tuple[str, float]:
    return (f"{value:.{digits}f}", value) if value is not None else ("–", -math.inf)


def variant_table(results: Results) -> Table:
    rows: list[tuple[tuple[str, float | str], ...]] = []
    for v in results.variants:
        sim = v.similarity or {}
        similarity = [_number(sim.get(moment)) for moment in ("init", "learned", "chance")]
        if v.similarity is None:
            similarity = [(v.similarity_note, -math.inf), ("–", -math.inf), ("–", -math.inf)]
        # The answer first: on a phone the name and accuracy columns are the ones on screen.
        rows.append(
            (
                (v.name, v.name),
                (pct(v.test_accuracy), v.test_accuracy),
                (interval(v), v.ci95_low),
                _versus(v, results.best.name),
                (str(v.filters), v.filters),
                (f"{v.kernel_size}x{v.kernel_size}", v.kernel_size),
                (str(v.stride), v.stride),
                (fmt(v.params_count), v.params_count or 0),
                *similarity,
            )
        )
    headers: tuple[str, ...] = (
        "variant",
        "test accuracy",
        "95% interval",
        "vs best",
        "filters",
        "kernel",
        "stride",
        "params",
        "similarity init",
        "similarity learned",
        "chance",
    )
    if any(v.seed_mean is not None for v in results.variants):  # train.seeds > 1
        headers += ("across seeds",)
        rows = [row + (_across(v),) for row, v in zip(rows, results.variants, strict=True)]
    return Table(headers, tuple(rows))


def _across(v: Variant) -> tuple[str, float]:
    if v.seed_mean is None:
        return "–", -math.inf
    return f"{100 * v.seed_mean:.1f} ± {100 * cast(float, v.seed_sd):.1f}% ({v.seeds} seeds)", v.seed_mean


def baseline_table(results: Results) -> Table | None:
    if results.baselines is None:
        return None
    rows = tuple(
        (
            (b.name, b.name),
            (b.kind, b.kind),
            (fmt(b.n_kernels), b.n_kernels or 0),
            (pct(b.test_accuracy), b.test_accuracy),
            (interval(b), b.ci95_low),
            _versus(b, results.best.name),
            (fmt(b.params_count), b.params_count or 0),
        )
        for b in results.baselines
    )
    return Table(("baseline", "kind", "kernels", "test accuracy", "95% interval", "vs best variant", "params"), rows)


def classic_table(results: Results) -> Table | None:
    """Learned vs classic, per comparable variant: init → learned against chance, and what the filters became."""
    if not results.filters:
        return None
    rows = []
    for name, report in results.filters.items():
        chance, shift = report["chance"], report["shift"]
        nearest = Counter(entry["learned"]["kernel"] for entry in report["per_filter"]).most_common(3)
        rows.append(
            (
                (name, name),
                _number(report["similarity"]["init"]["mean"]),
                _number(report["similarity"]["learned"]["mean"]),
                _number(chance["mean"]),
                _number(chance["p95"]),
                _number(shift["effect_size"], 1),
                (pct(shift["above_chance_p95"]), shift["above_chance_p95"]),
                (", ".join(f"{kernel} ×{count}" for kernel, count in nearest), nearest[0][0] if nearest else ""),
            )
        )
    return Table(
        (
            "variant",
            "init",
            "learned",
            "chance mean",
            "chance 95th pct",
            "effect size (chance SDs)",
            "filters above chance 95th",
            "most frequent nearest kernels",
        ),
        tuple(rows),
    )


def probe_tables(probes: Mapping[str, Any]) -> list[tuple[str, Table]]:
    """The three probes as short human tables: what was trained, what came out."""
    single, peak, recovery = probes["single_image"], probes["peak"], probes["recovery"]
    tables = [
        (
            "Single image: 28x28 filters trained on one digit",
            Table(
                ("result", "value"),
                (
                    (("filters", ""), (fmt(len(single["corr_learned"])), 0)),
                    (("training image (index in the train split)", ""), (fmt(single["image_index"]), 0)),
                    (
                        ("mean |Pearson r| with the digit, init → learned", ""),
                        (f"{single['abs_corr_init_mean']:.3f} → {single['abs_corr_learned_mean']:.4f}", 0),
                    ),
                    (("probability of its own digit after training", ""), (f"{single['digit_probability']:.3f}", 0)),
                ),
            ),
        )
    ]
    learned = ", ".join(f"{value:+.2f}" for value in peak["learned_filter"])
    tables.append(
        (
            "Peak detector [-1, 1, -1]",
            Table(
                ("result", "value"),
                (
                    (("hand-applied: positive at points", ""), (", ".join(map(str, peak["positive_points"])), 0)),
                    (("hand-applied: max-pool lands on point", ""), (fmt(peak["max_pool_point"]), 0)),
                    (("learned Conv1D filter", ""), (f"[{learned}]", 0)),
                    (("cosine of the learned filter to [-1, 1, -1]", ""), (f"{peak['cosine_to_peak']:.4f}", 0)),
                    (("training accuracy of the kept detector", ""), (pct(peak["train_accuracy"]), 0)),
                ),
            ),
        )
    )
    rows = tuple(
        (
            (name, name),
            (fmt(entry["max_abs_error"]), entry["max_abs_error"]),
            (fmt(entry["max_abs_error_unflipped"]), entry["max_abs_error_unflipped"]),
            (fmt(entry["within_target"]), 0),
        )
        for name, entry in recovery.items()
        if isinstance(entry, dict)
    )
    tables.append(
        (
            "Kernel recovery by regression",
            Table(
                ("kernel", "max |error| (Keras layout)", "max |error| against the unflipped kernel", "within 1e-3"),
                rows,
            ),
        )
    )
    return tables


def headlines(results: Results) -> list[str]:
    best = results.best
    lines = [cast(str, data_line(results))] if data_line(results) else []
    tied = [v.name for v in results.variants[1:] if v.tied_with_best]
    lines.append(
        f"Best learned variant: {best.name}, {pct(best.test_accuracy)} test accuracy (95% interval "
        f"{interval(best)}); {len(tied)} of the other {len(results.variants) - 1} variants are statistically "
        "tied with it (exact McNemar test on the same test digits, p ≥ 0.05)."
    )
    if results.baselines:
        top = results.baselines[0]
        verdict = "statistically tied with" if top.tied_with_best else "different from"
        lines.append(
            f"Best baseline: {top.name}, {pct(top.test_accuracy)} ({interval(top)}), {verdict} the best "
            f"learned variant (p = {fmt(top.p_value, 2)})."
        )
    else:
        lines.append(f"Baselines: {NOT_RUN}.")
    if results.probes is None:
        lines.append(f"Probes: {NOT_RUN}.")
    return lines


def data_line(results: Results) -> str | None:
    counts = (results.data or {}).get("counts")
    if not isinstance(counts, dict) or not all(isinstance(counts.get(s), dict) for s in ("train", "val", "test")):
        return None
    totals = [fmt(counts[split].get("total")) for split in ("train", "val", "test")]
    split = cast("Mapping[str, Any]", results.data).get("test_split")  # counts came from it, so not None
    ending = f" (test: {split})." if split else "."
    return f"Images: {totals[0]} train, {totals[1]} validation, {totals[2]} test{ending}"


def figure_sections(results: Results, available: list[str]) -> list[tuple[str, list[str]]]:
    """(caption, figure paths) per section; an empty list means the figure is missing."""
    chosen = figure_choice(results, available)
    return [
        ("Learned filters beside their nearest classic kernels", chosen["classic"]),
        (f"Best variant {results.best.name}: filters at init and learned, and epoch by epoch", chosen["best"]),
        *(
            [(f"Worst variant {results.worst.name}: filters at init and learned, and epoch by epoch", chosen["worst"])]
            if len(results.variants) > 1
            else []
        ),
        ("Classic kernels applied to one digit per class", chosen["baselines"]),
        ("Probe experiments", chosen["probes"]),
    ]
