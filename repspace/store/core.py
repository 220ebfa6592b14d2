"""The run store's common layer: opening a run, arrays and coordinates, done-markers, provenance.

One run is one zarr (format 3) store on a local disk, a group per stage; every group opens
with ``xr.open_zarr(path, group=..., consolidated=False)``. Arrays are written through zarr
directly, chunk-aligned, by one task per chunk. What a stage finished is recorded in its
group's ``done`` marker: an int64 array with one chunk per block whose value is the block's
*stamp*, a number fixed by what the block covers (its extent); 0 is "not done". A block stays
done while its extent is unchanged, so growing a run recomputes only the blocks that grew.
A group carries ``complete = True`` only once all of its blocks are done. Groups written
whole (``structure``) are replaced by writing a new group beside the old one and swapping
the two folders, so a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from .._version import __version__

__all__ = [
    "StoreError",
    "variables_dataset",
    "FORMAT",
    "FORMAT_VERSION",
    "open_run",
    "open_group",
    "require_array",
    "write_coordinate",
    "write_whole",
    "block_ranges",
    "stamp",
    "require_marker",
    "is_done",
    "mark",
    "set_complete",
    "is_complete",
    "require_complete",
    "record_provenance",
    "replace_group",
    "write_dataset",
    "open_dataset",
    "identity_hash",
    "real_array",
]

def real_array(value: Any, name: str, where: str) -> np.ndarray:
    """``value`` as a float32 array, refused unless it holds real numbers (float, integer): a complex, bool,
    string or object array would lose its imaginary part or be read as numbers it is not. ValueError naming
    ``where``, the array ``name`` and its dtype."""
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise ValueError(f"{where}: {name} has dtype {arr.dtype}; posteriors must be real numbers (float or "
                         "integer), not complex, bool, strings or objects")
    return np.asarray(arr, np.float32)


FORMAT = "repspace-run"
FORMAT_VERSION = 2
MARKER = "done"


class StoreError(ValueError):
    """A store that is not a repspace run, or whose layout disagrees with this run."""


def open_run(path: str | Path, *, create: bool = True) -> zarr.Group:
    """Open (or create) a run store, refusing folders that are not repspace runs."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path} is a file, not a zarr store")
    if not path.exists() and not create:
        raise FileNotFoundError(f"no run store at {path}")
    exists = (path / "zarr.json").exists()
    if path.exists() and any(path.iterdir()) and not exists:
        raise StoreError(f"{path} exists but is not a zarr format 3 store (no zarr.json); choose another path")
    try:
        root = zarr.open_group(str(path), mode="a", zarr_format=3)
    except Exception as err:  # corrupt metadata
        raise StoreError(f"cannot open {path} as a zarr format 3 store: {err}") from err
    fmt = root.attrs.get("format")
    if fmt is None:
        if any(True for _ in root.keys()) and "fingerprint" not in root:
            raise StoreError(f"{path} is a zarr store, but not a repspace run (no 'format' attr)")
        root.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION})
    elif fmt != FORMAT:
        raise StoreError(f"{path} is a zarr store of another kind (format={fmt!r}), not a repspace run")
    elif int(root.attrs.get("format_version", 1)) != FORMAT_VERSION:
        raise StoreError(f"{path} was written with layout version {root.attrs.get('format_version', 1)}; this "
                         f"repspace writes version {FORMAT_VERSION}: use a new run directory")
    return root


def open_group(store_path: str | Path, name: str, *, mode: str = "r") -> zarr.Group:
    """One group of a run store, as a task opens it."""
    return zarr.open_group(str(store_path), path=name, mode=mode, zarr_format=3)


