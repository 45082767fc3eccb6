"""Which `src/filterlab` modules each stage runs: derived from the code, for dvc.yaml's deps.

Reads Python sources (never imports them) and writes nothing. Every `import` of a
filterlab module counts, including the late imports inside functions that keep
TensorFlow and MLflow out of stages that do not train, so the answer is the set of
files whose edit can change what a stage computes. Package `__init__.py` files are
left out: they hold only docstrings (tests/test_stage_deps.py checks that). Files, never
package folders, even where a stage runs every module of one: DVC hashes every file in a
folder dep, untracked ones included, so an editor's swap file or a new unrelated module
would retrain every variant and make each clone's hash, and its run-cache lookups, differ.
A module's same-named files that are not Python (page.js, page.css and page.html beside page.py) are
part of it: it reads them at run time, so they are deps wherever it is.

    python -m filterlab.config.stage_deps pipeline/train.py   # one dep line per module
    python -m filterlab.config.stage_deps --update dvc.yaml   # rewrite every stage's module deps
"""

import ast
import re
import sys
from pathlib import Path

PACKAGE = "filterlab"
# Files a module reads beside itself (same stem): the script, style and markup of an HTML page.
RESOURCE_SUFFIXES = (".js", ".css", ".html")


def _module_file(src: Path, dotted: str) -> Path | None:
    parts = dotted.split(".")
    candidate = src.joinpath(*parts).with_suffix(".py")
    if candidate.is_file():
        return candidate
    package = src.joinpath(*parts) / "__init__.py"
    return package if package.is_file() else None


def direct_imports(path: Path, src: Path) -> set[Path]:
    """filterlab module files that `path` imports anywhere in its body (top level or inside functions)."""
    found: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # `from filterlab.kernels import bank` names a module, `from filterlab.kernels.bank import KERNELS`
            # a symbol: both candidates are tried.
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                module = _module_file(src, name)
                if module is not None:
                    found.add(module)
    return {module for module in found if module.name != "__init__.py"}


def resources(module: Path) -> list[Path]:
    """The files beside `module` with its stem and a RESOURCE_SUFFIXES suffix (page.js for page.py)."""
    return [module.with_suffix(suffix) for suffix in RESOURCE_SUFFIXES if module.with_suffix(suffix).is_file()]


def transitive_imports(entry: Path, src: Path) -> list[Path]:
    """Every filterlab module `entry` can run, and the files those modules read beside themselves, sorted;
    `src` is the folder that holds the package."""
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        for module in direct_imports(todo.pop(), src):
            if module not in seen:
                seen.add(module)
                todo.append(module)
    return sorted(seen | {resource for module in seen for resource in resources(module)})


def update(dvc_yaml: str, root: Path) -> str:
    """dvc.yaml's text with each stage's `src/filterlab/...` dep lines replaced by what its entry imports.

    A text edit, not a YAML round trip, so comments and layout stay as written.
    """
    out, entry = [], None
    for line in dvc_yaml.splitlines():
        if re.match(r"^  \w[\w-]*:\s*$", line):
            entry = None
        found = re.search(r"python (pipeline/\w+\.py)", line)
        if found:
            entry = found.group(1)
        if re.match(r"^\s+- src/filterlab/", line):
            continue
        out.append(line)
        if entry and line.strip() == f"- {entry}":
            indent = line[: len(line) - len(line.lstrip())]
            out += [
                f"{indent}- {module.relative_to(root).as_posix()}"
                for module in transitive_imports(root / entry, root / "src")
            ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(
            "usage: python -m filterlab.config.stage_deps pipeline/<stage>.py ... | --update dvc.yaml", file=sys.stderr
        )
        return 2
    root = Path.cwd()
    if args[0] == "--update":
        path = Path(args[1] if len(args) > 1 else "dvc.yaml")
        path.write_text(update(path.read_text(encoding="utf-8"), root), encoding="utf-8")
        return 0
    for entry in args:
        for module in transitive_imports(Path(entry), root / "src"):
            print(f"      - {module.relative_to(root).as_posix()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
