"""End to end over HTTP: a real MLflow server on loopback, the train and filters stages logging to it.

The server is a subprocess with a sqlite store and served artifacts in tmp_path, the
stages run as subprocesses with MLFLOW_TRACKING_URI=http://127.0.0.1:<port>, and every
check goes through the REST API with urllib, as another user's browser or script would.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
VARIANT = {"filters": 4, "kernel_size": 3, "stride": 2}
NAME = "f4_k3_s2"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def api(base: str, path: str, body: dict | None = None, query: dict | None = None) -> dict:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def mlflow_server(tmp_path):
    """Base URL of a fresh `mlflow server` bound to 127.0.0.1; stopped (and reaped) after the test."""
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server",
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination", str(tmp_path / "artifacts"), "--serve-artifacts",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]
    # The server's background job runner (GenAI jobs) is not needed here and costs a dozen processes.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    # Own session, so teardown can stop the server's whole process group (uvicorn workers included).
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, env=env,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"mlflow server exited with {server.returncode}:\n{(tmp_path / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not healthy in 120 s:\n{(tmp_path / 'server.log').read_text()}")
            time.sleep(0.5)
        yield base
    finally:
        stop(server)
        log.close()


def stop(server: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):  # whatever ignored SIGTERM
        os.killpg(server.pid, signal.SIGKILL)
    server.wait()


def tiny_params(path: Path) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"].update(epochs=1, batch_size=64, threads=1, grid={key: [value] for key, value in VARIANT.items()})
    path.write_text(yaml.safe_dump(params))
    return path


def run_stage(script: str, *args: str, env: dict) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "pipeline" / script), *args], capture_output=True, text=True,
                            env=env, timeout=300, cwd=ROOT)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"


def log_tiny_pipeline(base: str, tmp_path: Path, npz: Path) -> None:
    """The train and filters stages of one variant, logging over HTTP."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": base, "FILTERLAB_SWEEP_ID": "http-test", "TF_CPP_MIN_LOG_LEVEL": "2"}
    params, model_dir = tiny_params(tmp_path / "params.yaml"), tmp_path / "models" / NAME
    run_stage("train.py", "--params", str(params), "--data", str(npz), *(
        item for key, value in VARIANT.items() for item in (f"--{key.replace('_', '-')}", str(value))),
        "--model-dir", str(model_dir), "--metrics", str(tmp_path / "metrics" / f"{NAME}.json"),
        "--history", str(tmp_path / "plots" / f"{NAME}.csv"), env=env)
    run_stage("filters.py", "--params", str(params), "--data", str(npz), "--model-dir", str(model_dir),
              "--figures", str(tmp_path / "figures" / NAME), "--metrics", str(tmp_path / "filters" / f"{NAME}.json"),
              env=env)


@pytest.mark.slow
def test_stages_log_runs_params_metrics_and_images_over_http(mlflow_server, tmp_path, tiny_npz):
    log_tiny_pipeline(mlflow_server, tmp_path, tiny_npz)
    experiment = api(mlflow_server, "/api/2.0/mlflow/experiments/get-by-name", query={"experiment_name": "train"})
    experiment_id = experiment["experiment"]["experiment_id"]
    (run,) = api(mlflow_server, "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment_id]})["runs"]
    assert run["info"]["status"] == "FINISHED" and run["info"]["run_name"] == NAME
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["filters"] == "4" and params["kernel_size"] == "3" and params["epochs"] == "1"
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert {"loss", "accuracy", "val_accuracy", "test_accuracy"} <= set(metrics)
    assert 0 <= metrics["test_accuracy"] <= 1
    run_id = run["info"]["run_id"]

    def listing(path: str = "") -> list[str]:
        query = {"run_id": run_id, **({"path": path} if path else {})}
        return [f["path"] for f in api(mlflow_server, "/api/2.0/mlflow/artifacts/list", query=query).get("files", [])]

    top = listing()
    assert {"model.keras", "filters.npz", "filters", "images"} <= set(top)
    assert "filters/init_vs_learned.png" in listing("filters")
    steps = [path for path in listing("images") if path.endswith(".png")]
    assert len(steps) == 2  # the filter grid at init (step 0) and after the one epoch
    # The artifact bytes come back over HTTP from the server's artifact store, and are a PNG.
    url = f"{mlflow_server}/get-artifact?" + urllib.parse.urlencode({"path": "filters/init_vs_learned.png",
                                                                     "run_uuid": run_id})
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read(8) == b"\x89PNG\r\n\x1a\n"
    assert any((tmp_path / "artifacts").rglob("init_vs_learned.png"))  # stored by the server, not the client
