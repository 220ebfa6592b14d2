"""Fingerprint sets: N images drawn from a dataset, with their factors, in a run's store.

A fingerprint set is the sample of images that every model of an ensemble encodes.
It is drawn without replacement by ``numpy.random.default_rng(seed).choice(len(dataset),
n, replace=False)`` and then sorted by dataset index, so a seed picks a set of images
(the order of images carries no meaning in any of the measures) and files are read in
order. The set is written as the group ``fingerprint`` of the run's zarr (format 3)
store, and reads back with ``xr.open_zarr(store, group="fingerprint", consolidated=False)``:

==========  ===================================  =======  ==============================
variable    dims                                 dtype    meaning
==========  ===================================  =======  ==============================
images      (image, height, width, channel)      float32  pixel values in [0, 1]
factors     (image, factor)                      int64    ground-truth factor classes
index       (image,)                             int64    row of the image in the dataset
factor      (factor,) coordinate                 str      factor names
factor_size (factor,) coordinate                 int64    classes per factor
==========  ===================================  =======  ==============================

with attrs ``dataset``, ``seed``, ``n``, ``image_size``, ``dataset_length``, ``options``
(JSON of the loader options that change the images) and ``sampling``. A group whose
write finished carries the attr ``complete = True``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .base import Dataset

__all__ = [
    "GROUP",
    "FingerprintConfig",
    "build_fingerprint",
    "make_fingerprint",
    "open_fingerprint",
    "same_fingerprint",
    "sample_indices",
    "write_fingerprint",
]

GROUP = "fingerprint"
SAMPLING = "numpy.random.default_rng(seed).choice(dataset_length, n, replace=False), sorted"
_IDENTITY_ATTRS = ("dataset", "seed", "n", "image_size", "dataset_length", "options")
_CHUNK_IMAGES = 256


def sample_indices(length: int, n: int, seed: int) -> np.ndarray:
    """Indices of a fingerprint set: ``n`` distinct rows of ``[0, length)``, sorted.

    Parameters
    ----------
    length : int
        Number of images in the dataset.
    n : int
        Size of the fingerprint set, 1 <= n <= length.
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    int64 array, shape (n,)

    Examples
    --------
    >>> sample_indices(10, 10, 0).tolist()
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    >>> sample_indices(737280, 3, 0).tolist() == sample_indices(737280, 3, 0).tolist()
    True
    """
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"fingerprint size n must be a positive integer, got {n!r}")
    if n > length:
        raise ValueError(f"fingerprint size n={n} is larger than the dataset's {length} images")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(int(seed))
    return np.sort(rng.choice(int(length), size=int(n), replace=False)).astype(np.int64)


def make_fingerprint(dataset: Dataset, n: int, seed: int) -> xr.Dataset:
    """Draw a fingerprint set of ``n`` images from ``dataset`` with ``seed``.

    Parameters
    ----------
    dataset : Dataset
    n : int
        Number of images, at most ``len(dataset)``.
    seed : int

    Returns
    -------
    xr.Dataset
        ``images`` (image, height, width, channel) float32, ``factors`` (image, factor)
        int64, ``index`` (image,) int64; coordinates ``factor`` and ``factor_size``;
        attrs as in the module docstring.

    Raises
    ------
    ValueError
        If ``n`` is larger than the dataset or not a positive integer.

    Examples
    --------
    >>> from repspace.data import load_dataset
    >>> fp = make_fingerprint(load_dataset("digits"), n=5, seed=1)
    >>> dict(fp.sizes), fp.attrs["dataset"], fp["factor"].values.tolist()
    ({'image': 5, 'height': 8, 'width': 8, 'channel': 1, 'factor': 1}, 'digits', ['label'])
    """
    try:
        index = sample_indices(len(dataset), n, seed)
    except ValueError as err:
        raise ValueError(f"dataset {dataset.name!r}: {err}") from None
    images = dataset.images(index)
    factors = dataset.factors(index)
    height = int(dataset.image_shape[0])
    return xr.Dataset(
        {
            "images": (("image", "height", "width", "channel"), images),
            "factors": (("image", "factor"), factors),
            "index": (("image",), index),
        },
        coords={
            "image": np.arange(index.size, dtype=np.int64),
            "factor": np.array(dataset.factor_names, dtype=object),
            "factor_size": ("factor", np.array(dataset.factor_sizes, dtype=np.int64)),
        },
        attrs={
            "dataset": dataset.name,
            "seed": int(seed),
            "n": int(index.size),
            "image_size": height,
            "dataset_length": len(dataset),
            "options": json.dumps(dataset.options, sort_keys=True, default=str),
            "sampling": SAMPLING,
        },
    )


def same_fingerprint(a: xr.Dataset, b: xr.Dataset) -> bool:
    """Whether two fingerprint sets are the same: identity attrs, indices, factors, images."""
    if any(a.attrs.get(k) != b.attrs.get(k) for k in _IDENTITY_ATTRS):
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
    import zarr

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
    store_path = Path(store_path)
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
    import zarr

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


@dataclass(frozen=True)
class FingerprintConfig:
    """What a fingerprint job makes.

    Attributes
    ----------
    dataset : name for :func:`repspace.data.load_dataset`
    n : number of images
    seed : sampling seed
    store : run store to write into (None: make the set, write nothing)
    data_dir : dataset folder (None: the default)
    image_size : output size (None: the dataset's default)
    options : further loader options
    """

    dataset: str = "dsprites_procedural"
    n: int = 300
    seed: int = 0
    store: Path | None = None
    data_dir: Path | None = None
    image_size: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


def build_fingerprint(config: FingerprintConfig) -> xr.Dataset:
    """Load the dataset, draw the fingerprint set and write it to ``config.store``.

    The returned set carries the attr ``elapsed_s`` (seconds to make it), which is not
    written.
    """
    from . import load_dataset

    start = time.perf_counter()
    dataset = load_dataset(
        config.dataset, data_dir=config.data_dir, image_size=config.image_size, **config.options
    )
    fp = make_fingerprint(dataset, config.n, config.seed)
    if config.store is not None:
        write_fingerprint(config.store, fp)
    fp.attrs["elapsed_s"] = round(time.perf_counter() - start, 3)
    return fp
