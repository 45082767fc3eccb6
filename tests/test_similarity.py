"""filterlab.kernels.similarity on kernels whose answers are known by hand, and its chance level."""

from types import SimpleNamespace

import numpy as np
import pytest

from filterlab.kernels.bank import KERNELS
from filterlab.kernels.similarity import chance, compare_filters, cosine, kernel_classes, nearest, similarity

SOBEL_X = np.array(KERNELS["sobel_x"].weights)


def as_conv1(*filters_2d: np.ndarray) -> np.ndarray:
    """Stack 2-D filters into conv1's Keras layout (kh, kw, 1, filters)."""
    return np.stack(filters_2d, axis=-1)[:, :, np.newaxis, :]


def keras(name: str) -> np.ndarray:
    """A bank kernel as conv1 holds it: rotated by 180 degrees."""
    return np.flip(np.array(KERNELS[name].weights))


def test_identical_negated_and_scaled_kernels_have_similarity_one():
    assert similarity(SOBEL_X, SOBEL_X) == pytest.approx(1.0)
    assert similarity(SOBEL_X, -3.0 * SOBEL_X) == pytest.approx(1.0)


def test_the_mean_counts_so_classic_kernels_stay_apart():
    """The old centred measure called identity and laplacian_8 the same and a blur 'no direction'."""
    assert similarity(keras("identity"), keras("laplacian_8")) == pytest.approx(8 / np.sqrt(72))
    assert similarity(keras("box_blur_3x3"), keras("box_blur_3x3")) == pytest.approx(1.0)
    assert similarity(keras("box_blur_3x3"), SOBEL_X) == pytest.approx(0.0, abs=1e-12)
    classes = kernel_classes(KERNELS, (3, 3))
    assert nearest(keras("identity"), classes)[0] == "identity"
    assert nearest(keras("laplacian_8"), classes)[0] == "laplacian_8"
    assert nearest(keras("box_blur_3x3"), classes)[0] == "box_blur_3x3"


def test_every_bank_kernel_is_its_own_nearest_class():
    for shape in ((3, 3), (5, 5)):
        classes = kernel_classes(KERNELS, shape)
        for kernel_class in classes:
            for member in kernel_class.members:
                name, score = nearest(keras(member), classes)
                assert (name, score) == (kernel_class.name, pytest.approx(1.0))


def test_equivalent_kernels_form_one_named_class():
    bank = {
        "a": SimpleNamespace(weights=SOBEL_X),
        "b": SimpleNamespace(weights=KERNELS["sobel_y"].weights),
        "minus_a": SimpleNamespace(weights=-2 * SOBEL_X),
    }
    classes = kernel_classes(bank, (3, 3))
    assert [c.name for c in classes] == ["a = minus_a", "b"]
    assert nearest(-SOBEL_X + 1e-12, classes)[0] == "a = minus_a"


def test_ties_go_to_the_first_class_whatever_the_rounding():
    bank = {"x": SimpleNamespace(weights=SOBEL_X), "y": SimpleNamespace(weights=SOBEL_X.T)}
    classes = kernel_classes(bank, (3, 3))
    halfway = np.flip(SOBEL_X) + np.flip(SOBEL_X.T)  # equally far from both
    for noise in (0.0, 1e-15, -1e-15):
        assert nearest(halfway + noise * np.eye(3), classes)[0] == "x"


def test_bank_is_flipped_to_keras_layout():
    classes = {c.name: c for c in kernel_classes(KERNELS, (3, 3))}
    emboss = np.flip(KERNELS["emboss"].weights).ravel()
    np.testing.assert_allclose(classes["emboss"].unit, emboss / np.linalg.norm(emboss))
    assert "gaussian_5x5" not in classes and "peak_1x3" not in classes
    assert [c.name for c in kernel_classes(KERNELS, (5, 5))] == [
        "gaussian_5x5",
        "gabor_0",
        "gabor_45",
        "gabor_90",
        "gabor_135",
    ]


def test_cosine_signed_and_centred():
    assert cosine([1, 0], [-1, 0]) == pytest.approx(-1.0)
    assert cosine([1, 2, 3], [2, 4, 6], centred=True) == pytest.approx(1.0)
    assert cosine(np.zeros(3), [1, 2, 3]) == 0.0 and cosine([2, 2], [1, 3], centred=True) == 0.0


def test_different_shapes_are_refused():
    with pytest.raises(ValueError, match="different shapes"):
        similarity(np.ones((3, 3)), np.ones((5, 5)))


def test_chance_level_is_seeded_and_sits_below_the_bank_itself():
    classes = kernel_classes(KERNELS, (3, 3))
    first, again = chance((3, 3), classes, seed=1, samples=2000), chance((3, 3), classes, seed=1, samples=2000)
    assert first == again
    assert 0.3 < first["mean"] < first["p95"] < 1.0 and first["sd"] > 0


def test_compare_filters_reports_init_learned_chance_and_effect():
    rng = np.random.default_rng(0)
    init = rng.uniform(-1, 1, size=(3, 3, 1, 3))
    learned = as_conv1(keras("sobel_x"), keras("laplacian_8"), keras("box_blur_3x3"))
    report = compare_filters(init, learned, KERNELS, seed=1)
    assert report["comparable"]
    assert [entry["learned"]["kernel"] for entry in report["per_filter"]] == ["sobel_x", "laplacian_8", "box_blur_3x3"]
    assert report["similarity"]["learned"]["mean"] == pytest.approx(1.0)
    assert report["chance"]["mean"] < report["similarity"]["learned"]["mean"]
    assert report["shift"]["effect_size"] > 2 and report["shift"]["above_chance_p95"] == 1.0


def test_no_bank_kernel_of_the_size_is_not_comparable():
    report = compare_filters(np.zeros((7, 7, 1, 2)), np.ones((7, 7, 1, 2)), KERNELS, seed=1)
    assert report["comparable"] is False and report["per_filter"] == [] and report["chance"] is None
