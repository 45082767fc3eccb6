"""Stage `report`: reads every metrics JSON and the figures, writes reports/index.html and reports/summary.md.

The HTML embeds its images, so it is the whole report and opens from disk; the
Markdown carries the same tables for PR comments and lists the figures by path.
"""

import argparse
import json
from pathlib import Path

from filterlab import atomic, stage
from filterlab.errors import DataError
from filterlab.params import load_section, read_params
from filterlab.sections import ReportParams, TrainParams


def read_metrics(folder: Path) -> dict:
    metrics = {}
    for path in sorted(folder.rglob("*.json")):
        try:
            metrics[path.relative_to(folder).as_posix()] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("--params", "--metrics", "--figures", "--html", "--markdown"):
        parser.add_argument(name, required=True, type=Path)
    args = parser.parse_args()
    params = read_params(args.params)
    settings = load_section(params, "report", ReportParams)
    grid = load_section(params, "train", TrainParams).grid  # the current grid says which variants are current

    from filterlab import report, report_html, report_plots, report_tables

    results = report.collect(settings.title, grid, read_metrics(args.metrics))
    available = sorted(p.relative_to(args.figures).as_posix() for p in args.figures.rglob("*.png"))
    chosen = [path for _caption, paths in report_tables.figure_sections(results, available) for path in paths]
    figures = {path: (args.figures / path).read_bytes() for path in chosen}
    plots = report_plots.all_plots(results)
    atomic.write_text(args.html, report_html.render_html(results, plots, figures, available))
    atomic.write_text(args.markdown, report_tables.render_markdown(results, available, list(plots)))
    print(f"report: {len(results.variants)} variants, best {results.best.name}; wrote {args.html} and {args.markdown}")


if __name__ == "__main__":
    stage.run(main)
