"""`make compare [REV=...]`: the grid in a terminal, one row per variant, at most 120 characters wide.

Reads params.yaml (the current grid), reports/metrics/ and, where this clone has them,
reports/details/ (the test predictions behind "vs best") and reports/verdict.json: the same
results the report stage reads. With a git revision or a DVC experiment name, adds each
variant's accuracy change against that revision's committed metrics (`git show`, no checkout).
Writes nothing. Imports neither TensorFlow nor DVC.

    python -m filterlab.compare                # the workspace
    python -m filterlab.compare main           # and Δ against main (a branch, tag, commit or experiment)
"""

import argparse
import json
import subprocess
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from filterlab.config.params import load_section, read_params
from filterlab.config.sections import TrainParams
from filterlab.core import stage
from filterlab.core.errors import DataError
from filterlab.report import collected, verdict

WIDTH = 120
# Every cell has a bounded width (names like f512_k28_s28, p-values in one significant digit), so a row stays
# well inside WIDTH whatever the grid; the check in `render` only guards that promise.
HEADERS = ("variant", "accuracy", "95% interval", "vs best", "learned / chance", "Δ accuracy")


def read_tree(folder: Path) -> dict[str, Any]:
    """Every JSON under `folder`, keyed by its path relative to it (as the report stage reads them)."""
    payloads = {}
    for path in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
        try:
            payloads[path.relative_to(folder).as_posix()] = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise DataError(f"{path}: not valid JSON ({error})") from None
    return payloads


def resolve(revision: str, repo: Path) -> str:
    """A commit for `revision`: anything git names, or a DVC experiment's name (refs/exps/.../<name>)."""
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], cwd=repo, capture_output=True, text=True
    )
    if found.returncode == 0:
        return found.stdout.strip()
    refs = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps"],
        cwd=repo,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    matches = [line.split()[1] for line in refs if line and line.split()[0].rsplit("/", 1)[-1] == revision]
    if len(matches) != 1:
        raise DataError(
            f"{revision}: {'names several experiments' if matches else 'no such revision or experiment'}"
            "; try `git log --oneline` or `dvc exp list`"
        )
    return matches[0]


def accuracy_at(commit: str, repo: Path) -> dict[str, float]:
    """Every variant's committed test accuracy at `commit`, by name."""
    listed = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{commit}:reports/metrics/train"], cwd=repo, capture_output=True, text=True
    )
    names = [line.removesuffix(".json") for line in listed.stdout.split() if line.endswith(".json")]
    accuracies = {}
    for name in names:
        shown = subprocess.run(
            ["git", "show", f"{commit}:reports/metrics/train/{name}.json"], cwd=repo, capture_output=True, text=True
        )
        if shown.returncode == 0:
            try:
                accuracies[name] = float(json.loads(shown.stdout)["accuracy"])
            except (ValueError, KeyError, TypeError):
                continue
    return accuracies


def _versus(variant: collected.Variant, best: str) -> str:
    if variant.name == best:
        return "best"
    if variant.tied_with_best is None:
        return "–"
    return f"{'tied' if variant.tied_with_best else 'below'} p={variant.p_value:.1g}"


def rows(results: collected.Results, before: Mapping[str, float] | None) -> list[tuple[str, ...]]:
    """One row per variant, best test accuracy first (the order `collect` gives)."""
    table: list[tuple[str, ...]] = []
    for v in results.variants:
        similarity = "–" if v.similarity is None else f"{v.similarity['learned']:.2f} / {v.similarity['chance']:.2f}"
        if before is None:
            change = ""
        elif v.name in before:
            change = f"{100 * (v.test_accuracy - before[v.name]):+.2f}"
        else:
            change = "new"
        table.append(
            (
                v.name,
                collected.pct(v.test_accuracy),
                collected.interval(v),
                _versus(v, results.best.name),
                similarity,
                change,
            )
        )
    return table


def render(table: Sequence[tuple[str, ...]], against: str | None) -> str:
    headers = HEADERS if against is not None else HEADERS[:-1]
    if against is not None:
        headers = (*headers[:-1], f"Δ vs {against[:12]}")
    cells = [tuple(headers)] + [row[: len(headers)] for row in table]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines = [line.rstrip() for line in lines]
    if max(map(len, lines)) > WIDTH:
        raise DataError(f"the comparison is {max(map(len, lines))} columns wide, more than {WIDTH}")
    return "\n".join(lines)


def compare(repo: Path, revision: str | None) -> str:
    train = load_section(read_params(repo / "params.yaml"), "train", TrainParams)
    results = collected.collect(
        "compare", train.grid, read_tree(repo / "reports" / "metrics"), read_tree(repo / "reports" / "details")
    )
    before = None
    if revision is not None:
        before = accuracy_at(resolve(revision, repo), repo)
    out = [render(rows(results, before), revision)]
    if revision is not None:
        gone = [name for name in sorted(before or {}) if name not in {v.name for v in results.variants}]
        if gone:
            out.append(f"not in the grid any more: {', '.join(gone)}")
    answer = repo / "reports" / "verdict.json"
    if answer.is_file():
        out.append("")
        out += [
            textwrap.fill(line, WIDTH, subsequent_indent="  ")
            for line in verdict.lines(json.loads(answer.read_text(encoding="utf-8")))
        ]
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", nargs="?", help="a git revision or DVC experiment to compare against")
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="the project folder (default: here)")
    args = parser.parse_args(argv)
    return stage.run(lambda: print(compare(args.repo, args.revision)))


if __name__ == "__main__":
    raise SystemExit(main())
