"""DVC remotes with the run-cache: a second clone restores every stage instead of running it.

Clone A (a committed temp copy, tiny params) runs `dvc repro` once and pushes its cache and
run-cache to a remote (`make push`); clone B is a fresh `git clone` of the same commit (no
dvc.lock, no cache) that pulls the run-cache and runs `dvc repro --pull`: every stage must be
restored, none run. Checked against a directory remote and against moto's S3 server on
loopback, through the pinned dvc-s3 plugin.
"""

import hashlib
import os
import shutil
import subprocess
import sys

import pytest

from team import ROOT, committed_copy, git_clone, ran, s3_server, sh  # noqa: F401 (s3_server is a fixture)

pytestmark = pytest.mark.team

OUTPUTS = (
    "data/prepared/mnist.npz",
    "models/f4_k3_s2/model.keras",
    "reports/metrics/train/f4_k3_s2.json",
    "reports/figures/filters/f4_k3_s2/init_vs_learned.png",
    "reports/index.html",
)


@pytest.fixture(scope="module")
def clone_a(tmp_path_factory):
    """Clone A after one full `dvc repro` of the tiny pipeline; the commit holds no dvc.lock."""
    copy, env = committed_copy(tmp_path_factory.mktemp("remote") / "a")
    first = sh(["dvc", "repro"], copy, env)
    assert "train@4-3-2" in ran(first.stdout)
    return copy, env


def second_clone_restores_everything(a, env_a, remote_args: list[list[str]], b_path, extra_env=None):
    """Push A to the remote set up by `remote_args`, then pull the run-cache into a fresh clone B and repro."""
    for args in remote_args:
        sh(["dvc", "remote", *args], a, env_a)
    # What `make push` runs: `dvc push --run-cache` plus the run-cache's uncached outputs (metrics, plots).
    sh(["python", str(ROOT / ".ci/push_run_cache.py"), "-r", "team"], a, {**env_a, **(extra_env or {})})
    b, env_b = git_clone(a, b_path)
    env_b.update(extra_env or {})
    for args in remote_args:  # the remote is local config here; a team commits it to .dvc/config
        sh(["dvc", "remote", *args], b, env_b)
    # --allow-missing: this commit has no dvc.lock yet, so there is nothing to check out but the run-cache.
    sh(["dvc", "pull", "--run-cache", "--allow-missing", "-r", "team"], b, env_b)
    # --pull: fetch the outputs of the stages restored from the run-cache (the default remote's).
    repro = sh(["dvc", "repro", "--pull"], b, env_b)
    assert ran(repro.stdout) == [], repro.stdout
    assert "is cached - skipping run" in repro.stdout
    for path in OUTPUTS:
        assert (b / path).is_file(), path
    assert (b / "reports/metrics/train/f4_k3_s2.json").read_text() == (
        a / "reports/metrics/train/f4_k3_s2.json"
    ).read_text()
    status = sh(["dvc", "status"], b, env_b)
    assert "up to date" in status.stdout, status.stdout


def test_directory_remote_run_cache_skips_every_stage(clone_a, tmp_path):
    a, env_a = clone_a
    remote = tmp_path / "shared-storage"
    second_clone_restores_everything(a, env_a, [["add", "--local", "-d", "-f", "team", str(remote)]], tmp_path / "b")
    assert any((remote / "files").rglob("*")) and any((remote / "runs").rglob("*"))


def test_s3_remote_run_cache_skips_every_stage(clone_a, tmp_path, s3_server):  # noqa: F811 (the fixture)
    pytest.importorskip("dvc_s3", reason="the DVC S3 plugin is in the team extra: make test-team")
    endpoint, credentials = s3_server
    a, env_a = clone_a
    remote = [
        ["add", "--local", "-d", "-f", "team", "s3://filterlab/dvc"],
        ["modify", "--local", "team", "endpointurl", endpoint],
    ]
    second_clone_restores_everything(a, env_a, remote, tmp_path / "b", credentials)


def _cache_digest(repo) -> str:
    digest = hashlib.sha256()
    for path in sorted((repo / ".dvc" / "cache").rglob("*")):
        if path.is_file():
            digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize(
    "case, words",
    [
        ("read-only", "the remote is on a read-only file system"),
        ("full", "the remote is full"),
        ("not a folder", "is not a folder"),
    ],
)
def test_a_push_to_a_broken_directory_remote_is_one_line_and_leaves_no_temp_files(clone_a, tmp_path, case, words):
    a, env_a = clone_a
    remote = tmp_path / "remote"
    mounted = False
    if case == "not a folder":
        remote.write_text("a file where the remote's folder should be")
    else:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("a read-only or full remote is a tmpfs, and mounting one needs root")
        remote.mkdir()
        options = "ro,size=1m" if case == "read-only" else "size=96k"  # the tiny pipeline's cache is larger
        if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(remote)]).returncode != 0:
            pytest.skip("tmpfs cannot be mounted here")
        mounted = True
    try:
        sh(["dvc", "remote", "add", "--local", "-f", "team", str(remote)], a, env_a)
        before = _cache_digest(a)
        pushed = subprocess.run(
            [sys.executable, str(ROOT / ".ci/push_run_cache.py"), "-r", "team"],
            cwd=a,
            env=env_a,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert pushed.returncode == 1, pushed.stdout + pushed.stderr
        lines = pushed.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in pushed.stderr, pushed.stderr[-3000:]
        assert lines[0].startswith("error: make push to remote 'team'") and words in lines[0], lines[0]
        assert _cache_digest(a) == before  # the local cache is only read
        if remote.is_dir():
            assert not list(remote.rglob("*.tmp"))
    finally:
        if mounted:
            subprocess.run(["umount", str(remote)], check=False)