def require_array(
    group: zarr.Group,
    name: str,
    *,
    shape: Sequence[int],
    chunks: Sequence[int],
    dtype: Any,
    dims: Sequence[str],
    fill_value: Any = None,
    attrs: dict[str, Any] | None = None,
) -> zarr.Array:
    """Create ``name`` or check an existing one, growing it to ``shape`` if it is smaller.

    Raises StoreError where an existing array's dims, dtype or chunks differ: that store
    was written by another configuration.
    """
    shape, chunks = tuple(int(s) for s in shape), tuple(int(c) for c in chunks)
    if name in group:
        arr = group[name]
        where = f"{group.path}/{name}"
        old_dims = tuple(arr.metadata.dimension_names or ())
        if old_dims != tuple(dims) or np.dtype(arr.dtype) != np.dtype(dtype) or tuple(arr.chunks) != chunks:
            raise StoreError(
                f"{where}: the store has dims {old_dims}, dtype {arr.dtype}, chunks {tuple(arr.chunks)} but this run "
                f"writes dims {tuple(dims)}, dtype {np.dtype(dtype)}, chunks {chunks}; use a new store"
            )
        if any(s < o for s, o in zip(shape, arr.shape)):
            raise StoreError(f"{where}: the store holds {arr.shape}, more than this run's {shape}")
        if tuple(arr.shape) != shape:
            arr.resize(shape)
        if attrs:
            arr.attrs.update(attrs)
        return arr
    return group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, dimension_names=tuple(dims),
                              fill_value=fill_value, attributes=attrs or {})


def write_coordinate(group: zarr.Group, name: str, dim: str, values: Any, *, attrs: dict | None = None) -> None:
    """Write a whole 1-D coordinate (re-created when its length or dtype changes)."""
    values = np.asarray(values)
    if values.dtype.kind in "OUT":
        values = np.array([str(v) for v in values.tolist()], dtype=str)
        dtype: Any = str
    else:
        dtype = values.dtype
    if name in group:
        arr = group[name]
        stored_str = np.dtype(arr.dtype).kind in "OUT" or "str" in str(arr.dtype).lower()
        if tuple(arr.shape) == values.shape and (dtype is str) == stored_str:
            arr[:] = values
            if attrs:
                arr.attrs.update(attrs)
            return
        del group[name]
    arr = group.create_array(name, shape=values.shape, chunks=(max(1, values.shape[0]),), dtype=dtype,
                             dimension_names=(dim,), attributes=attrs or {})
    arr[:] = values


def write_whole(group: zarr.Group, name: str, values: Any, dims: Sequence[str], attrs: dict[str, Any]) -> None:
    """A derived array written whole in one chunk (re-created on every write)."""
    if name in group:
        del group[name]
    values = np.asarray(values)
    arr = group.create_array(name, shape=values.shape, chunks=tuple(max(1, s) for s in values.shape),
                             dtype=values.dtype, dimension_names=tuple(dims),
                             fill_value=np.nan if values.dtype.kind == "f" else 0, attributes=attrs)
    arr[...] = values


def block_ranges(n: int, block: int) -> list[tuple[int, int]]:
    """[(start, stop)] of consecutive blocks of ``block`` items covering ``n``.

    >>> block_ranges(5, 2)
    [(0, 2), (2, 4), (4, 5)]
    """
    return [(s, min(n, s + block)) for s in range(0, n, block)]


def stamp(extent: Any) -> int:
    """The marker value of a block that covers ``extent`` (any repr-stable value): positive.

    >>> stamp(((0, 2), (4, 6))) == stamp(((0, 2), (4, 6))) != stamp(((0, 2), (4, 7)))
    True
    """
    return 1 + zlib.crc32(repr(extent).encode())


def require_marker(group: zarr.Group, shape: Sequence[int], dims: Sequence[str], name: str = MARKER) -> zarr.Array:
    """A done-marker of a stage's group (``done`` unless named): one int64 chunk per block, 0 = not done."""
    return require_array(group, name, shape=shape, chunks=(1,) * len(shape), dtype="int64", dims=dims, fill_value=0,
                         attrs={"description": "stamp of what the block covered when it was finished; 0 = not done"})


def is_done(marker: zarr.Array, key: tuple[int, ...], value: int) -> bool:
    return int(marker[key]) == value


