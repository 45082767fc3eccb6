"""True 2-D convolution of image batches with kernel banks; NumPy/SciPy or TensorFlow, no files.

The reference is `scipy.ndimage.convolve(image, k, mode="constant", cval=0)`: a 'same'
sized, zero-padded, TRUE convolution (kernel flipped), the way people apply a kernel
they wrote down. `convolve_batch` reproduces it for every image and kernel at once in
NumPy; `convolve_batch_tf` does the same through `tf.nn.conv2d` for callers that have
TensorFlow loaded anyway (it is imported there, not here).

Keras' Conv2D computes cross-correlation. The flip that turns a written kernel into
Keras weights happens here, in `to_keras_weights`, and nowhere else; the batched path
uses it too, so the flip is tested by the same equality that tests the batch.
"""

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from filterlab.kernels.bank import Kernel

# Images per matmul: a 20 MB im2col buffer at 28x28 with 5x5 kernels; 256 beat 32-128 and 1024 here.
CHUNK_IMAGES = 256


def _weights(kernel: Kernel | np.ndarray) -> np.ndarray:
    weights = np.asarray(kernel.weights if isinstance(kernel, Kernel) else kernel, dtype=np.float64)
    if weights.ndim != 2 or 0 in weights.shape:
        raise ValueError(f"a kernel must be a non-empty 2-D array, got shape {weights.shape}")
    if weights.shape[0] % 2 == 0 or weights.shape[1] % 2 == 0:
        # An even side has no centre pixel, so 'same' output would be shifted half a pixel.
        raise ValueError(f"kernel sides must be odd, got shape {weights.shape}")
    return weights


def common_size(kernels: Sequence[Kernel | np.ndarray]) -> int:
    """Side of the square every kernel is zero-padded to: the largest side among them (odd)."""
    if len(kernels) == 0:
        raise ValueError("no kernels given")
    return int(max(max(_weights(kernel).shape) for kernel in kernels))


def pad_to(kernel: Kernel | np.ndarray, size: int) -> np.ndarray:
    """Zero-pad a kernel to size x size, centred, so its convolution is unchanged."""
    weights = _weights(kernel)
    height, width = weights.shape
    if size % 2 == 0 or size < max(height, width):
        raise ValueError(f"cannot centre a {height}x{width} kernel in {size}x{size}")
    top, left = (size - height) // 2, (size - width) // 2
    padded = np.zeros((size, size), dtype=np.float64)
    padded[top : top + height, left : left + width] = weights
    return padded


def stack(kernels: Sequence[Kernel | np.ndarray], size: int | None = None) -> np.ndarray:
    """(n, s, s) float64: the kernels as written, padded to a common odd side `s`."""
    size = common_size(kernels) if size is None else size
    return np.stack([pad_to(kernel, size) for kernel in kernels])


def to_keras_weights(kernels: Sequence[Kernel | np.ndarray], size: int | None = None) -> np.ndarray:
    """(s, s, 1, n) float32 Conv2D kernel: padded and FLIPPED in both axes.

    Flipping turns Keras' cross-correlation into the true convolution of the kernels
    as written, so a frozen Conv2D computes what scipy.ndimage.convolve computes.
    """
    flipped = stack(kernels, size)[:, ::-1, ::-1]
    return np.ascontiguousarray(flipped.transpose(1, 2, 0)[:, :, np.newaxis, :], dtype=np.float32)


def check_fits(kernels: Sequence[Kernel | np.ndarray], image_side: int) -> None:
    """ValueError when any kernel is larger than the image it would slide over."""
    for kernel in kernels:
        shape = _weights(kernel).shape
        if max(shape) > image_side:
            name = kernel.name if isinstance(kernel, Kernel) else "kernel"
            raise ValueError(f"{name} is {shape[0]}x{shape[1]}, larger than the {image_side}x{image_side} images")


def _single_threaded_blas() -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread: for this skinny matmul (25 x n) OpenBLAS's threads cost more than they
    gain: each chunk is too small to amortise their synchronisation."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # installed with scikit-learn in the lock; without it only speed suffers
        return contextlib.nullcontext()
    limits: contextlib.AbstractContextManager[Any] = threadpool_limits(limits=1, user_api="blas")
    return limits


def _as_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3:
        raise ValueError(f"images must be (N, H, W) or (N, H, W, 1), got shape {images.shape}")
    return images


def convolve_reference(images: np.ndarray, kernel: Kernel | np.ndarray) -> np.ndarray:
    """(N, H, W) float64: scipy.ndimage.convolve per image, zero padding outside."""
    from scipy import ndimage

    weights = _weights(kernel)
    images = _as_images(images).astype(np.float64)
    check_fits([weights], min(images.shape[1:]))
    return np.stack([ndimage.convolve(image, weights, mode="constant", cval=0.0) for image in images])


def convolve_batch(
    images: np.ndarray, kernels: Sequence[Kernel | np.ndarray], dtype: npt.DTypeLike = np.float32
) -> np.ndarray:
    """(N, H, W, n) feature maps: every image convolved with every kernel, same as the reference.

    im2col + one matmul per chunk of images: each output pixel is its zero-padded
    neighbourhood dotted with the flipped (Keras-layout) kernel. The buffers are reused
    across chunks and the product lands straight in the output, so no chunk allocates.
    """
    images = _as_images(images)
    count, height, width = images.shape
    check_fits(kernels, min(height, width))
    weights = to_keras_weights(kernels).astype(dtype)
    size, n_kernels = weights.shape[0], weights.shape[-1]
    matrix = weights.reshape(size * size, n_kernels)
    half = size // 2
    chunk = min(CHUNK_IMAGES, count)
    out = np.empty((count, height, width, n_kernels), dtype=dtype)
    padded = np.zeros((chunk, height + 2 * half, width + 2 * half), dtype=dtype)
    columns = np.empty((chunk, height, width, size, size), dtype=dtype)
    with _single_threaded_blas():
        for start in range(0, count, chunk):
            stop = min(start + chunk, count)
            used = stop - start
            padded[:used, half : half + height, half : half + width] = images[start:stop]
            windows = np.lib.stride_tricks.sliding_window_view(padded[:used], (size, size), axis=(1, 2))
            np.copyto(columns[:used], windows)
            np.matmul(columns[:used].reshape(-1, size * size), matrix, out=out[start:stop].reshape(-1, n_kernels))
    return out


def convolve_batch_tf(images: np.ndarray, kernels: Sequence[Kernel | np.ndarray], batch: int = 1024) -> np.ndarray:
    """(N, H, W, n) float32, same as `convolve_batch`, through TensorFlow's conv2d.

    conv2d is a cross-correlation, so it gets `to_keras_weights` (flipped); 'SAME'
    padding of an odd kernel at stride 1 is the symmetric zero padding of the reference.
    """
    import tensorflow as tf

    images = _as_images(images)
    check_fits(kernels, min(images.shape[1:]))
    weights = tf.constant(to_keras_weights(kernels))
    outputs = [
        tf.nn.conv2d(
            tf.constant(images[start : start + batch, ..., np.newaxis], dtype=tf.float32),
            weights,
            strides=1,
            padding="SAME",
        ).numpy()
        for start in range(0, len(images), batch)
    ]
    return np.concatenate(outputs)
