"""What the filter explorer page computes with: JSON-ready dicts, every array base64 little-endian float32.

Pure: takes a loaded Keras model (typed Any: Keras ships no stubs), the arrays of filters.npz, the variant's
train metrics and filters details, the test split and the bank, and returns plain dicts; it never imports
Keras and reads and writes nothing. Arrays stay float32, the dtype Keras computed with, so the page's
JavaScript forward pass agrees with Keras to float rounding (float16 weights would be off by about 1e-3).
The classic matches are the ones `filterlab.kernels.similarity` stored in the filters details, never
recomputed; only the sign that lines a classic kernel up with its learned filter is added here, since
similarity ignores it.
"""

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from filterlab.config.geometry import IMAGE_SIDE, NUM_CLASSES, VariantSpec
from filterlab.core.errors import DataError, ParamError
from filterlab.kernels import similarity
from filterlab.kernels.bank import Kernel
from filterlab.kernels.convolution import to_keras_weights
from filterlab.training.baselines import STRIDE as BANK_STRIDE

# The page's sample of the test split: enough to find a digit each filter likes, small next to the weights.
DIGITS_PER_CLASS = 10
# Bumped when the page's reading of the payload changes.
FORMAT = 1
COLOURS = 256
ACTIVATIONS = ("linear", "relu", "softmax")


def encode(array: Any) -> dict[str, Any]:
    """An array as {"shape", "data"}: its float32 bytes, little-endian, in C order, base64."""
    values = np.ascontiguousarray(array, dtype="<f4")
    return {"shape": list(values.shape), "data": base64.b64encode(values.tobytes()).decode("ascii")}


def decode(encoded: Mapping[str, Any]) -> np.ndarray:
    """`encode` undone: what the page reads."""
    values = np.frombuffer(base64.b64decode(encoded["data"]), dtype="<f4")
    return values.reshape(encoded["shape"])


