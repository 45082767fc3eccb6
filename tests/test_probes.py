"""The three probes: hand-checked peak positions, learned filters that reach their targets, the stage."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from filterlab.probes import peak
from filterlab.probes import recovery
from filterlab.probes import single_image
from filterlab.kernels.bank import KERNELS
from filterlab.config.sections import PeakProbe, RecoveryProbe, SingleImageProbe

ROOT = Path(__file__).resolve().parents[1]
VECTOR = (0.8416, 0.7342, 0.5710, 0.1769, 0.9574, 0.2653, 0.9246, 0.2238, 0.3736, 0.0875)
SEED = 20261121


def test_peak_detector_on_the_lecture_vector():
    # By hand, response at point i (1-based) = x_i - x_(i-1) - x_(i+1):
    #   2: .7342-.8416-.5710 = -.6784   3: .5710-.7342-.1769 = -.3401   4: .1769-.5710-.9574 = -1.3515
    #   5: .9574-.1769-.2653 = +.5152   6: .2653-.9574-.9246 = -1.6167  7: .9246-.2653-.2238 = +.4355
    #   8: .2238-.9246-.3736 = -1.0744  9: .3736-.2238-.0875 = +.0623
    # Positive at points 5, 7, 9; the global max-pool picks point 5 (0.5152).
    hand = peak.hand_applied(VECTOR)
    assert hand["response_points"] == [2, 3, 4, 5, 6, 7, 8, 9]
    np.testing.assert_allclose(hand["response"], [-0.6784, -0.3401, -1.3515, 0.5152, -1.6167, 0.4355, -1.0744, 0.0623],
                               atol=1e-12)
    assert hand["positive_points"] == [5, 7, 9]
    assert hand["max_pool_point"] == 5


def test_sequences_are_balanced_and_labelled_by_the_rule():
    x, y = peak.make_sequences(200, 10, np.random.default_rng(0))
    assert x.shape == (200, 10, 1) and y.sum() == 100
    best = np.array([peak.respond(row[:, 0]).max() for row in x])
    assert np.all(best[y == 1] > peak.MARGIN) and np.all(best[y == 0] < -peak.MARGIN)


def test_learned_peak_filter_is_close_to_minus_one_one_minus_one():
    params = PeakProbe(vector=VECTOR, n_sequences=1000, sequence_length=10, epochs=10, learning_rate=0.01)
    learned = peak.learn(params, SEED)
    assert peak.cosine(learned.learned, peak.PEAK) > 0.99
    assert learned.accuracy > 0.95
    # The init it started from was not already the answer.
    assert peak.cosine(learned.initial, peak.PEAK) < 0.9


def test_recovery_of_sobel_x_within_1e_3_and_the_flip_is_real(tiny_prepared):
    params = RecoveryProbe(kernels=("sobel_x",), n_images=16, epochs=300, learning_rate=0.3)
    result = recovery.recover(tiny_prepared.x_train[:16], KERNELS["sobel_x"], params, SEED)
    assert result.max_abs_error <= 1e-3
    # Conv2D learned the 180-degree-rotated kernel: against sobel_x as written it is off by 2 * 2.
    assert result.unflipped_error == pytest.approx(4.0, abs=1e-2)


def test_single_image_filters_become_correlated_with_the_image(tiny_prepared):
    params = SingleImageProbe(digit=4, n_filters=2, epochs=200, learning_rate=0.01, l2=0.03)
    result = single_image.run(tiny_prepared.x_train, tiny_prepared.y_train, params, SEED)
    metrics = result.metrics()
    assert tiny_prepared.y_train[metrics["image_index"]] == 4
    assert metrics["abs_corr_init_mean"] < 0.15
    assert metrics["abs_corr_learned_min"] > 0.9
    assert metrics["predicted"] == 4


def test_pearson_of_known_arrays():
    ramp = np.arange(9.0).reshape(3, 3)
    assert single_image.pearson(ramp, 2 * ramp + 1) == pytest.approx(1.0)
    assert single_image.pearson(ramp, -ramp) == pytest.approx(-1.0)
    assert single_image.pearson(ramp, np.ones((3, 3))) == 0.0


def write_params(tmp_path: Path, **changes) -> Path:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    probes = params["probes"]
    probes["single_image"].update(n_filters=2, epochs=150)
    probes["peak"].update(n_sequences=400, epochs=3)
    probes["recovery"].update(kernels=["sobel_x"], n_images=8, epochs=50)
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        probes[section][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def run_probes_stage(monkeypatch, tmp_path, params_path, data_path):
    spec = importlib.util.spec_from_file_location("stage_probes", ROOT / "pipeline" / "probes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    figures, metrics = tmp_path / "figures" / "probes", tmp_path / "metrics" / "probes.json"
    monkeypatch.setattr(sys, "argv", ["probes.py", "--params", str(params_path), "--data", str(data_path),
                                      "--figures", str(figures), "--metrics", str(metrics)])
    from filterlab.core.stage import run

    run(module.main)
    return figures, metrics


@pytest.mark.parametrize(
    ("change", "key"),
    [({"single_image__digit": 10}, "probes.single_image.digit"),
     ({"single_image__n_filters": 0}, "probes.single_image.n_filters"),
     ({"recovery__kernels": ["gaussian_5x5"]}, "probes.recovery.kernels")],
)
def test_bad_probe_params_exit_2_before_any_work(monkeypatch, tmp_path, capsys, change, key):
    # The data path does not exist: a parameter error must come first.
    with pytest.raises(SystemExit) as exit_info:
        run_probes_stage(monkeypatch, tmp_path, write_params(tmp_path, **change), tmp_path / "missing.npz")
    assert exit_info.value.code == 2
    assert f"params.yaml: {key}:" in capsys.readouterr().err
    assert not (tmp_path / "figures").exists() and not (tmp_path / "metrics").exists()


def test_stage_writes_figures_metrics_and_three_runs(monkeypatch, tmp_path, tiny_npz, mlflow_uri):
    from mlflow.tracking import MlflowClient

    figures, metrics_path = run_probes_stage(monkeypatch, tmp_path, write_params(tmp_path), tiny_npz)
    assert sorted(path.name for path in figures.iterdir()) == ["peak.png", "recovery.png", "single_image.png"]
    metrics = json.loads(metrics_path.read_text())
    assert metrics["peak"]["positive_points"] == [5, 7, 9]
    assert len(metrics["single_image"]["corr_learned"]) == 2
    assert set(metrics["recovery"]) == {"sobel_x", "max_abs_error"}
    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("probes").experiment_id])
    assert sorted(run.info.run_name for run in runs) == ["peak", "recovery", "single_image"]
    assert all(run.info.status == "FINISHED" for run in runs)
    single = next(run for run in runs if run.info.run_name == "single_image")
    logged = single.data.metrics["abs_corr_learned_mean"]
    assert logged == pytest.approx(metrics["single_image"]["abs_corr_learned_mean"])
