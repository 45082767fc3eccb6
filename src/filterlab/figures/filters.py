"""Pictures of conv1 filters: init against learned, evolution over epochs, feature maps.

Pure: takes kernel arrays (Keras layout, kh × kw × 1 × filters, i.e. the weights as
conv1 applies them by cross-correlation, never flipped for display) and returns
matplotlib figures, RGB frames or GIF bytes; the caller writes them. Every picture uses
a diverging colormap centred at 0, so white means 0 and the sign of a weight is its hue.
"""

import io

import numpy as np

from filterlab.config.geometry import IMAGE_SIDE

KERAS_LAYOUT = "Keras conv1 weights (cross-correlation)"
GIF_SCALE = 8  # pixels per kernel entry in GIF frames; a 3x3 kernel is otherwise 3 pixels
COLUMNS = 8  # filters per row in grids
MAX_MAPS = 16  # feature maps per digit: 64 side by side would be a 5000-pixel-wide figure


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def limit(*arrays: np.ndarray) -> float:
    """±this is the symmetric colour range covering every array; never 0 (imshow needs a range)."""
    peak = max(float(np.max(np.abs(a), initial=0.0)) for a in arrays)
    return peak if peak > 0 else 1.0


def _no_ticks(axes) -> None:
    axes.set_xticks([])
    axes.set_yticks([])