def digit_sample(labels: np.ndarray, seed: int, per_class: int = DIGITS_PER_CLASS) -> np.ndarray:
    """Indices of `per_class` test digits of every class (all of a class that has fewer), drawn with `seed`
    class by class; each class's in index order, classes in order."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(NUM_CLASSES):
        members = np.flatnonzero(np.asarray(labels) == label)
        chosen.append(np.sort(rng.choice(members, size=min(per_class, members.size), replace=False)))
    return np.concatenate(chosen).astype(np.int64)


def digits_payload(images: np.ndarray, labels: np.ndarray, indices: np.ndarray) -> dict[str, Any]:
    """The sampled test digits as the model reads them: (n, 28, 28) float32 in [0, 1], with labels and indices."""
    return {
        "indices": [int(i) for i in indices],
        "labels": [int(labels[i]) for i in indices],
        "pixels": encode(np.asarray(images)[indices].reshape(len(indices), IMAGE_SIDE, IMAGE_SIDE)),
    }


def _layer_sources(node: Any) -> list[str]:
    """Names of the layers whose outputs a Keras config node consumes (its `keras_history` entries)."""
    if isinstance(node, list | tuple):
        return [name for item in node for name in _layer_sources(item)]
    if not isinstance(node, dict):
        return []
    if node.get("class_name") == "__keras_tensor__":
        return [str(node["config"]["keras_history"][0])]
    return [name for value in node.values() for name in _layer_sources(value)]


def _check_chain(model: Any, variant: str) -> None:
    """Each layer takes the previous one's output and the last is the model's output: the page runs them in order."""
    config = model.get_config()
    layers = config.get("layers", [])
    names = [layer["name"] for layer in layers]
    for previous, layer in zip(names, layers[1:], strict=False):
        if _layer_sources(layer.get("inbound_nodes", [])) != [previous]:
            raise DataError(
                f"{variant}: layer {layer['name']!r} does not take {previous!r} alone; the explorer runs a chain"
            )
    outputs = config.get("output_layers") or [None]
    if isinstance(outputs[0], list | tuple):  # a list of outputs: one is expected
        outputs = outputs[0] if len(outputs) == 1 else [None]
    if not names or outputs[0] != names[-1]:
        raise DataError(f"{variant}: the model's output is not its last layer; the explorer runs a chain")


def _unsupported(variant: str, name: str, what: str) -> DataError:
    return DataError(f"{variant}: layer {name!r} {what}; the explorer's forward pass does not implement it")


def _pair(value: Any) -> list[int]:
    return [int(v) for v in value] if isinstance(value, list | tuple) else [int(value), int(value)]


def forward_layers(model: Any, variant: str) -> list[dict[str, Any]]:
    """The model's layers in order as the page runs them, each with its final weights.

    Conv2D (valid or same padding, any stride, linear or ReLU), ReLU, MaxPooling2D, Flatten and Dense
    (linear, ReLU or softmax), channels last; Dropout is left out (inference is the identity). Anything
    else is a DataError: the page would compute something other than Keras.
    """
    _check_chain(model, variant)
    out: list[dict[str, Any]] = []
    flat = False  # after Flatten: Dense reads a vector, convolutions and pools an image
    for layer in model.layers:
        kind, name, settings = type(layer).__name__, layer.name, layer.get_config()
        if (kind in ("Conv2D", "MaxPooling2D", "Flatten") and flat) or (kind == "Dense" and not flat):
            raise _unsupported(variant, name, f"is a {kind} on a {'vector' if flat else 'image'}")
        if settings.get("data_format", "channels_last") != "channels_last":
            raise _unsupported(variant, name, "is channels-first")
        activation = settings.get("activation", "linear")
        if activation not in ACTIVATIONS:
            raise _unsupported(variant, name, f"has activation {activation!r}")
        if kind == "InputLayer":
            if tuple(settings["batch_shape"][1:]) != (IMAGE_SIDE, IMAGE_SIDE, 1):
                raise _unsupported(variant, name, f"takes {settings['batch_shape'][1:]}, not 28x28x1")
        elif kind == "Conv2D":
            if _pair(settings["dilation_rate"]) != [1, 1] or settings.get("groups", 1) != 1:
                raise _unsupported(variant, name, "is dilated or grouped")
            if settings["padding"] not in ("valid", "same") or activation == "softmax":
                raise _unsupported(variant, name, f"has padding {settings['padding']!r} or a softmax")
            geometry = {"strides": _pair(settings["strides"]), "padding": settings["padding"]}
            out.append(_weighted(layer, "conv2d", settings) | geometry)
        elif kind == "ReLU":
            if settings.get("max_value") is not None or settings.get("negative_slope") or settings.get("threshold"):
                raise _unsupported(variant, name, "is a capped, leaky or shifted ReLU")
            out.append({"kind": "relu", "name": name})
        elif kind == "MaxPooling2D":
            if settings["padding"] not in ("valid", "same"):
                raise _unsupported(variant, name, f"has padding {settings['padding']!r}")
            out.append(
                {
                    "kind": "maxpool",
                    "name": name,
                    "pool": _pair(settings["pool_size"]),
                    "strides": _pair(settings["strides"] or settings["pool_size"]),
                    "padding": settings["padding"],
                }
            )
        elif kind == "Flatten":
            out.append({"kind": "flatten", "name": name})
            flat = True
        elif kind == "Dense":
            out.append(_weighted(layer, "dense", settings))
        elif kind != "Dropout":
            raise _unsupported(variant, name, f"is a {kind}")
    if not out or out[-1]["kind"] != "dense" or out[-1]["activation"] != "softmax":
        raise DataError(f"{variant}: the model does not end in a softmax Dense layer; the page shows probabilities")
    if out[-1]["bias"]["shape"] != [NUM_CLASSES]:
        raise DataError(f"{variant}: the softmax has {out[-1]['bias']['shape']} units, not {NUM_CLASSES} classes")
    return out


def _weighted(layer: Any, kind: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    weights = layer.get_weights()
    kernel = np.asarray(weights[0])
    bias = np.asarray(weights[1]) if settings.get("use_bias", True) else np.zeros(kernel.shape[-1], np.float32)
    return {
        "kind": kind,
        "name": layer.name,
        "activation": settings.get("activation", "linear"),
        "kernel": encode(kernel),
        "bias": encode(bias),
    }


def conv1_payload(model: Any, arrays: Mapping[str, np.ndarray], variant: VariantSpec) -> dict[str, Any]:
    """conv1 at every snapshot (init, then each epoch) with its stride and padding, checked against model.keras.

    filters.npz keeps conv1's bias only after training. At init it is known when conv1 starts from
    Keras' zeros initialiser (`bias_init`, else None); the epochs in between show the final bias.
    """
    conv1 = model.get_layer("conv1")
    kernel, bias = (np.asarray(w) for w in conv1.get_weights())
    snapshots = np.asarray(arrays["kernels"])
    if model.layers[1] is not conv1:
        raise DataError(f"{variant.name}: conv1 is not the model's first layer")
    if kernel.shape != snapshots.shape[1:] or not np.array_equal(kernel, snapshots[-1]):
        raise DataError(
            f"{variant.name}: model.keras's conv1 kernel is not filters.npz's last snapshot; "
            f"the two files come from different runs: `dvc repro -f {variant.stage_name('train')}`"
        )
    if not np.array_equal(bias, arrays["bias"]):
        raise DataError(
            f"{variant.name}: model.keras's conv1 bias is not filters.npz's `bias`; "
            f"`dvc repro -f {variant.stage_name('train')}`"
        )
    settings = conv1.get_config()
    if _pair(settings["strides"]) != [variant.stride] * 2 or kernel.shape[:2] != (variant.kernel_size,) * 2:
        raise DataError(f"{variant.name}: model.keras's conv1 is {settings['kernel_size']} with {settings['strides']}")
    zeros = settings.get("bias_initializer", {}).get("class_name") == "Zeros"
    return {
        "strides": _pair(settings["strides"]),
        "padding": settings["padding"],
        "epochs": [int(epoch) for epoch in arrays["epochs"]],
        "snapshots": encode(snapshots[..., 0, :]),
        "bias_init": encode(np.zeros_like(bias)) if zeros else None,
        "bias": encode(bias),
    }


def classic_classes(kernel_size: int, bank: Mapping[str, Kernel]) -> list[similarity.KernelClass]:
    """The classes `similarity.compare_filters` compares a kernel_size filter with, in bank order."""
    return similarity.kernel_classes(bank, (kernel_size, kernel_size))


def classic_payload(classes: Sequence[similarity.KernelClass], bank: Mapping[str, Kernel]) -> list[dict[str, Any]]:
    """Each class with its first member as conv1 would hold it (flipped: Keras layout), at its written scale."""
    return [
        {
            "name": kernel_class.name,
            "members": list(kernel_class.members),
            "doc": bank[kernel_class.members[0]].doc,
            "weights": encode(to_keras_weights([bank[kernel_class.members[0]].weights])[:, :, 0, 0]),
        }
        for kernel_class in classes
    ]


def classic_matches(
    details: Mapping[str, Any],
    learned: np.ndarray,
    classes: Sequence[similarity.KernelClass],
    variant: VariantSpec,
) -> dict[str, Any]:
    """Per filter, the nearest class at init and learned with its similarity (from the filters details), the
    chance level, and the sign (+1 or -1) that turns the class's kernel towards the learned filter.

    `learned` is the final conv1 kernel (kh, kw, 1, filters). Classes are referred to by their index in
    `classes`, which must be the ones the details were computed against.
    """
    if not details.get("comparable"):
        return {"comparable": False}
    names = [kernel_class.name for kernel_class in classes]
    rebuild = f"`dvc repro -f {variant.stage_name('filters')}`"
    if details.get("bank_classes") != names:
        raise DataError(
            f"{variant.name}: its filters details compare with {details.get('bank_classes')}, the bank now "
            f"has {names}; {rebuild}"
        )
    per_filter = details.get("per_filter", [])
    if len(per_filter) != learned.shape[-1]:
        raise DataError(
            f"{variant.name}: the filters details list {len(per_filter)} filters, "
            f"conv1 has {learned.shape[-1]}; {rebuild}"
        )
    entries = []
    for index, entry in enumerate(per_filter):
        moments: dict[str, Any] = {}
        for moment in ("init", "learned"):
            name = entry[moment]["kernel"]
            if name is not None and name not in names:
                raise DataError(
                    f"{variant.name}: filter {index}'s nearest class {name!r} is not in the bank; {rebuild}"
                )
            moments[moment] = {
                "class": None if name is None else names.index(name),
                "similarity": entry[moment]["similarity"],
            }
        sign = 1
        if moments["learned"]["class"] is not None:
            unit = classes[moments["learned"]["class"]].unit
            sign = -1 if float(unit @ np.asarray(learned[:, :, 0, index], dtype=np.float64).ravel()) < 0 else 1
        entries.append(moments | {"sign": sign})
    chance = details["chance"]
    return {
        "comparable": True,
        "chance": {key: chance[key] for key in ("mean", "sd", "p95")},
        "per_filter": entries,
    }


def accuracy_payload(metrics: Mapping[str, Any], variant: str) -> dict[str, float]:
    """Test accuracy and its 95 % Wilson interval from the train metrics."""
    missing = [key for key in ("accuracy", "ci95_low", "ci95_high") if not isinstance(metrics.get(key), int | float)]
    if missing:
        raise DataError(f"{variant}: train metrics lack {', '.join(missing)}")
    return {key: float(metrics[key]) for key in ("accuracy", "ci95_low", "ci95_high")}


def variant_payload(
    model: Any,
    arrays: Mapping[str, np.ndarray],
    variant: VariantSpec,
    metrics: Mapping[str, Any],
    details: Mapping[str, Any],
    classes: Sequence[similarity.KernelClass],
) -> dict[str, Any]:
    """Everything the page needs of one variant: its geometry, accuracy, conv1 snapshots, the forward pass's
    layers and the classic matches."""
    return {
        "name": variant.name,
        "filters": variant.filters,
        "kernel_size": variant.kernel_size,
        "stride": variant.stride,
        **accuracy_payload(metrics, variant.name),
        "conv1": conv1_payload(model, arrays, variant),
        "layers": forward_layers(model, variant.name),
        "classic": classic_matches(details, np.asarray(arrays["kernels"])[-1], classes, variant),
    }


def bank_payload(kernels: Sequence[Kernel]) -> dict[str, Any]:
    """The frozen classic bank as the `bank` baseline's conv1 holds it: padded to one size, flipped, stride 1."""
    return {
        "names": [kernel.name for kernel in kernels],
        "docs": [kernel.doc for kernel in kernels],
        "stride": BANK_STRIDE,
        "weights": encode(to_keras_weights(list(kernels))[:, :, 0, :]),
    }


