"""Validated parameters: reads `params.yaml`, returns frozen dataclasses; writes nothing.

Each stage owns one top-level section of params.yaml (plus the shared `seed`) and a
frozen dataclass in `filterlab.config.sections`. Loading checks, before any work is done:
duplicate keys, unknown keys, missing keys, wrong types and out-of-range values, and raises
`ParamError` naming the dotted key and what is allowed.
"""

import dataclasses
import os
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from filterlab.core.errors import ParamError

SEED_MAX = 2**32 - 1


def spec(allowed: str, check: Callable[[Any], bool] | None = None) -> Any:
    """A dataclass field with a range check and the sentence shown when it fails."""
    return dataclasses.field(metadata={"allowed": allowed, "check": check})


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping: DVC refuses such a file, and
    PyYAML alone would silently keep the last value, so stage and DVC would disagree."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                repeated = key in seen
            except TypeError:  # an unhashable key: SafeLoader's own check below names it
                continue
            if repeated:
                raise ParamError.in_file(
                    self.name, f"line {line}: duplicate key {key!r} (first given on line {seen[key]})"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_params(text: str, name: str = "params.yaml") -> Any:
    """YAML text → Python data, duplicate keys refused; a syntax error names its line."""
    loader = _StrictLoader(text)
    loader.name = name
    try:
        return loader.get_single_data()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = " ".join(str(getattr(error, "problem", None) or error.__class__.__name__).split())
        raise ParamError.in_file(name, f"{where}not valid YAML ({problem})") from None
    finally:
        loader.dispose()


def read_params(path: str | os.PathLike[str] = "params.yaml") -> dict[str, Any]:
    """The whole params file as a mapping; any file that is not one is a one-line ParamError."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ParamError.in_file(name, "file not found") from None
    except IsADirectoryError:
        raise ParamError.in_file(name, "is a folder; --params needs the params.yaml file") from None
    except OSError as error:
        raise ParamError.in_file(name, f"cannot be read ({error.strerror or error})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ParamError.in_file(name, f"line {line}: not UTF-8 text (byte 0x{raw[error.start]:02x})") from None
    data = parse_params(text, name)
    if not isinstance(data, dict):
        raise ParamError.in_file(name, "must be a mapping of sections")
    return data


def load_seed(params: Mapping[str, Any]) -> int:
    """The one seed every stage derives its randomness from."""
    if "seed" not in params:
        raise ParamError("seed", f"missing; expected an integer in [0, {SEED_MAX}]")
    seed: int = _convert("seed", params["seed"], int, f"an integer in [0, {SEED_MAX}]", lambda v: 0 <= v <= SEED_MAX)
    return seed


T = typing.TypeVar("T")


def load_section(params: Mapping[str, Any], name: str, cls: type[T]) -> T:
    """Build `cls` from `params[name]`, checking every key; nested dataclasses recurse."""
    if name not in params:
        raise ParamError(name, f"missing section; expected keys: {', '.join(_field_names(cls))}")
    return _build(name, params[name], cls)


def _fields(cls: type) -> tuple[dataclasses.Field[Any], ...]:
    return dataclasses.fields(cls)


def _field_names(cls: type) -> list[str]:
    return [field.name for field in _fields(cls)]


def _build(prefix: str, data: Any, cls: type[T]) -> T:
    names = _field_names(cls)
    if not isinstance(data, dict):
        raise ParamError(prefix, f"must be a mapping with keys: {', '.join(names)}")
    unknown = sorted(set(data) - set(names), key=str)
    if unknown:
        raise ParamError(f"{prefix}.{unknown[0]}", f"unknown key; allowed keys: {', '.join(names)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for field in _fields(cls):
        key = f"{prefix}.{field.name}"
        allowed = field.metadata.get("allowed") or _describe(hints[field.name])
        if field.name not in data:
            raise ParamError(key, f"missing; expected {allowed}")
        values[field.name] = _convert(key, data[field.name], hints[field.name], allowed, field.metadata.get("check"))
    instance = cls(**values)
    validate = getattr(instance, "validate", None)
    if validate is not None:
        validate(prefix)
    return instance


def _convert(key: str, value: Any, hint: Any, allowed: str, check: Callable[[Any], bool] | None) -> Any:
    converted = _coerce(key, value, hint, allowed)
    if check is not None and not check(converted):
        raise ParamError(key, f"{value!r} is out of range; allowed: {allowed}")
    return converted


def _coerce(key: str, value: Any, hint: Any, allowed: str) -> Any:
    origin = typing.get_origin(hint)
    wrong = ParamError(key, f"{value!r} has the wrong type; allowed: {allowed}")
    if dataclasses.is_dataclass(hint):
        return _build(key, value, typing.cast(type, hint))
    if origin is Literal:
        if value not in typing.get_args(hint) or isinstance(value, bool):
            raise ParamError(key, f"{value!r} is not allowed; allowed: {allowed}")
        return value
    if origin is tuple:
        (item_hint, _ellipsis) = typing.get_args(hint)
        if not isinstance(value, list):
            raise wrong
        return tuple(_coerce(f"{key}[{index}]", item, item_hint, allowed) for index, item in enumerate(value))
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(hint):
            if option is type(None) and value is None:
                return None
        options = [option for option in typing.get_args(hint) if option is not type(None)]
        return _coerce(key, value, options[0], allowed)
    if hint is bool:
        if not isinstance(value, bool):
            raise wrong
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise wrong
        return value
    raise TypeError(f"{key}: unsupported parameter type {hint!r}")


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(choice) for choice in typing.get_args(hint))
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(hint)[0])} values"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


NUMERICS = ("avx2", "native")


def load_numerics(params: Mapping[str, Any]) -> str:
    """The CPU numeric path (`filterlab.core.numerics`): 'avx2' reproduces across CPUs, 'native' is fastest."""
    allowed = "'avx2' (the same numbers on every x86-64 CPU with AVX2) or 'native' (this CPU's fastest kernels)"
    if "numerics" not in params:
        raise ParamError("numerics", f"missing; expected {allowed}")
    value = params["numerics"]
    if value not in NUMERICS or isinstance(value, bool):
        raise ParamError("numerics", f"{value!r} is not allowed; allowed: {allowed}")
    return str(value)
