"""Similarity maths on kernels whose answers are known by hand."""

import numpy as np
import pytest

from filterlab.kernels.bank import KERNELS
from filterlab.kernels.similarity import compare_filters, keras_bank, nearest, similarity

SOBEL_X = np.array(KERNELS["sobel_x"].weights)


def as_conv1(*filters_2d: np.ndarray) -> np.ndarray:
    """Stack 2-D filters into conv1's Keras layout (kh, kw, 1, filters)."""
    return np.stack(filters_2d, axis=-1)[:, :, np.newaxis, :]


def test_identical_and_negated_kernels_have_similarity_one():
    assert similarity(SOBEL_X, SOBEL_X) == pytest.approx(1.0)
    assert similarity(SOBEL_X, -SOBEL_X) == pytest.approx(1.0)
    # Scale and a constant offset are removed by the unit norm and the centring.
    assert similarity(SOBEL_X, 3.0 * SOBEL_X + 0.7) == pytest.approx(1.0)


def test_orthogonal_kernels_have_similarity_zero():
    # sobel_x varies along columns only, sobel_y along rows only: their product sums to 0.
    assert similarity(SOBEL_X, KERNELS["sobel_y"].weights) == pytest.approx(0.0, abs=1e-12)


def test_constant_kernel_has_similarity_zero_not_nan():
    box = KERNELS["box_blur_3x3"].weights
    assert similarity(box, SOBEL_X) == 0.0
    assert similarity(box, box) == 0.0


def test_different_shapes_are_refused():
    with pytest.raises(ValueError, match="different shapes"):
        similarity(np.ones((3, 3)), np.ones((5, 5)))


def test_bank_is_flipped_to_keras_layout():
    bank = keras_bank(KERNELS, (3, 3))
    # sobel_x is antisymmetric left-right, so its Keras (cross-correlation) weights are -sobel_x.
    np.testing.assert_allclose(bank["sobel_x"], -SOBEL_X)
    # Keras layout is the kernel rotated by 180 degrees (both axes flipped).
    np.testing.assert_allclose(bank["emboss"], np.flip(KERNELS["emboss"].weights))
    assert "gaussian_5x5" not in bank and "peak_1x3" not in bank
    assert set(keras_bank(KERNELS, (5, 5))) == {"gaussian_5x5", "gabor_0", "gabor_45", "gabor_90", "gabor_135"}


def test_flip_matters_for_an_asymmetric_kernel():
    # Rotated by 180 degrees emboss is -emboss except at the centre, so even with sign
    # invariance the unflipped kernel is not a perfect match: the comparison must flip.
    emboss = np.array(KERNELS["emboss"].weights)
    keras_weights = np.flip(emboss)
    assert similarity(keras_weights, keras_bank(KERNELS, (3, 3))["emboss"]) == pytest.approx(1.0)
    assert similarity(emboss, keras_bank(KERNELS, (3, 3))["emboss"]) < 0.999


def test_nearest_finds_sobel_x_for_its_keras_weights():
    bank = keras_bank(KERNELS, (3, 3))
    name, score = nearest(-SOBEL_X, bank)  # what a frozen conv1 holds to compute sobel_x
    assert name == "sobel_x" and score == pytest.approx(1.0)
    # Sign invariance: the negated filter (= SOBEL_X as cross-correlation weights) also matches.
    assert nearest(SOBEL_X, bank) == ("sobel_x", pytest.approx(1.0))


def test_compare_filters_summarises_init_and_learned():
    rng = np.random.default_rng(0)
    init = as_conv1(rng.normal(size=(3, 3)), rng.normal(size=(3, 3)))
    learned = as_conv1(-SOBEL_X + 0.01 * rng.normal(size=(3, 3)), KERNELS["laplacian_8"].weights)
    report = compare_filters(init, learned, KERNELS)
    assert report["comparable"] is True
    assert [entry["learned"]["kernel"] for entry in report["per_filter"]] == ["sobel_x", "laplacian_8"]
    assert report["similarity"]["learned"]["max"] == pytest.approx(1.0)
    assert report["similarity"]["learned"]["mean"] > 0.99
    init_scores = [entry["init"]["similarity"] for entry in report["per_filter"]]
    assert report["similarity"]["init"]["mean"] == pytest.approx(np.mean(init_scores))
    assert report["similarity"]["init"]["mean"] < report["similarity"]["learned"]["mean"]


def test_compare_filters_without_bank_kernels_of_that_size():
    kernels = np.zeros((7, 7, 1, 4))
    report = compare_filters(kernels, kernels, KERNELS)
    assert report["comparable"] is False
    assert report["similarity"]["learned"] == {"mean": None, "max": None}
    assert report["per_filter"] == []
