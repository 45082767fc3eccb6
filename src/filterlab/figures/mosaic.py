"""Pairs of small kernels drawn as one image in one axes, labelled in place; pure, returns nothing on disk.

Every matplotlib axes is made, laid out and drawn with its ticks: one axes per filter made
the 64-filter variants' init-vs-learned and learned-vs-classic figures most of a filters
stage. One mosaic image with its labels as text inside the same axes draws the same
pictures far faster.

Geometry is in image pixels (one pixel per weight): pairs sit in rows of `columns`, each
pair is left | NaN column | right, pairs are two NaN columns apart, and every row of pairs
has a NaN band above it for its title and below it for the half labels. NaN draws as
the background, so the bands and gaps are white.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # matplotlib loads only in the functions that draw
    from matplotlib.axes import Axes

CELL_INCHES = 2.0  # one pair and its gap is this wide, as the one-axes-per-filter figures were
TITLE_INCHES = 0.34  # room for a two-line 7-point title
LABEL_INCHES = 0.16  # room for the 6-point half labels


@dataclass(frozen=True)
class PairMosaic:
    image: np.ndarray  # NaN where nothing is drawn
    inches_per_pixel: float
    left_centres: tuple[float, ...]  # per pair, in image pixels (x of the left half's centre)
    right_centres: tuple[float, ...]
    tops: tuple[float, ...]  # per pair, y of the kernels' top edge
    bottoms: tuple[float, ...]  # per pair, y of the kernels' bottom edge

    @property
    def inches(self) -> tuple[float, float]:
        height, width = self.image.shape
        return width * self.inches_per_pixel, height * self.inches_per_pixel


def pairs(lefts: list[np.ndarray], rights: list[np.ndarray], columns: int) -> PairMosaic:
    """Lay out (left, right) kernel pairs of one shape; values are drawn as given (divide by the scale first)."""
    if not lefts or len(lefts) != len(rights):
        raise ValueError(f"pairs needs as many left as right kernels, at least one: got {len(lefts)} and {len(rights)}")
    kh, kw = lefts[0].shape
    cell = 2 * kw + 3  # left, a one-pixel gap, right, two pixels to the next pair: the halves read as a pair
    inches_per_pixel = CELL_INCHES / cell
    title, label = (max(1, int(np.ceil(inches / inches_per_pixel))) for inches in (TITLE_INCHES, LABEL_INCHES))
    row_height = title + kh + label
    rows = -(-len(lefts) // columns)
    image = np.full((rows * row_height, columns * cell), np.nan)
    lc, rc, tops, bottoms = [], [], [], []
    for index, (left, right) in enumerate(zip(lefts, rights, strict=True)):
        row, column = divmod(index, columns)
        top, x0 = row * row_height + title, column * cell
        image[top : top + kh, x0 : x0 + kw] = left
        image[top : top + kh, x0 + kw + 1 : x0 + 2 * kw + 1] = right
        lc.append(x0 + (kw - 1) / 2)
        rc.append(x0 + kw + 1 + (kw - 1) / 2)
        tops.append(top - 0.5)
        bottoms.append(top + kh - 0.5)
    return PairMosaic(image, inches_per_pixel, tuple(lc), tuple(rc), tuple(tops), tuple(bottoms))


def draw(
    axes: "Axes", mosaic: PairMosaic, colormap: str, titles: list[str], halves: tuple[str, str], title_size: float = 8
) -> None:
    """The mosaic on a -1..1 scale in `axes` (no frame, no ticks), a title above each pair, half labels below."""
    axes.imshow(mosaic.image, cmap=colormap, vmin=-1, vmax=1, interpolation="nearest")
    axes.set_axis_off()
    for index, text in enumerate(titles):
        centre = (mosaic.left_centres[index] + mosaic.right_centres[index]) / 2
        axes.text(centre, mosaic.tops[index] - 0.15, text, ha="center", va="bottom", fontsize=title_size)
        for x, half in zip((mosaic.left_centres[index], mosaic.right_centres[index]), halves, strict=True):
            axes.text(x, mosaic.bottoms[index] + 0.1, half, ha="center", va="top", fontsize=6)
