"""filterlab.figures.filters: filter pictures: shared colour scales, frame counts, GIF timing, one digit per class."""

import io

import numpy as np
import pytest

from filterlab.figures import animation, filters, mosaic


def kernels(epochs=3, size=3, filters=5):
    rng = np.random.default_rng(0)
    return rng.normal(size=(epochs, size, size, 1, filters)).astype(np.float32)


def test_init_vs_learned_pairs_share_one_symmetric_scale():
    k = kernels()
    figure = filters.init_vs_learned(k[0], k[-1], "RdBu_r", "f5_k3_s1")
    assert "Keras conv1 weights (cross-correlation)" in figure._suptitle.get_text()
    (axes,) = figure.axes  # one mosaic image, not one axes per filter
    (image,) = axes.images
    assert image.get_clim() == (-1, 1)
    drawn = np.ma.filled(image.get_array(), np.nan)
    tiles = mosaic.pairs([k[0, :, :, 0, f] for f in range(5)], [k[-1, :, :, 0, f] for f in range(5)], 5)
    titles = [text.get_text() for text in axes.texts if text.get_text().startswith("#")]
    for index in range(5):
        peak = max(np.abs(k[0, ..., index]).max(), np.abs(k[-1, ..., index]).max())
        top, left = int(tiles.tops[index] + 0.5), int(tiles.left_centres[index] - 1)
        np.testing.assert_allclose(drawn[top : top + 3, left : left + 3], k[0, :, :, 0, index] / peak, rtol=1e-6)
        np.testing.assert_allclose(drawn[top : top + 3, left + 4 : left + 7], k[-1, :, :, 0, index] / peak, rtol=1e-6)
        assert titles[index] == f"#{index}  ±{peak:.2g}"
    assert [text.get_text() for text in axes.texts].count("learned") == 5


def test_mosaic_pairs_lay_out_rows_with_room_for_labels():
    rng = np.random.default_rng(2)
    lefts, rights = [rng.normal(size=(5, 5)) for _ in range(10)], [rng.normal(size=(5, 5)) for _ in range(10)]
    tiles = mosaic.pairs(lefts, rights, columns=4)
    assert len(tiles.tops) == 10 and tiles.tops[4] > tiles.bottoms[0]  # pair 4 starts the second row
    assert tiles.tops[0] >= 1  # a title band above the first row
    np.testing.assert_array_equal(tiles.image[int(tiles.tops[9] + 0.5) :][:5, 13:18], lefts[9])  # row 2, column 1
    assert np.isnan(tiles.image).sum() == tiles.image.size - 20 * 25  # everything else is background
    assert tiles.inches[0] == pytest.approx(4 * mosaic.CELL_INCHES)
    with pytest.raises(ValueError, match="as many left as right"):
        mosaic.pairs(lefts, rights[:3], columns=4)


def test_gif_frames_read_back_what_gif_bytes_wrote():
    frames = animation.evolution_frames(kernels(epochs=3), "RdBu_r")
    back = animation.gif_frames(animation.gif_bytes(frames, 250))
    assert len(back) == 3 and all(b.shape == f.shape and b.dtype == np.uint8 for b, f in zip(back, frames, strict=True))
    # A palette of 256 colours per frame: close to the frame, not necessarily exact.
    assert all(np.abs(b.astype(int) - f).mean() < 2 for b, f in zip(back, frames, strict=True))


def test_evolution_frames_keep_each_filter_on_one_scale():
    k = kernels(epochs=4)
    k[:, :, :, 0, 1] = 0.0  # an all-zero filter must not divide by zero
    frames = animation.evolution_frames(k, "RdBu_r")
    assert len(frames) == 4
    assert all(frame.shape == frames[0].shape and frame.dtype == np.uint8 for frame in frames)
    assert frames[0].shape[2] == 3
    # A filter that does not change between epochs draws the same pixels in every frame.
    k_static = kernels(epochs=2)
    k_static[1] = k_static[0]
    still = animation.evolution_frames(k_static, "RdBu_r")
    tiles = slice(animation.LABEL, -animation.BAR)  # between the epoch line and the colour scale
    np.testing.assert_array_equal(still[0][tiles], still[1][tiles])
    assert not np.array_equal(still[0][: animation.LABEL], still[1][: animation.LABEL])  # "epoch 0" vs "epoch 1"
    # Each weight is a SCALE x SCALE block: at least 24 pixels, so a 3x3 filter is readable.
    assert animation.SCALE >= 24 and frames[0].shape[0] >= 3 * animation.SCALE


