"""The three probes: hand-checked peak positions, learned filters that reach their targets, the stage."""

import json
from pathlib import Path

import numpy as np
import pytest

from filterlab.config.sections import PeakProbe, RecoveryProbe, SingleImageProbe
from filterlab.kernels.bank import KERNELS
from filterlab.probes import peak, recovery, single_image
from helpers import load_stage

VECTOR = (0.8416, 0.7342, 0.5710, 0.1769, 0.9574, 0.2653, 0.9246, 0.2238, 0.3736, 0.0875)
SEED = 20261121
MARGIN = 0.05


def test_peak_detector_on_the_lecture_vector():
    # By hand, response at point i (1-based) = x_i - x_(i-1) - x_(i+1):
    #   2: .7342-.8416-.5710 = -.6784   3: .5710-.7342-.1769 = -.3401   4: .1769-.5710-.9574 = -1.3515
    #   5: .9574-.1769-.2653 = +.5152   6: .2653-.9574-.9246 = -1.6167  7: .9246-.2653-.2238 = +.4355
    #   8: .2238-.9246-.3736 = -1.0744  9: .3736-.2238-.0875 = +.0623
    # Positive at points 5, 7, 9; the global max-pool picks point 5 (0.5152).
    hand = peak.hand_applied(VECTOR)
    assert hand["response_points"] == [2, 3, 4, 5, 6, 7, 8, 9]
    np.testing.assert_allclose(
        hand["response"], [-0.6784, -0.3401, -1.3515, 0.5152, -1.6167, 0.4355, -1.0744, 0.0623], atol=1e-12
    )
    assert hand["positive_points"] == [5, 7, 9]
    assert hand["max_pool_point"] == 5


def test_sequences_are_balanced_and_labelled_by_the_rule():
    x, y = peak.make_sequences(200, 10, MARGIN, np.random.default_rng(0))
    assert x.shape == (200, 10, 1) and y.sum() == 100
    best = np.array([peak.respond(row[:, 0]).max() for row in x])
    assert np.all(best[y == 1] > MARGIN) and np.all(best[y == 0] < -MARGIN)


def test_learned_peak_filter_is_close_to_minus_one_one_minus_one():
    params = PeakProbe(
        vector=VECTOR,
        n_sequences=1000,
        sequence_length=10,
        epochs=10,
        learning_rate=0.01,
        batch_size=64,
        restarts=8,
        margin=MARGIN,
    )
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


TINY_PROBES = {
    "probes.single_image.n_filters": 2,
    "probes.single_image.epochs": 150,
    "probes.peak.n_sequences": 400,
    "probes.peak.epochs": 3,
    "probes.recovery.kernels": ["sobel_x"],
    "probes.recovery.n_images": 8,
    "probes.recovery.epochs": 50,
}


def run_probes_stage(tmp_path, params_path, data_path) -> tuple[int, Path, Path]:
    figures, metrics = tmp_path / "figures" / "probes", tmp_path / "metrics" / "probes.json"
    code = load_stage("probes").main(
        ["--params", str(params_path), "--data", str(data_path), "--figures", str(figures), "--details", str(metrics)]
    )
    return code, figures, metrics


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"probes.single_image.digit": 10}, "probes.single_image.digit"),
        ({"probes.single_image.n_filters": 0}, "probes.single_image.n_filters"),
        ({"probes.recovery.kernels": ["gaussian_5x5"]}, "probes.recovery.kernels"),
        ({"probes.recovery.kernels": ["sobel_q"]}, "probes.recovery.kernels"),
    ],
)
def test_bad_probe_params_exit_2_before_any_work(tmp_path, capsys, params_file, change, key):
    # The data path does not exist: a parameter error must come first.
    code, _figures, _metrics = run_probes_stage(tmp_path, params_file(TINY_PROBES | change), tmp_path / "missing.npz")
    assert code == 2
    assert f"params.yaml: {key}:" in capsys.readouterr().err
    assert not (tmp_path / "figures").exists() and not (tmp_path / "metrics").exists()


def test_stage_writes_figures_metrics_and_three_runs(tmp_path, tiny_npz, mlflow_uri, params_file):
    from mlflow.tracking import MlflowClient

    code, figures, metrics_path = run_probes_stage(tmp_path, params_file(TINY_PROBES), tiny_npz)
    assert code == 0
    assert sorted(path.name for path in figures.iterdir()) == ["peak.png", "recovery.png", "single_image.png"]
    metrics = json.loads(metrics_path.read_text())
    assert metrics["peak"]["positive_points"] == [5, 7, 9]
    assert len(metrics["single_image"]["corr_learned"]) == 2
    assert set(metrics["recovery"]) == {"sobel_x", "max_abs_error"}
    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("probes").experiment_id])
    expected = [f"{name} (test-sweep)" for name in ("peak", "recovery", "single_image")]
    assert sorted(run.info.run_name for run in runs) == expected
    assert all(run.info.status == "FINISHED" for run in runs)
    single = next(run for run in runs if run.info.run_name == "single_image (test-sweep)")
    logged = single.data.metrics["abs_corr_learned_mean"]
    assert logged == pytest.approx(metrics["single_image"]["abs_corr_learned_mean"])
