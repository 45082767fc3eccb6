"""Every figure the pipeline saves keeps its text on the canvas: no clipped title, label or number.

Each figure is built from small synthetic inputs by the same library function the stage
calls, drawn at the stage's dpi, and every visible text artist's window extent (what
matplotlib's tight bounding box is made of) must lie inside the figure. A title cut off
at the edge, as `probes/peak.png` and `feature_maps.png` once were, fails here.
"""

import numpy as np
import pytest

from filterlab.figures import baselines, classic, filters
from filterlab.kernels import similarity
from filterlab.kernels.bank import KERNELS, select
from filterlab.probes import peak, recovery, single_image
from filterlab.report import collected, plots

DPI = 110  # params.yaml figures.dpi
SLACK = 1.0  # pixels: anti-aliasing may touch the border without clipping anything


def texts_outside(figure) -> list[str]:
    """What leaves the canvas once drawn: each axes' tight bounding box (its ticks in view, labels, title,
    legend; colour bars are axes too) and every figure-level text, the suptitle included."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure.set_dpi(DPI)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    width, height = canvas.get_width_height()
    boxes = [
        (f"axes {axes.get_title()!r} {axes.get_xlabel()!r}", axes.get_tightbbox(renderer))
        for axes in figure.axes
        if axes.get_visible()
    ]
    texts = [*figure.texts, *([figure._suptitle] if figure._suptitle is not None else [])]
    boxes += [
        (repr(text.get_text()), text.get_window_extent(renderer))
        for text in texts
        if text.get_visible() and text.get_text().strip()
    ]
    return [
        f"{name} at {tuple(round(v) for v in box.extents)} on a {width}x{height} canvas"
        for name, box in boxes
        if box is not None and (box.x0 < -SLACK or box.y0 < -SLACK or box.x1 > width + SLACK or box.y1 > height + SLACK)
    ]


def _marker_points(axes, renderer) -> list[tuple[float, float]]:
    """Display coordinates of every data marker drawn in `axes`: scatter offsets and marked line vertices."""
    points = []
    for collection in axes.collections:
        offsets = collection.get_offsets()
        if len(offsets):
            points += [tuple(p) for p in collection.get_offset_transform().transform(offsets)]
    for line in axes.lines:
        if line.get_marker() not in (None, "None", "", " ") and line.get_visible():
            points += [tuple(p) for p in line.get_transform().transform(line.get_xydata())]
    return points


def overlaps(figure) -> list[str]:
    """Labels drawn on top of each other or of data: annotations and legends that overlap one another, an
    annotation that covers a marker other than its own, a legend that covers a marker."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure.set_dpi(DPI)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    found = []
    legends = [legend for legend in [*figure.legends, *(a.get_legend() for a in figure.axes)] if legend is not None]
    for axes in figure.axes:
        labels = [
            (text.get_text(), text.get_window_extent(renderer), getattr(text, "xy", None))
            for text in axes.texts
            if text.get_visible() and text.get_text().strip()
        ]
        labels += [("legend", legend.get_window_extent(renderer), None) for legend in legends]
        for i, (name, box, _xy) in enumerate(labels):
            for other, other_box, _ in labels[i + 1 :]:
                if box.overlaps(other_box):
                    found.append(f"{name!r} overlaps {other!r}")
        markers = _marker_points(axes, renderer)
        for name, box, xy in labels:
            own = None if xy is None else tuple(axes.transData.transform(xy))
            for point in markers:
                if own is not None and abs(point[0] - own[0]) < 1 and abs(point[1] - own[1]) < 1:
                    continue
                if box.x0 < point[0] < box.x1 and box.y0 < point[1] < box.y1:
                    found.append(f"{name!r} covers a marker at {tuple(round(v) for v in point)}")
                    break
    return found


def kernels(epochs=3, size=3, n_filters=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=0.3, size=(epochs, size, size, 1, n_filters)).astype(np.float32)


def digits(count=10):
    rng = np.random.default_rng(1)
    return rng.random((count, 28, 28)).astype(np.float32), np.arange(count)


def filter_figures(epochs=3, size=3, n_filters=8):
    k = kernels(epochs, size, n_filters)
    images, classes = digits()
    images = images[:, :, :, np.newaxis]  # the prepared split's layout
    bias = np.zeros(k.shape[-1], np.float32)
    maps = filters.conv1_feature_maps(images, k[-1], bias, 1)
    report = similarity.compare_filters(k[0], k[-1], KERNELS, 7)
    variant = f"f{n_filters}_k{size}_s1"
    drawn = {
        "init_vs_learned": filters.init_vs_learned(k[0], k[-1], "RdBu_r", variant),
        "evolution": filters.evolution_strip(k, np.arange(k.shape[0]), "RdBu_r", variant),
        "feature_maps": filters.feature_maps(images, classes, maps, k[-1], "RdBu_r", variant),
    }
    if report["comparable"]:
        drawn["learned_vs_classic"] = classic.learned_vs_classic(k[-1], report, KERNELS, "RdBu_r", variant)
    return drawn


