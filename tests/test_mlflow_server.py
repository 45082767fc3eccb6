"""End to end over HTTP: a real MLflow server on loopback, the train, filters and log_figures stages logging to it.

The server is a subprocess with a sqlite store and served artifacts in tmp_path; the
stages run in-process (their `main`) with MLFLOW_TRACKING_URI=http://127.0.0.1:<port>,
and every check goes through the REST API with urllib, as another user's browser or
script would.
"""

import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from helpers import TINY, TINY_VARIANT, api, flags, load_stage

NAME = TINY_VARIANT
VARIANT = {"filter_count": 4, "kernel_size": 3, "stride": 2}


def log_tiny_pipeline(base: str, tmp_path: Path, npz: Path, params: Path, monkeypatch) -> None:
    """The train, filters and log_figures stages of one variant, logging over HTTP."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", base)
    monkeypatch.setenv("FILTERLAB_SWEEP_ID", "http-test")
    model_dir = tmp_path / "models" / NAME
    inputs = {"params": params, "data": npz}
    train = flags(**inputs, **VARIANT, model_dir=model_dir, metrics=tmp_path / "metrics" / f"{NAME}.json")
    train += flags(history=tmp_path / "plots" / f"{NAME}.csv", details=tmp_path / "train" / f"{NAME}.json")
    assert load_stage("train").main(train) == 0
    drawn = flags(**inputs, filters_npz=model_dir / "filters.npz", run=model_dir / "run.json")
    drawn += flags(figures=tmp_path / "figures" / NAME, metrics=tmp_path / "filters" / f"{NAME}.json")
    assert load_stage("filters").main(drawn + flags(details=tmp_path / "details" / f"{NAME}.json")) == 0
    logged = flags(params=params, figures=tmp_path / "figures", details=tmp_path / "details")
    assert load_stage("log_figures").main(logged + flags(out=tmp_path / "log_figures.json")) == 0


# The stages pin TensorFlow's threads, which an earlier test in this process may have started.
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:TensorFlow thread pools already started")
def test_stages_log_runs_params_metrics_and_images_over_http(
    mlflow_server, tmp_path, tiny_npz, params_file, monkeypatch
):
    log_tiny_pipeline(mlflow_server, tmp_path, tiny_npz, params_file(TINY), monkeypatch)
    experiment = api(mlflow_server, "/api/2.0/mlflow/experiments/get-by-name", query={"experiment_name": "train"})
    experiment_id = experiment["experiment"]["experiment_id"]
    (run,) = api(mlflow_server, "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment_id]})["runs"]
    assert run["info"]["status"] == "FINISHED" and run["info"]["run_name"] == f"{NAME} (http-test)"
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
    url = f"{mlflow_server}/get-artifact?" + urllib.parse.urlencode(
        {"path": "filters/init_vs_learned.png", "run_uuid": run_id}
    )
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.read(8) == b"\x89PNG\r\n\x1a\n"
    assert any((tmp_path / "artifacts").rglob("init_vs_learned.png"))  # stored by the server, not the client
