"""Headless Chromium checks: the HTML report renders with no broken images and sorts on click,
and the MLflow UI's run-comparison page renders the runs (screenshot kept in tmp_path).

Needs Debian's `chromium` (`apt-get install chromium`); skipped with that reason where
it is absent. Chromium runs sandbox-free and offline: no GPU, no first-run, no
background networking, component updates or sync, and a throwaway profile.
"""

import html
import io
import json
import re
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from filterlab.report import collected, page, plots, tables
from headless import BASE_FLAGS
from helpers import GRID, api, loaded_metrics, make_reports

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"),
]


def chromium(
    tmp_path: Path, url: str, *extra: str, budget_ms: int = 5000, width: int = 1400, height: int = 1000
) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM,
        *BASE_FLAGS,
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--window-size={width},{height}",
        f"--virtual-time-budget={budget_ms}",
        *extra,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180)


def report_page(tmp_path: Path) -> Path:
    """The report of the fake grid, one variant statistically tied with the best."""
    metrics, details, figures = make_reports(tmp_path / "reports")
    loaded = loaded_metrics(details)
    best, runner_up = loaded["train/f8_k7_s1.json"], loaded["train/f4_k7_s1.json"]
    runner_up["predicted"] = best["predicted"][:-3] + runner_up["labels"][-3:]
    results = collected.collect("Browser check", GRID, loaded_metrics(metrics), loaded)
    available = sorted(p.relative_to(figures).as_posix() for p in figures.rglob("*.png"))
    chosen = [path for _caption, paths in tables.figure_sections(results, available) for path in paths]
    html = page.render_html(
        results, plots.all_plots(results), {p: (figures / p).read_bytes() for p in chosen}, available
    )
    path = tmp_path / "reports" / "index.html"
    path.write_text(html)
    return path


# Run in the page after load: what a reader would see, written where --dump-dom shows it.
MEASURE = """<script>window.addEventListener("load", () => {
  const viewport = document.documentElement.clientWidth;
  const overflowing = [...document.querySelectorAll("table")].filter(t => {
    const box = t.parentElement.getBoundingClientRect();
    return box.right > viewport + 1 || box.left < -1;
  }).length;
  document.body.dataset.pageWidth = document.documentElement.scrollWidth;
  document.body.dataset.viewport = viewport;
  document.body.dataset.overflowingTables = overflowing;
});</script></body>"""


@pytest.mark.parametrize("width", [1400, 390])
def test_report_reads_on_desktop_and_phone(tmp_path, width):
    path = report_page(tmp_path)
    path.write_text(path.read_text().replace("</body>", MEASURE))
    result = chromium(tmp_path, path.as_uri(), "--dump-dom", width=width)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    body = re.search(r"<body([^>]*)>", dom).group(1)
    assert 'name="viewport"' in dom and 'id="learned-vs-classic"' in dom
    assert re.search(r"\d+\.\d\d–\d+\.\d\d%", dom)  # the 95% intervals
    assert "tied with best (p = " in dom and 'class="tied"' in dom
    # Set by the page's own load handler: images present, and none failed to decode.
    assert int(re.search(r'data-images="(\d+)"', body).group(1)) >= 7
    assert 'data-broken-images="0"' in body
    # Tables scroll inside their wrappers; the page itself never gets wider than the screen.
    assert re.search(r'data-overflowing-tables="(\d+)"', body).group(1) == "0"
    page_width, viewport = (int(re.search(f'data-{key}="(\\d+)"', body).group(1)) for key in ("page-width", "viewport"))
    assert page_width <= viewport


# Clicks every header of every sortable table twice (ascending, then descending) and records, per click,
# the column's sort keys in row order; errors thrown by the page's handlers are recorded too.
SORT_PROBE = """<script>
const errors = [];
window.addEventListener("error", event => errors.push(event.message));
window.addEventListener("load", () => {
  const clicks = [];
  document.querySelectorAll("table.sortable").forEach(table => {
    [...table.tHead.rows[0].cells].forEach((th, column) => {
      for (const direction of ["asc", "desc"]) {
        try { th.click(); } catch (error) { errors.push(String(error)); }
        clicks.push({table: table.id, header: th.textContent, direction, order: th.dataset.order,
                     keys: [...table.tBodies[0].rows].map(row => row.cells[column].dataset.value),
                     first: [...table.tBodies[0].rows].map(row => row.cells[0].textContent)});
      }
    });
  });
  const out = document.createElement("pre");
  out.id = "sort-probe";
  out.textContent = JSON.stringify({clicks, errors});
  document.body.appendChild(out);
});</script></body>"""


