"""Keras model builders (functional API) for the training grid, the baselines and the probes.

Pure: returns models, touches no files. The first layer is always named `conv1`, so
filter snapshots, baselines and figures can find it by name.
"""

import keras
import numpy as np
from keras import layers

from filterlab.config.geometry import IMAGE_SIDE, NUM_CLASSES, POOL

INPUT_SHAPE = (IMAGE_SIDE, IMAGE_SIDE, 1)


def build_model(
    filters: int,
    kernel_size: int | tuple[int, int],
    stride: int,
    *,
    block2_filters: int,
    dropout: float,
    conv1_weights: np.ndarray | None = None,
    name: str = "filterlab_cnn",
) -> keras.Model:
    """conv1 (the varied layer) → ReLU → max-pool → Conv2D 3x3 → max-pool → dropout → softmax.

    With `conv1_weights` (Keras layout: kh, kw, 1, filters, i.e. already flipped for
    cross-correlation) the first layer is fixed to them, bias zero, and frozen: the
    baselines' "hand-designed first layer" model. Otherwise it learns from random init.
    """
    if conv1_weights is not None:
        conv1_weights = np.asarray(conv1_weights, dtype="float32")
        expected = (*_pair(kernel_size), 1, filters)
        if conv1_weights.shape != expected:
            raise ValueError(f"conv1_weights has shape {conv1_weights.shape}, expected {expected}")
    inputs = keras.Input(shape=INPUT_SHAPE, name="image")
    conv1 = layers.Conv2D(filters, kernel_size, strides=stride, padding="valid", name="conv1")
    x = conv1(inputs)
    x = layers.ReLU(name="relu1")(x)
    x = layers.MaxPooling2D(POOL, name="pool1")(x)
    x = layers.Conv2D(block2_filters, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(POOL, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="softmax")(x)
    model = keras.Model(inputs, outputs, name=name)
    if conv1_weights is not None:
        conv1.set_weights([conv1_weights, np.zeros(filters, dtype="float32")])
        conv1.trainable = False
    return model


def build_pixel_model(*, dropout: float, name: str = "pixels_softmax") -> keras.Model:
    """No convolution at all: the same dropout + softmax head straight on the raw pixels."""
    inputs = keras.Input(shape=INPUT_SHAPE, name="image")
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="softmax")(x)
    return keras.Model(inputs, outputs, name=name)


def compile_model(model: keras.Model, learning_rate: float) -> keras.Model:
    """Adam + sparse categorical cross-entropy, with XLA off so runs stay bit-reproducible."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=False,
    )
    return model


def _pair(kernel_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(kernel_size, int):
        return (kernel_size, kernel_size)
    return (kernel_size[0], kernel_size[1])
