"""Tests for the report stage and its library (filterlab.report: content, tables, plots, page).

The metrics and figures are small fakes written in the formats the other stages
write, so the report is checked without training anything.
"""

import base64
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from filterlab.core.errors import DataError
from filterlab.report import collected, summary
from helpers import GRID, load_stage, loaded_metrics, make_reports

# The fake reports' grid (conftest.GRID), as params.yaml spells it.
REPORT_PARAMS = {
    "train.grid": {"filters": list(GRID.filters), "kernel_size": list(GRID.kernel_size), "stride": list(GRID.stride)},
    "report.title": "Tiny report",
}


def _collect(metrics: Path, details: Path):
    return collected.collect("t", GRID, loaded_metrics(metrics), loaded_metrics(details))


def test_collect_sorts_by_accuracy_and_keeps_only_the_grid(tmp_path):
    metrics, details, _ = make_reports(tmp_path)
    results = _collect(metrics, details)
    assert [v.name for v in results.variants] == ["f8_k7_s1", "f4_k7_s1", "f4_k3_s1", "f8_k3_s1"]
    assert results.best.name == "f8_k7_s1" and results.worst.name == "f8_k3_s1"
    by_name = {v.name: v for v in results.variants}
    assert by_name["f4_k3_s1"].similarity == {"init": 0.3, "learned": 0.6, "chance": 0.4}
    assert by_name["f4_k7_s1"].similarity is None and "no bank kernel" in by_name["f4_k7_s1"].similarity_note
    assert by_name["f8_k7_s1"].params_count == 8007 and collected.is_bundled(results)


def test_seed_replicates_show_as_mean_and_spread_only_when_there_are_any(tmp_path):
    from filterlab.report import tables

    metrics, details, _ = make_reports(tmp_path)
    assert "across seeds" not in tables.variant_table(_collect(metrics, details)).headers
    path = metrics / "train" / "f4_k3_s1.json"
    path.write_text(
        json.dumps(json.loads(path.read_text()) | {"seeds": 3, "accuracy_seed_mean": 0.951, "accuracy_seed_sd": 0.004})
    )
    table = tables.variant_table(_collect(metrics, details))
    assert table.headers[-1] == "across seeds"
    cells = {row[0][0]: row[-1][0] for row in table.rows}
    assert cells["f4_k3_s1"] == "95.1 ± 0.4% (3 seeds)" and cells["f8_k7_s1"] == "–"


def test_variants_are_compared_with_the_best_on_the_same_digits(tmp_path):
    """97% vs 95% on 500 digits: 10 discordant digits, p = 0.002; 97% vs 91%: far apart."""
    metrics, details, _ = make_reports(tmp_path)
    by_name = {v.name: v for v in _collect(metrics, details).variants}
    assert by_name["f8_k7_s1"].tied_with_best is True and by_name["f8_k7_s1"].p_value == 1.0
    assert by_name["f4_k7_s1"].tied_with_best is False and by_name["f4_k7_s1"].p_value == pytest.approx(2 / 2**10)
    loaded = loaded_metrics(details)
    worse = loaded["train/f4_k7_s1.json"]
    worse["predicted"] = loaded["train/f8_k7_s1.json"]["predicted"][:-3] + worse["labels"][-3:]  # 97% as well
    tied = {v.name: v for v in collected.collect("t", GRID, loaded_metrics(metrics), loaded).variants}["f4_k7_s1"]
    assert tied.tied_with_best is True


def test_baselines_get_intervals_and_a_verdict_against_the_best_variant(tmp_path):
    metrics, details, _ = make_reports(tmp_path)
    baselines = _collect(metrics, details).baselines
    assert [b.name for b in baselines] == ["bank", "family:sobel", "random", "pixels"]
    assert baselines[0].ci95_low < baselines[0].test_accuracy < baselines[0].ci95_high
    assert all(b.tied_with_best is False for b in baselines)


