"""Tests for the report stage and its library (report, report_tables, report_plots, report_html).

The metrics and figures are small fakes written in the formats the other stages
write, so the report is checked without training anything.
"""

import base64
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from conftest import GRID, loaded_metrics, make_reports
from filterlab.core.errors import DataError
from filterlab.report import content, tables

ROOT = Path(__file__).resolve().parents[1]
def test_collect_sorts_by_accuracy_and_keeps_only_the_grid(tmp_path):
    metrics, _ = make_reports(tmp_path)
    results = content.collect("t", GRID, loaded_metrics(metrics))
    assert [v.name for v in results.variants] == ["f8_k7_s1", "f4_k7_s1", "f4_k3_s1", "f8_k3_s1"]
    assert results.best.name == "f8_k7_s1" and results.worst.name == "f8_k3_s1"
    by_name = {v.name: v for v in results.variants}
    assert by_name["f4_k3_s1"].similarity == pytest.approx(0.6)
    assert by_name["f4_k7_s1"].similarity is None and "no bank kernel" in by_name["f4_k7_s1"].similarity_note
    assert content.is_bundled(results) and results.warnings == ()


def test_missing_train_metrics_is_an_error_naming_the_file(tmp_path):
    metrics, _ = make_reports(tmp_path)
    (metrics / "train" / "f4_k7_s1.json").unlink()
    with pytest.raises(DataError, match="train/f4_k7_s1.json"):
        content.collect("t", GRID, loaded_metrics(metrics))


def test_optional_metrics_missing_show_not_run(tmp_path):
    metrics, _ = make_reports(tmp_path, probes=False, baselines=False)
    (metrics / "filters" / "f4_k3_s1.json").unlink()
    results = content.collect("t", GRID, loaded_metrics(metrics))
    assert results.probes is None and results.baselines is None
    assert {v.name: v.similarity_note for v in results.variants}["f4_k3_s1"] == content.NOT_RUN
    markdown = tables.render_markdown(results, [], [])
    assert markdown.count(content.NOT_RUN) >= 3


def test_mixed_data_sources_are_flagged(tmp_path):
    metrics, _ = make_reports(tmp_path)
    loaded = loaded_metrics(metrics)
    loaded["train/f4_k3_s1.json"]["data_source"] = "remote"
    assert any("different data sources" in w for w in content.collect("t", GRID, loaded).warnings)


def _run_stage(tmp_path: Path, metrics: Path, figures: Path, params: dict) -> subprocess.CompletedProcess:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    command = [sys.executable, str(ROOT / "pipeline" / "report.py"), "--params", str(tmp_path / "params.yaml"),
               "--metrics", str(metrics), "--figures", str(figures), "--html", str(tmp_path / "out" / "index.html"),
               "--markdown", str(tmp_path / "out" / "summary.md")]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def _params(title: str = "Tiny report") -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["grid"] = {"filters": [4, 8], "kernel_size": [3, 7], "stride": [1]}
    params["report"]["title"] = title
    return params


def test_stage_writes_self_contained_html_and_markdown(tmp_path):
    metrics, figures = make_reports(tmp_path / "reports", source="bundled")
    result = _run_stage(tmp_path, metrics, figures, _params())
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "out" / "index.html").read_text()
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    # 3 plots + best and worst init-vs-learned + baselines + probes figure
    assert len(sources) == 7
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
        image.verify()
        assert image.format == "PNG" and image.size[0] > 0
    assert 'id="bundled-note"' in page and "Tiny report" in page
    assert "f64_k5_s2" not in page  # stale variant outside the grid
    rows = re.findall(r"<tr><td data-value=\"(f\d+_k\d_s\d)\"", page)
    assert rows == ["f8_k7_s1", "f4_k7_s1", "f4_k3_s1", "f8_k3_s1"]
    assert '<td data-value="-Infinity">no bank kernel of this size</td>' in page
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| f8_k7_s1 | 8 | 7x7 | 1 | 8,007 | 97.00% |" in summary
    assert summary.index("f8_k7_s1 |") < summary.index("f8_k3_s1 |")
    assert "reports/figures/filters/f8_k7_s1/init_vs_learned.png" in summary
    assert "reports/figures/filters/f8_k3_s1/init_vs_learned.png" in summary
    assert "peak.cosine | 0.98" in summary and "bundled" in summary
    assert "Images: 4,050 train, 450 validation, 500 test (test: stratified hold-out of train)." in summary


def test_remote_data_has_no_bundled_note(tmp_path):
    metrics, figures = make_reports(tmp_path / "reports", source="remote", probes=False)
    result = _run_stage(tmp_path, metrics, figures, _params())
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "out" / "index.html").read_text()
    assert "bundled-note" not in page and "<code>remote</code>" in page
    assert "<h2>Probes</h2>\n<p>not run</p>" in page


def test_bad_params_fail_before_any_output(tmp_path):
    metrics, figures = make_reports(tmp_path / "reports")
    result = _run_stage(tmp_path, metrics, figures, _params(title="   "))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "report.title" in result.stderr
    assert not (tmp_path / "out").exists()


def test_corrupt_metrics_fail_with_one_line(tmp_path):
    metrics, figures = make_reports(tmp_path / "reports")
    (metrics / "train" / "f4_k3_s1.json").write_text('{"test_accuracy": ')
    result = _run_stage(tmp_path, metrics, figures, _params())
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "f4_k3_s1.json: not valid JSON" in result.stderr
    assert not (tmp_path / "out").exists()
