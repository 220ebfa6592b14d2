"""Checks shared by the typed configurations of every layer."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

__all__ = ["check_types"]


def check_types(obj: Any, where: str) -> None:
    """Refuse fields whose value is not of the declared type (int, float, str, bool, or None), naming the key."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, hint = getattr(obj, f.name), hints[f.name]
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
            else (hint,)
        simple = [a for a in args if a in (int, float, str, bool, type(None))]
        if len(simple) != len(args):
            continue  # tuples, mappings and nested configs are checked where they are built
        ok = any(
            (a is type(None) and value is None)
            or (a is bool and isinstance(value, bool))
            or (a is int and isinstance(value, int) and not isinstance(value, bool))
            or (a is float and isinstance(value, (int, float)) and not isinstance(value, bool))
            or (a is str and isinstance(value, str))
            for a in simple
        )
        if not ok:
            names = " or ".join("None" if a is type(None) else a.__name__ for a in simple)
            raise ValueError(f"{where}{f.name} must be {names}, got {value!r} ({type(value).__name__})")
