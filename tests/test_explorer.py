"""The filter explorer, end to end: four tiny variants trained here, the `explorer` stage's page, and that page
driven in Debian's headless Chromium (tests/headless.py) against Keras on the saved models.

The page computes with the models' own float32 weights, so its feature maps and probabilities must equal
Keras's within 1e-4 (float rounding: the page sums in float64). The browser tests are skipped, with that
reason, only where chromium is missing; `.ci/run` installs it.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from headless import CHROMIUM, browser
from helpers import TINY, load_stage, write_params

# Four variants: stride 3 leaves a remainder (28 - k is not a multiple of 3) and odd maps for the max-pools.
GRID = {"filters": [3], "kernel_size": [3, 5], "stride": [1, 3]}
EPOCHS = 2
SEED = 20261121


def write_variant(root: Path, variant, model, kernels: np.ndarray, accuracy: tuple[int, int], seed: int) -> None:
    """What the train and filters stages write of one variant, for `model` and its conv1 `kernels` (init first):
    models/<variant>/{model.keras, filters.npz, run.json}, reports/metrics/train/ and reports/details/filters/."""
    from filterlab.core import atomic
    from filterlab.kernels import similarity
    from filterlab.kernels.bank import KERNELS
    from filterlab.training import artifacts, stats

    folder = root / "models" / variant.name
    artifacts.save_model(model, folder / artifacts.MODEL_FILE)
    artifacts.write_filters(folder, kernels, model.get_layer("conv1").get_weights()[1], variant)
    correct, total = accuracy
    low, high = stats.wilson(correct, total)
    headline = {"accuracy": round(correct / total, 6), "ci95_low": round(low, 4), "ci95_high": round(high, 4)}
    atomic.write_json(root / "reports" / "metrics" / "train" / f"{variant.name}.json", headline | {"loss": 1.0})
    _arrays, run = artifacts.read_filters(folder / artifacts.FILTERS_FILE, folder / artifacts.RUN_FILE)
    report = similarity.compare_filters(kernels[0], kernels[-1], KERNELS, seed)
    details = {key: run[key] for key in artifacts.RUN_KEYS} | report
    atomic.write_json(root / "reports" / "details" / "filters" / f"{variant.name}.json", details)


def stage_args(root: Path, params: Path, out: Path | None = None) -> list[str]:
    out = out or root / "reports" / "explorer.html"
    return [
        "--params",
        str(params),
        "--data",
        str(root / "data" / "prepared" / "mnist.npz"),
        "--models",
        str(root / "models"),
        "--metrics",
        str(root / "reports" / "metrics" / "train"),
        "--details",
        str(root / "reports" / "details" / "filters"),
        "--out",
        str(out),
        "--report",
        str(out.parent / "index.html"),
    ]


@pytest.fixture(scope="module")
def explored(tmp_path_factory, bundled_digits):
    """A project folder with four trained tiny variants, and the explorer page the stage wrote for them."""
    from filterlab.config.params import load_section, read_params
    from filterlab.config.sections import TrainParams
    from filterlab.data.dataset import Prepared, save_prepared, scale
    from filterlab.training import fit

    root = tmp_path_factory.mktemp("explorer")
    params = write_params(root / "params.yaml", TINY | {"train.grid": GRID, "train.epochs": EPOCHS, "seed": SEED})
    images, labels = bundled_digits
    order = np.random.default_rng(0).permutation(labels.size)[:500]
    x, y = scale(images[order]), labels[order].astype(np.int64)
    data = Prepared(x[:300], y[:300], x[300:350], y[300:350], x[350:], y[350:], "bundled", "0" * 64)
    save_prepared(root / "data" / "prepared" / "mnist.npz", data)
    section = load_section(read_params(params), "train", TrainParams)
    for variant in section.grid.variants():
        result = fit.train_variant(data, variant, section, SEED)
        correct = int((result.predictions == data.y_test).sum())
        write_variant(root, variant, result.model, result.kernels, (correct, len(data.y_test)), SEED)
    assert load_stage("explorer").main(stage_args(root, params)) == 0
    return root, params, data, section.grid.variants()


def payload(root: Path) -> dict:
    page = (root / "reports" / "explorer.html").read_text(encoding="utf-8")
    start = page.index('<script type="application/json" id="explorer-data">') + len(
        '<script type="application/json" id="explorer-data">'
    )
    return json.loads(page[start : page.index("</script>", start)])


def keras_model(root: Path, name: str):
    import keras

    return keras.saving.load_model(root / "models" / name / "model.keras", safe_mode=True)


def test_the_page_is_one_offline_file_holding_exact_float32_weights(explored):
    from filterlab.explorer import export
    from filterlab.training import artifacts

    root, _params, data, variants = explored
    page = (root / "reports" / "explorer.html").read_text(encoding="utf-8")
    # Nothing to fetch (the browser test below records every request): no sources, links out, imports or fetches.
    assert not re.search(r"src=|href=\"?https?:|url\(|@import|fetch\(|XMLHttpRequest|<link", page)
    assert '<a href="index.html">' in page  # back to the report beside it
    content = payload(root)
    assert [v["name"] for v in content["variants"]] == [v.name for v in variants]
    assert len(content["colormap"]["colours"]) == 256 and content["colormap"]["name"] == "RdBu_r"
    # The digit sample: 10 of each class where the test split has them, drawn with the seed, values exact.
    indices = np.array(content["digits"]["indices"])
    assert indices.tolist() == export.digit_sample(data.y_test, SEED).tolist()
    counts = np.bincount(data.y_test, minlength=10)
    assert np.bincount(data.y_test[indices], minlength=10).tolist() == np.minimum(counts, 10).tolist()
    assert np.array_equal(export.decode(content["digits"]["pixels"]), data.x_test[indices, :, :, 0])
    for variant, exported in zip(variants, content["variants"], strict=True):
        arrays, _run = artifacts.read_filters(
            root / "models" / variant.name / "filters.npz", root / "models" / variant.name / "run.json"
        )
        assert np.array_equal(export.decode(exported["conv1"]["snapshots"]), arrays["kernels"][..., 0, :])
        assert exported["conv1"]["epochs"] == list(range(EPOCHS + 1))
        metrics = json.loads((root / "reports" / "metrics" / "train" / f"{variant.name}.json").read_text())
        assert exported["accuracy"] == metrics["accuracy"] and exported["ci95_low"] == metrics["ci95_low"]
        kinds = [layer["kind"] for layer in exported["layers"]]
        assert kinds == ["conv2d", "relu", "maxpool", "conv2d", "maxpool", "flatten", "dense"]
        # The classic matches are the filters details' own, with the class's index in the bank's classes.
        details = json.loads((root / "reports" / "details" / "filters" / f"{variant.name}.json").read_text())
        classes = [c["name"] for c in content["classic"][str(variant.kernel_size)]]
        for entry, match in zip(details["per_filter"], exported["classic"]["per_filter"], strict=True):
            assert classes[match["learned"]["class"]] == entry["learned"]["kernel"]
            assert match["learned"]["similarity"] == entry["learned"]["similarity"]
            assert match["sign"] in (1, -1)
        assert exported["classic"]["chance"]["p95"] == details["chance"]["p95"]


def test_the_stage_writes_the_same_bytes_again(explored, tmp_path):
    root, params, _data, _variants = explored
    again = tmp_path / "explorer.html"
    assert load_stage("explorer").main(stage_args(root, params, again)) == 0
    assert again.read_bytes() == (root / "reports" / "explorer.html").read_bytes()


def test_a_missing_or_stale_model_is_one_line_naming_the_file(explored, tmp_path, capsys):
    import shutil

    root, params, _data, variants = explored
    for folder in ("models", "reports", "data"):
        shutil.copytree(root / folder, tmp_path / folder)
    model = tmp_path / "models" / variants[1].name / "model.keras"
    model.unlink()
    assert load_stage("explorer").main(stage_args(tmp_path, params)) == 1
    error = capsys.readouterr().err.strip()
    assert error == f"error: {model}: not found; run `dvc repro train@3-3-3` first"
    # filters.npz of another run than model.keras: the page would show filters the model does not have.
    shutil.copyfile(root / "models" / variants[1].name / "model.keras", model)
    shutil.copyfile(root / "models" / variants[0].name / "filters.npz", model.with_name("filters.npz"))
    assert load_stage("explorer").main(stage_args(tmp_path, params)) == 1
    error = capsys.readouterr().err.strip()
    assert "model.keras's conv1 kernel is not filters.npz's last snapshot" in error and "\n" not in error
    # The page a failed run leaves is the one that was there.
    assert (tmp_path / "reports" / "explorer.html").read_bytes() == (root / "reports" / "explorer.html").read_bytes()


def test_a_model_the_page_cannot_run_is_refused_naming_the_layer():
    import keras

    from filterlab.core.errors import DataError
    from filterlab.explorer import export

    inputs = keras.Input((28, 28, 1), name="image")
    conv1 = keras.layers.Conv2D(2, 3, name="conv1")(inputs)
    normed = keras.layers.BatchNormalization(name="norm")(conv1)
    head = keras.layers.Dense(10, activation="softmax", name="softmax")
    with pytest.raises(DataError, match="layer 'norm' is a BatchNormalization"):
        export.forward_layers(keras.Model(inputs, head(keras.layers.Flatten()(normed))), "v")
    # A branch: the page runs the layers one after the other, so a layer fed by two is refused.
    both = keras.layers.Add(name="both")([conv1, keras.layers.Conv2D(2, 3, name="side")(inputs)])
    with pytest.raises(DataError, match="layer 'side' does not take 'conv1' alone"):
        export.forward_layers(keras.Model(inputs, head(keras.layers.Flatten()(both))), "v")


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    with browser(tmp_path_factory.mktemp("chromium")) as running:
        yield running


def open_page(chromium, root: Path, **size):
    page = chromium.page(**size)
    page.goto((root / "reports" / "explorer.html").as_uri(), ready="window.explorer && document.body.dataset.ready")
    return page


def relu(values: np.ndarray) -> np.ndarray:
    return np.maximum(values, 0)


@pytest.mark.browser
def test_feature_maps_and_probabilities_equal_keras_on_the_saved_models(explored, chromium):
    import keras

    root, _params, data, variants = explored
    page = open_page(chromium, root)
    indices = payload(root)["digits"]["indices"]
    shown_digits = [0, 7, 19, 33, len(indices) - 1]  # several classes, first and last
    images = data.x_test[[indices[d] for d in shown_digits]]
    for variant in variants:
        model = keras_model(root, variant.name)
        conv1 = keras.Model(model.inputs, model.get_layer("relu1").output)
        maps, probabilities = conv1.predict(images, verbose=0), model.predict(images, verbose=0)
        page.evaluate(f"explorer.selectVariant({json.dumps(variant.name)})")
        for row, digit in enumerate(shown_digits):
            page.evaluate(f"explorer.selectDigit({digit})")
            state = page.evaluate("explorer.state()")
            assert state["variant"] == variant.name and state["epoch"] == EPOCHS and state["digit"] == digit
            assert np.array_equal(np.float32(state["pixels"]), images[row].ravel())
            h, w = state["mapShape"]
            page_maps = np.array(state["maps"]).reshape(variant.filters, h, w).transpose(1, 2, 0)
            assert page_maps.shape == maps[row].shape
            assert np.abs(page_maps - maps[row]).max() < 1e-4, variant.name
            assert np.abs(np.array(state["probabilities"]) - probabilities[row]).max() < 1e-4, variant.name
    assert page.errors() == []


@pytest.mark.browser
def test_the_slider_the_classic_kernels_and_the_bank_follow_their_kernels(explored, chromium):
    from filterlab.explorer import export
    from filterlab.figures.filters import conv1_feature_maps
    from filterlab.kernels.bank import KERNELS, select
    from filterlab.kernels.convolution import to_keras_weights
    from filterlab.training import artifacts

    root, _params, data, variants = explored
    content = payload(root)
    page = open_page(chromium, root)
    page.evaluate("explorer.selectDigit(12)")
    image = data.x_test[content["digits"]["indices"][12]][np.newaxis]
    frozen = to_keras_weights(select(TINY["baselines.kernels"]))
    bank = conv1_feature_maps(image, frozen, np.zeros(frozen.shape[-1], np.float32), 1)[0]
    for variant in variants[:2]:
        folder = root / "models" / variant.name
        arrays, _run = artifacts.read_filters(folder / "filters.npz", folder / "run.json")
        page.evaluate(f"explorer.selectVariant({json.dumps(variant.name)})")
        for epoch, bias in ((0, np.zeros_like(arrays["bias"])), (1, arrays["bias"])):
            page.evaluate(f"explorer.setEpoch({epoch})")
            for signed in (False, True):
                page.evaluate(f"explorer.setSigned({json.dumps(signed)})")
                state = page.evaluate("explorer.state()")
                expected = conv1_feature_maps(image, arrays["kernels"][epoch], bias, variant.stride)[0]
                expected = expected if signed else relu(expected)
                shown = np.array(state["maps"]).reshape(variant.filters, *state["mapShape"]).transpose(1, 2, 0)
                assert np.abs(shown - expected).max() < 1e-4, (variant.name, epoch, signed)
                shown_bank = np.array(state["bankMaps"]).reshape(frozen.shape[-1], *bank.shape[:2]).transpose(1, 2, 0)
                assert np.abs(shown_bank - (bank if signed else relu(bank))).max() < 1e-4
        # The nearest classic kernel, flipped into conv1's layout and turned to the learned filter's sign.
        classes = export.classic_classes(variant.kernel_size, KERNELS)
        for f, match in enumerate(
            next(v for v in content["variants"] if v["name"] == variant.name)["classic"]["per_filter"]
        ):
            kernel_class = classes[match["learned"]["class"]]
            weights = to_keras_weights([KERNELS[kernel_class.members[0]].weights]) * match["sign"]
            expected = conv1_feature_maps(image, weights, np.zeros(1, np.float32), variant.stride)[0, :, :, 0]
            assert np.abs(np.array(state["classicMaps"][f]) - expected.ravel()).max() < 1e-4
            assert float(kernel_class.unit @ (arrays["kernels"][-1][:, :, 0, f].ravel() * match["sign"])) >= 0
    assert page.errors() == []


def ink_box(pixels: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(pixels.any(axis=1)), np.flatnonzero(pixels.any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


@pytest.mark.browser
def test_a_digit_drawn_with_the_pointer_gets_the_probabilities_keras_gives(explored, chromium):
    root, _params, _data, variants = explored
    page = open_page(chromium, root)
    page.evaluate(f"explorer.selectVariant({json.dumps(variants[2].name)})")
    box = page.evaluate("(b => ({x: b.left, y: b.top, w: b.width, h: b.height}))(pad.getBoundingClientRect())")
    # A 7: the bar, then the stem, in 5-pixel steps of the mouse with its button held down.
    corners = [(0.3, 0.2), (0.72, 0.22), (0.45, 0.85)]
    points = []
    for (x0, y0), (x1, y1) in zip(corners, corners[1:], strict=False):
        points += [(x0 + (x1 - x0) * t, y0 + (y1 - y0) * t) for t in np.linspace(0, 1, 25)]
    page.drag([(box["x"] + x * box["w"], box["y"] + y * box["h"]) for x, y in points])
    page.wait_for("explorer.state().drawn")
    state = page.evaluate("explorer.state()")
    pixels = np.float32(state["pixels"]).reshape(28, 28)
    # Preprocessed as MNIST was: the ink fits a 20x20 box and its centre of mass is the image's centre.
    assert max(ink_box(pixels)) == 20 and min(ink_box(pixels)) >= 10
    rows, cols = np.indices(pixels.shape) + 0.5
    centre = ((pixels * rows).sum() / pixels.sum(), (pixels * cols).sum() / pixels.sum())
    assert abs(centre[0] - 14) <= 0.5 and abs(centre[1] - 14) <= 0.5, centre
    expected = keras_model(root, variants[2].name).predict(pixels[np.newaxis, :, :, np.newaxis], verbose=0)[0]
    assert np.abs(np.array(state["probabilities"]) - expected).max() < 1e-4
    assert page.errors() == []


def view(page) -> dict:
    """What a reader sees change: the texts and the first filter's pictures."""
    return page.evaluate(
        """({
          info: document.getElementById("variant-info").textContent,
          epoch: document.getElementById("epoch-label").textContent,
          prediction: document.getElementById("prediction").textContent,
          kernel: document.querySelector("#filter-cards canvas.kernel").toDataURL(),
          map: document.querySelector("#filter-cards canvas.map").toDataURL(),
          digit: document.getElementById("digit-now").toDataURL(),
          focused: document.activeElement.id || document.activeElement.getAttribute("role"),
          pageWidth: document.documentElement.scrollWidth,
          viewport: document.documentElement.clientWidth,
          window: window.innerWidth,
        })"""
    )


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_keyboard_slider_and_drawing_update_the_view_without_errors_or_overflow(explored, chromium, width):
    root, _params, _data, variants = explored
    phone = width < 500
    page = open_page(chromium, root, width=width, height=844 if phone else 900, mobile=phone)
    first = view(page)
    assert first["window"] == width and first["pageWidth"] <= first["viewport"]  # a desktop scrollbar takes 15 px
    # The variant picker, from the keyboard.
    page.evaluate("document.getElementById('variant').focus()")
    page.key("ArrowDown")
    picked = view(page)
    assert page.evaluate("explorer.state().variant") == variants[1].name
    assert picked["info"] != first["info"] and picked["kernel"] != first["kernel"]
    # The epoch slider: Home goes back to init, where the filters are their random starts.
    page.evaluate("document.getElementById('epoch').focus()")
    page.key("Home")
    at_init = view(page)
    assert page.evaluate("explorer.state().epoch") == 0 and at_init["epoch"].startswith("init")
    assert at_init["kernel"] != picked["kernel"] and at_init["prediction"] == picked["prediction"]
    page.key("ArrowRight")
    one = view(page)
    assert page.evaluate("explorer.state().epoch") == 1 and one["kernel"] != at_init["kernel"]
    # The digits: one tab stop, arrows move.
    page.evaluate("document.querySelector('#digits [aria-checked=true]').focus()")
    page.key("ArrowRight")
    stepped = view(page)
    assert page.evaluate("explorer.state().digit") == 1 and stepped["focused"] == "radio"
    assert stepped["digit"] != one["digit"] and stepped["map"] != one["map"]
    page.key("End")
    assert page.evaluate("explorer.state().digit") == len(payload(root)["digits"]["indices"]) - 1
    # Drawing (a finger on the phone) replaces the digit and reruns the model.
    page.evaluate("document.getElementById('pad').scrollIntoView({block: 'center'})")
    box = page.evaluate("(b => ({x: b.left, y: b.top, w: b.width, h: b.height}))(pad.getBoundingClientRect())")
    before = view(page)
    stroke = [(box["x"] + box["w"] * (0.5 + 0.01 * t), box["y"] + box["h"] * (0.15 + 0.05 * t)) for t in range(15)]
    page.drag(stroke, touch=phone)
    page.wait_for("explorer.state().drawn")
    drawn = view(page)
    assert drawn["digit"] != before["digit"] and drawn["map"] != before["map"]
    assert drawn["pageWidth"] <= drawn["viewport"]
    assert page.errors() == []


@pytest.mark.browser
def test_no_request_leaves_the_page(explored, chromium):
    root, _params, _data, variants = explored
    page = open_page(chromium, root)
    page.evaluate(f"explorer.selectVariant({json.dumps(variants[-1].name)})")
    page.evaluate("explorer.setEpoch(0)")
    page.evaluate("explorer.selectDigit(3)")
    url = (root / "reports" / "explorer.html").as_uri()
    assert page.requests() and set(page.requests()) == {url}
    assert page.events("Network.loadingFailed") == []
