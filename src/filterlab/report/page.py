"""The self-contained HTML report: `Results`, plot PNGs and figure bytes in, one HTML string out.

Every image is embedded as a base64 data: URI, so reports/index.html is the whole
report: it opens from disk, from a CI artifact or an e-mail, with no server and no
sibling files. Writes nothing itself.
"""

import base64
import html
import math
from collections.abc import Mapping

from filterlab.report.content import BUNDLED_NOTE, NOT_RUN, Results, flatten, fmt, is_bundled
from filterlab.report.tables import Table, baseline_table, figure_sections, headlines, variant_table

PLOT_CAPTIONS = {
    "accuracy_vs_filters": "Test accuracy against conv1 filters, one line per kernel size, one panel per stride",
    "accuracy_vs_params": "Test accuracy against parameter count",
    "baselines_vs_learned": "Frozen classic, random and no-convolution baselines against learned filters",
}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; cursor: pointer; user-select: none; }
th[data-order="asc"]::after { content: " ▲"; } th[data-order="desc"]::after { content: " ▼"; }
td:first-child, th:first-child { text-align: left; }
.note { background: #fff4ce; border-left: 4px solid #e0a800; padding: 0.6em 1em; }
.warning { background: #fde2e1; border-left: 4px solid #c0392b; padding: 0.6em 1em; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #eee; }
"""

# Clicking a header sorts by that column (numbers by the cell's data-value), toggling the
# direction; the load handler records broken images so a headless browser can check them.
SCRIPT = """
document.querySelectorAll("table.sortable th").forEach((th, column) => th.addEventListener("click", () => {
  const table = th.closest("table"), body = table.tBodies[0];
  const ascending = th.dataset.order !== "asc";
  table.querySelectorAll("th").forEach(h => delete h.dataset.order);
  th.dataset.order = ascending ? "asc" : "desc";
  const key = row => { const v = row.cells[column].dataset.value, n = Number(v); return isNaN(n) ? v : n; };
  [...body.rows].sort((a, b) => { const x = key(a), y = key(b); return (x > y) - (x < y); })
    .forEach(row => ascending ? body.appendChild(row) : body.prepend(row));
}));
window.addEventListener("load", () => {
  const images = [...document.images];
  document.body.dataset.images = images.length;
  document.body.dataset.brokenImages = images.filter(i => !i.complete || i.naturalWidth === 0).length;
});
"""


def _esc(value: object) -> str:
    return html.escape(str(value))


def _key(key: float | str) -> str:
    """A sort key JavaScript's Number() reads back (it spells infinity "Infinity")."""
    if isinstance(key, float) and math.isinf(key):
        return "-Infinity" if key < 0 else "Infinity"
    return _esc(key)


def _table(table: Table, *, sortable: bool, sorted_by: str | None = None) -> str:
    marked = ' data-order="desc"'
    head = "".join(f"<th{marked if header == sorted_by else ''}>{_esc(header)}</th>" for header in table.headers)
    body = "".join(
        "<tr>" + "".join(f'<td data-value="{_key(key)}">{_esc(cell)}</td>' for cell, key in row) + "</tr>"
        for row in table.rows
    )
    css = ' class="sortable"' if sortable else ""
    return f"<table{css}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(data: bytes, alt: str) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return (f'<figure><img alt="{_esc(alt)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{_esc(alt)}</figcaption></figure>")


def render_html(
    results: Results, plots: Mapping[str, bytes], figures: Mapping[str, bytes], available: list[str]
) -> str:
    """`figures` maps the chosen paths (relative to reports/figures) to their PNG bytes."""
    parts = [f"<h1>{_esc(results.title)}</h1>",
             f"<p><strong>Data source:</strong> <code>{_esc(results.data_source)}</code></p>"]
    if is_bundled(results):
        parts.append(f'<p class="note" id="bundled-note"><strong>Note:</strong> {_esc(BUNDLED_NOTE)}</p>')
    parts += [f'<p class="warning"><strong>Warning:</strong> {_esc(w)}</p>' for w in results.warnings]
    parts.append("<ul>" + "".join(f"<li>{_esc(line)}</li>" for line in headlines(results)) + "</ul>")
    parts += ["<h2>Variants</h2>", "<p>Click a column header to sort; sorted by test accuracy.</p>",
              _table(variant_table(results), sortable=True, sorted_by="test accuracy")]
    parts.append("<h2>Comparison plots</h2>")
    parts += [_img(data, PLOT_CAPTIONS.get(name, name)) for name, data in plots.items()]
    parts.append("<h2>Baselines (frozen first layer)</h2>")
    baselines = baseline_table(results)
    parts.append(_table(baselines, sortable=True, sorted_by="test accuracy") if baselines else f"<p>{NOT_RUN}</p>")
    parts.append("<h2>Probes</h2>")
    if results.probes is None:
        parts.append(f"<p>{NOT_RUN}</p>")
    else:
        rows = "".join(f"<tr><td>{_esc(k)}</td><td>{_esc(fmt(v))}</td></tr>" for k, v in flatten(results.probes))
        parts.append(f"<table><thead><tr><th>result</th><th>value</th></tr></thead><tbody>{rows}</tbody></table>")
    parts.append("<h2>Figures</h2>")
    for caption, paths in figure_sections(results, available):
        parts.append(f"<h3>{_esc(caption)}</h3>")
        parts += [_img(figures[path], f"{caption} ({path})") for path in paths] or ["<p>no figure found</p>"]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_esc(results.title)}</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + f"\n<script>{SCRIPT}</script></body></html>\n"
    )
