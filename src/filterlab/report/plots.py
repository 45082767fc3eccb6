"""The report's comparison plots, drawn from `Results`; returns PNG bytes, writes no file.

Uses matplotlib's object API (no pyplot, no display), so rendering works headless and
never leaks figures between calls.
"""

import io
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from filterlab.report.collected import Model, Results, Variant

if TYPE_CHECKING:  # matplotlib and NumPy load only in the functions that draw
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _figure(width: float, height: float, ncols: int = 1) -> tuple["Figure", "np.ndarray"]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(1, ncols, squeeze=False, sharey=True)[0]


def _log_x(ax: "Axes", ticks: Sequence[float] | None = None) -> None:
    """Log x axis labelled with plain numbers (filter and parameter counts), no minor-tick clutter."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    if ticks is not None:
        ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def png_bytes(figure: "Figure") -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def accuracy_vs_filters(results: Results) -> bytes:
    """One panel per stride, one line per kernel size: does widening conv1 pay off?"""
    strides = sorted({v.stride for v in results.variants})
    figure, axes = _figure(max(6.4, 4.2 * len(strides)), 3.8, len(strides))
    for ax, stride in zip(axes, strides, strict=True):
        lines = defaultdict(list)
        for v in results.variants:
            if v.stride == stride:
                lines[v.kernel_size].append((v.filters, 100 * v.test_accuracy))
        for kernel_size, points in sorted(lines.items()):
            xs, ys = zip(*sorted(points), strict=True)
            ax.plot(xs, ys, marker="o", label=f"{kernel_size}x{kernel_size}")
        ax.set(title=f"stride {stride}", xlabel="conv1 filters")
        _log_x(ax, sorted({v.filters for v in results.variants}))
        ax.grid(alpha=0.3)
        ax.legend(title="kernel", fontsize="small")
    axes[0].set_ylabel("test accuracy (%)")
    figure.suptitle("Test accuracy against the number of learned conv1 filters")
    return png_bytes(figure)


def _pareto(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """The points no other point beats with fewer or as many parameters: the ones worth naming."""
    front, best = [], -1.0
    for params, accuracy, name in sorted(points, key=lambda p: (p[0], -p[1])):
        if accuracy > best:
            front.append((params, accuracy, name))
            best = accuracy
    return front


def accuracy_vs_params(results: Results) -> bytes:
    """Every variant by size: colour is the kernel size, the marker the stride, and only the Pareto front is named
    (every name is in the variants table), so no label sits on another."""
    figure, (ax,) = _figure(7.2, 4.4)
    markers = dict(zip(sorted({v.stride for v in results.variants}), "osD^v<>", strict=False))
    colours = dict(
        zip(
            sorted({v.kernel_size for v in results.variants}),
            ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"),
            strict=False,
        )
    )
    sized = [v for v in results.variants if v.params_count]
    for v in sized:
        ax.scatter(
            [v.params_count],
            [100 * v.test_accuracy],
            color=colours.get(v.kernel_size, "grey"),
            marker=markers.get(v.stride, "o"),
            s=36,
            zorder=3,
        )
    # `sized` holds only variants with a params_count.
    front = _pareto([(cast(int, v.params_count), 100 * v.test_accuracy, v.name) for v in sized])
    ax.plot(
        [p[0] for p in front],
        [p[1] for p in front],
        color="black",
        linewidth=0.8,
        alpha=0.5,
        zorder=2,
        label="Pareto front (named)",
    )
    for index, (params, accuracy, name) in enumerate(front):
        # Alternate above and below the front's line so neighbouring names do not collide.
        ax.annotate(
            name,
            (params, accuracy),
            fontsize=8,
            xytext=(0, 8 if index % 2 == 0 else -14),
            textcoords="offset points",
            ha="center",
        )
    for size, colour in colours.items():
        ax.scatter([], [], color=colour, marker="o", label=f"{size}x{size} kernel")
    for stride, marker in markers.items():
        ax.scatter([], [], color="grey", marker=marker, label=f"stride {stride}")
    if sized:
        _log_x(
            ax,
            _round_ticks(min(cast(int, v.params_count) for v in sized), max(cast(int, v.params_count) for v in sized)),
        )
        low, high = min(100 * v.test_accuracy for v in sized), max(100 * v.test_accuracy for v in sized)
        ax.set_ylim(low - 0.25 * (high - low + 0.1), high + 0.25 * (high - low + 0.1))
    ax.set(xlabel="parameters (whole model)", ylabel="test accuracy (%)", title="Test accuracy against model size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    return png_bytes(figure)


def _round_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks covering [low, high] on a log axis: a few readable numbers even within one decade."""
    import math

    ticks = []
    for exponent in range(int(math.floor(math.log10(low))), int(math.ceil(math.log10(high))) + 1):
        ticks += [m * 10**exponent for m in (1, 2, 5)]
    inside = [t for t in ticks if low / 1.5 <= t <= high * 1.5]
    return inside or [low, high]


