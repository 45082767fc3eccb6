"""The bank of hand-designed kernels; reads and writes nothing, imports only NumPy.

Every weight array is a CONVOLUTION kernel written the way textbooks print it, i.e.
what `scipy.ndimage.convolve(image, weights)` expects. Keras' Conv2D computes
cross-correlation, so the one flip to Keras layout lives in
`filterlab.kernels.convolution.to_keras_weights`, never here.

Axis convention: rows grow downwards, columns to the right. "x" is the column
direction and "y" the row direction, so sobel_x convolved with an image is positive
where brightness increases to the right, and sobel_y where it increases downwards.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from filterlab.core.errors import ParamError


@dataclass(frozen=True, eq=False)
class Kernel:
    """One named kernel; `weights` is a read-only 2-D float64 array (convolution layout)."""

    name: str
    family: str
    weights: np.ndarray
    doc: str

    def __post_init__(self) -> None:
        weights = np.array(self.weights, dtype=np.float64)
        if weights.ndim != 2 or 0 in weights.shape:
            raise ValueError(f"kernel {self.name!r}: weights must be a non-empty 2-D array, got shape {weights.shape}")
        weights.setflags(write=False)
        object.__setattr__(self, "weights", weights)

    @property
    def shape(self) -> tuple[int, int]:
        rows, cols = self.weights.shape
        return rows, cols


def _gabor(theta_degrees: float, size: int = 5, sigma: float = 1.2, wavelength: float = 3.0) -> np.ndarray:
    """Real (cosine) Gabor, zero mean so flat regions give 0.

    `theta` is the direction the wave travels (normal to the stripes, as in OpenCV's
    getGaborKernel), counter-clockwise from the column axis with "up" positive: gabor_0
    has vertical stripes and finds vertical strokes, gabor_45 stripes from top-left to
    bottom-right. Point-symmetric, hence unchanged by the convolution flip.
    """
    half = size // 2
    rows, cols = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    x, y = cols, -rows
    theta = np.deg2rad(theta_degrees)
    along = x * np.cos(theta) + y * np.sin(theta)
    across = -x * np.sin(theta) + y * np.cos(theta)
    # gamma (aspect) 0.5 elongates the envelope along the stripes.
    envelope = np.exp(-(along**2 + (0.5 * across) ** 2) / (2 * sigma**2))
    weights = envelope * np.cos(2 * np.pi * along / wavelength)
    weights -= envelope * (weights.sum() / envelope.sum())
    scaled: np.ndarray = weights / np.abs(weights).sum()
    return scaled


_BINOMIAL_3 = np.array([1.0, 2.0, 1.0])
_BINOMIAL_5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0])

_BANK = [
    Kernel(
        "identity", "identity", np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]]), "Copies the image unchanged: the control."
    ),
    Kernel("box_blur_3x3", "blur", np.ones((3, 3)) / 9, "Mean of the 3x3 neighbourhood: smooths noise and edges."),
    Kernel("gaussian_3x3", "blur", np.outer(_BINOMIAL_3, _BINOMIAL_3) / 16, "Binomial 3x3 Gaussian: gentle smoothing."),
    Kernel("gaussian_5x5", "blur", np.outer(_BINOMIAL_5, _BINOMIAL_5) / 256, "Binomial 5x5 Gaussian: wider smoothing."),
    Kernel(
        "sharpen",
        "sharpen",
        np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
        "Identity minus the Laplacian: boosts edges.",
    ),
    Kernel(
        "laplacian_8",
        "laplacian",
        np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
        "Negative 8-neighbour Laplacian: edges and blobs in every direction.",
    ),
    Kernel(
        "laplacian_4",
        "laplacian",
        np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]]),
        "Negative 4-neighbour Laplacian: edges along rows and columns.",
    ),
    Kernel(
        "sobel_x",
        "sobel",
        np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]]),
        "Sobel x-gradient: positive where brightness rises to the right (vertical edges).",
    ),
    Kernel(
        "sobel_y",
        "sobel",
        np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]]),
        "Sobel y-gradient: positive where brightness rises downwards (horizontal edges).",
    ),
    Kernel(
        "prewitt_x",
        "prewitt",
        np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]]),
        "Prewitt x-gradient: unweighted vertical-edge detector.",
    ),
    Kernel(
        "prewitt_y",
        "prewitt",
        np.array([[1, 1, 1], [0, 0, 0], [-1, -1, -1]]),
        "Prewitt y-gradient: unweighted horizontal-edge detector.",
    ),
    Kernel(
        "scharr_x",
        "scharr",
        np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]]),
        "Scharr x-gradient: vertical edges with better rotational symmetry than Sobel.",
    ),
    Kernel(
        "scharr_y",
        "scharr",
        np.array([[3, 10, 3], [0, 0, 0], [-3, -10, -3]]),
        "Scharr y-gradient: horizontal edges with better rotational symmetry than Sobel.",
    ),
    Kernel(
        "emboss",
        "emboss",
        np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
        "Diagonal relief: brightens edges facing one corner, darkens the opposite ones.",
    ),
    Kernel(
        "line_horizontal",
        "lines",
        np.array([[-1, -1, -1], [2, 2, 2], [-1, -1, -1]]),
        "Thin horizontal line detector: a bright row between darker rows.",
    ),
    Kernel(
        "line_vertical",
        "lines",
        np.array([[-1, 2, -1], [-1, 2, -1], [-1, 2, -1]]),
        "Thin vertical line detector: a bright column between darker columns.",
    ),
    Kernel("gabor_0", "gabor", _gabor(0), "Gabor 5x5 at 0 degrees: vertical strokes of ~3 px period."),
    Kernel("gabor_45", "gabor", _gabor(45), "Gabor 5x5 at 45 degrees: strokes from top-left to bottom-right."),
    Kernel("gabor_90", "gabor", _gabor(90), "Gabor 5x5 at 90 degrees: horizontal strokes of ~3 px period."),
    Kernel("gabor_135", "gabor", _gabor(135), "Gabor 5x5 at 135 degrees: strokes from bottom-left to top-right."),
    Kernel("peak_1x3", "peak", np.array([[-1, 1, -1]]), "1-D peak detector along a row: brighter than left and right."),
    Kernel(
        "peak_3x1",
        "peak",
        np.array([[-1], [1], [-1]]),
        "1-D peak detector along a column: brighter than above and below.",
    ),
]

KERNELS: dict[str, Kernel] = {kernel.name: kernel for kernel in _BANK}
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(kernel.family for kernel in _BANK))


def select(names: Iterable[str], key: str = "kernels", shape: tuple[int, int] | None = None) -> list[Kernel]:
    """The named kernels in the order given; unknown, repeated or no names, or a kernel not of
    `shape` (when given), are a ParamError on `key`."""
    names = list(names)
    if not names:
        raise ParamError(key, f"empty; pick from: {', '.join(KERNELS)}")
    for name in names:
        if name not in KERNELS:
            raise ParamError(key, f"unknown kernel {name!r}; known kernels: {', '.join(KERNELS)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ParamError(key, f"kernel {repeated[0]!r} is listed twice")
    if shape is not None:
        for name in names:
            if KERNELS[name].weights.shape != tuple(shape):
                found = "x".join(map(str, KERNELS[name].weights.shape))
                raise ParamError(key, f"{name!r} is {found}; only {shape[0]}x{shape[1]} kernels are allowed here")
    return [KERNELS[name] for name in names]


def by_family(kernels: Iterable[Kernel]) -> dict[str, list[Kernel]]:
    """Group kernels by family, families in first-seen order, kernels in input order."""
    groups: dict[str, list[Kernel]] = {}
    for kernel in kernels:
        groups.setdefault(kernel.family, []).append(kernel)
    return groups
