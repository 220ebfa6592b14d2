"""Checks shared by the typed configurations of every layer.

Every options class calls :func:`check_types` first in its ``__post_init__``, before it normalises
anything: a value of the wrong shape (a string where a list is expected, a number where a table
is) or a number that is not finite is refused there, naming the key, instead of being coerced
(``"20"`` read as the sizes 2 and 0, ``5`` as seeds it cannot iterate). :func:`check_finite` refuses
NaN and infinite numbers after the class's own checks. Messages start with the key, so that a
loader can tell which key was refused (:func:`refused_key`).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import math
import numbers
import re
import types
import typing
from typing import Any

__all__ = ["check_finite", "check_types", "check_value", "refused_key", "unknown_keys"]

_SIMPLE = (int, float, str, bool, type(None))


def _union_args(hint: Any) -> tuple[Any, ...]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)


def _is_simple(value: Any, a: Any, *, element: bool = False) -> bool:
    """``value`` is of the simple type ``a`` (numpy scalars count inside lists, where arrays may give them)."""
    integral = numbers.Integral if element else int
    real = numbers.Real if element else (int, float)
    if a is type(None):
        return value is None
    if a is bool:
        return isinstance(value, bool)
    if a is int:
        return isinstance(value, integral) and not isinstance(value, bool)
    if a is float:
        return isinstance(value, real) and not isinstance(value, bool)
    return a is str and isinstance(value, str)


def _name(a: Any) -> str:
    if a is type(None):
        return "None"
    if a in _SIMPLE:
        return a.__name__
    origin = typing.get_origin(a)
    if origin is tuple:
        return "a list"
    if dataclasses.is_dataclass(a) or origin in (dict, collections.abc.Mapping) or a in (dict,):
        return "a table"
    return getattr(a, "__name__", str(a))


def _shown(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _nonfinite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isfinite(float(value))


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple, range)) or (
        type(value).__name__ == "ndarray" and getattr(value, "ndim", None) == 1)


def check_value(key: str, value: Any, hint: Any) -> None:
    """Refuse ``value`` unless it has the shape and type of ``hint`` (simple types, unions with None,
    ``tuple[X, ...]``, ``tuple[X, Y]``, ``Mapping[str, X]``, an options dataclass given as a table);
    numbers must be finite. Other hints are left to the class's own checks. ValueError names ``key``."""
    args = _union_args(hint)
    if any(a is typing.Any for a in args):
        return
    if all(a in _SIMPLE for a in args):
        if not any(_is_simple(value, a) for a in args):
            raise ValueError(f"{key} must be {' or '.join(_name(a) for a in args)}, got {_shown(value)}")
        return
    errors = []
    for a in args:  # a union of shapes: the first that fits
        try:
            _check_one(key, value, a)
            return
        except ValueError as err:
            errors.append(str(err))
    raise ValueError(errors[0] if len(errors) == 1 else
                     f"{key} must be {' or '.join(_name(a) for a in args)}, got {_shown(value)}")


def _check_one(key: str, value: Any, a: Any) -> None:
    origin, sub = typing.get_origin(a), typing.get_args(a)
    if a in _SIMPLE:
        check_value(key, value, a)
    elif origin is tuple:
        if not _is_list(value):
            raise ValueError(f"{key} must be a list, got {_shown(value)}")
        items = list(value)
        kinds = [sub[0]] * len(items) if len(sub) == 2 and sub[1] is Ellipsis else list(sub)
        if len(kinds) != len(items):
            raise ValueError(f"{key} must be a list of {len(kinds)} values, got {_shown(value)}")
        for i, (item, kind) in enumerate(zip(items, kinds)):
            simple = _union_args(kind)
            if all(k in _SIMPLE for k in simple) and not any(_is_simple(item, k, element=True) for k in simple):
                raise ValueError(f"{key} must be a list of {' or '.join(map(_plural, simple))}; item {i} is "
                                 f"{_shown(item)}")
            if _nonfinite(item):
                raise ValueError(f"{key} must be a list of finite numbers; item {i} is {item}")
    elif origin in (dict, collections.abc.Mapping) or a is dict:
        if not isinstance(value, collections.abc.Mapping):
            raise ValueError(f"{key} must be a table, got {_shown(value)}")
        if len(sub) == 2:
            for k, v in value.items():
                if not isinstance(k, str):
                    raise ValueError(f"{key} must be a table with string keys; got the key {_shown(k)}")
                check_value(f"{key}.{k}", v, sub[1])
    elif dataclasses.is_dataclass(a) and isinstance(a, type):
        if not isinstance(value, (a, collections.abc.Mapping)):
            raise ValueError(f"{key} must be a table, got {_shown(value)}")


def _plural(kind: Any) -> str:
    return {int: "integers", float: "numbers", str: "strings", bool: "true or false values"}.get(kind, "values")


def check_types(obj: Any, where: str) -> None:
    """Refuse fields whose value is not of the declared type or shape, or not finite, naming the key
    (``where`` + field name): see :func:`check_value`."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        check_value(f"{where}{f.name}", getattr(obj, f.name), hints[f.name])


def check_finite(obj: Any, where: str = "") -> None:
    """Refuse a number field of ``obj`` (and of its sub-tables) that is NaN or infinite, naming the key. Run after
    the class's own checks, so that a refusal it words for a key keeps its words."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check_finite(value, f"{where}{f.name}.")
        elif _nonfinite(value):
            raise ValueError(f"{where}{f.name} must be a finite number, got {value}")


def refused_key(text: str, names: collections.abc.Iterable[str]) -> str | None:
    """The key a check's message refuses (its first word, when one of ``names``), else None."""
    m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", text)
    return m.group(1) if m and m.group(1) in set(names) else None


def unknown_keys(unknown: collections.abc.Iterable[str], known: collections.abc.Iterable[str]) -> str:
    """The refusal of keys a table does not have: them, the closest known key to each where one is close (a
    typo), and the known ones.

    >>> unknown_keys(["n_image", "colour"], ["n_images", "seed"])
    "unknown keys ['colour', 'n_image'] (n_image: did you mean n_images?); known: ['n_images', 'seed']"
    """
    unknown, known = sorted(unknown), sorted(known)
    close = [f"{key}: did you mean {match[0]}?" for key in unknown
             if (match := difflib.get_close_matches(key, known, n=1, cutoff=0.6))]
    return f"unknown keys {unknown}" + (f" ({'; '.join(close)})" if close else "") + f"; known: {known}"
