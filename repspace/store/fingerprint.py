"""The ``fingerprint`` group: the N images every model encodes, with their factors.

==========  ===================================  =======  ==============================
variable    dims                                 dtype    meaning
==========  ===================================  =======  ==============================
images      (image, height, width, color)        float32  pixel values in [0, 1]
factors     (image, factor)                      int64    ground-truth factor classes
index       (image,)                             int64    row of the image in the dataset
factor      (factor,) coordinate                 str      factor names
factor_size (factor,) coordinate                 int64    classes per factor
==========  ===================================  =======  ==============================

with attrs ``dataset``, ``seed``, ``n``, ``image_size``, ``dataset_length``, ``options``
(JSON of the loader options that change the images) and ``sampling``; ``complete = True``
once written. :func:`fingerprint_id` names the set; every group computed from it records it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from .core import identity_hash
from .lock import run_lock

__all__ = ["GROUP", "write_fingerprint", "open_fingerprint", "same_fingerprint", "fingerprint_id"]

GROUP = "fingerprint"
IDENTITY_ATTRS = ("dataset", "seed", "n", "image_size", "dataset_length", "options")
_CHUNK_IMAGES = 256


def same_fingerprint(a: xr.Dataset, b: xr.Dataset) -> bool:
    """Whether two fingerprint sets are the same: identity attrs, indices, factors, images."""
    if any(a.attrs.get(k) != b.attrs.get(k) for k in IDENTITY_ATTRS):
        return False
    if a["images"].shape != b["images"].shape or a["factors"].shape != b["factors"].shape:
        return False
    return (
        np.array_equal(a["factor"].values, b["factor"].values)
        and np.array_equal(a["factor_size"].values, b["factor_size"].values)
        and np.array_equal(a["index"].values, b["index"].values)
        and np.array_equal(a["factors"].values, b["factors"].values)
        and np.array_equal(a["images"].values, b["images"].values)
    )


def _describe(fp: xr.Dataset) -> str:
    return ", ".join(f"{k}={fp.attrs.get(k)!r}" for k in ("dataset", "n", "seed", "image_size"))


def _group_state(store_path: Path) -> str:
    """'absent', 'incomplete' or 'complete' for the fingerprint group of a store."""
    try:
        group = zarr.open_group(str(store_path), path=GROUP, mode="r")
    except (FileNotFoundError, ValueError):
        return "absent"
    return "complete" if group.attrs.get("complete") is True else "incomplete"


def write_fingerprint(store_path: str | Path, fp: xr.Dataset) -> None:
    """Write a fingerprint set as group ``fingerprint`` of a zarr format 3 store.

    Idempotent: writing the same set again does nothing. A group left incomplete by an
    interrupted write is replaced.

    Parameters
    ----------
    store_path : path of the run's zarr store (created if absent)
    fp : fingerprint set from :func:`make_fingerprint`

    Raises
    ------
    FileExistsError
        If the store already holds a different fingerprint set.
    """
    with run_lock(store_path, f"write_fingerprint-{os.getpid()}"):
        _write_locked(Path(store_path), fp)


def _write_locked(store_path: Path, fp: xr.Dataset) -> None:
    state = _group_state(store_path)
    if state == "complete":
        existing = open_fingerprint(store_path)
        if same_fingerprint(existing, fp):
            return
        raise FileExistsError(
            f"{store_path} already holds a different fingerprint set ({_describe(existing)}) than "
            f"the one being written ({_describe(fp)}); write to a new store, or delete its "
            f"{GROUP!r} group (and everything computed from it) first"
        )
    clean = fp.copy()
    clean.attrs = {k: v for k, v in fp.attrs.items() if k != "complete"}
    for var in clean.variables.values():
        var.encoding = {}
    n, h, w, c = clean["images"].shape
    encoding = {"images": {"chunks": (min(n, _CHUNK_IMAGES), h, w, c)}}
    clean.to_zarr(
        str(store_path),
        group=GROUP,
        mode="w" if state == "incomplete" else "w-",
        zarr_format=3,
        consolidated=False,
        encoding=encoding,
    )
    zarr.open_group(str(store_path), path=GROUP, mode="r+").attrs["complete"] = True


def open_fingerprint(store_path: str | Path) -> xr.Dataset:
    """Open the fingerprint set of a run's store (lazily, dask-backed).

    Raises
    ------
    FileNotFoundError
        If the store or its ``fingerprint`` group does not exist.
    ValueError
        If the group is incomplete or is not a fingerprint set.
    """
    store_path = Path(store_path)
    if not store_path.exists():
        raise FileNotFoundError(f"no run store at {str(store_path)!r}")
    state = _group_state(store_path)
    if state == "absent":
        raise FileNotFoundError(
            f"{str(store_path)!r} has no {GROUP!r} group (is it a repspace run store?); make one "
            f"with python -m repspace.jobs.fingerprint --store {store_path}"
        )
    if state == "incomplete":
        raise ValueError(
            f"the {GROUP!r} group of {str(store_path)!r} is incomplete (an interrupted write?); "
            f"rerun python -m repspace.jobs.fingerprint"
        )
    fp = xr.open_zarr(str(store_path), group=GROUP, consolidated=False, zarr_format=3)
    missing = {"images", "factors", "index"} - set(fp.data_vars)
    if missing:
        raise ValueError(f"the {GROUP!r} group of {str(store_path)!r} lacks {sorted(missing)}")
    fp.attrs.pop("complete", None)
    return fp


def fingerprint_id(root: zarr.Group) -> str:
    """The identity of a store's fingerprint set: its identifying attrs and dataset indices."""
    fp = root[GROUP]
    return identity_hash({k: fp.attrs.get(k) for k in IDENTITY_ATTRS}, np.asarray(fp["index"][:]))
