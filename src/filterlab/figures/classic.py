"""Learned filters beside the classic kernels they are nearest to; returns a matplotlib Figure.

Pure: conv1's learned kernel (Keras layout, kh x kw x 1 x filters), the similarity report
of `filterlab.kernels.similarity.compare_filters` and the bank in; a figure out. Each pair
shows the learned filter and its nearest classic kernel class in the same (Keras) layout,
the classic one scaled and signed to the learned filter so both share one colour scale.
The strip below answers "more than chance?": every filter's similarity at init and
learned, against the chance level of random filters drawn like the initialiser.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from filterlab.figures.filters import COLUMNS, KERAS_LAYOUT, limit
from filterlab.kernels.similarity import WeightedKernel, kernel_classes

if TYPE_CHECKING:  # matplotlib loads only in the function that draws
    from matplotlib.figure import Figure


def _matched(learned: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """The class's unit kernel with the learned filter's sign and length: the closest copy of it."""
    flat = learned.ravel()
    return (float(flat @ unit) * unit).reshape(learned.shape)


def learned_vs_classic(
    learned: np.ndarray, report: Mapping[str, Any], bank: Mapping[str, WeightedKernel], colormap: str, variant: str
) -> "Figure":
    from matplotlib.figure import Figure

    from filterlab.figures import mosaic

    classes = {c.name: c for c in kernel_classes(bank, learned.shape[:2])}
    entries = report["per_filter"]
    columns = min(COLUMNS, len(entries))
    mine, theirs, titles = [], [], []
    for index, entry in enumerate(entries):
        name, score = entry["learned"]["kernel"], entry["learned"]["similarity"]
        filter_ = learned[:, :, 0, index]
        classic = _matched(filter_, classes[name].unit) if name else np.zeros_like(filter_)
        scale = limit(filter_, classic)
        mine.append(filter_ / scale)
        theirs.append(classic / scale)
        titles.append(f"#{index} | {name or 'none'}\nsimilarity {score:.2f}")
    tiles = mosaic.pairs(mine, theirs, columns)
    width, height = tiles.inches
    figure = Figure(figsize=(width + 0.2, height + 3.0), layout="constrained")
    grid = figure.add_gridspec(2, 1, height_ratios=[height, 2.0])
    mosaic.draw(figure.add_subplot(grid[0]), tiles, colormap, titles, ("learned", "classic"), title_size=7)
    strip = figure.add_subplot(grid[1])
    chance = report["chance"]
    for row, moment in enumerate(("init", "learned")):
        values = [entry[moment]["similarity"] for entry in entries]
        strip.scatter(
            values,
            np.full(len(values), row) + np.linspace(-0.15, 0.15, len(values)),
            s=12,
            label=f"{moment}: mean {np.mean(values):.3f}",
        )
    strip.axvspan(
        0, chance["p95"], color="0.9", zorder=0, label=f"chance: below the 95th percentile ({chance['p95']:.3f})"
    )
    strip.axvline(chance["mean"], color="0.4", ls="--", label=f"chance mean {chance['mean']:.3f}")
    # Headroom above the learned row holds the legend, so it never covers a filter's point.
    strip.set(
        yticks=[0, 1],
        yticklabels=["init", "learned"],
        xlim=(0, 1.0),
        ylim=(-0.5, 2.5),
        xlabel="similarity to the nearest classic kernel (|cosine|, 1 = same kernel up to scale and sign)",
    )
    strip.legend(fontsize=7, loc="upper left", ncols=2)
    shift = report["shift"]
    figure.suptitle(
        f"{variant}: each learned filter | its nearest classic kernel ({KERAS_LAYOUT}), one colour scale per pair\n"
        f"learned mean {report['similarity']['learned']['mean']:.3f} vs chance {chance['mean']:.3f}: "
        f"effect size {shift['effect_size']:.1f} chance SDs, {100 * shift['above_chance_p95']:.0f}% of filters above "
        "chance's 95th percentile",
        fontsize=9,
    )
    return figure
