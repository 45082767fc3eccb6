"""Tests for filterlab.training.models: shapes across the grid, the frozen hand-designed layer, save and safe load."""

import numpy as np
import pytest

from filterlab.config.sections import final_side


@pytest.mark.parametrize(("filters", "kernel_size", "stride"), [(8, 3, 1), (64, 7, 2), (1, 1, 1), (2, 13, 1)])
def test_build_model_shapes_follow_the_grid(filters, kernel_size, stride):
    from filterlab.training import models

    model = models.build_model(filters, kernel_size, stride, block2_filters=6, dropout=0.3)
    conv1 = model.get_layer("conv1")
    assert tuple(conv1.kernel.shape) == (kernel_size, kernel_size, 1, filters)
    assert conv1.strides == (stride, stride) and conv1.trainable
    side = final_side(kernel_size, stride)
    assert model.get_layer("flatten").output.shape[1] == side * side * 6
    assert model.output_shape == (None, 10)


def test_hand_designed_first_layer_is_fixed_and_frozen():
    from filterlab.training import models

    weights = np.arange(2 * 3 * 3, dtype=np.float32).reshape(3, 3, 1, 2)
    model = models.build_model(2, 3, 1, block2_filters=4, dropout=0.0, conv1_weights=weights)
    conv1 = model.get_layer("conv1")
    kernel, bias = conv1.get_weights()
    assert np.array_equal(kernel, weights) and np.array_equal(bias, np.zeros(2, np.float32))
    assert not conv1.trainable
    assert all("conv1" not in weight.path for weight in model.trainable_weights)


def test_wrong_conv1_weights_shape_is_a_value_error():
    from filterlab.training import models

    with pytest.raises(ValueError, match="expected \\(3, 3, 1, 2\\)"):
        models.build_model(2, 3, 1, block2_filters=4, dropout=0.0, conv1_weights=np.zeros((3, 3, 2)))


def test_pixel_model_has_no_convolution():
    from filterlab.training import models

    model = models.build_pixel_model(dropout=0.1)
    assert model.count_params() == 28 * 28 * 10 + 10
    assert not any(layer.name.startswith("conv") for layer in model.layers)


def test_saved_model_loads_in_safe_mode_with_same_predictions(tmp_path, tiny_prepared):
    import keras

    from filterlab.core import determinism
    from filterlab.training import models

    determinism.configure(7, 2)
    model = models.compile_model(models.build_model(4, 3, 2, block2_filters=4, dropout=0.2), 0.01)
    model.fit(tiny_prepared.x_train[:64], tiny_prepared.y_train[:64], epochs=1, batch_size=32, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    images = tiny_prepared.x_test[:16]
    assert np.array_equal(model.predict(images, verbose=0), loaded.predict(images, verbose=0))
    assert loaded.get_layer("conv1").strides == (2, 2)
    assert loaded.optimizer.learning_rate.numpy() == pytest.approx(0.01)