def baselines_vs_learned(results: Results) -> bytes | None:
    """Every frozen baseline and the best learned variant per kernel size, one row each with its 95% interval,
    best first. Rows are labelled on the axis, so no label can sit on another; the x-axis spans the models near
    the top, and one far below it (no convolution) is drawn at the edge with its value written out."""
    if not results.baselines:
        return None
    best_per_size: dict[int, Variant] = {}
    for v in results.variants:  # best first
        best_per_size.setdefault(v.kernel_size, v)
    rows: list[tuple[str, Model, str]] = [
        (f"learned {v.kernel_size}x{v.kernel_size}: {v.name}", v, "learned") for v in best_per_size.values()
    ]
    rows += [(f"frozen {b.name}" + (f" ({b.n_kernels})" if b.n_kernels else ""), b, b.kind) for b in results.baselines]
    rows.sort(key=lambda row: -row[1].test_accuracy)
    colours = {
        "learned": "black",
        "bank": "tab:blue",
        "random": "tab:red",
        "family": "tab:orange",
        "pixels": "tab:green",
    }
    figure, (ax,) = _figure(7.6, 0.32 * len(rows) + 1.4)
    top = max(100 * row[1].ci95_high for row in rows)
    near = [100 * row[1].ci95_low for row in rows if 100 * row[1].test_accuracy >= top - 6.0]
    left = min(near) - 0.3
    ys = range(len(rows))
    for y, (_label, model, kind) in zip(ys, rows, strict=True):
        accuracy, low, high = (100 * model.test_accuracy, 100 * model.ci95_low, 100 * model.ci95_high)
        colour = colours.get(kind, "grey")
        if accuracy < left:
            ax.annotate(
                f"◀ {accuracy:.2f}%",
                (left, y),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                color=colour,
            )
            continue
        ax.errorbar(
            [accuracy],
            [y],
            xerr=[[accuracy - max(low, left)], [high - accuracy]],
            fmt="o",
            color=colour,
            markersize=5,
            capsize=2,
            zorder=3,
        )
    best = 100 * results.best.test_accuracy
    ax.axvline(best, color="black", linewidth=0.6, linestyle=":", label=f"best learned, {best:.2f}%")
    ax.set_yticks(list(ys), [row[0] for row in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(left, top + 0.2)
    ax.set(
        xlabel="test accuracy (%), with its 95% interval",
        title="Hand-designed and random frozen filters against learned ones",
    )
    ax.grid(alpha=0.3, axis="x")
    figure.legend(fontsize="small", loc="outside lower center")  # below the axes: clear of every row
    return png_bytes(figure)


def all_plots(results: Results) -> dict[str, bytes]:
    plots = {
        "accuracy_vs_filters": accuracy_vs_filters(results),
        "accuracy_vs_params": accuracy_vs_params(results),
    }
    baselines = baselines_vs_learned(results)
    if baselines is not None:
        plots["baselines_vs_learned"] = baselines
    return plots