def mark(marker: zarr.Array, key: tuple[int, ...], value: int) -> None:
    """Record a block as finished; call only after every value of the block is written."""
    marker[key] = value


def set_complete(group: zarr.Group, complete: bool, **attrs: Any) -> None:
    group.attrs.update({"complete": bool(complete), **attrs})


def is_complete(root: zarr.Group, name: str) -> bool:
    return name in root and root[name].attrs.get("complete") is True


def require_complete(root: zarr.Group, name: str, needed_by: str) -> zarr.Group:
    """The group ``name``, which ``needed_by`` reads; a clear error when it is missing or unfinished."""
    if name not in root:
        raise RuntimeError(f"{needed_by!r} needs the {name!r} group, which this store lacks: run the stage "
                           f"that writes it first")
    if not is_complete(root, name):
        raise RuntimeError(f"{needed_by!r} needs the {name!r} group, which is not complete (an interrupted "
                           f"stage?): rerun the stage that writes it")
    return root[name]


def record_provenance(group: zarr.Group, *, config: Mapping[str, Any], run_id: str, elapsed_s: float,
                      **extra: Any) -> None:
    """Config, package version, run id, timing and time of writing, as attrs of a stage's group."""
    group.attrs.update(
        {
            "config": json.dumps(config, sort_keys=True, default=str),
            "repspace_version": __version__,
            "run_id": run_id,
            "elapsed_s": round(float(elapsed_s), 3),
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **extra,
        }
    )


def replace_group(store_path: str | Path, name: str, write: Any) -> zarr.Group:
    """Replace group ``name`` by what ``write(path_of_new_group_name)`` writes, atomically for readers.

    ``write`` gets the name of a fresh group of the store to fill (for example with
    ``Dataset.to_zarr(store, group=that)``); the old group's folder is then swapped for it.
    """
    store_path = Path(store_path)
    token = uuid.uuid4().hex[:8]
    new, old = f"_new_{name}_{token}", f"_old_{name}_{token}"
    try:
        write(new)
        if (store_path / name).exists():
            os.rename(store_path / name, store_path / old)
        os.rename(store_path / new, store_path / name)
    finally:
        shutil.rmtree(store_path / new, ignore_errors=True)
        shutil.rmtree(store_path / old, ignore_errors=True)
    return open_group(store_path, name, mode="r+")


def write_dataset(store_path: str | Path, name: str, ds: Any) -> zarr.Group:
    """Replace group ``name`` by the xarray Dataset ``ds`` (see :func:`replace_group`)."""
    return replace_group(store_path, name, lambda new: ds.to_zarr(
        str(store_path), group=new, mode="w", consolidated=False, zarr_format=3))


def open_dataset(store_path: str | Path, name: str) -> Any:
    """Group ``name`` as a lazy xarray Dataset."""
    import xarray as xr

    return xr.open_zarr(str(store_path), group=name, consolidated=False)


def identity_hash(attrs: Mapping[str, Any], index: np.ndarray) -> str:
    """A short hash of what identifies a set of images: its attrs and dataset indices.

    >>> identity_hash({"dataset": "digits"}, np.arange(3)) == identity_hash({"dataset": "digits"}, np.arange(3))
    True
    """
    h = hashlib.sha256(json.dumps(dict(attrs), sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(index, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def variables_dataset(group: str, variables: Mapping[str, tuple[tuple[str, ...], dict[str, str]]],
                      values: Mapping[str, Any], coords: Mapping[str, Any], attrs: Mapping[str, Any]) -> Any:
    """A group's xarray Dataset from the arrays a stage computed: dims and attrs of each from the group's
    ``variables`` table (its store module's); a name not in it is refused."""
    import xarray as xr

    unknown = sorted(set(values) - set(variables))
    if unknown:
        raise ValueError(f"not variables of the {group} group: {unknown}")
    data = {name: (variables[name][0], np.asarray(v), dict(variables[name][1])) for name, v in values.items()}
    return xr.Dataset(data, coords=dict(coords), attrs=dict(attrs))
