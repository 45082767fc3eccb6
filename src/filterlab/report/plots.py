"""The report's comparison plots, drawn from `Results`; returns PNG bytes, writes no file.

Uses matplotlib's object API (no pyplot, no display), so rendering works headless and
never leaks figures between calls.
"""

import io
from collections import defaultdict

from filterlab.report.content import Results


def _figure(width: float, height: float, ncols: int = 1):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.subplots(1, ncols, squeeze=False, sharey=True)[0]


def _log_x(ax, ticks=None) -> None:
    """Log x axis labelled with plain numbers (filter and parameter counts), no minor-tick clutter."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_xscale("log")
    if ticks is not None:
        ax.set_xticks(ticks)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())


def png_bytes(figure) -> bytes:
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


def accuracy_vs_params(results: Results) -> bytes:
    figure, (ax,) = _figure(6.4, 4.2)
    for stride in sorted({v.stride for v in results.variants}):
        chosen = [v for v in results.variants if v.stride == stride]
        ax.scatter([v.params_count for v in chosen], [100 * v.test_accuracy for v in chosen], label=f"stride {stride}")
        for v in chosen:
            ax.annotate(v.name, (v.params_count, 100 * v.test_accuracy), fontsize=6, xytext=(3, 2),
                        textcoords="offset points")
    _log_x(ax)
    ax.set(xlabel="parameters (whole model)", ylabel="test accuracy (%)",
           title="Test accuracy against model size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return png_bytes(figure)


def baselines_vs_learned(results: Results) -> bytes | None:
    """Frozen classic/random banks at their kernel count beside the learned variants; pixels as a line."""
    if not results.baselines:
        return None
    figure, (ax,) = _figure(6.8, 4.4)
    learned = defaultdict(float)
    for v in results.variants:
        learned[v.filters] = max(learned[v.filters], 100 * v.test_accuracy)
    xs = sorted(learned)
    ax.plot(xs, [learned[x] for x in xs], marker="o", color="black", label="learned (best variant per filter count)")
    ax.scatter([v.filters for v in results.variants], [100 * v.test_accuracy for v in results.variants],
               color="grey", s=10, alpha=0.5, label="learned (every variant)")
    styles = {"random": ("tab:red", "s"), "bank": ("tab:blue", "D")}
    for baseline in sorted(results.baselines, key=lambda b: b.name):
        name, accuracy, kind, count = baseline.name, 100 * baseline.test_accuracy, baseline.kind, baseline.n_kernels
        if not count:  # no convolution at all: a reference level, not a point
            ax.axhline(accuracy, color="tab:green", linestyle="--", label=f"{name} (no convolution)")
            continue
        color, marker = styles.get(kind, ("tab:orange", "^"))
        ax.scatter([count], [accuracy], color=color, marker=marker, zorder=3)
        ax.annotate(name, (count, accuracy), fontsize=6, xytext=(3, -8), textcoords="offset points")
    for kind, (color, marker) in {**styles, "family": ("tab:orange", "^")}.items():
        ax.scatter([], [], color=color, marker=marker, label=f"frozen {kind}")
    counts = {v.filters for v in results.variants}
    counts |= {b.n_kernels for b in results.baselines if b.n_kernels}
    _log_x(ax, sorted(counts))
    ax.set(xlabel="conv1 filters (frozen kernels for baselines)", ylabel="test accuracy (%)",
           title="Hand-designed and random frozen filters against learned ones")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
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
