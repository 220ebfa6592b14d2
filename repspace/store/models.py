"""The ``models`` group, and the model coordinates every per-model group carries.

``models`` holds one entry per model of the run, in the run's order (models keep their
place; new ones are appended): coordinate ``model`` (the name) with ``dataset``, ``family``,
``hyperparameter``, ``hyperparameter_value``, ``seed``, ``source`` and ``path`` along it.
Groups over models (embeddings, channels, pairs, latents) repeat these coordinates (without
``path``) along their model dims, suffixed ``_a`` / ``_b`` for the two sides of a pair.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import zarr

from .core import set_complete, write_coordinate

__all__ = ["GROUP", "MODEL_COORDS", "write_models", "read_models", "merge_models", "write_model_coords"]

GROUP = "models"
MODEL_COORDS = ("dataset", "family", "hyperparameter", "hyperparameter_value", "seed", "source", "path")
_DEFAULTS = {"dataset": "", "family": "", "hyperparameter": "", "hyperparameter_value": math.nan, "seed": -1,
             "source": "", "path": ""}


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _record(model: Any) -> dict[str, Any]:
    """{"name", *MODEL_COORDS} of a mapping, an object with those attributes, or a bare name."""
    if isinstance(model, str):
        return {"name": model, **_DEFAULTS}
    get = model.get if isinstance(model, Mapping) else (lambda k, d=None: getattr(model, k, d))
    rec = {"name": str(get("name"))}
    for key in MODEL_COORDS:
        rec[key] = get(key, _DEFAULTS[key])
    rec["hyperparameter_value"] = float(rec["hyperparameter_value"])
    rec["seed"] = int(rec["seed"])
    rec["path"] = str(rec["path"])
    return rec


def read_models(group: zarr.Group) -> list[dict[str, Any]]:
    """The model records of a group that carries the model coordinates (empty when none)."""
    if "model" not in group:
        return []
    names = [str(x) for x in group["model"][:]]
    columns = {k: [_plain(v) for v in group[k][:]] for k in MODEL_COORDS if k in group}
    return [{"name": n, **{k: columns[k][i] if k in columns else _DEFAULTS[k] for k in MODEL_COORDS}}
            for i, n in enumerate(names)]


def merge_models(existing: Sequence[Mapping[str, Any]], models: Sequence[Any]) -> list[dict[str, Any]]:
    """``existing`` in place, then the models of ``models`` not among them, in their order."""
    known = {m["name"] for m in existing}
    merged = [dict(m) for m in existing]
    for rec in map(_record, models):
        if rec["name"] not in known:
            merged.append(rec)
            known.add(rec["name"])
    return merged


def write_model_coords(group: zarr.Group, models: Sequence[Mapping[str, Any]], suffixes: Sequence[str] = ("",),
                       *, with_path: bool = False) -> list[str]:
    """Write ``model{sfx}`` and the model coordinates along it for each suffix; returns their names."""
    names = []
    for sfx in suffixes:
        dim = f"model{sfx}"
        write_coordinate(group, dim, dim, [m["name"] for m in models])
        for key in MODEL_COORDS:
            if key == "path" and not with_path:
                continue
            write_coordinate(group, f"{key}{sfx}", dim, np.asarray([m[key] for m in models]))
            names.append(f"{key}{sfx}")
    return names


def write_models(group: zarr.Group, models: Sequence[Any]) -> list[dict[str, Any]]:
    """Record ``models`` (ModelEntry-like objects, mappings or names) in the ``models`` group,
    after the models it already holds; returns the run's model records in order."""
    merged = merge_models(read_models(group), models)
    write_model_coords(group, merged, with_path=True)
    set_complete(group, True, n_models=len(merged))
    return merged
