"""DVC remotes with the run-cache: a second clone restores every stage instead of running it.

Clone A (a committed temp copy, tiny params) runs `dvc repro` once and pushes its cache and
run-cache to a remote (`make push`); clone B is a fresh `git clone` of the same commit (no
dvc.lock, no cache) that pulls the run-cache and runs `dvc repro --pull`: every stage must be
restored, none run. Checked against a directory remote and against moto's S3 server on
loopback, through the pinned dvc-s3 plugin.
"""

import pytest

from team import ROOT, committed_copy, git_clone, ran, s3_server, sh  # noqa: F401 (s3_server is a fixture)

pytestmark = pytest.mark.team

OUTPUTS = ("data/prepared/mnist.npz", "models/f4_k3_s2/model.keras", "reports/metrics/train/f4_k3_s2.json",
           "reports/figures/filters/f4_k3_s2/init_vs_learned.png", "reports/index.html")


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
    assert (b / "reports/metrics/train/f4_k3_s2.json").read_text() == \
        (a / "reports/metrics/train/f4_k3_s2.json").read_text()
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
    remote = [["add", "--local", "-d", "-f", "team", "s3://filterlab/dvc"],
              ["modify", "--local", "team", "endpointurl", endpoint]]
    second_clone_restores_everything(a, env_a, remote, tmp_path / "b", credentials)