def test_missing_train_metrics_is_an_error_naming_the_file(tmp_path):
    metrics, details, _ = make_reports(tmp_path)
    (metrics / "train" / "f4_k7_s1.json").unlink()
    with pytest.raises(DataError, match="train/f4_k7_s1.json"):
        _collect(metrics, details)


def test_optional_results_missing_show_not_run(tmp_path):
    metrics, details, _ = make_reports(tmp_path, probes=False, baselines=False)
    (metrics / "filters" / "f4_k3_s1.json").unlink()
    results = _collect(metrics, details)
    assert results.probes is None and results.baselines is None
    assert {v.name: v.similarity_note for v in results.variants}["f4_k3_s1"] == collected.NOT_RUN
    markdown = summary.render_markdown(results, [], [])
    assert markdown.count(collected.NOT_RUN) >= 2


def test_markdown_escapes_the_title():
    assert summary.escape("a *b* <img src=x> [c](d)\n") == r"a \*b\* \<img src=x\> \[c\]\(d\)"


HOSTILE_TITLE = "Results ![x](https://evil.example/p.png) &lt;img src=x onerror=alert(1)&gt; cc @team ##\n# Owned"


def test_the_summary_renders_the_title_and_source_as_plain_text(tmp_path):
    """The summary goes into PR comments: a title from params.yaml must not become an image, a tag, a
    mention, a second heading; nor a data source (a mirror URL) break out of its line."""
    import dataclasses

    metrics, details, _ = make_reports(tmp_path)
    gathered = collected.collect(HOSTILE_TITLE, GRID, loaded_metrics(metrics), loaded_metrics(details))
    results = dataclasses.replace(gathered, data_source="mirror:file:///m/`<img src=x onerror=alert(1)>`/")
    lines = summary.render_markdown(results, [], []).splitlines()
    assert lines[0] == (
        "# Results \\!\\[x\\]\\(https://evil.example/p.png\\) "
        "\\&lt;img src=x onerror=alert\\(1\\)\\&gt; cc @\u2060team \\#\\# \\# Owned"
    )
    assert lines[2] == r"**Data source:** mirror:file:///m/\`\<img src=x onerror=alert\(1\)\>\`/"
    assert sum(line.startswith("# ") for line in lines) == 1


def _run_stage(tmp_path: Path, reports: tuple[Path, Path, Path], params: Path, *extra: str) -> int:
    metrics, details, figures = reports
    histories = tmp_path / "histories"
    histories.mkdir(exist_ok=True)
    for name in GRID.variants():
        (histories / f"{name.name}.csv").write_text("epoch,loss\n1,0.5\n2,0.25\n")
    return load_stage("report").main(
        [
            "--params",
            str(params),
            "--metrics",
            str(metrics),
            "--details",
            str(details),
            "--figures",
            str(figures),
            "--histories",
            str(histories),
            "--history",
            str(tmp_path / "out" / "history.csv"),
            "--html",
            str(tmp_path / "out" / "index.html"),
            "--markdown",
            str(tmp_path / "out" / "summary.md"),
            "--verdict",
            str(tmp_path / "out" / "verdict.json"),
            *extra,
        ]
    )


