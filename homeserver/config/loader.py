"""Turn a YAML mapping into typed config objects, with one-line errors.

Each config section is an attrs class.  Field types drive validation, field
metadata carries the documentation key name, and unknown keys are errors so a
typo never silently falls back to a default.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, TypeVar, Union

import attrs

T = TypeVar("T")


class ConfigError(Exception):
    """A config problem, rendered as a single line naming the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key
        self.problem = problem


class UnitInt(int):
    """An integer that YAML may also give as a number with a unit suffix."""

    UNITS: dict[str, int] = {}
    EXPECTED = ""

    @classmethod
    def normalise(cls, text: str) -> str:
        return text.strip()

    @classmethod
    def parse(cls, value: Any) -> UnitInt:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            if value < 0:
                raise ValueError
            return cls(value)
        if isinstance(value, str):
            text = cls.normalise(value)
            if text.isdigit():
                return cls(int(text))
            for unit in sorted(cls.UNITS, key=len, reverse=True):
                number = text.removesuffix(unit).strip()
                if text.endswith(unit) and number.isdigit():
                    return cls(int(number) * cls.UNITS[unit])
        raise ValueError


class Duration(UnitInt):
    """Milliseconds; YAML may say 30d, 12h, 5m, 10s, 500ms or a bare number of ms."""

    UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000, "y": 31_536_000_000}
    EXPECTED = "a duration such as 30d, 12h, 5m, 10s, 500ms, or a number of milliseconds"


class ByteSize(UnitInt):
    """Bytes; YAML may say 50M, 512K, 1G or a bare number of bytes."""

    UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3}
    EXPECTED = "a size such as 50M, 512K, 1G, or a number of bytes"

    @classmethod
    def normalise(cls, text: str) -> str:
        return text.strip().upper().removesuffix("B")


def field(default: Any = attrs.NOTHING, *, check: Any = None, expected: str | None = None, factory: Any = None) -> Any:
    """An attrs field with an optional value check and the wording of what is expected."""
    metadata = {"check": check, "expected": expected}
    if factory is not None:
        return attrs.field(factory=factory, metadata=metadata)
    return attrs.field(default=default, metadata=metadata)


def describe(tp: Any) -> str:
    """Human wording for a type, used in error messages."""
    origin = typing.get_origin(tp)
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp in (Duration, ByteSize):
        return tp.EXPECTED
    if origin is Literal:
        return "one of " + ", ".join(repr(v) for v in typing.get_args(tp))
    if origin is list:
        return f"a list of {describe(typing.get_args(tp)[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "a mapping"
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(tp) if a is not type(None))
    if attrs.has(tp):
        return "a mapping"
    return str(tp)


def build(cls: type[T], data: Any, key: str = "") -> T:
    """Validate ``data`` against attrs class ``cls`` and build it."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(key, f"expected a mapping, got {type(data).__name__}")
    attrs.resolve_types(cls)
    fields = {f.name: f for f in attrs.fields(cls)}
    for name in data:
        if name not in fields:
            where = f"{key}.{name}" if key else str(name)
            raise ConfigError(where, f"unknown key (known keys here: {', '.join(sorted(fields))})")
    values = {}
    for name, fld in fields.items():
        where = f"{key}.{name}" if key else name
        if name not in data:
            if fld.default is attrs.NOTHING:
                raise ConfigError(where, "missing; this key is required")
            continue
        value = coerce(fld.type, data[name], where, fld.metadata.get("expected"))
        check = fld.metadata.get("check")
        if check is not None and value is not None:
            problem = check(value)
            if problem:
                raise ConfigError(where, problem)
        values[name] = value
    return cls(**values)


def coerce(tp: Any, value: Any, key: str, expected: str | None = None) -> Any:
    """Check ``value`` against annotation ``tp``; return the normalised value."""
    want = expected or describe(tp)
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(option, value, key, expected)
            except ConfigError:
                continue
        raise ConfigError(key, f"expected {want}, got {value!r}")
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp in (Duration, ByteSize):
        try:
            return tp.parse(value)
        except ValueError:
            pass
    elif origin is Literal:
        if value in typing.get_args(tp):
            return value
    elif origin is list:
        if isinstance(value, list):
            (item_type,) = typing.get_args(tp)
            return [coerce(item_type, item, f"{key}[{i}]") for i, item in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            key_type, value_type = typing.get_args(tp)
            return {coerce(key_type, k, key): coerce(value_type, v, f"{key}.{k}") for k, v in value.items()}
    elif attrs.has(tp):
        return build(tp, value, key)
    raise ConfigError(key, f"expected {want}, got {value!r}")