def colormap_colours(name: str, count: int = COLOURS) -> list[str]:
    """`count` colours of the matplotlib colormap `name`, low to high, as #rrggbb."""
    import matplotlib

    try:
        colormap = matplotlib.colormaps[name]
    except KeyError:
        raise ParamError("figures.colormap", f"unknown matplotlib colormap {name!r}") from None
    rgba = np.asarray(colormap(np.linspace(0.0, 1.0, count)))
    return ["#" + "".join(f"{round(float(channel) * 255):02x}" for channel in colour[:3]) for colour in rgba]


def page_payload(
    variants: Sequence[Mapping[str, Any]],
    digits: Mapping[str, Any],
    bank: Mapping[str, Any],
    classic: Mapping[int, Sequence[Mapping[str, Any]]],
    colormap: str,
) -> dict[str, Any]:
    """The page's whole input: variants in grid order, the digits, the bank, classic classes per kernel size."""
    return {
        "format": FORMAT,
        "image_side": IMAGE_SIDE,
        "classes": NUM_CLASSES,
        "colormap": {"name": colormap, "colours": colormap_colours(colormap)},
        "digits": dict(digits),
        "bank": dict(bank),
        "classic": {str(size): list(entries) for size, entries in classic.items()},
        "variants": list(variants),
    }
