"""The report's tables, headline sentences and Markdown summary, from `Results`; writes nothing.

The HTML page (report_html) shows the same tables, so both documents always agree.
"""

import math
from dataclasses import dataclass

from filterlab.report.content import BUNDLED_NOTE, NOT_RUN, Results, figure_choice, flatten, fmt, is_bundled, pct


@dataclass(frozen=True)
class Table:
    """Cells as shown, plus a sort key per cell (numbers sort as numbers in the HTML)."""

    headers: tuple[str, ...]
    rows: tuple[tuple[tuple[str, float | str], ...], ...]


def variant_table(results: Results) -> Table:
    rows = []
    for v in results.variants:
        if v.similarity is not None:
            similarity = (fmt(v.similarity, 3), v.similarity)
        else:
            similarity = (v.similarity_note, -math.inf)
        rows.append((
            (v.name, v.name), (str(v.filters), v.filters), (f"{v.kernel_size}x{v.kernel_size}", v.kernel_size),
            (str(v.stride), v.stride), (fmt(v.params_count), v.params_count), (pct(v.test_accuracy), v.test_accuracy),
            (f"{v.train_seconds:.1f}", v.train_seconds), similarity,
        ))
    headers = ("variant", "filters", "kernel", "stride", "params", "test accuracy", "train seconds",
               "mean similarity to classic kernels (learned)")
    return Table(headers, tuple(rows))


def baseline_table(results: Results) -> Table | None:
    if results.baselines is None:
        return None
    rows = []
    ordered = sorted(results.baselines.items(), key=lambda item: -item[1]["test_accuracy"])
    for name, entry in ordered:
        count = entry.get("n_kernels")
        rows.append((
            (name, name), (str(entry.get("kind", "–")), str(entry.get("kind", ""))),
            (fmt(count), count if isinstance(count, int) else -math.inf),
            (pct(entry["test_accuracy"]), entry["test_accuracy"]),
            (fmt(entry.get("params_count")), entry.get("params_count") or -math.inf),
        ))
    return Table(("baseline", "kind", "kernels", "test accuracy", "params"), tuple(rows))


def data_line(results: Results) -> str | None:
    counts = (results.data or {}).get("counts")
    if not isinstance(counts, dict) or not all(isinstance(counts.get(s), dict) for s in ("train", "val", "test")):
        return None
    totals = [fmt(counts[split].get("total")) for split in ("train", "val", "test")]
    split = results.data.get("test_split")
    ending = f" (test: {split})." if split else "."
    return f"Images: {totals[0]} train, {totals[1]} validation, {totals[2]} test{ending}"


def headlines(results: Results) -> list[str]:
    best, worst = results.best, results.worst
    lines = [data_line(results)] if data_line(results) else []
    lines += [
        f"Best learned variant: {best.name} with {pct(best.test_accuracy)} test accuracy "
        f"({fmt(best.params_count)} parameters, {best.train_seconds:.1f} s).",
    ]
    if len(results.variants) > 1:
        lines.append(f"Worst learned variant: {worst.name} with {pct(worst.test_accuracy)}.")
    if results.baselines:
        name, entry = max(results.baselines.items(), key=lambda item: item[1]["test_accuracy"])
        gap = 100 * (best.test_accuracy - entry["test_accuracy"])
        lines.append(f"Best baseline: {name} with {pct(entry['test_accuracy'])}; the best learned variant is "
                     f"{abs(gap):.2f} points {'above' if gap >= 0 else 'below'} it.")
    else:
        lines.append(f"Baselines: {NOT_RUN}.")
    if results.probes is None:
        lines.append(f"Probes: {NOT_RUN}.")
    return lines


def _md_table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(table.headers) + " |", "|" + "---|" * len(table.headers)]
    lines += ["| " + " | ".join(cell for cell, _key in row) + " |" for row in table.rows]
    return lines


def figure_sections(results: Results, available: list[str]) -> list[tuple[str, list[str]]]:
    """(caption, figure paths) per section; an empty list means the figure is missing."""
    chosen = figure_choice(results, available)
    return [
        (f"Best variant {results.best.name}: filters at init and learned", chosen["best"]),
        *([(f"Worst variant {results.worst.name}: filters at init and learned", chosen["worst"])]
          if len(results.variants) > 1 else []),
        ("Classic kernels applied to one digit per class", chosen["baselines"]),
        ("Probe experiments", chosen["probes"]),
    ]


def render_markdown(results: Results, available: list[str], plot_names: list[str]) -> str:
    """The summary for PR comments: same numbers as the HTML, images listed by path (they can't be embedded)."""
    lines = [f"# {results.title}", "", f"**Data source:** `{results.data_source}`", ""]
    if is_bundled(results):
        lines += [f"> **Note:** {BUNDLED_NOTE}", ""]
    lines += [f"> **Warning:** {warning}" for warning in results.warnings]
    lines += [f"- {line}" for line in headlines(results)] + [""]
    lines += ["## Variants (sorted by test accuracy)", ""] + _md_table(variant_table(results)) + [""]
    lines += ["## Baselines (frozen first layer)", ""]
    baselines = baseline_table(results)
    lines += (_md_table(baselines) if baselines else [NOT_RUN]) + [""]
    lines += ["## Probes", ""]
    if results.probes is None:
        lines += [NOT_RUN, ""]
    else:
        lines += ["| result | value |", "|---|---|"]
        lines += [f"| {key} | {fmt(value)} |" for key, value in flatten(results.probes)] + [""]
    lines += ["## Figures", "", "Embedded in `reports/index.html`; files under `reports/figures/`:", ""]
    lines += [f"- plot rendered in the report: {name}" for name in plot_names]
    for caption, paths in figure_sections(results, available):
        lines += [f"- {caption}: " + (", ".join(f"`reports/figures/{p}`" for p in paths) or "no figure found")]
    return "\n".join(lines) + "\n"
