"""Stage `report`: reads every metrics JSON and the figures, writes reports/index.html and reports/summary.md.

The HTML embeds its images, so it is the whole report and opens from disk; the
Markdown carries the same tables for PR comments and lists the figures by path.
"""

import argparse
import json
import sys
from pathlib import Path

from filterlab.config.params import load_section
from filterlab.config.sections import ReportParams, TrainParams
from filterlab.core import atomic, stage
from filterlab.core.errors import DataError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--params", "--metrics", "--figures", "--html", "--markdown"):
        parser.add_argument(flag, required=True, type=Path)
    return parser.parse_args(argv)


def read_metrics(folder: Path) -> dict:
    metrics = {}
    for path in sorted(folder.rglob("*.json")):
        try:
            metrics[path.relative_to(folder).as_posix()] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
    return metrics


def render(args: argparse.Namespace) -> None:
    params = stage.open_params(args.params)
    settings = load_section(params, "report", ReportParams)
    grid = load_section(params, "train", TrainParams).grid  # the current grid says which variants are current

    from filterlab.report import content, page, plots, tables  # NumPy and matplotlib load after the pin

    results = content.collect(settings.title, grid, read_metrics(args.metrics))
    available = sorted(p.relative_to(args.figures).as_posix() for p in args.figures.rglob("*.png"))
    chosen = [path for _caption, paths in tables.figure_sections(results, available) for path in paths]
    figures = {path: (args.figures / path).read_bytes() for path in chosen}
    figure_plots = plots.all_plots(results)
    atomic.write_text(args.html, page.render_html(results, figure_plots, figures, available))
    atomic.write_text(args.markdown, tables.render_markdown(results, available, list(figure_plots)))
    print(f"report: {len(results.variants)} variants, best {results.best.name}; wrote {args.html} and {args.markdown}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return stage.run(lambda: render(args))


if __name__ == "__main__":
    sys.exit(main())
