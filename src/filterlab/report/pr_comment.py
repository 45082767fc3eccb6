"""The pull-request comment CI posts: params and metrics against a base revision, then the report's summary.

`python -m filterlab.report.pr_comment BASE [--summary reports/summary.md]` runs `dvc params diff BASE --json`
and `dvc metrics diff BASE --json` in the current repo and prints Markdown. Every value quoted from params or
metrics files goes through `filterlab.report.summary.escape`, so a title such as `@team <img src=x> | x` can
neither ping anyone, inject HTML nor break the table (`dvc … --md` prints values raw). Reads the repo through
DVC; writes only stdout.
"""

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from filterlab.report.summary import escape


def _cell(value: Any) -> str:
    return "–" if value is None else escape(json.dumps(value) if isinstance(value, (dict, list)) else str(value))


def params_table(diff: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[str]:
    """`dvc params diff --json` as an escaped Markdown table, one row per changed key."""
    rows = [
        f"| {escape(path)} | {escape(key)} | {_cell(change.get('old'))} | {_cell(change.get('new'))} |"
        for path, changes in sorted(diff.items())
        for key, change in sorted(changes.items())
    ]
    if not rows:
        return ["No params changed."]
    return ["| file | param | before | after |", "|---|---|---|---|", *rows]


def metrics_table(diff: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[str]:
    """`dvc metrics diff --json` as an escaped Markdown table, largest change first."""
    entries = [
        (path, key, change)
        for path, changes in diff.items()
        for key, change in changes.items()
        if isinstance(change, dict)
    ]
    entries.sort(key=lambda entry: (-abs(entry[2].get("diff") or 0), entry[0], entry[1]))
    rows = [
        f"| {escape(path)} | {escape(key)} | {_cell(change.get('old'))} | {_cell(change.get('new'))} "
        f"| {_cell(change.get('diff'))} |"
        for path, key, change in entries
    ]
    if not rows:
        return ["No metrics changed."]
    return ["| file | metric | before | after | change |", "|---|---|---|---|---|", *rows]


def dvc_diff(kind: str, base: str) -> dict[str, Any]:
    """`dvc <kind> diff <base> --json`; a failure is one line on stderr and an empty diff."""
    done = subprocess.run(["dvc", kind, "diff", base, "--json"], capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        print(f"warning: dvc {kind} diff {base}: {lines[-1] if lines else 'failed'}", file=sys.stderr)
        return {}
    found = json.loads(done.stdout or "{}")
    return found if isinstance(found, dict) else {}


def render(base: str, params: Mapping[str, Any], metrics: Mapping[str, Any], summary: str) -> str:
    lines = [f"## Params against {escape(base)}", "", *params_table(params), ""]
    lines += [f"## Metrics against {escape(base)}", "", *metrics_table(metrics), "", summary]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the git revision to compare against, e.g. origin/main")
    parser.add_argument("--summary", type=Path, default=Path("reports/summary.md"))
    args = parser.parse_args(argv)
    summary = args.summary.read_text(encoding="utf-8") if args.summary.is_file() else ""
    print(render(args.base, dvc_diff("params", args.base), dvc_diff("metrics", args.base), summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
