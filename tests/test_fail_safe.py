"""Faults under a real `dvc repro`, on a temp copy of the repo: bad params never cost a stage's outputs,
a run-time failure is undone by the one documented command, and a stage dies with its `dvc`.

Only the cheap head of the pipeline is kept in the copy's dvc.yaml (validate, download of the
bundled subset, prepare): what DVC does with outputs is the same for every stage.
Slow-marked: each case is a `dvc repro`.
"""

import contextlib
import hashlib
import http.server
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

from helpers import TINY, repo_copy, write_params

pytestmark = pytest.mark.slow

HEAD = ("validate", "download", "prepare")
KEPT = (
    "data/raw/manifest.json",
    "data/raw/train-images-idx3-ubyte.gz",
    "data/prepared/mnist.npz",
    "reports/details/data.json",
)
# The one command the README documents for restoring the last committed outputs.
RESTORE = "git checkout -- dvc.lock reports && dvc checkout --force"


def dvc(args: list[str], copy: Path, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", *args], cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)


def digests(copy: Path) -> dict[str, str]:
    return {name: hashlib.sha256((copy / name).read_bytes()).hexdigest() for name in KEPT if (copy / name).exists()}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A committed copy after `dvc repro prepare` (validate, download, prepare); yields (path, env, digests)."""
    copy = tmp_path_factory.mktemp("failsafe") / "repo"
    env = repo_copy(copy)
    # The head of the pipeline only, so that every stage left has run and `dvc checkout` has every hash.
    pipeline = yaml.safe_load((copy / "dvc.yaml").read_text())
    pipeline = {"stages": {name: pipeline["stages"][name] for name in HEAD}}
    (copy / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    subprocess.run(["git", "rm", "-q", "dvc.lock"], cwd=copy, env=env, check=True)  # the real run's hashes
    first = dvc(["repro", "prepare"], copy, env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    # The real repo always has metrics in git under reports/, which the restore command names; the
    # head of the pipeline writes none, so one stands in for them.
    (copy / "reports" / "metrics").mkdir(parents=True, exist_ok=True)
    (copy / "reports" / "metrics" / "kept.json").write_text('{"accuracy": 0.5}\n')
    for command in (["git", "add", "-A"], ["git", "commit", "-q", "-m", "head of the pipeline"]):
        subprocess.run(command, cwd=copy, env=env, check=True, capture_output=True)
    return copy, env, digests(copy)


def _reset(copy: Path, env: dict) -> None:
    subprocess.run(["git", "checkout", "-q", "--", "params.yaml"], cwd=copy, env=env, check=True)


BAD = [
    ("epochs-string", {"train.epochs": "1"}, "train.epochs: '1' has the wrong type"),
    ("epochs-true", {"train.epochs": True}, "train.epochs: True has the wrong type"),  # DVC reads it as 1
    ("unknown-section", {"trian": {"epochs": 1}}, "trian: unknown top-level section"),
    ("prepare-string", {"prepare.val_fraction": "0.1"}, "prepare.val_fraction: '0.1' has the wrong type"),
    ("bad-kernel", {"baselines.kernels": ["sobel_q"]}, "unknown kernel 'sobel_q'"),
    ("colormap-typo", {"figures.colormap": "RdBu_rr"}, "figures.colormap: 'RdBu_rr' is not a matplotlib colormap"),
    ("peak-too-long", {"probes.peak.sequence_length": 1000}, "probes.peak.sequence_length: 1000: only"),
]


@pytest.mark.parametrize(("case", "overrides", "words"), BAD, ids=[case[0] for case in BAD])
def test_bad_params_stop_dvc_repro_before_any_output_is_removed(repo, case, overrides, words):
    copy, env, before = repo
    write_params(copy / "params.yaml", TINY | overrides)
    try:
        result = dvc(["repro"], copy, env)
        assert result.returncode != 0, result.stdout[-2000:]
        assert "up to date" not in result.stdout
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and words in errors[0], result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        assert "Running stage 'validate'" in result.stdout and "Running stage 'download'" not in result.stdout
        assert digests(copy) == before
    finally:
        _reset(copy, env)


def test_a_duplicate_key_stops_dvc_repro_and_keeps_the_outputs(repo):
    copy, env, before = repo
    text = (copy / "params.yaml").read_text().replace("  epochs: 1\n", "  epochs: 1\n  epochs: 2\n")
    (copy / "params.yaml").write_text(text)
    try:
        result = dvc(["repro"], copy, env)
        assert result.returncode != 0 and digests(copy) == before
        assert "Traceback" not in result.stderr
    finally:
        _reset(copy, env)


def restore(copy: Path, env: dict) -> None:
    restored = subprocess.run(RESTORE, shell=True, cwd=copy, env=env, capture_output=True, text=True, timeout=300)
    assert restored.returncode == 0, restored.stdout[-2000:] + restored.stderr[-2000:]


def test_a_failing_download_is_one_line_and_the_restore_command_brings_data_raw_back(repo):
    """`source: remote` with a dead mirror: a run-time failure, after DVC removed data/raw (not `persist`, so
    the stage keeps its run-cache entry); no temp folder is left and the documented command restores it."""
    copy, env, before = repo
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["data"].update(source="remote", mirrors=["http://127.0.0.1:9/mnist/"], retries=0)
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        result = dvc(["repro", "download"], copy, env)
        assert result.returncode != 0 and "error: no mirror delivered" in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
        assert not [p for p in (copy / "data").iterdir() if p.name.startswith(".raw.")]
        restore(copy, env)
        assert digests(copy) == before
    finally:
        _reset(copy, env)


def test_a_run_time_failure_is_undone_by_the_documented_command(repo):
    copy, env, before = repo
    raw = copy / "data" / "raw" / "train-labels-idx1-ubyte.gz"
    damaged = raw.read_bytes()[:-8]
    raw.unlink()  # never edit in place: the file may be a link into the DVC cache
    raw.write_bytes(damaged)
    result = dvc(["repro", "-s", "prepare"], copy, env)  # -s: not download, which would rebuild data/raw
    assert result.returncode != 0 and "does not match manifest.json" in result.stderr, result.stderr[-2000:]
    assert not (copy / "data/prepared/mnist.npz").exists()  # DVC removed it before running prepare
    restore(copy, env)
    assert digests(copy) == before
    status = dvc(["status", "prepare"], copy, env)
    assert "up to date" in status.stdout, status.stdout


class _Drip(http.server.BaseHTTPRequestHandler):
    """A mirror that sends one byte every 0.2 s of a 10 MB file: alive, never done."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Length", "9912422")
        self.end_headers()
        with contextlib.suppress(OSError):
            while True:
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(0.2)

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])  # dash keeps itself between dvc and python, bash execs
def test_sigterm_to_dvc_stops_the_download_cleans_up_and_keeps_data_raw(repo, shell):
    copy, env, before = repo
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Drip)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    run_env = {**env, "SHELL": shell, "MNIST_MIRROR": f"http://127.0.0.1:{server.server_port}/mnist/"}
    write_params(copy / "params.yaml", TINY | {"data.source": "auto"})  # MNIST_MIRROR is not read for bundled
    repro = subprocess.Popen(
        ["dvc", "repro", "-f", "download"],
        cwd=copy,
        env=run_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not list((copy / "data").glob(".raw.*.tmp/*.part")):
            assert repro.poll() is None and time.monotonic() < deadline, repro.communicate()
            time.sleep(0.2)
        stages = [
            p
            for p in psutil.Process(repro.pid).children(recursive=True)
            if p.name().startswith("python") and "pipeline/download.py" in p.cmdline()
        ]
        # The stage, and the fork that filters its stderr (filterlab.core.tf_log_filter): both must go.
        assert len([p for p in stages if p.ppid() not in {q.pid for q in stages}]) == 1
        os.kill(repro.pid, signal.SIGTERM)  # the dvc process only, as `kill <pid of dvc>` does
        _out, err = repro.communicate(timeout=60)
        gone, alive = psutil.wait_procs(stages, timeout=30)
        assert not alive, "the download stage outlived dvc"
        assert "stopped: terminated by SIGTERM; temp files removed" in err, err[-2000:]
        assert not [p for p in (copy / "data").iterdir() if p.name.startswith(".raw.")]
        restore(copy, env)
        assert digests(copy) == before
    finally:
        _reset(copy, env)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(repro.pid, signal.SIGKILL)
        server.shutdown()
        server.server_close()
