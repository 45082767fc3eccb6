"""filterlab.kernels.convolution: the batched path equals scipy.ndimage.convolve, and the one flip for Keras."""

import numpy as np
import pytest
from scipy import ndimage

from filterlab.kernels import convolution
from filterlab.kernels.bank import KERNELS

ASYMMETRIC = ("sobel_x", "sobel_y", "emboss", "scharr_x")
MIXED = ("sobel_x", "peak_1x3", "peak_3x1", "gabor_45", "emboss", "gaussian_5x5", "laplacian_8", "identity")


@pytest.fixture
def digits(tiny_prepared):
    return tiny_prepared.x_train[:40]


def test_batched_equals_reference_per_image(digits, monkeypatch):
    # A chunk size that does not divide the batch exercises the chunk boundaries.
    monkeypatch.setattr(convolution, "CHUNK_IMAGES", 16)
    kernels = [KERNELS[name] for name in MIXED]
    batched = convolution.convolve_batch(digits, kernels)
    assert batched.shape == (len(digits), 28, 28, len(kernels))
    for index, kernel in enumerate(kernels):
        reference = convolution.convolve_reference(digits, kernel)
        for image_index in range(len(digits)):
            np.testing.assert_allclose(batched[image_index, ..., index], reference[image_index], rtol=0, atol=1e-5)


def test_tensorflow_batched_equals_reference_per_image(digits):
    kernels = [KERNELS[name] for name in MIXED]
    batched = convolution.convolve_batch_tf(digits, kernels, batch=16)
    assert batched.shape == (len(digits), 28, 28, len(kernels))
    for index, kernel in enumerate(kernels):
        reference = convolution.convolve_reference(digits, kernel)
        for image_index in range(len(digits)):
            np.testing.assert_allclose(batched[image_index, ..., index], reference[image_index], rtol=0, atol=1e-5)


def test_reference_is_scipy_convolve_with_zero_padding():
    image = np.zeros((7, 7))
    image[0, 0] = 1.0  # a corner impulse: zero padding keeps only the kernel's in-frame part
    out = convolution.convolve_reference(image[np.newaxis], KERNELS["sobel_x"])[0]
    assert np.array_equal(out, ndimage.convolve(image, KERNELS["sobel_x"].weights, mode="constant", cval=0.0))
    # A true convolution of an impulse reproduces the kernel itself (not its mirror image).
    assert np.array_equal(out[:2, :2], KERNELS["sobel_x"].weights[1:, 1:])


def test_padding_is_centred_and_keeps_the_convolution():
    padded = convolution.pad_to(KERNELS["peak_1x3"], 5)
    assert padded.shape == (5, 5) and np.array_equal(padded[2, 1:4], [-1, 1, -1]) and np.abs(padded).sum() == 3
    image = np.random.default_rng(0).random((1, 12, 12))
    np.testing.assert_allclose(
        convolution.convolve_reference(image, padded), convolution.convolve_reference(image, KERNELS["peak_1x3"])
    )


def test_to_keras_weights_is_the_padded_kernel_flipped():
    kernels = [KERNELS["sobel_x"], KERNELS["peak_3x1"], KERNELS["gabor_0"]]
    weights = convolution.to_keras_weights(kernels)
    assert weights.shape == (5, 5, 1, 3) and weights.dtype == np.float32
    for index, kernel in enumerate(kernels):
        flipped = convolution.pad_to(kernel, 5)[::-1, ::-1]
        np.testing.assert_array_equal(weights[:, :, 0, index], flipped.astype(np.float32))


def test_keras_conv2d_with_flipped_weights_is_a_true_convolution(digits):
    import keras

    names = ASYMMETRIC + ("peak_1x3",)
    kernels = [KERNELS[name] for name in names]
    weights = convolution.to_keras_weights(kernels)
    layer = keras.layers.Conv2D(len(kernels), 3, padding="same", use_bias=False)
    layer.build((None, 28, 28, 1))
    layer.set_weights([weights])
    keras_maps = keras.ops.convert_to_numpy(layer(digits))
    unflipped = np.ascontiguousarray(np.stack([convolution.pad_to(k, 3) for k in kernels], axis=-1)[:, :, None, :])
    layer.set_weights([unflipped.astype(np.float32)])
    correlation_maps = keras.ops.convert_to_numpy(layer(digits))
    for index, kernel in enumerate(kernels):
        reference = convolution.convolve_reference(digits, kernel)
        np.testing.assert_allclose(keras_maps[..., index], reference, atol=1e-5)
        if kernel.name in ASYMMETRIC:
            # Without the flip Keras computes the correlation: for these kernels the negated map.
            assert np.abs(correlation_maps[..., index] - reference).max() > 0.5, kernel.name


def test_bad_inputs_raise_clear_errors(digits):
    with pytest.raises(ValueError, match="odd"):
        convolution.convolve_batch(digits, [np.ones((2, 2))])
    with pytest.raises(ValueError, match="larger than the 28x28 images"):
        convolution.convolve_batch(digits, [np.ones((29, 29))])
    with pytest.raises(ValueError, match="no kernels"):
        convolution.to_keras_weights([])
    with pytest.raises(ValueError, match="images must be"):
        convolution.convolve_batch(digits[0, ..., 0], [KERNELS["identity"]])