def _sorted_as_the_page_promises(keys: list[str], direction: str) -> bool:
    """Numbers first, ascending or descending; text (names, notes, "–") after them, in the same direction.
    The numbers are checked here; the text order of the name column by the caller."""

    def number(key):
        try:
            value = float(key)
        except ValueError:
            return None
        return value if np.isfinite(value) else None

    numbers = [number(key) for key in keys]
    split = sum(value is not None for value in numbers)
    if any(value is None for value in numbers[:split]):
        return False
    head = numbers[:split]
    return head == sorted(head, reverse=direction == "desc")


def test_every_header_of_every_table_sorts_its_own_table(tmp_path):
    path = report_page(tmp_path)
    path.write_text(path.read_text().replace("</body>", SORT_PROBE, 1))
    result = chromium(tmp_path, path.as_uri(), "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    probe = json.loads(html.unescape(re.search(r'<pre id="sort-probe">(.*?)</pre>', result.stdout, re.S).group(1)))
    assert probe["errors"] == []
    tables_clicked = {click["table"] for click in probe["clicks"]}
    assert tables_clicked == {"variants", "classic", "baselines"}
    headers = {(click["table"], click["header"]) for click in probe["clicks"]}
    assert len(headers) == len(probe["clicks"]) // 2 and len(headers) >= 11 + 8 + 7
    for click in probe["clicks"]:
        assert click["order"] == click["direction"], click
        assert _sorted_as_the_page_promises(click["keys"], click["direction"]), click
    by_accuracy = [c["first"] for c in probe["clicks"] if c["table"] == "variants" and c["header"] == "test accuracy"]
    assert by_accuracy == [
        ["f8_k3_s1", "f4_k3_s1", "f4_k7_s1", "f8_k7_s1"],
        ["f8_k7_s1", "f4_k7_s1", "f4_k3_s1", "f8_k3_s1"],
    ]
    # The "no bank kernel of this size" note and "–" sort after every number, in both directions.
    similarity = [c["first"] for c in probe["clicks"] if c["table"] == "variants" and c["header"] == "similarity init"]
    assert all(order[-2:] == ["f4_k7_s1", "f8_k7_s1"] or order[-2:] == ["f8_k7_s1", "f4_k7_s1"] for order in similarity)


def _png_stats(path: Path) -> tuple[tuple[int, int], float]:
    image = Image.open(io.BytesIO(path.read_bytes()))
    assert image.format == "PNG"
    return image.size, float(np.asarray(image.convert("L"), dtype=np.float32).std())


@pytest.mark.slow
def test_mlflow_compare_page_shows_the_runs(mlflow_server, tmp_path):
    experiment_id = api(mlflow_server, "/api/2.0/mlflow/experiments/create", {"name": "train"})["experiment_id"]
    run_ids = []
    for name, accuracy in (("f8_k3_s1", 0.91), ("f32_k5_s2", 0.95)):
        info = api(
            mlflow_server,
            "/api/2.0/mlflow/runs/create",
            {"experiment_id": experiment_id, "run_name": name, "start_time": int(time.time() * 1000)},
        )["run"]["info"]
        api(
            mlflow_server,
            "/api/2.0/mlflow/runs/log-batch",
            {
                "run_id": info["run_id"],
                "params": [{"key": "filters", "value": name.split("_")[0][1:]}],
                "metrics": [
                    {"key": "val_accuracy", "value": accuracy - 0.1 * (2 - step), "timestamp": step, "step": step}
                    for step in (1, 2)
                ]
                + [{"key": "test_accuracy", "value": accuracy, "timestamp": 3, "step": 0}],
            },
        )
        api(mlflow_server, "/api/2.0/mlflow/runs/update", {"run_id": info["run_id"], "status": "FINISHED"})
        run_ids.append(info["run_id"])
    # MLflow 3's route (Routes.getCompareRunPageRoute): #/compare-runs?runs=[...]&experiments=[...]
    runs, experiments = urllib.parse.quote(json.dumps(run_ids)), urllib.parse.quote(json.dumps([experiment_id]))
    query = f"runs={runs}&experiments={experiments}"
    url = f"{mlflow_server}/#/compare-runs?{query}"
    dom = chromium(tmp_path, url, "--dump-dom", budget_ms=20000)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "f8_k3_s1" in dom.stdout and "f32_k5_s2" in dom.stdout and "test_accuracy" in dom.stdout
    shot = tmp_path / "compare.png"
    result = chromium(tmp_path, url, f"--screenshot={shot}", budget_ms=20000)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    size, spread = _png_stats(shot)
    assert size == (1400, 1000) and spread > 10  # a rendered page, not a blank one