def test_gif_has_one_frame_per_epoch_and_the_requested_duration():
    from PIL import Image

    frames = animation.evolution_frames(kernels(epochs=3), "RdBu_r")
    with Image.open(io.BytesIO(animation.gif_bytes(frames, 250))) as gif:
        assert gif.n_frames == 3
        assert gif.info["duration"] == 250


def test_feature_maps_shows_at_most_max_maps_filters():
    rng = np.random.default_rng(1)
    maps = rng.normal(size=(2, 26, 26, filters.MAX_MAPS + 4))
    kernel = rng.normal(size=(3, 3, 1, filters.MAX_MAPS + 4))
    figure = filters.feature_maps(rng.random((2, 28, 28, 1)), np.array([0, 1]), maps, kernel, "RdBu_r", "v")
    assert f"of {filters.MAX_MAPS + 4}" in " ".join(figure._suptitle.get_text().split())
    kernels_row, first_digit_maps = figure.axes[1].images[0].get_array(), figure.axes[3].images[0].get_array()
    # The kernels sit in the same columns as their maps: input, kernel and output together.
    assert kernels_row.shape[1] == first_digit_maps.shape[1] == filters.MAX_MAPS * 27 - 1
    assert [label.get_text() for label in figure.axes[1].get_xticklabels()][:2] == ["#0", "#1"]


def test_conv1_feature_maps_equal_the_keras_layer_output(tiny_prepared):
    # The filters stage skips TensorFlow by recomputing conv1; it must be exactly what Keras computes.
    import keras
    from keras import layers

    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(5, 5, 1, 6)).astype(np.float32)
    bias = rng.normal(size=6).astype(np.float32)
    digits = tiny_prepared.x_test[:4]
    inputs = keras.Input(shape=(28, 28, 1))
    conv1 = layers.Conv2D(6, 5, strides=2, padding="valid", name="conv1")
    model = keras.Model(inputs, conv1(inputs))
    conv1.set_weights([kernel, bias])
    expected = np.asarray(model.predict(digits, verbose=0))
    actual = filters.conv1_feature_maps(digits, kernel, bias, stride=2)
    assert actual.shape == expected.shape == (4, 12, 12, 6)
    np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_gif_frames_number_every_filter_over_its_tile():
    k = kernels(epochs=2, filters=12)
    frame = animation.evolution_frames(k, "RdBu_r")[0]
    row_px = (k.shape[1] + 1) * animation.SCALE
    for row in range(2):  # 12 filters: a row of 8, then 4
        band = frame[animation.LABEL + row * (animation.NUMBER + row_px) :][: animation.NUMBER]
        inked = [
            (band[:, (1 + c * 4) * animation.SCALE : (1 + c * 4 + 3) * animation.SCALE] < 128).any() for c in range(8)
        ]
        assert inked == [True] * (8 if row == 0 else 4) + [False] * (0 if row == 0 else 4)


def test_first_tiles_are_filters_0_to_15_in_order_for_the_slider():
    k = kernels(epochs=2, filters=64)
    frame = animation.evolution_frames(k, "RdBu_r")[1]
    crop = animation.first_tiles(frame, 3, 64)
    cell_w, cell_h = 4 * animation.SCALE, animation.NUMBER + 4 * animation.SCALE
    assert crop.shape == (4 * cell_h + animation.SCALE, 4 * cell_w + animation.SCALE, 3)
    for f in (0, 5, 9, 15):  # filter f sits at (f // 8, f % 8) in the frame and (f // 4, f % 4) in the crop
        r, c = divmod(f, 8)
        source = frame[animation.LABEL + r * cell_h :][:cell_h, c * cell_w :][:, :cell_w]
        out_r, out_c = divmod(f, 4)
        np.testing.assert_array_equal(crop[out_r * cell_h :][:cell_h, out_c * cell_w :][:, :cell_w], source)
    assert max(crop.shape[:2]) <= 2 * 256  # at most halved by the slider's 256-pixel thumbnail
