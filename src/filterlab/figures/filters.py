"""Pictures of conv1 filters: init against learned, evolution over epochs, feature maps.

Pure: takes kernel arrays (Keras layout, kh × kw × 1 × filters, i.e. the weights as
conv1 applies them by cross-correlation, never flipped for display) and returns
matplotlib figures, RGB frames or GIF bytes; the caller writes them. Every picture uses
a diverging colormap centred at 0, so white means 0 and the sign of a weight is its hue.
"""

from typing import TYPE_CHECKING

import numpy as np

from filterlab.config.geometry import IMAGE_SIDE

if TYPE_CHECKING:  # matplotlib loads only in the functions that draw
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

KERAS_LAYOUT = "Keras conv1 weights (cross-correlation)"
COLUMNS = 8  # filters per row in grids
MAX_MAPS = 16  # feature maps per digit: 64 side by side would be a 5000-pixel-wide figure


def _figure(width: float, height: float) -> "Figure":
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def limit(*arrays: np.ndarray) -> float:
    """±this is the symmetric colour range covering every array; never 0 (imshow needs a range)."""
    peak = max(float(np.max(np.abs(a), initial=0.0)) for a in arrays)
    return peak if peak > 0 else 1.0


def _no_ticks(axes: "Axes") -> None:
    axes.set_xticks([])
    axes.set_yticks([])


def init_vs_learned(init: np.ndarray, learned: np.ndarray, colormap: str, variant: str) -> "Figure":
    """Each filter at init beside itself after training; both halves of a pair share one scale.

    One mosaic image (filterlab.figures.mosaic), each pair divided by its own ±max|w|.
    """
    from filterlab.figures import mosaic

    n_filters = init.shape[3]
    columns = min(COLUMNS, n_filters)
    scales = [limit(init[:, :, 0, f], learned[:, :, 0, f]) for f in range(n_filters)]
    tiles = mosaic.pairs(
        [init[:, :, 0, f] / scales[f] for f in range(n_filters)],
        [learned[:, :, 0, f] / scales[f] for f in range(n_filters)],
        columns,
    )
    width, height = tiles.inches
    figure = _figure(width + 0.2, height + 0.8)
    mosaic.draw(
        figure.subplots(),
        tiles,
        colormap,
        [f"#{f}  ±{scale:.2g}" for f, scale in enumerate(scales)],
        ("init", "learned"),
    )
    figure.suptitle(
        wrapped(
            f"{variant}: {KERAS_LAYOUT}, each pair init | learned\n"
            "one colour scale per pair: ±max|w| over both halves (shown), 0 = white",
            width,
            10,
        ),
        fontsize=10,
    )
    return figure


def row_scales(kernels: np.ndarray) -> np.ndarray:
    """Per filter, max |w| over every epoch: the scale a filter keeps through its evolution."""
    scales = np.abs(kernels).max(axis=(0, 1, 2, 3))
    return np.where(scales > 0, scales, 1.0)