def baseline_figures():
    images, classes = digits()
    chosen = select(list(KERNELS))
    written = np.stack([kernel.weights for kernel in select(["sobel_x", "sobel_y", "scharr_x"])])
    return {
        "baselines/feature_maps": baselines.feature_maps_figure(chosen, images, classes, "RdBu_r"),
        "baselines/kernels": baselines.kernels_figure(
            written, ["sobel_x", "sobel_y", "scharr_x"], "family:sobel", "RdBu_r"
        ),
    }


def probe_figures():
    rng = np.random.default_rng(2)
    vector = (0.8416, 0.7342, 0.5710, 0.1769, 0.9574, 0.2653, 0.9246, 0.2238, 0.3736, 0.0875)
    learned = peak.LearnedPeak(
        initial=rng.normal(size=3),
        learned=np.array([-4.67, 4.25, -4.36]),
        bias=-1.0,
        accuracy=0.99,
        kept=2,
        restart_accuracies=[0.9] * 8,
        restart_cosines=[0.99] * 8,
    )
    recovered = [
        recovery.Recovered(
            name=name,
            true_keras=KERNELS[name].weights[::-1, ::-1],
            learned=KERNELS[name].weights[::-1, ::-1] + 1e-5,
            unflipped_error=4.0,
        )
        for name in ("laplacian_8", "sobel_x", "box_blur_3x3")
    ]
    image = rng.random((28, 28))
    single = single_image.SingleImageResult(
        image_index=12345,
        image=image,
        init=rng.normal(size=(28, 28, 5)),
        learned=np.repeat(image[:, :, np.newaxis], 5, axis=2),
        digit_probability=0.99,
        predicted=4,
    )
    return {
        "probes/peak": peak.figure(peak.hand_applied(vector), learned),
        "probes/recovery": recovery.figure(recovered, "RdBu_r"),
        "probes/single_image": single_image.figure(single, 4, "RdBu_r"),
    }


def report_plots(monkeypatch, tmp_path):
    from helpers import GRID, loaded_metrics, make_reports

    drawn = {}

    def keep(figure) -> bytes:
        drawn[f"report/{len(drawn)}"] = figure
        return b""

    monkeypatch.setattr(plots, "png_bytes", keep)
    metrics, details, _figures = make_reports(tmp_path / "reports")
    plots.all_plots(collected.collect("t", GRID, loaded_metrics(metrics), loaded_metrics(details)))
    return drawn


@pytest.mark.parametrize("shape", [(3, 3, 8), (9, 3, 64), (9, 5, 32), (9, 7, 8)], ids=str)
def test_filter_figures_keep_their_text_on_the_canvas(shape):
    """(snapshots, kernel size, filters): a 2-epoch run and the default grid's shapes."""
    drawn = filter_figures(*shape)
    assert ("learned_vs_classic" in drawn) == (shape[1] in (3, 5))
    for name, figure in drawn.items():
        assert not texts_outside(figure), f"{name}: {texts_outside(figure)}"


@pytest.mark.parametrize("build", [baseline_figures, probe_figures], ids=lambda f: f.__name__)
def test_library_figures_keep_their_text_on_the_canvas(build):
    for name, figure in build().items():
        assert not texts_outside(figure), f"{name}: {texts_outside(figure)}"


def test_report_plots_keep_their_text_on_the_canvas(monkeypatch, tmp_path):
    drawn = report_plots(monkeypatch, tmp_path)
    assert len(drawn) >= 3
    for name, figure in drawn.items():
        assert not texts_outside(figure), f"{name}: {texts_outside(figure)}"


def test_report_plots_keep_labels_off_each_other_and_off_the_data(monkeypatch, tmp_path):
    drawn = report_plots(monkeypatch, tmp_path)
    for name, figure in drawn.items():
        assert not overlaps(figure), f"{name}: {overlaps(figure)}"


@pytest.mark.parametrize("shape", [(9, 3, 64), (9, 5, 32), (9, 3, 8)], ids=str)
def test_learned_vs_classic_keeps_its_legend_off_the_data(shape):
    figure = filter_figures(*shape)["learned_vs_classic"]
    assert not overlaps(figure), overlaps(figure)


def test_the_overlap_check_sees_crowded_labels_and_a_covering_legend():
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3, 2))
    axes = figure.subplots()
    axes.scatter([1, 1.01, 2], [1, 1.01, 2], label="points")
    axes.annotate("emboss", (1, 1))
    axes.annotate("identity", (1.01, 1.01))
    axes.legend(loc="upper right")
    found = overlaps(figure)
    assert any("'emboss' overlaps 'identity'" in line for line in found)
    assert any("'legend' covers a marker" in line for line in found)


def test_the_check_sees_a_clipped_title():
    from matplotlib.figure import Figure

    figure = Figure(figsize=(2, 1))  # no constrained layout: a long title runs off both sides
    figure.subplots().set_title("a title far too long for a figure two inches wide, cut on both sides")
    assert texts_outside(figure)
