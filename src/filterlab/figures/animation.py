"""The evolution animation: one frame per epoch of every conv1 filter, as RGB arrays and a GIF.

Pure: kernels in (Keras layout, epochs+1 x kh x kw x 1 x filters), uint8 frames or GIF
bytes out; the filters stage writes the GIF, and the log_figures stage reads its frames
back (`gif_frames`) for MLflow's image slider.
Frames are drawn straight through the colormap (no axes), so each weight is a block of
exactly SCALE x SCALE pixels, with the epoch above, each filter's number over its tile (the
same numbers as the static figures), and the colour scale below.
"""

import io

import numpy as np

from filterlab.figures.filters import COLUMNS, row_scales

SCALE = 24  # pixels per weight: a 3x3 filter is a 72-pixel tile
LABEL = 28  # pixels of the epoch line above the tiles
BAR = 34  # pixels of the colour scale below them
NUMBER = 18  # pixels of the band of filter numbers above each row of tiles


def _text(frame: np.ndarray, lines: list[tuple[tuple[int, int], str]]) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    for position, text in lines:
        draw.text(position, text, fill=(0, 0, 0), font=font)
    return np.asarray(image)


def _bytes(rgb: np.ndarray) -> np.ndarray:
    return np.round(rgb * 255).astype(np.uint8)


def evolution_frames(kernels: np.ndarray, colormap: str) -> list[np.ndarray]:
    """One uint8 RGB frame per epoch; each filter keeps its own scale (±max|w| over all epochs)."""
    import matplotlib

    n_epochs, kh, kw, _, n_filters = kernels.shape
    scaled = kernels[:, :, :, 0, :] / row_scales(kernels)
    columns = min(COLUMNS, n_filters)
    rows = -(-n_filters // columns)
    cmap = matplotlib.colormaps[colormap]
    width = max((columns * (kw + 1) + 1) * SCALE, 320)  # room for the labels under narrow grids
    bar = np.linspace(-1, 1, width - 40)
    frames = []
    for epoch in range(n_epochs):
        # Grey separates the tiles (NaN, painted after the colormap).
        grid = np.full((rows * (kh + 1) + 1, columns * (kw + 1) + 1), np.nan)
        for f in range(n_filters):
            r, c = divmod(f, columns)
            top, left = 1 + r * (kh + 1), 1 + c * (kw + 1)
            grid[top : top + kh, left : left + kw] = scaled[epoch, :, :, f]
        tiles = cmap((grid + 1) / 2)[..., :3]
        tiles[np.isnan(grid)] = 0.5
        # To bytes before blowing the tiles up: the same pixels, 24² times fewer float operations.
        tiles = np.repeat(np.repeat(_bytes(tiles), SCALE, axis=0), SCALE, axis=1)
        # A white band above each row of tiles carries the filter numbers.
        row_px = (kh + 1) * SCALE
        band = np.full((NUMBER, tiles.shape[1], 3), 255, dtype=np.uint8)
        chunks = [part for r in range(rows) for part in (band, tiles[r * row_px : (r + 1) * row_px])]
        tiles = np.concatenate([*chunks, tiles[rows * row_px :]])
        frame = np.full((LABEL + tiles.shape[0] + BAR, width, 3), 255, dtype=np.uint8)
        frame[LABEL : LABEL + tiles.shape[0], : tiles.shape[1]] = tiles
        frame[-BAR + 4 : -BAR + 14, 20 : 20 + bar.size] = _bytes(cmap((bar + 1) / 2)[np.newaxis, :, :3])
        numbers = [
            (
                (
                    ((1 + (f % columns) * (kw + 1)) * SCALE + kw * SCALE // 2 - 4 * len(f"#{f}")),
                    LABEL + (f // columns) * (row_px + NUMBER) + 1,
                ),
                f"#{f}",
            )
            for f in range(n_filters)
        ]
        frames.append(
            _text(
                frame,
                [
                    ((6, 6), f"epoch {epoch} of {n_epochs - 1}" + (" (init)" if epoch == 0 else "")),
                    *numbers,
                    ((6, frame.shape[0] - 20), "-max|w|"),
                    ((width // 2 - 4, frame.shape[0] - 20), "0"),
                    ((width - 62, frame.shape[0] - 20), "+max|w|"),
                ],
            )
        )
    return frames


def first_tiles(frame: np.ndarray, kernel_size: int, n_filters: int, side: int = 4) -> np.ndarray:
    """Filters #0 to #side²-1 of an `evolution_frames` frame, re-laid `side` to a row, with their numbers.

    MLflow's image slider shows a 256-pixel thumbnail of each step's image: a whole 64-filter
    frame shrinks to unreadable specks, these 16 tiles stay legible (every filter is in the GIF).
    """
    columns = min(COLUMNS, n_filters)
    row_px = (kernel_size + 1) * SCALE
    cell_w, cell_h = (kernel_size + 1) * SCALE, NUMBER + row_px
    shown = min(side * side, n_filters)
    per_row = min(side, shown)
    out_rows = -(-shown // per_row)
    grey = frame[LABEL + NUMBER, 0]  # the separators' colour
    out = np.full((out_rows * cell_h + SCALE, per_row * cell_w + SCALE, 3), 255, dtype=np.uint8)
    for f in range(shown):
        r, c = divmod(f, columns)
        block = frame[LABEL + r * cell_h : LABEL + (r + 1) * cell_h, c * cell_w : (c + 1) * cell_w]
        out_r, out_c = divmod(f, per_row)
        out[out_r * cell_h : (out_r + 1) * cell_h, out_c * cell_w : (out_c + 1) * cell_w] = block
    # The right and bottom borders that the next tile's separator drew in the full frame.
    out[NUMBER:, -SCALE:] = grey
    out[-SCALE:, :] = grey
    for out_r in range(out_rows):  # the number bands stay white across the right border
        out[out_r * cell_h : out_r * cell_h + NUMBER, -SCALE:] = 255
    return out


def gif_bytes(frames: list[np.ndarray], frame_ms: int) -> bytes:
    """An endlessly looping GIF of the frames, `frame_ms` per frame."""
    from PIL import Image

    # A palette per frame by fast octree: Pillow's default (median cut) is several times slower at picking
    # 256 colours that a diverging colormap and grey fill anyway.
    images = [
        Image.fromarray(frame).quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        for frame in frames
    ]
    stream = io.BytesIO()
    images[0].save(stream, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    return stream.getvalue()


def gif_frames(data: bytes) -> list[np.ndarray]:
    """The frames of a GIF as uint8 RGB arrays: what `gif_bytes` wrote, read back for MLflow's image slider."""
    from PIL import Image, ImageSequence

    with Image.open(io.BytesIO(data)) as gif:
        return [np.asarray(frame.convert("RGB")) for frame in ImageSequence.Iterator(gif)]