def test_stage_writes_self_contained_html_markdown_and_one_history(tmp_path, params_file):
    assert _run_stage(tmp_path, make_reports(tmp_path / "reports"), params_file(REPORT_PARAMS)) == 0
    page = (tmp_path / "out" / "index.html").read_text()
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    # 3 plots + 2 learned-vs-classic + best and worst init-vs-learned and evolution GIF + baselines + probes
    assert len(sources) == 11
    for source in sources:
        kind = "GIF" if source.startswith("data:image/gif;") else "PNG"
        assert source.startswith(f"data:image/{kind.lower()};base64,")
        image = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
        image.verify()
        assert image.format == kind and image.size[0] > 0
    assert sum(source.startswith("data:image/gif;") for source in sources) == 2
    assert page.index('<section id="verdict">') < page.index("<h2>Variants</h2>")
    assert "3×3 filters (2 variants, best f4_k3_s1 at 91.00%" in page
    assert json.loads((tmp_path / "out" / "verdict.json").read_text())["kernel_sizes"]["3"]["variants"] == 2
    assert 'id="bundled-note"' in page and "Tiny report" in page and 'name="viewport"' in page
    assert 'href="figures/filters/f8_k7_s1/init_vs_learned.png"' in page  # opens full size
    assert "f64_k5_s2" not in page  # stale variant outside the grid
    rows = re.findall(r"<tr><td data-value=\"(f\d+_k\d_s\d)\"", page)
    assert rows[:4] == ["f8_k7_s1", "f4_k7_s1", "f4_k3_s1", "f8_k3_s1"]
    assert 'id="learned-vs-classic"' in page and '<td data-value="1.0" class="best">best</td>' in page
    assert "below best (p = 0.002)" in page  # f4_k7_s1: 95% against 97% on the same 500 digits
    markdown = (tmp_path / "out" / "summary.md").read_text()
    assert "| f8\\_k7\\_s1 | 97.00% | 95.00–99.00% | best | 8 | 7x7 | 1 | 8,007 |" in markdown
    assert "reports/figures/filters/f8_k7_s1/init_vs_learned.png" in markdown
    assert "cosine of the learned filter to \\[-1, 1, -1\\] | 0.9992 |" in markdown
    assert "Images: 4,050 train, 450 validation, 500 test" in markdown
    history = (tmp_path / "out" / "history.csv").read_text().splitlines()
    assert history[0] == "variant,epoch,loss" and len(history) == 1 + 2 * len(GRID.variants())


def test_the_filter_explorer_is_linked_at_the_top_relative_to_the_page(tmp_path, params_file):
    reports = make_reports(tmp_path / "reports")
    explorer = tmp_path / "out" / "explorer.html"  # not read: the link works once the explorer stage has run
    assert _run_stage(tmp_path, reports, params_file(REPORT_PARAMS), "--explorer", str(explorer)) == 0
    page = (tmp_path / "out" / "index.html").read_text()
    assert page.index('<a href="explorer.html">') < page.index('<section id="verdict">')
    assert _run_stage(tmp_path, reports, params_file(REPORT_PARAMS)) == 0
    assert "explorer.html" not in (tmp_path / "out" / "index.html").read_text()


def test_remote_data_has_no_bundled_note(tmp_path, params_file):
    reports = make_reports(tmp_path / "reports", source="remote", probes=False)
    assert _run_stage(tmp_path, reports, params_file(REPORT_PARAMS)) == 0
    page = (tmp_path / "out" / "index.html").read_text()
    assert "bundled-note" not in page and "<dd>remote</dd>" in page
    assert "<h2>Probes</h2>\n<p>not run</p>" in page


def test_bad_params_fail_before_any_output(tmp_path, params_file, capsys):
    reports = make_reports(tmp_path / "reports")
    assert _run_stage(tmp_path, reports, params_file(REPORT_PARAMS | {"report.title": "   "})) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "report.title" in err
    assert not (tmp_path / "out").exists()


def test_corrupt_metrics_fail_with_one_line(tmp_path, params_file, capsys):
    reports = make_reports(tmp_path / "reports")
    (reports[0] / "train" / "f4_k3_s1.json").write_text('{"accuracy": ')
    assert _run_stage(tmp_path, reports, params_file(REPORT_PARAMS)) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "Traceback" not in err
    assert "f4_k3_s1.json: not valid JSON" in err
    assert not (tmp_path / "out" / "index.html").exists()


@pytest.mark.parametrize(
    "payload, words",
    [(b'{"accuracy": 0.9\xff}', "not UTF-8 (byte 16)"), (b"[0.9, 0.95]", "a JSON list, expected an object")],
)
def test_metrics_that_are_not_utf8_objects_fail_with_one_line(tmp_path, params_file, capsys, payload, words):
    reports = make_reports(tmp_path / "reports")
    (reports[0] / "train" / "f4_k3_s1.json").write_bytes(payload)
    assert _run_stage(tmp_path, reports, params_file(REPORT_PARAMS)) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "Traceback" not in err and f"f4_k3_s1.json: {words}" in err
