"""The zarr layout of a run: one zarr (format 3) store, a group per stage.

Every group opens with ``xr.open_zarr(path, group=..., consolidated=False)``. Arrays are
written through zarr directly, chunk-aligned, by one task per chunk; a stage records what
it finished in *block markers*: small int64 arrays with one chunk per block whose value is
the number of models the run had when the block was done (0: not done). A block stays
valid after models are added as long as its own extent did not change, so growing a run
recomputes only new blocks. A stage's group carries ``complete = True`` only once all of
its blocks are done.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

__all__ = [
    "StoreError",
    "open_run",
    "require_group",
    "require_array",
    "write_coordinate",
    "block_ranges",
    "block_done",
    "mark_block",
    "require_marker",
    "set_complete",
    "is_complete",
    "record_provenance",
]

FORMAT = "repspace-run"
FORMAT_VERSION = 1


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
    return root


def require_group(root: zarr.Group, name: str) -> zarr.Group:
    return root.require_group(name)


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
        where = f"{group.store_path}/{name}" if hasattr(group, "store_path") else name
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
        return arr
    arr = group.create_array(
        name,
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        dimension_names=tuple(dims),
        fill_value=fill_value,
        attributes=attrs or {},
    )
    return arr


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
        if tuple(arr.shape) == values.shape and (dtype is str) == (np.dtype(arr.dtype).kind in "OUT" or "str" in str(arr.dtype).lower()):
            arr[:] = values
            if attrs:
                arr.attrs.update(attrs)
            return
        del group[name]
    arr = group.create_array(
        name, shape=values.shape, chunks=(max(1, values.shape[0]),), dtype=dtype, dimension_names=(dim,), attributes=attrs or {}
    )
    arr[:] = values


def block_ranges(n: int, block: int) -> list[tuple[int, int]]:
    """[(start, stop)] of consecutive blocks of ``block`` items covering ``n``."""
    return [(s, min(n, s + block)) for s in range(0, n, block)]


def _extent(b: int, block: int, n: int) -> int:
    return max(0, min(n, (b + 1) * block) - b * block)


def block_done(marker: zarr.Array, index: tuple[int, ...], block: int, n_models: int) -> bool:
    """Whether a block was finished with the extent it has now (``n_models`` in the run)."""
    recorded = int(marker[index])
    if recorded <= 0:
        return False
    return all(_extent(b, block, recorded) == _extent(b, block, n_models) for b in index)


def mark_block(marker: zarr.Array, index: tuple[int, ...], n_models: int) -> None:
    """Record a block as finished; call only after every value of the block is written."""
    marker[index] = n_models


def require_marker(group: zarr.Group, name: str, n_blocks: Sequence[int], dims: Sequence[str]) -> zarr.Array:
    return require_array(
        group, name, shape=n_blocks, chunks=(1,) * len(n_blocks), dtype="int64", dims=dims, fill_value=0,
        attrs={"description": "number of models in the run when the block was finished; 0 = not done"},
    )


def set_complete(group: zarr.Group, complete: bool, **attrs: Any) -> None:
    group.attrs.update({"complete": bool(complete), **attrs})


def is_complete(root: zarr.Group, name: str) -> bool:
    return name in root and root[name].attrs.get("complete") is True


def record_provenance(group: zarr.Group, *, config: dict[str, Any], elapsed_s: float, **extra: Any) -> None:
    """Config, package version, timing and time of writing, as attrs of a stage's group."""
    from . import __version__

    group.attrs.update(
        {
            "config": json.dumps(config, sort_keys=True, default=str),
            "repspace_version": __version__,
            "elapsed_s": round(float(elapsed_s), 3),
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **extra,
        }
    )
