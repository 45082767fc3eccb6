"""Figures of hand-designed kernels and what they do to digits; returns matplotlib Figures.

Pure: arrays in, `matplotlib.figure.Figure` out (the stage saves or logs them). Kernels
are drawn as WRITTEN (convolution layout); the maps are true convolutions computed by
`filterlab.kernels.convolution.convolve_batch`, which equals scipy.ndimage.convolve. A Keras
Conv2D needs the flipped kernel to produce the same maps; the captions say so.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from filterlab.kernels import convolution
from filterlab.kernels.bank import Kernel

if TYPE_CHECKING:  # matplotlib loads only in the functions that draw
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage

UNSIGNED = "Greys"
FLIP_NOTE = "true convolutions (scipy.ndimage.convolve, zero padding); Keras' Conv2D gets each kernel flipped"


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}".replace("0.", ".")


# Each weight's cell gets at least this many inches, so a 5×5 kernel's printed numbers read as well as a 3×3's.
KERNEL_CELL_INCHES = 0.3


def kernel_inches(weights: np.ndarray) -> float:
    """The side of a kernel's square in the feature-map figure: an inch, more for kernels over 3×3."""
    return max(1.0, KERNEL_CELL_INCHES * int(max(weights.shape)))


def draw_kernel(axes: "Axes", weights: np.ndarray, colormap: str, fontsize: float | None = None) -> None:
    """A kernel as a diverging heat map centred at 0 with each weight printed in its cell."""
    limit = float(np.abs(weights).max()) or 1.0
    axes.imshow(weights, cmap=colormap, vmin=-limit, vmax=limit)
    size = fontsize or (7.0 if max(weights.shape) <= 5 else 5.5)
    for (row, col), value in np.ndenumerate(weights):
        dark = abs(value) > 0.6 * limit
        axes.text(col, row, _number(value), ha="center", va="center", fontsize=size, color="white" if dark else "black")
    axes.set_xticks([])
    axes.set_yticks([])


def _draw_map(axes: "Axes", feature_map: np.ndarray, limit: float, signed: bool, colormap: str) -> "AxesImage":
    if signed:
        return axes.imshow(feature_map, cmap=colormap, vmin=-limit, vmax=limit)
    return axes.imshow(feature_map, cmap=UNSIGNED, vmin=0.0, vmax=limit)


def feature_maps_figure(kernels: Sequence[Kernel], images: np.ndarray, labels: np.ndarray, colormap: str) -> "Figure":
    """Rows: kernels. Columns: the kernel with its numbers, then one digit per class convolved with it.

    Each row shares one colour scale: diverging and symmetric about 0 when any value is
    negative, grey from 0 otherwise, so signs are never hidden by a shifted colormap.
    """
    from matplotlib.figure import Figure

    maps = convolution.convolve_batch(images, kernels)  # (digits, H, W, kernels)
    columns = 1 + len(images)
    heights = [kernel_inches(kernel.weights) for kernel in kernels]
    kernel_width = max(heights)
    figure = Figure(figsize=(kernel_width + len(images) + 1.6, sum(heights) + 1.0), layout="constrained")
    ratios = {"width_ratios": [kernel_width, *[1.0] * len(images)], "height_ratios": heights}
    grid = figure.subplots(len(kernels), columns, squeeze=False, gridspec_kw=ratios)
    for row, kernel in enumerate(kernels):
        row_maps = maps[..., row]
        signed = bool(row_maps.min() < 0)
        limit = float(np.abs(row_maps).max()) or 1.0
        draw_kernel(grid[row, 0], kernel.weights, colormap)
        grid[row, 0].set_ylabel(kernel.name, rotation=0, ha="right", va="center", fontsize=8)
        for column, feature_map in enumerate(row_maps, start=1):
            image = _draw_map(grid[row, column], feature_map, limit, signed, colormap)
            grid[row, column].set_axis_off()
        figure.colorbar(image, ax=grid[row, -1], fraction=0.08, pad=0.02).ax.tick_params(labelsize=5)
    grid[0, 0].set_title("kernel", fontsize=8)
    for column, label in enumerate(labels, start=1):
        grid[0, column].set_title(f"digit {label}", fontsize=8)
    figure.suptitle(f"Hand-designed kernels applied to one digit per class\n{FLIP_NOTE}", fontsize=9)
    return figure


def kernels_figure(written: np.ndarray, names: Sequence[str], title: str, colormap: str) -> "Figure":
    """A small grid of kernels (n, s, s) as written, each with its numbers, for an MLflow artifact."""
    from matplotlib.figure import Figure

    count = len(written)
    columns = min(count, 6)
    rows = -(-count // columns)
    figure = Figure(figsize=(1.5 * columns, 1.6 * rows + 0.6), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    for index, axes in enumerate(grid.flat):
        if index >= count:
            axes.set_axis_off()
            continue
        draw_kernel(axes, written[index], colormap)
        axes.set_title(names[index] if index < len(names) else f"#{index}", fontsize=7)
    figure.suptitle(f"{title}\nas written (convolution); conv1 holds them flipped", fontsize=8)
    return figure