def init_vs_learned(init: np.ndarray, learned: np.ndarray, colormap: str, variant: str):
    """Each filter at init beside itself after training; both halves of a pair share one scale."""
    n_filters = init.shape[3]
    columns = min(COLUMNS, n_filters)
    rows = -(-n_filters // columns)
    figure = _figure(2.0 * columns, 1.25 * rows + 0.8)
    grid = figure.subplots(rows, columns, squeeze=False)
    for index, axes in enumerate(grid.flat):
        _no_ticks(axes)
        if index >= n_filters:
            axes.set_axis_off()
            continue
        before, after = init[:, :, 0, index], learned[:, :, 0, index]
        scale = limit(before, after)
        # A NaN column separates the two halves; NaN draws as the axes background.
        gap = np.full((before.shape[0], 1), np.nan)
        axes.imshow(np.hstack([before, gap, after]), cmap=colormap, vmin=-scale, vmax=scale)
        axes.set_title(f"#{index}  ±{scale:.2g}", fontsize=8)
    figure.suptitle(
        f"{variant}: {KERAS_LAYOUT}, each pair init | learned\n"
        "one colour scale per pair: ±max|w| over both halves (shown), 0 = white",
        fontsize=10,
    )
    return figure


def _row_scales(kernels: np.ndarray) -> np.ndarray:
    """Per filter, max |w| over every epoch: the scale a filter keeps through its evolution."""
    scales = np.abs(kernels).max(axis=(0, 1, 2, 3))
    return np.where(scales > 0, scales, 1.0)


def evolution_strip(kernels: np.ndarray, epochs: np.ndarray, colormap: str, variant: str):
    """Rows filters, columns epochs; each row keeps one colour scale across its epochs.

    Drawn as one mosaic image (each filter divided by its row scale) rather than one
    axes per tile: 64 filters × 9 epochs would otherwise be 576 axes.
    """
    n_epochs, kh, kw, _, n_filters = kernels.shape
    scaled = kernels[:, :, :, 0, :] / _row_scales(kernels)
    mosaic = np.full((n_filters * (kh + 1) - 1, n_epochs * (kw + 1) - 1), np.nan)
    for f in range(n_filters):
        for e in range(n_epochs):
            mosaic[f * (kh + 1) : f * (kh + 1) + kh, e * (kw + 1) : e * (kw + 1) + kw] = scaled[e, :, :, f]
    figure = _figure(1.2 + 0.5 * n_epochs, 1.2 + 0.3 * n_filters * (kh + 1) / (kw + 1))
    axes = figure.subplots()
    image = axes.imshow(mosaic, cmap=colormap, vmin=-1, vmax=1, interpolation="nearest")
    axes.set_xticks([e * (kw + 1) + (kw - 1) / 2 for e in range(n_epochs)], [str(int(e)) for e in epochs])
    axes.set_yticks([f * (kh + 1) + (kh - 1) / 2 for f in range(n_filters)], [f"#{f}" for f in range(n_filters)])
    axes.tick_params(labelsize=7)
    axes.set_xlabel("epoch (0 = at init)")
    figure.colorbar(image, ax=axes, shrink=0.6, label="w / max|w| of its row")
    axes.set_title(
        f"{variant}: {KERAS_LAYOUT} per epoch\none colour scale per filter (row) over all epochs", fontsize=9
    )
    return figure


def evolution_frames(kernels: np.ndarray, colormap: str) -> list[np.ndarray]:
    """One uint8 RGB grid of every filter per epoch, each filter on its fixed row scale.

    Rendered straight through the colormap (no axes), so every frame has the same
    size and the GIF and the MLflow image slider show exactly the weights.
    """
    import matplotlib

    n_epochs, kh, kw, _, n_filters = kernels.shape
    scaled = kernels[:, :, :, 0, :] / _row_scales(kernels)
    columns = min(COLUMNS, n_filters)
    rows = -(-n_filters // columns)
    cmap = matplotlib.colormaps[colormap]
    frames = []
    for e in range(n_epochs):
        # Grey (0.5 after the colormap maps NaN → "bad") separates the tiles.
        grid = np.full((rows * (kh + 1) + 1, columns * (kw + 1) + 1), np.nan)
        for f in range(n_filters):
            r, c = divmod(f, columns)
            top, left = 1 + r * (kh + 1), 1 + c * (kw + 1)
            grid[top : top + kh, left : left + kw] = scaled[e, :, :, f]
        rgb = cmap((grid + 1) / 2)[..., :3]
        rgb[np.isnan(grid)] = 0.5
        rgb = np.repeat(np.repeat(rgb, GIF_SCALE, axis=0), GIF_SCALE, axis=1)
        frames.append(np.round(rgb * 255).astype(np.uint8))
    return frames


def gif_bytes(frames: list[np.ndarray], frame_ms: int) -> bytes:
    """An endlessly looping GIF of the frames, `frame_ms` per frame."""
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    stream = io.BytesIO()
    images[0].save(stream, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    return stream.getvalue()


def conv1_feature_maps(images: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """conv1's own output, before ReLU: N × h × w × filters, without loading TensorFlow.

    `kernel` is conv1's Keras weights (kh, kw, 1, filters): Keras computes a 'valid'
    cross-correlation with a stride, plus bias, which is exactly what this reproduces.
    """
    from scipy import signal

    images = np.asarray(images, dtype=np.float32)[..., 0]
    maps = [
        np.stack([signal.correlate2d(image, kernel[:, :, 0, f], mode="valid")[::stride, ::stride]
                  for f in range(kernel.shape[3])], axis=-1)
        for image in images
    ]
    return np.stack(maps).astype(np.float32) + np.asarray(bias, dtype=np.float32)


def feature_maps(images: np.ndarray, classes: np.ndarray, maps: np.ndarray, colormap: str, variant: str):
    """Rows digits: the digit, then the first MAX_MAPS filters' maps side by side, one scale per filter.

    Each row's maps are one mosaic image (each map divided by its filter's ±max|map|
    over all digits) so 64 filters stay one axes per row, not 64.
    """
    total = maps.shape[3]
    maps = maps[..., :MAX_MAPS]
    n_images, h, w, n_filters = maps.shape
    scales = np.array([limit(maps[..., f]) for f in range(n_filters)])
    scaled = maps / scales
    inch_per_pixel = 0.75 / IMAGE_SIDE  # a 28-pixel row is 0.75 inch tall
    figure = _figure(0.8 + inch_per_pixel * (IMAGE_SIDE + n_filters * (w + 1)), 0.9 + 0.8 * n_images)
    grid = figure.subplots(n_images, 2, squeeze=False, width_ratios=[1, n_filters * (w + 1) / IMAGE_SIDE])
    for row in range(n_images):
        digit_axes, maps_axes = grid[row]
        digit_axes.imshow(images[row, :, :, 0], cmap="gray_r", vmin=0, vmax=1)
        digit_axes.set_ylabel(str(int(classes[row])), rotation=0, labelpad=8)
        _no_ticks(digit_axes)
        mosaic = np.full((h, n_filters * (w + 1) - 1), np.nan)
        for f in range(n_filters):
            mosaic[:, f * (w + 1) : f * (w + 1) + w] = scaled[row, :, :, f]
        maps_axes.imshow(mosaic, cmap=colormap, vmin=-1, vmax=1, interpolation="nearest")
        maps_axes.set_yticks([])
        maps_axes.set_xticks([f * (w + 1) + (w - 1) / 2 for f in range(n_filters)], [] if row else range(n_filters))
        maps_axes.tick_params(labelsize=6, length=0)
        maps_axes.xaxis.set_ticks_position("top")
    figure.suptitle(
        f"{variant}: output of the model's conv1 layer ({KERAS_LAYOUT} + bias, before ReLU), "
        f"one test digit per class, filters #0-{n_filters - 1} of {total} left to right\n"
        "one colour scale per filter: map / ±max|map| over the digits, 0 = white",
        fontsize=9,
    )
    return figure
