"""The self-contained HTML report: `Results`, plot PNGs and figure bytes in, one HTML string out.

Every image is embedded as a base64 data: URI, so reports/index.html is the whole
report: it opens from disk, from a CI artifact or an e-mail, with no server and no
sibling files. Writes nothing itself.
"""

import base64
import html
import math
from collections.abc import Mapping

from filterlab.report.collected import BUNDLED_NOTE, NOT_RUN, Results, is_bundled
from filterlab.report.tables import (
    TIED,
    Table,
    baseline_table,
    classic_table,
    figure_sections,
    headlines,
    probe_tables,
    variant_table,
)

PLOT_CAPTIONS = {
    "accuracy_vs_filters": "Test accuracy against conv1 filters, one line per kernel size, one panel per stride",
    "accuracy_vs_params": "Test accuracy against parameter count",
    "baselines_vs_learned": "Frozen classic, random and no-convolution baselines against learned filters",
}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 1em 0; }
td.tied { background: #e7f5e1; } td.best { background: #d4edc9; font-weight: 600; }
dl.context { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.context dt { font-weight: 600; } dl.context dd { margin: 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; cursor: pointer; user-select: none; }
th[data-order="asc"]::after { content: " ▲"; } th[data-order="desc"]::after { content: " ▼"; }
td:first-child, th:first-child { text-align: left; }
/* The name column stays put while a table scrolls sideways (phones). */
td:first-child { position: sticky; left: 0; background: #fff; }
th:first-child { position: sticky; left: 0; z-index: 1; }
.note { background: #fff4ce; border-left: 4px solid #e0a800; padding: 0.6em 1em; }
.warning { background: #fde2e1; border-left: 4px solid #c0392b; padding: 0.6em 1em; }
figure { margin: 1em 0; overflow-x: auto; } img { max-width: 100%; border: 1px solid #eee; }
figure > img { cursor: zoom-in; } figure > img.zoomed { max-width: none; cursor: zoom-out; }
"""

# Clicking a header sorts its own table by that column (numbers by the cell's data-value), toggling the
# direction; numbers come before text in either direction, so "–" and notes stay at the bottom. The load
# handler records broken images so a headless browser can check them.
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(table => {
  const headers = [...table.tHead.rows[0].cells];
  headers.forEach((th, column) => th.addEventListener("click", () => {
    const body = table.tBodies[0];
    const ascending = th.dataset.order !== "asc";
    headers.forEach(h => delete h.dataset.order);
    th.dataset.order = ascending ? "asc" : "desc";
    const key = row => {
      const text = row.cells[column].dataset.value, number = Number(text);
      return text !== "" && Number.isFinite(number) ? {number} : {text};
    };
    const order = (a, b) => {
      const x = key(a), y = key(b);
      if (("number" in x) !== ("number" in y)) return "number" in x ? -1 : 1;
      const difference = "number" in x ? x.number - y.number : x.text.localeCompare(y.text);
      return ascending ? difference : -difference;
    };
    [...body.rows].sort(order).forEach(row => body.appendChild(row));
  }));
});
// A plot has no file beside the report to open: a tap shows it at full size, scrolling inside its figure.
document.querySelectorAll("figure > img").forEach(img => img.addEventListener("click", () =>
  img.classList.toggle("zoomed")));
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


def _cell_class(cell: str) -> str:
    if cell.startswith(TIED):
        return ' class="tied"'
    return ' class="best"' if cell == "best" else ""


def _table(table: Table, *, sortable: bool, sorted_by: str | None = None, table_id: str = "") -> str:
    """A table inside a horizontally scrolling wrapper, so a phone scrolls the table, not the page."""
    marked = ' data-order="desc"'
    head = "".join(f"<th{marked if header == sorted_by else ''}>{_esc(header)}</th>" for header in table.headers)
    body = "".join(
        "<tr>"
        + "".join(f'<td data-value="{_key(key)}"{_cell_class(cell)}>{_esc(cell)}</td>' for cell, key in row)
        + "</tr>"
        for row in table.rows
    )
    css = ' class="sortable"' if sortable else ""
    ident = f' id="{table_id}"' if table_id else ""
    return f'<div class="scroll"><table{css}{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _img(data: bytes, alt: str, path: str | None = None) -> str:
    """An embedded image; clicking it opens the full-size file beside the report (reports/figures/...)."""
    encoded = base64.b64encode(data).decode("ascii")
    kind = "gif" if path is not None and path.endswith(".gif") else "png"
    image = f'<img alt="{_esc(alt)}" src="data:image/{kind};base64,{encoded}">'
    if path is not None:
        image = f'<a href="figures/{_esc(path)}" target="_blank" title="open full size">{image}</a>'
    return f"<figure>{image}<figcaption>{_esc(alt)}</figcaption></figure>"


def _context(results: Results) -> str:
    rows = [("data source", results.data_source), *results.context.items()]
    return '<dl class="context">' + "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in rows) + "</dl>"


def _explorer_link(href: str) -> str:
    return (
        f'<p class="note" id="explorer-link"><a href="{_esc(href)}"><strong>Open the filter explorer</strong></a>: '
        "pick a variant and a digit, or draw one, and watch every learned filter epoch by epoch beside its nearest "
        "classic kernel (one offline page, computed in the browser).</p>"
    )


def render_html(
    results: Results,
    plots: Mapping[str, bytes],
    figures: Mapping[str, bytes],
    available: list[str],
    explorer_href: str | None = None,
) -> str:
    """`figures` maps the chosen paths (relative to reports/figures) to their PNG bytes; `explorer_href`, the
    filter explorer's page relative to this one, puts a link to it at the top."""
    parts = [f"<h1>{_esc(results.title)}</h1>"]
    if explorer_href is not None:
        parts.append(_explorer_link(explorer_href))
    parts.append(_context(results))
    if is_bundled(results):
        parts.append(f'<p class="note" id="bundled-note"><strong>Note:</strong> {_esc(BUNDLED_NOTE)}</p>')
    parts += [f'<p class="warning"><strong>Warning:</strong> {_esc(w)}</p>' for w in results.warnings]
    if results.verdict:
        parts.append(
            '<section id="verdict"><h2>The answer</h2><ul>'
            + "".join(f"<li>{_esc(line)}</li>" for line in results.verdict)
            + "</ul></section>"
        )
    parts.append("<ul>" + "".join(f"<li>{_esc(line)}</li>" for line in headlines(results)) + "</ul>")
    parts += [
        "<h2>Variants</h2>",
        "<p>Sorted by test accuracy; click a column header to sort. The interval is Wilson's 95% interval; "
        "“vs best” is an exact McNemar test against the best variant on the same test digits.</p>",
        _table(variant_table(results), sortable=True, sorted_by="test accuracy", table_id="variants"),
    ]
    parts.append('<h2 id="learned-vs-classic">Learned filters vs classic kernels</h2>')
    classic = classic_table(results)
    parts.append(
        "<p>Mean similarity of each filter to its nearest classic kernel (|cosine|), at init and after "
        "training, against the same measure for random filters drawn like the initialiser (chance).</p>"
    )
    parts.append(_table(classic, sortable=True, table_id="classic") if classic else f"<p>{NOT_RUN}</p>")
    parts.append("<h2>Comparison plots</h2>")
    parts += [_img(data, PLOT_CAPTIONS.get(name, name)) for name, data in plots.items()]
    parts.append("<h2>Baselines (frozen first layer)</h2>")
    baselines = baseline_table(results)
    parts.append(
        _table(baselines, sortable=True, sorted_by="test accuracy", table_id="baselines")
        if baselines
        else f"<p>{NOT_RUN}</p>"
    )
    parts.append("<h2>Probes</h2>")
    if results.probes is None:
        parts.append(f"<p>{NOT_RUN}</p>")
    else:
        for caption, table in probe_tables(results.probes):
            parts += [f"<h3>{_esc(caption)}</h3>", _table(table, sortable=False)]
    parts.append("<h2>Figures</h2>")
    for caption, paths in figure_sections(results, available):
        parts.append(f"<h3>{_esc(caption)}</h3>")
        parts += [_img(figures[path], f"{caption} ({path})", path) for path in paths] or ["<p>no figure found</p>"]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(results.title)}</title>"
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + f"\n<script>{SCRIPT}</script></body></html>\n"
    )
