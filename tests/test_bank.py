"""Tests for filterlab.kernels.bank: the bank's contents, its conventions, and name selection."""

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from filterlab.config.params import load_section, read_params
from filterlab.config.sections import BaselinesParams
from filterlab.core.errors import ParamError
from filterlab.kernels.bank import FAMILIES, KERNELS, by_family, select

ZERO_SUM_FAMILIES = ("laplacian", "sobel", "prewitt", "scharr", "lines", "gabor")


def test_bank_has_at_least_20_documented_2d_kernels():
    assert len(KERNELS) >= 20
    for name, kernel in KERNELS.items():
        assert kernel.name == name
        assert kernel.weights.ndim == 2 and kernel.weights.dtype == np.float64
        assert len(kernel.doc.strip()) > 10, name
        assert kernel.family in FAMILIES


def test_every_kernel_named_in_params_yaml_exists():
    section = load_section(read_params(Path(__file__).parents[1] / "params.yaml"), "baselines", BaselinesParams)
    assert set(section.kernels) <= set(KERNELS)


def test_weights_are_read_only():
    with pytest.raises(ValueError):
        KERNELS["sobel_x"].weights[0, 0] = 7.0


def test_families_group_the_expected_kernels():
    groups = {family: [k.name for k in members] for family, members in by_family(KERNELS.values()).items()}
    assert groups["blur"] == ["box_blur_3x3", "gaussian_3x3", "gaussian_5x5"]
    assert groups["sobel"] == ["sobel_x", "sobel_y"]
    assert groups["gabor"] == ["gabor_0", "gabor_45", "gabor_90", "gabor_135"]
    assert groups["peak"] == ["peak_1x3", "peak_3x1"]
    assert KERNELS["peak_1x3"].shape == (1, 3) and KERNELS["peak_3x1"].shape == (3, 1)
    assert set(groups) == set(FAMILIES) and len(FAMILIES) >= 10


def test_blurs_keep_brightness_and_detectors_ignore_flat_regions():
    for kernel in by_family(KERNELS.values())["blur"]:
        assert kernel.weights.sum() == pytest.approx(1.0)
        assert kernel.weights.min() > 0
    for kernel in KERNELS.values():
        if kernel.family in ZERO_SUM_FAMILIES:
            assert kernel.weights.sum() == pytest.approx(0.0, abs=1e-12), kernel.name


def test_laplacian_8_is_the_written_matrix():
    expected = [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]
    assert np.array_equal(KERNELS["laplacian_8"].weights, expected)


def _interior(image):
    return image[3:-3, 3:-3]


def test_gradient_kernels_follow_the_documented_axes():
    # Brightness rising to the right (columns) and downwards (rows).
    rightwards = np.tile(np.arange(16.0), (16, 1))
    downwards = rightwards.T
    for x_name, y_name in (("sobel_x", "sobel_y"), ("prewitt_x", "prewitt_y"), ("scharr_x", "scharr_y")):
        x_kernel, y_kernel = KERNELS[x_name].weights, KERNELS[y_name].weights
        assert (_interior(ndimage.convolve(rightwards, x_kernel, mode="constant")) > 0).all()
        assert np.allclose(_interior(ndimage.convolve(rightwards, y_kernel, mode="constant")), 0)
        assert (_interior(ndimage.convolve(downwards, y_kernel, mode="constant")) > 0).all()
        assert np.allclose(_interior(ndimage.convolve(downwards, x_kernel, mode="constant")), 0)


def _peak_response(name, image):
    return ndimage.convolve(image, KERNELS[name].weights, mode="constant").max()


def test_oriented_detectors_prefer_their_orientation():
    vertical = np.zeros((15, 15))
    vertical[:, 7] = 1.0
    horizontal = vertical.T
    falling = np.eye(15)  # top-left to bottom-right
    rising = falling[::-1]
    for name, preferred, other in (
        ("gabor_0", vertical, horizontal),
        ("gabor_90", horizontal, vertical),
        ("gabor_45", falling, rising),
        ("gabor_135", rising, falling),
        ("line_vertical", vertical, horizontal),
        ("line_horizontal", horizontal, vertical),
        ("peak_1x3", vertical, horizontal),
        ("peak_3x1", horizontal, vertical),
    ):
        assert _peak_response(name, preferred) > _peak_response(name, other) + 0.1, name


def test_select_keeps_order_and_rejects_bad_lists():
    assert [k.name for k in select(["sobel_y", "identity"])] == ["sobel_y", "identity"]
    with pytest.raises(ParamError, match="unknown kernel 'sobel_z'.*known kernels: identity, box_blur_3x3"):
        select(["sobel_z"], "baselines.kernels")
    with pytest.raises(ParamError, match="empty"):
        select([])
    with pytest.raises(ParamError, match="listed twice"):
        select(["sobel_x", "sobel_x"])


def test_select_rejects_unknown_names_and_other_shapes_naming_the_key():
    with pytest.raises(ParamError) as caught:
        select(["sobel_x", "nope"], "baselines.kernels")
    assert caught.value.key == "baselines.kernels" and "laplacian_8" in str(caught.value)
    with pytest.raises(ParamError, match="'gaussian_5x5' is 5x5; only 3x3 kernels"):
        select(["sobel_x", "gaussian_5x5"], "probes.recovery.kernels", shape=(3, 3))
