"""dvc.yaml's code deps match the code: every stage lists exactly the filterlab modules it runs.

Derived with filterlab.config.stage_deps from the sources (late imports inside functions
included), so editing a module re-runs exactly the stages that import it.
"""

import ast
import re
from pathlib import Path

import pytest
import yaml

from filterlab.config import stage_deps

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def code_deps(stage: dict) -> set[str]:
    return {dep for dep in stage["deps"] if dep.startswith(("src/", "pipeline/"))}


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_lists_exactly_the_modules_it_imports(name):
    stage = STAGES[name]
    entry = re.search(r"python (pipeline/\w+\.py)", stage["cmd"]).group(1)
    expected = {entry} | {
        path.relative_to(ROOT).as_posix() for path in stage_deps.transitive_imports(ROOT / entry, ROOT / "src")
    }
    listed = code_deps(stage)
    assert not expected - listed, f"{name}: dvc.yaml misses {sorted(expected - listed)}"
    assert not listed - expected, f"{name}: dvc.yaml lists {sorted(listed - expected)}, which the stage never imports"


def test_late_imports_inside_functions_count(tmp_path):
    package = tmp_path / "src" / "filterlab"
    (package / "core").mkdir(parents=True)
    (package / "core" / "a.py").write_text("def f():\n    from filterlab.core import b\n")
    fake_module = ".".join(("filterlab", "core", "c"))  # exists only in this test's tree
    (package / "core" / "b.py").write_text(f"from {fake_module} import VALUE\n")
    (package / "core" / "c.py").write_text("VALUE = 1\n")
    entry = tmp_path / "stage.py"
    entry.write_text("from filterlab.core import a\n")
    found = [p.relative_to(package).as_posix() for p in stage_deps.transitive_imports(entry, tmp_path / "src")]
    assert found == ["core/a.py", "core/b.py", "core/c.py"]


def test_package_inits_hold_no_code():
    """They are left out of the deps, which is only right while importing them runs nothing."""
    for init in (ROOT / "src" / "filterlab").rglob("__init__.py"):
        body = ast.parse(init.read_text(encoding="utf-8")).body
        code = [
            node
            for node in body
            if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
            and not (isinstance(node, ast.Assign) and node.targets[0].id == "__version__")
        ]
        assert not code, f"{init.relative_to(ROOT)} runs code; stage deps would miss it"


def test_cli_prints_the_dep_lines(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert stage_deps.main(["pipeline/download.py"]) == 0
    assert "      - src/filterlab/data/mirrors.py" in capsys.readouterr().out.splitlines()
