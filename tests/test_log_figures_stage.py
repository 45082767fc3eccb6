"""The `log_figures` stage: each variant's figures land in its finished MLflow train run, once per content."""

import json

import pytest

from helpers import flags, load_stage
from test_filters_stage import EPOCHS, VARIANT, fake_variant, run_stage


def log_figures_args(tmp_path, params) -> list[str]:
    return flags(
        params=params, figures=tmp_path / "figures", details=tmp_path / "details", out=tmp_path / "log_figures.json"
    )


@pytest.fixture
def drawn(tmp_path, tiny_npz, mlflow_uri, params_file):
    """A fake trained variant with its MLflow run, drawn by the filters stage; params whose grid is that variant."""
    model_dir = tmp_path / "models" / VARIANT
    run_id = fake_variant(model_dir)
    params = params_file({"train.grid.filters": [4], "train.grid.kernel_size": [3], "train.grid.stride": [1]})
    code, _figures, _metrics = run_stage(tmp_path, params, tiny_npz, model_dir)
    assert code == 0
    argv = log_figures_args(tmp_path, params)
    return run_id, argv


def test_figures_metrics_and_frames_are_added_to_the_finished_run(tmp_path, mlflow_uri, drawn, capsys):
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    from filterlab.core import tracking

    run_id, argv = drawn
    client = MlflowClient(mlflow_uri)
    ended = client.get_run(run_id).info.end_time
    assert load_stage("log_figures").main(argv) == 0
    assert f"{VARIANT}: figures added to run {run_id}" in capsys.readouterr().out
    # The out: the digests tying the run to the files, and nothing that depends on the tracking store.
    manifest = json.loads((tmp_path / "log_figures.json").read_text())
    assert list(manifest) == [VARIANT]
    run = client.get_run(run_id)
    assert manifest[VARIANT]["filters_sha256"] == run.data.tags[tracking.FILTERS_TAG]
    assert manifest[VARIANT]["figures_sha256"] == run.data.tags[tracking.FIGURES_TAG]
    assert run_id not in (tmp_path / "log_figures.json").read_text()

    # Added without reopening it: its status and duration stay the training's own.
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.end_time == ended
    logged = {Path(item.path).name for item in client.list_artifacts(run_id, "filters")}
    names = {path.name for path in (tmp_path / "figures" / VARIANT).iterdir()}
    assert names | {f"{VARIANT}.json"} <= logged and "evolution.gif" in names
    headline = json.loads((tmp_path / "metrics" / f"{VARIANT}.json").read_text())
    assert run.data.metrics["similarity_learned"] == pytest.approx(headline["similarity_learned"])
    # One image per epoch under each key: the UI's step slider, whole grid and the first 16 filters alone.
    images = [item.path for item in client.list_artifacts(run_id, "images")]
    for key in ("conv1_filters+", "conv1_filters_0-15+"):
        assert sum(Path(path).name.startswith(key) and path.endswith(".png") for path in images) == EPOCHS + 1


def test_a_second_run_adds_nothing_and_changed_figures_are_added_again(tmp_path, mlflow_uri, drawn, capsys):
    from mlflow.tracking import MlflowClient

    run_id, argv = drawn
    stage = load_stage("log_figures")
    assert stage.main(argv) == 0
    client = MlflowClient(mlflow_uri)
    count = len(client.list_artifacts(run_id, "images"))
    capsys.readouterr()
    assert stage.main(argv) == 0
    assert f"run {run_id} has these figures already" in capsys.readouterr().out
    assert len(client.list_artifacts(run_id, "images")) == count  # no second set of slider images

    (tmp_path / "figures" / VARIANT / "evolution.png").write_bytes(b"redrawn")
    assert stage.main(argv) == 0
    assert "figures added" in capsys.readouterr().out


def test_a_variant_without_a_run_is_reported_not_failed(tmp_path, tiny_npz, mlflow_uri, params_file, capsys):
    # train@ restored from DVC's run-cache logged no run in this store.
    model_dir = tmp_path / "models" / VARIANT
    fake_variant(model_dir, mlflow_run=False)
    params = params_file({"train.grid.filters": [4], "train.grid.kernel_size": [3], "train.grid.stride": [1]})
    assert run_stage(tmp_path, params, tiny_npz, model_dir)[0] == 0
    argv = log_figures_args(tmp_path, params)
    assert load_stage("log_figures").main(argv) == 0
    assert "no MLflow run holds these filters" in capsys.readouterr().out
    assert list(json.loads((tmp_path / "log_figures.json").read_text())) == [VARIANT]  # the same out either way


def test_a_variant_not_drawn_yet_is_one_line(tmp_path, mlflow_uri, params_file, capsys):
    params = params_file({"train.grid.filters": [4], "train.grid.kernel_size": [3], "train.grid.stride": [1]})
    argv = log_figures_args(tmp_path, params)
    assert load_stage("log_figures").main(argv) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "dvc repro filters@4-3-1" in error and "\n" not in error
    assert not (tmp_path / "log_figures.json").exists()


def test_details_from_an_older_filters_stage_name_the_forced_rerun(tmp_path, mlflow_uri, drawn, capsys):
    _run_id, argv = drawn
    details = tmp_path / "details" / f"{VARIANT}.json"
    payload = json.loads(details.read_text())
    del payload["filters_sha256"]
    details.write_text(json.dumps(payload))
    assert load_stage("log_figures").main(argv) == 1
    error = capsys.readouterr().err.strip()
    assert "no filters_sha256" in error and "dvc repro -f filters@4-3-1" in error and "\n" not in error


def test_a_store_gone_before_the_figures_is_one_warning_and_the_out_is_written(tmp_path, drawn, monkeypatch, capsys):
    from mlflow.exceptions import MlflowException

    from filterlab.core import tracking

    def gone(*args, **kwargs):
        raise MlflowException("API request to http://mlflow:pw@127.0.0.1:5001/api/2.0/mlflow/runs/search failed")

    _run_id, argv = drawn
    monkeypatch.setattr(tracking, "finished_run", gone)
    assert load_stage("log_figures").main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err.count("warning: MLflow is not usable") == 1 and "dvc repro -f log_figures" in captured.err
    assert "pw@" not in captured.err and "Traceback" not in captured.err
    assert f"{VARIANT}: not logged (MLflow is not usable)" in captured.out
    assert list(json.loads((tmp_path / "log_figures.json").read_text())) == [VARIANT]
