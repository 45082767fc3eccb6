"""Every `filterlab.…` name and every source path named in the code, the docs and params.yaml still exists.

Reads the repo's tracked text files; imports the modules the names point at (none of them trains anything).
"""

import importlib
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Where names and paths are written down for a reader: code, docs, params and the pipeline.
SCANNED_SUFFIXES = {".py", ".md", ".yaml", ".toml", ".cfg"}
DOTTED = re.compile(r"(?<![\w./-])filterlab(?:\.[A-Za-z_]\w*)+")
# Tests that write made-up modules and paths on purpose.
MADE_UP = {"tests/test_stage_deps.py", "tests/test_references.py"}
# A path ends where no path character follows; one followed by a placeholder (`tests/test_<stage>.py`) is a
# pattern, not a name.
SOURCE_PATH = re.compile(r"(?<![\w./-])(?:src/filterlab|pipeline|tests|benchmarks|docs|\.ci)/[\w./-]*\w(?![\w./<{*-])")


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    paths = [REPO / name for name in listed.split()]
    return [
        path
        for path in paths
        if path.suffix in SCANNED_SUFFIXES and path.is_file() and str(path.relative_to(REPO)) not in MADE_UP
    ]


def tag_keys() -> set[str]:
    """MLflow tag keys that look like module names: names, not references."""
    from filterlab import log_missing
    from filterlab.core import run_context, tracking

    return {
        run_context.SWEEP_TAG,
        tracking.FILTERS_TAG,
        tracking.FIGURES_TAG,
        tracking.RUN_TAG,
        log_missing.REPLAYED_TAG,
    }


def resolves(dotted: str) -> bool:
    """A dotted name: the longest importable module prefix, then attributes for the rest."""
    if dotted in tag_keys():
        return True
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def names_in(files: list[Path]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    dotted: dict[str, list[str]] = {}
    paths: dict[str, list[str]] = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        where = str(path.relative_to(REPO))
        for name in DOTTED.findall(text):
            dotted.setdefault(name.rstrip("."), []).append(where)
        for name in SOURCE_PATH.findall(text):
            paths.setdefault(name.rstrip("."), []).append(where)
    return dotted, paths


def test_every_dotted_name_and_source_path_resolves():
    dotted, paths = names_in(tracked_text_files())
    assert len(dotted) > 50 and len(paths) > 20  # the scan finds what the repo names
    stale = [f"{name} (in {', '.join(sorted(set(where))[:3])})" for name, where in dotted.items() if not resolves(name)]
    stale += [
        f"{name} (in {', '.join(sorted(set(where))[:3])})"
        for name, where in paths.items()
        if not any(REPO.glob(name)) and "*" not in name
    ]
    assert not stale, "names that no longer exist:\n" + "\n".join(sorted(stale))


# Built, not written out: a name that does not exist, kept out of the files the reference check reads.
MISSING_MODULE = ".".join(("filterlab", "core", "no_such_module"))


@pytest.mark.parametrize("text", [f"see `{MISSING_MODULE}`", "moved to src/filterlab/no_such.py"])
def test_a_stale_name_is_caught(tmp_path, text):
    written = REPO / "tests" / f".reference-probe-{tmp_path.name}.md"
    written.write_text(text, encoding="utf-8")
    try:
        dotted, paths = names_in([written])
    finally:
        written.unlink()
    assert [name for name in dotted if not resolves(name)] + [name for name in paths if not (REPO / name).exists()]
