"""Stage `report`: reads every metrics and details JSON, the figures and the training histories.

Writes reports/index.html (self-contained: images embedded, opens from disk; a link at the top
to --explorer, the filter explorer's page beside it, which this stage does not read),
reports/summary.md (the same tables for PR comments), reports/verdict.json (the answer at a
glance per kernel size, whose sentences head both documents and the README) and
reports/plots/history.csv: every grid variant's per-epoch history in one long table with a
`variant` column, which `dvc plots show` draws one colour per variant.
"""

import argparse
import json
import os
from pathlib import Path

from filterlab.config.params import load_numerics, load_section, load_seed
from filterlab.config.sections import ReportParams, TrainParams, open_params
from filterlab.core import atomic, stage
from filterlab.core.errors import DataError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in (
        "--params",
        "--metrics",
        "--details",
        "--figures",
        "--histories",
        "--history",
        "--html",
        "--markdown",
        "--verdict",
    ):
        parser.add_argument(flag, required=True, type=Path)
    # Linked from the top of the page, not read: the explorer stage writes it beside the report.
    parser.add_argument("--explorer", type=Path, help="the filter explorer's page, to link to")
    return parser.parse_args(argv)


def read_json_tree(folder: Path) -> dict:
    """Every JSON object under `folder` by relative path; DataError naming the file for anything else."""
    payloads = {}
    for path in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None
        except UnicodeDecodeError as error:
            raise DataError(f"{path}: not UTF-8 (byte {error.start}); the stages write UTF-8 JSON") from None
        if not isinstance(payload, dict):
            raise DataError(f"{path}: a JSON {type(payload).__name__}, expected an object as the stages write")
        payloads[path.relative_to(folder).as_posix()] = payload
    return payloads


def render(args: argparse.Namespace) -> None:
    params = open_params(args.params)
    settings = load_section(params, "report", ReportParams)
    train = load_section(params, "train", TrainParams)  # the current grid says which variants are current

    import dataclasses

    from filterlab.report import collected, histories, page, plots, summary, tables, verdict  # NumPy after the pin

    context = {
        "epochs": train.epochs,
        "batch size": train.batch_size,
        "learning rate": train.learning_rate,
        "seed": load_seed(params),
        "seeds per variant": train.seeds,
        "numerics": load_numerics(params),
        # No commit id: the results are committed after this runs, so it would name the commit before
        # them and change on every re-run. Each MLflow run records its commit (mlflow.source.git.commit).
        "experiment": os.environ.get("DVC_EXP_NAME") or "workspace (dvc repro)",
    }
    details = read_json_tree(args.details)
    results = collected.collect(settings.title, train.grid, read_json_tree(args.metrics), details, context)
    answer = verdict.compute(results, collected.correct_answers(train.grid, details))
    results = dataclasses.replace(results, verdict=tuple(verdict.lines(answer)))
    available = sorted(
        p.relative_to(args.figures).as_posix() for p in args.figures.rglob("*") if p.suffix in (".png", ".gif")
    )
    chosen = [path for _caption, paths in tables.figure_sections(results, available) for path in paths]
    figures = {path: (args.figures / path).read_bytes() for path in chosen}
    figure_plots = plots.all_plots(results)
    names = [variant.name for variant in train.grid.variants()]
    atomic.write_text(args.history, histories.long_format(args.histories, names))
    explorer = Path(os.path.relpath(args.explorer, args.html.parent)).as_posix() if args.explorer else None
    atomic.write_text(args.html, page.render_html(results, figure_plots, figures, available, explorer))
    atomic.write_text(args.markdown, summary.render_markdown(results, available, list(figure_plots)))
    atomic.write_json(args.verdict, answer)
    tied = sum(1 for v in results.variants[1:] if v.tied_with_best)
    print(
        f"report: {len(results.variants)} variants, best {results.best.name} "
        f"({collected.pct(results.best.test_accuracy)}, {tied} tied with it); wrote {args.html} and {args.markdown}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return stage.run(lambda: render(args))


if __name__ == "__main__":
    stage.entry(main)
