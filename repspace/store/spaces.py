"""The ``spaces`` group: the representation spaces a measure comparison compares (written whole).

=============  =====================  ==================================================
variable       dims                   meaning
=============  =====================  ==================================================
mu             (space, item, dim)     posterior means; NaN beyond a space's ``n_dims``
logvar         (space, item, dim)     posterior log-variances, likewise
n_dims         (space,)               the dimension of each space
description    (space,)               what the space is
=============  =====================  ==================================================

Coordinates ``space`` (names), ``item`` (0..N-1) and, for spaces read from a run's
fingerprint posteriors, ``dataset_index`` along ``item``. attrs: ``source`` ("synthetic",
"latents" or "channels"), ``spaces_id`` (a hash of every value: what the ``measures`` group's
blocks are stamped with), ``left_out`` (spaces over ``max_spaces``, by name).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GROUP", "SOURCES", "spaces_dataset", "read_spaces"]

GROUP = "spaces"
SOURCES = ("synthetic", "latents", "channels")


def spaces_dataset(names: Sequence[str], descriptions: Sequence[str], mus: Sequence[np.ndarray],
                   logvars: Sequence[np.ndarray], *, source: str, item_index: np.ndarray | None = None,
                   attrs: dict[str, Any] | None = None) -> Any:
    """The group's Dataset from spaces given as (item, dim) arrays of one item count."""
    import xarray as xr

    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if len(set(names)) != len(names):
        raise ValueError("the spaces' names must be distinct")
    n = {np.shape(m)[0] for m in mus}
    if len(n) != 1:
        raise ValueError(f"the spaces must share their items; they have {sorted(n)}")
    dims = [int(np.shape(m)[1]) for m in mus]
    shape = (len(mus), n.pop(), max(dims))
    mu, lv = np.full(shape, np.nan), np.full(shape, np.nan)
    for k, (m, v) in enumerate(zip(mus, logvars)):
        mu[k, :, : dims[k]], lv[k, :, : dims[k]] = m, v
    h = hashlib.sha256(json.dumps([list(map(str, names)), dims, source]).encode())
    h.update(np.ascontiguousarray(mu).tobytes())
    h.update(np.ascontiguousarray(lv).tobytes())
    coords: dict[str, Any] = {"space": np.array([str(x) for x in names], dtype=object), "item": np.arange(shape[1]),
                              "dim": np.arange(shape[2])}
    if item_index is not None:
        coords["dataset_index"] = ("item", np.asarray(item_index, np.int64))
    return xr.Dataset(
        {"mu": (("space", "item", "dim"), mu, {"long_name": "posterior mean"}),
         "logvar": (("space", "item", "dim"), lv, {"long_name": "posterior log-variance"}),
         "n_dims": ("space", np.array(dims, np.int64)),
         "description": ("space", np.array([str(d) for d in descriptions], dtype=object))},
        coords=coords, attrs={"source": source, "spaces_id": h.hexdigest()[:16], **(attrs or {})})


def read_spaces(store_path: str | Path) -> tuple[list[str], list[np.ndarray], list[np.ndarray], dict[str, Any]]:
    """The stored spaces: names, mu and logvar (item, dim) float64 each, and the group's attrs."""
    from .core import open_group

    g = open_group(store_path, GROUP)
    names = [str(x) for x in np.asarray(g["space"][:]).tolist()]
    mu, lv, dims = np.asarray(g["mu"][:]), np.asarray(g["logvar"][:]), np.asarray(g["n_dims"][:])
    return (names, [np.ascontiguousarray(mu[k, :, :d]) for k, d in enumerate(dims)],
            [np.ascontiguousarray(lv[k, :, :d]) for k, d in enumerate(dims)], dict(g.attrs))
