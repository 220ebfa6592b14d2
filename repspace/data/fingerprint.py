"""Fingerprint sets: N images drawn from a dataset, with their factors, in a run's store.

A fingerprint set is the sample of images that every model of an ensemble encodes.
It is drawn without replacement by ``numpy.random.default_rng(seed).choice(len(dataset),
n, replace=False)`` and then sorted by dataset index, so a seed picks a set of images
(the order of images carries no meaning in any of the measures) and files are read in
order. The set is written as the group ``fingerprint`` of the run's zarr (format 3)
store, whose layout (variables, dims, attrs) is documented in :mod:`repspace.store.fingerprint`,
and reads back with ``xr.open_zarr(store, group="fingerprint", consolidated=False)``.
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
from .catalog import load_dataset

from ..store.fingerprint import GROUP, open_fingerprint, same_fingerprint, write_fingerprint

__all__ = [
    "FingerprintConfig",
    "build_fingerprint",
    "make_fingerprint",
    "sample_indices",
    "GROUP",
    "open_fingerprint",
    "same_fingerprint",
    "write_fingerprint",
]

SAMPLING = "numpy.random.default_rng(seed).choice(dataset_length, n, replace=False), sorted"


def sample_indices(length: int, n: int | None, seed: int, *, stream: tuple[int, ...] = ()) -> np.ndarray:
    """Indices of a sample of images: ``n`` distinct rows of ``[0, length)``, sorted.

    Parameters
    ----------
    length : int
        Number of images in the dataset.
    n : int or None
        Size of the sample, 1 <= n <= length; None: every image.
    seed : int
        Seed of the generator, ``numpy.random.default_rng(SeedSequence(seed, spawn_key=stream))``.
    stream : tuple of int
        Spawn key that keeps samples drawn for different purposes apart: () for fingerprint
        sets (the same as ``default_rng(seed)``), (0,) for the images of whole-dataset runs.

    Returns
    -------
    int64 array, shape (n,)

    Examples
    --------
    >>> sample_indices(10, 10, 0).tolist()
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    >>> sample_indices(10, None, 0).tolist() == list(range(10))
    True
    >>> sample_indices(737280, 3, 0).tolist() == sample_indices(737280, 3, 0).tolist()
    True
    >>> sample_indices(1000, 3, 0).tolist() != sample_indices(1000, 3, 0, stream=(0,)).tolist()
    True
    """
    if n is None:
        return np.arange(int(length), dtype=np.int64)
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"sample size n must be a positive integer, got {n!r}")
    if n > length:
        raise ValueError(f"sample size n={n} is larger than the dataset's {length} images")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=tuple(stream)))
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
    ({'image': 5, 'height': 8, 'width': 8, 'color': 1, 'factor': 1}, 'digits', ['label'])
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
            "images": (("image", "height", "width", "color"), images),
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

    def __post_init__(self) -> None:
        for name, low in (("n", 1), ("seed", 0), ("image_size", 1)):
            value = getattr(self, name)
            if value is None and name == "image_size":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer of at least {low}, got {value!r}")


def build_fingerprint(config: FingerprintConfig) -> xr.Dataset:
    """Load the dataset, draw the fingerprint set and write it to ``config.store``.

    The returned set carries the attr ``elapsed_s`` (seconds to make it), which is not
    written.
    """
    start = time.perf_counter()
    dataset = load_dataset(
        config.dataset, data_dir=config.data_dir, image_size=config.image_size, **config.options
    )
    fp = make_fingerprint(dataset, config.n, config.seed)
    if config.store is not None:
        write_fingerprint(config.store, fp)
    fp.attrs["elapsed_s"] = round(time.perf_counter() - start, 3)
    return fp
