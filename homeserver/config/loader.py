"""Turn a YAML mapping into typed config objects, with one-line errors.

Each config section is an attrs class.  Field types drive validation, field
metadata carries the documentation key name, and unknown keys are errors so a
typo never silently falls back to a default.  Two softenings, both for configs
carried over from Synapse: a key Synapse knows at that place is skipped with a
warning, and an unknown key's error names the nearest known one.  Keys left out
of a section keep that section's default values (not the class's), so a partial
``rc_login.address`` keeps the rest of its own defaults.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Literal, TypeVar, Union

import attrs

from homeserver.config.synapse_keys import synapse_keys_at

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


def ignored_warning(where: str) -> str:
    return f"ignored: {where} (Synapse setting, not supported yet)"


def unknown_key_problem(name: str, known: list[str], synapse: frozenset[str], top_level: bool) -> str:
    """The error for a key nobody knows, suggesting the nearest one that exists."""
    nearest = difflib.get_close_matches(name, [*known, *synapse], n=1, cutoff=0.6)
    if nearest:
        return f"unknown key (did you mean {nearest[0]}?)"
    if top_level:
        return "unknown key (config.sample.yaml lists every key)"
    return f"unknown key (known keys here: {', '.join(sorted(known))})"


def _default_of(fld: Any) -> Any:
    if isinstance(fld.default, attrs.Factory):  # type: ignore[arg-type]
        return fld.default.factory()
    return None if fld.default is attrs.NOTHING else fld.default


def build(cls: type[T], data: Any, key: str = "", warnings: list[str] | None = None, base: Any = None) -> T:
    """Validate ``data`` against attrs class ``cls`` and build it.

    Keys Synapse knows here but ``cls`` lacks are skipped, each adding a line to
    ``warnings``; missing keys come from ``base`` when given.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(key, f"expected a mapping, got {type(data).__name__}")
    section: Any = cls  # an attrs class; mypy cannot see that through the TypeVar
    attrs.resolve_types(section)
    fields = {f.name: f for f in attrs.fields(section)}
    synapse = synapse_keys_at(key)
    for name in data:
        if name in fields:
            continue
        where = f"{key}.{name}" if key else str(name)
        if name in synapse:
            if warnings is not None:
                warnings.append(ignored_warning(where))
            continue
        raise ConfigError(where, unknown_key_problem(str(name), list(fields), synapse, not key))
    values = {}
    for name, fld in fields.items():
        where = f"{key}.{name}" if key else name
        if name not in data:
            if base is not None:
                values[name] = getattr(base, name)
            elif fld.default is attrs.NOTHING:
                raise ConfigError(where, "missing; this key is required")
            continue
        value = coerce(fld.type, data[name], where, fld.metadata.get("expected"), warnings,
                       getattr(base, name) if base is not None else _default_of(fld))
        check = fld.metadata.get("check")
        if check is not None and value is not None:
            problem = check(value)
            if problem:
                raise ConfigError(where, problem)
        values[name] = value
    return cls(**values)


def coerce(tp: Any, value: Any, key: str, expected: str | None = None, warnings: list[str] | None = None,
           base: Any = None) -> Any:
    """Check ``value`` against annotation ``tp``; return the normalised value.

    ``base`` is the default a nested section starts from (see ``build``).
    """
    want = expected or describe(tp)
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        present = [option for option in options if option is not type(None)]
        if len(present) == 1:  # an optional value: its own error is the useful one
            return coerce(present[0], value, key, expected, warnings, base)
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(option, value, key, expected, warnings, base)
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
            return [coerce(item_type, item, f"{key}[{i}]", None, warnings) for i, item in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            key_type, value_type = typing.get_args(tp)
            return {coerce(key_type, k, key): coerce(value_type, v, f"{key}.{k}", None, warnings)
                    for k, v in value.items()}
    elif attrs.has(tp):
        return build(tp, value, key, warnings, base if isinstance(base, tp) else None)
    raise ConfigError(key, f"expected {want}, got {value!r}")