def _groups(n_filters: int, n_epochs: int) -> int:
    """How many side-by-side blocks of filters (rows) make the strip closest to a 3:2 landscape page."""

    def aspect(groups: int) -> float:
        return groups * n_epochs / -(-n_filters // groups)

    return min(range(1, n_filters + 1), key=lambda groups: abs(aspect(groups) - 1.5))


def evolution_strip(kernels: np.ndarray, epochs: np.ndarray, colormap: str, variant: str) -> "Figure":
    """Rows filters, columns epochs; each row keeps one colour scale across its epochs.

    Many filters wrap into blocks side by side (filter numbers in the gap before each block),
    so 64 filters make a landscape page of readable tiles rather than one tall column. Drawn
    as one mosaic image (each filter divided by its row scale) rather than one axes per tile.
    """
    n_epochs, kh, kw, _, n_filters = kernels.shape
    scaled = kernels[:, :, :, 0, :] / row_scales(kernels)
    groups = _groups(n_filters, n_epochs)
    rows = -(-n_filters // groups)
    gap = kw + 1  # one tile's width between blocks holds the next block's filter numbers
    block = n_epochs * (kw + 1) - 1
    mosaic = np.full((rows * (kh + 1) - 1, groups * block + (groups - 1) * (gap + 1)), np.nan)
    for f in range(n_filters):
        group, row = divmod(f, rows)
        left0 = group * (block + gap + 1)
        for e in range(n_epochs):
            top, left = row * (kh + 1), left0 + e * (kw + 1)
            mosaic[top : top + kh, left : left + kw] = scaled[e, :, :, f]
    tile = 0.4  # inches per filter tile (kh+1 cells): 44 pixels at the default 110 dpi, any kernel size
    per_cell = tile / (kh + 1)
    width = max(4.5, 1.0 + mosaic.shape[1] * per_cell)
    figure = _figure(width, 1.9 + mosaic.shape[0] * per_cell)
    axes = figure.subplots()
    image = axes.imshow(mosaic, cmap=colormap, vmin=-1, vmax=1, interpolation="nearest")
    centres = [g * (block + gap + 1) + e * (kw + 1) + (kw - 1) / 2 for g in range(groups) for e in range(n_epochs)]
    axes.set_xticks(centres, [str(int(e)) for _g in range(groups) for e in epochs])
    axes.set_yticks([r * (kh + 1) + (kh - 1) / 2 for r in range(rows)], [f"#{r}" for r in range(rows)])
    for f in range(rows, n_filters):  # the numbers of every later block, right-aligned in the gap before it
        group, row = divmod(f, rows)
        axes.text(
            group * (block + gap + 1) - 1.2, row * (kh + 1) + (kh - 1) / 2, f"#{f}", ha="right", va="center", fontsize=6
        )
    axes.tick_params(labelsize=7)
    for spine in axes.spines.values():
        spine.set_visible(False)
    axes.set_xlabel("epoch (0 = at init)")
    figure.colorbar(
        image, ax=axes, orientation="horizontal", fraction=0.05, shrink=0.35, aspect=30, label="w / max|w| of its row"
    )
    # A figure title: constrained layout makes room for it whatever the aspect-locked image does to the axes.
    figure.suptitle(
        wrapped(
            f"{variant}: {KERAS_LAYOUT} per epoch\none colour scale per filter (row) over all epochs", width - 0.4, 9
        ),
        fontsize=9,
    )
    return figure


def conv1_feature_maps(images: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """conv1's own output, before ReLU: N × h × w × filters, without loading TensorFlow.

    `kernel` is conv1's Keras weights (kh, kw, 1, filters): Keras computes a 'valid'
    cross-correlation with a stride, plus bias, which is exactly what this reproduces
    (every window dotted with every filter, one product).
    """
    images = np.asarray(images, dtype=np.float32)[..., 0]
    kh, kw, _, n_filters = kernel.shape
    windows = np.lib.stride_tricks.sliding_window_view(images, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    maps = windows.reshape(*windows.shape[:3], kh * kw) @ kernel.reshape(kh * kw, n_filters).astype(np.float32)
    return maps + np.asarray(bias, dtype=np.float32)


def wrapped(text: str, width_inches: float, fontsize: float) -> str:
    """`text` broken into lines that fit `width_inches` at `fontsize` (about 0.55 em per character)."""
    import textwrap

    columns = max(20, int(width_inches * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.fill(line, columns) for line in text.split("\n"))


def _tiles(arrays: list[np.ndarray], width: int) -> np.ndarray:
    """Arrays side by side, each centred in a `width`-wide cell, one NaN column between cells."""
    height = max(a.shape[0] for a in arrays)
    mosaic = np.full((height, len(arrays) * (width + 1) - 1), np.nan)
    for index, array in enumerate(arrays):
        top, left = (height - array.shape[0]) // 2, index * (width + 1) + (width - array.shape[1]) // 2
        mosaic[top : top + array.shape[0], left : left + array.shape[1]] = array
    return mosaic


def feature_maps(
    images: np.ndarray, classes: np.ndarray, maps: np.ndarray, kernel: np.ndarray, colormap: str, variant: str
) -> "Figure":
    """Top row: each filter (Keras weights, enlarged); below, one row per digit: the digit, then those
    filters' maps in the same columns, so input, kernel and output sit together.

    Each row is one mosaic image (each map divided by its filter's ±max|map| over all
    digits, each kernel by its ±max|w|) so 64 filters stay one axes per row, not 64.
    """
    total = maps.shape[3]
    maps = maps[..., :MAX_MAPS]
    n_images, h, w, n_filters = maps.shape
    weights = kernel[:, :, 0, :n_filters]
    scales = np.array([limit(maps[..., f]) for f in range(n_filters)])
    blow_up = max(1, min(h, w) // max(weights.shape[:2]))
    kernels = [
        np.kron(weights[:, :, f] / limit(weights[:, :, f]), np.ones((blow_up, blow_up))) for f in range(n_filters)
    ]
    inch_per_pixel = 0.75 / IMAGE_SIDE  # a 28-pixel row is 0.75 inch tall
    width = max(4.5, 0.8 + inch_per_pixel * (IMAGE_SIDE + n_filters * (w + 1)))
    figure = _figure(width, 1.6 + 0.8 * (n_images + 1))
    grid = figure.subplots(n_images + 1, 2, squeeze=False, width_ratios=[1, n_filters * (w + 1) / IMAGE_SIDE])
    grid[0, 0].set_axis_off()
    grid[0, 0].text(0.5, 0.5, "kernel", ha="center", va="center", fontsize=8, transform=grid[0, 0].transAxes)
    grid[0, 1].imshow(_tiles(kernels, w), cmap=colormap, vmin=-1, vmax=1, interpolation="nearest")
    grid[0, 1].set_xticks([f * (w + 1) + (w - 1) / 2 for f in range(n_filters)], [f"#{f}" for f in range(n_filters)])
    grid[0, 1].set_yticks([])
    grid[0, 1].tick_params(labelsize=6, length=0)
    grid[0, 1].xaxis.set_ticks_position("top")
    for row in range(n_images):
        digit_axes, maps_axes = grid[row + 1]
        digit_axes.imshow(images[row, :, :, 0], cmap="gray_r", vmin=0, vmax=1)
        digit_axes.set_ylabel(str(int(classes[row])), rotation=0, labelpad=8)
        _no_ticks(digit_axes)
        mosaic = _tiles([maps[row, :, :, f] / scales[f] for f in range(n_filters)], w)
        maps_axes.imshow(mosaic, cmap=colormap, vmin=-1, vmax=1, interpolation="nearest")
        _no_ticks(maps_axes)
    figure.suptitle(
        wrapped(
            f"{variant}: conv1's filters (top, {KERAS_LAYOUT}) and their output on one test digit per class "
            f"(+ bias, before ReLU), filters #0-{n_filters - 1} of {total}\n"
            "one colour scale per filter: map / ±max|map| over the digits, kernel / ±max|w|, 0 = white",
            width,
            9,
        ),
        fontsize=9,
    )
    return figure
