"""The Markdown summary for PR comments and job summaries, from `Results`; writes nothing.

The same tables as the HTML page; images are listed by path because a comment cannot
embed them. Everything that comes from params or files (the title, names) is escaped,
because the summary is pasted into a PR comment where Markdown and HTML are live.
"""

import re

from filterlab.report.collected import BUNDLED_NOTE, NOT_RUN, Results, is_bundled
from filterlab.report.tables import (
    Table,
    baseline_table,
    classic_table,
    figure_sections,
    headlines,
    probe_tables,
    variant_table,
)

# What can open markup in the middle of a line: emphasis, code, links and images (! [ ] ( )),
# tables, strike-through, < and > (raw HTML in a comment), & (entities: &lt;img&gt; would
# render as a tag's text, &#96; as a backtick) and # (a trailing run closes a heading early).
# Every escaped text sits after a prefix such as "# " or "| ", so line-start markers need no escape.
_SPECIAL = re.compile(r"([\\`*_\[\]()!|<>~&#])")
# GitHub turns @name into a notification for that user or team, escaped or not; a word joiner
# (U+2060, invisible) after the @ keeps the text as written without pinging anyone.
_MENTION = re.compile(r"@(?=[A-Za-z0-9])")


def escape(text: str) -> str:
    """Text that renders as itself in GitHub Markdown, on one line, and notifies no one."""
    return _MENTION.sub("@\u2060", _SPECIAL.sub(r"\\\1", " ".join(str(text).split())))


def _md_table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(escape(h) for h in table.headers) + " |", "|" + "---|" * len(table.headers)]
    lines += ["| " + " | ".join(escape(cell) for cell, _key in row) + " |" for row in table.rows]
    return lines


def context_line(results: Results) -> str:
    return "; ".join(f"{key}: {value}" for key, value in results.context.items())


def render_markdown(results: Results, available: list[str], plot_names: list[str]) -> str:
    lines = [f"# {escape(results.title)}", "", f"**Data source:** {escape(results.data_source)}", ""]
    if results.context:
        lines += [escape(context_line(results)), ""]
    if is_bundled(results):
        lines += [f"> **Note:** {BUNDLED_NOTE}", ""]
    if results.verdict:
        lines += ["## The answer", ""] + [f"- {escape(line)}" for line in results.verdict] + [""]
    lines += [f"- {escape(line)}" for line in headlines(results)] + [""]
    lines += ["## Variants (sorted by test accuracy)", ""] + _md_table(variant_table(results)) + [""]
    classic = classic_table(results)
    lines += ["## Learned filters vs classic kernels", ""] + (_md_table(classic) if classic else [NOT_RUN]) + [""]
    baselines = baseline_table(results)
    lines += ["## Baselines (frozen first layer)", ""] + (_md_table(baselines) if baselines else [NOT_RUN]) + [""]
    lines += ["## Probes", ""]
    if results.probes is None:
        lines += [NOT_RUN, ""]
    else:
        for caption, table in probe_tables(results.probes):
            lines += [f"**{escape(caption)}**", ""] + _md_table(table) + [""]
    lines += ["## Figures", "", "Embedded in `reports/index.html`; files under `reports/figures/`:", ""]
    lines += [f"- plot rendered in the report: {escape(name)}" for name in plot_names]
    for caption, paths in figure_sections(results, available):
        lines += [f"- {escape(caption)}: " + (", ".join(f"`reports/figures/{p}`" for p in paths) or "no figure found")]
    return "\n".join(lines) + "\n"
