"""The config schema machinery: typed dataclasses built from plain dicts, with one-line errors.

The leaf of the package's imports (it needs only `worldmodels.core.errors`): every part's schema calls `require`
in its `validate`, and `build` turns a composed YAML section into that schema, rejecting unknown keys and wrong
types with a line that names the key:

    config error: model.width: must be > 0 (got -3)
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from worldmodels.core.errors import UserError


class ConfigError(UserError):
    """A configuration problem, worded as `key: what is wrong`."""


def require(ok: bool, key: str, problem: str) -> None:
    """Raise a one-line ConfigError for `key` unless `ok`."""
    if not ok:
        raise ConfigError(f"{key}: {problem}")


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`, converting ints to floats where a float is expected."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key)
            except ConfigError:
                pass
        raise ConfigError(f"{key}: expected {' or '.join(_type_name(o) for o in options)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return build(value, tp, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        key_type, value_type = typing.get_args(tp) or (str, Any)
        return {_coerce(k, key_type, key): _coerce(v, value_type, f"{key}.{k}") for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_type, *_) = typing.get_args(tp) or (Any,)
        return [_coerce(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
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
    else:
        raise TypeError(f"unsupported annotation {tp!r} for {key}")
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def build(section: dict, schema: type, key: str) -> Any:
    """Build `schema` from a plain dict, rejecting unknown keys and wrong types, then run its `validate`."""
    hints = typing.get_type_hints(schema)
    known = [f.name for f in dataclasses.fields(schema)]
    for name in section:
        if name not in hints:
            raise ConfigError(f"{_join(key, name)}: unknown key (known keys: {', '.join(known)})")
    kwargs = {}
    for f in dataclasses.fields(schema):
        if f.name in section:
            kwargs[f.name] = _coerce(section[f.name], hints[f.name], _join(key, f.name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_join(key, f.name)}: missing (no default)")
    obj = schema(**kwargs)
    if hasattr(obj, "validate"):
        obj.validate(key)
    return obj
