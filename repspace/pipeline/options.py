"""Stage tables: each stage's TOML table parsed into its options class, with errors that name the key.

A stage declares the table it reads and its options class (:class:`repspace.pipeline.stage.Stage`'s
``table`` and ``options``): a frozen dataclass whose fields are the table's keys, with their
defaults and checks. A field whose default is itself such a dataclass is a sub-table
(``[measures.classifier]``, ``[so2.learner]``): the domain's own options class, so that a key and
the option it sets have one name and one default.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from .._checks import check_finite, unknown_keys
from .registry import STAGES

__all__ = ["build", "check_keys", "table_classes", "as_table"]


def table_classes() -> dict[str, type]:
    """Every stage table's options class by table name, in run order (from the stage registry)."""
    tables: dict[str, type] = {}
    for stage in STAGES.values():
        if stage.table is None:
            continue
        known = tables.setdefault(stage.table, stage.options)
        if known is not stage.options:
            raise TypeError(f"stage {stage.name} reads table [{stage.table}] as {stage.options.__name__}, another "
                            f"stage as {known.__name__}: stages that share a table share its class")
    return tables


def check_keys(d: Mapping[str, Any], names: Iterable[str], where: str, extra: Iterable[str] = ()) -> None:
    """Refuse keys of ``d`` that are not in ``names`` (or ``extra``), naming them and the known ones."""
    known = set(names) | set(extra)
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{where}: {unknown_keys(unknown, known)}")


def _sub_table(f: dataclasses.Field) -> type | None:
    """The options class of a sub-table field (one whose default is a dataclass instance), else None."""
    default = f.default if f.default is not dataclasses.MISSING else (
        f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
    return type(default) if dataclasses.is_dataclass(default) and not isinstance(default, type) else None


def _left_out(f: dataclasses.Field) -> tuple[str, ...]:
    """Keys of a sub-table's class that the table does not read (``metadata={"without": (...)}``: the
    circle's fusions take their similarities from ``[so2]``, not ``[so2.fusion]``)."""
    return tuple(f.metadata.get("without", ()))


def build(cls: type, values: Mapping[str, Any], where: str, without: Iterable[str] = ()) -> Any:
    """``cls`` made from the table ``values`` (sub-tables built from nested mappings); an unknown key, a wrong
    type or a refused value is a ValueError that names the table as written: ``[where] key ...``. Keys in
    ``without`` are not the table's: refused as unknown."""
    if not isinstance(values, Mapping):
        raise ValueError(f"[{where}] must be a table of keys, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    check_keys(values, set(fields) - set(without), f"[{where}]")
    kwargs = dict(values)
    for name, value in values.items():
        sub = _sub_table(fields[name])
        if sub is not None and isinstance(value, Mapping):
            kwargs[name] = build(sub, value, f"{where}.{name}", _left_out(fields[name]))
    try:
        options = cls(**kwargs)
        check_finite(options)
        return options
    except (ValueError, TypeError) as err:
        text = str(err)
        raise ValueError(text if text.startswith("[") else f"[{where}] {text}") from None


def as_table(options: Any, without: Iterable[str] = ()) -> dict[str, Any]:
    """An options dataclass as the table it is read from: plain data, sub-tables nested, the keys a table
    does not read (``without``, a sub-table field's ``metadata``) left out; what :func:`build` reads back."""
    out = {}
    for f in dataclasses.fields(options):
        if f.name in without:
            continue
        value = getattr(options, f.name)
        nested = dataclasses.is_dataclass(value) and not isinstance(value, type)
        out[f.name] = as_table(value, _left_out(f)) if nested else copy.deepcopy(value)
    return out
