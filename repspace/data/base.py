"""The dataset interface shared by every loader, and the helpers they use.

A :class:`Dataset` is a finite, indexed collection of images with integer ground-truth
factor classes. Images come back as float32 arrays of shape (n, height, width, channel)
with values in [0, 1]; factors as int64 arrays of shape (n, factor). Loaders read
lazily by index wherever the dataset is large.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Dataset",
    "ArrayDataset",
    "IndexedFactorsDataset",
    "as_indices",
    "default_data_dir",
    "grid_index",
    "grid_factors",
    "resize_images",
    "missing_file_error",
]

DATA_README = "data/README.md"
"""Where the project tells users how to obtain each dataset's files."""


def default_data_dir() -> Path:
    """The data folder used when a loader is given none.

    ``$REPSPACE_DATA_DIR`` if set, else ``data`` relative to the working directory.
    """
    return Path(os.environ.get("REPSPACE_DATA_DIR", "data"))


def missing_file_error(path: Path | str, what: str, where: str) -> FileNotFoundError:
    """A FileNotFoundError that names the file expected and how to obtain it."""
    return FileNotFoundError(
        f"{what}: expected file {str(path)!r} was not found. {where} "
        f"See {DATA_README} for where each dataset's files go."
    )


def as_indices(indices: Any, length: int) -> np.ndarray:
    """Validate dataset indices and return them as a 1-D int64 array.

    Parameters
    ----------
    indices : int or array-like of int, shape (n,)
        Indices into a dataset of ``length`` images. A scalar is read as one index.
    length : int
        Number of images in the dataset.

    Raises
    ------
    IndexError
        If an index lies outside ``[0, length)``.
    TypeError
        If the indices are not integers.
    """
    arr = np.atleast_1d(np.asarray(indices))
    if arr.ndim != 1:
        raise ValueError(f"indices must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"indices must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    lo, hi = int(arr.min()), int(arr.max())
    if lo < 0 or hi >= length:
        bad = lo if lo < 0 else hi
        raise IndexError(f"index {bad} is out of range for a dataset of {length} images")
    return arr


def grid_factors(indices: np.ndarray, factor_sizes: Sequence[int]) -> np.ndarray:
    """Factor classes of rows of a full factor grid in row-major (C) order.

    Row ``r`` of a grid with sizes ``(s_0, ..., s_k)`` has classes ``(c_0, ..., c_k)`` with
    ``r = sum_j c_j * prod_{l > j} s_l``, as in the dSprites npz.

    Parameters
    ----------
    indices : int64 array, shape (n,)
    factor_sizes : sequence of int, length k

    Returns
    -------
    int64 array, shape (n, k)

    Examples
    --------
    >>> grid_factors(np.array([0, 1, 245760]), (3, 6, 40, 32, 32)).tolist()
    [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [1, 0, 0, 0, 0]]
    """
    idx = np.asarray(indices, dtype=np.int64)
    return np.stack(np.unravel_index(idx, tuple(factor_sizes)), axis=-1).astype(np.int64)


def grid_index(factors: np.ndarray, factor_sizes: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`grid_factors`: rows of a row-major factor grid, shape (n,)."""
    f = np.asarray(factors, dtype=np.int64)
    return np.ravel_multi_index(tuple(f.T), tuple(factor_sizes)).astype(np.int64)


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize a batch of images to ``size`` x ``size``.

    When the height and width are integer multiples of ``size`` the images are
    area-averaged over blocks (exact, and a 64 -> 32 binary image keeps values in
    {0, 1/4, 1/2, 3/4, 1}); otherwise each channel is resampled with Pillow's LANCZOS
    filter in float mode and clipped to [0, 1].

    Parameters
    ----------
    images : float array, shape (n, height, width, channel), values in [0, 1]
    size : int
        Target height and width.

    Returns
    -------
    float32 array, shape (n, size, size, channel)

    Examples
    --------
    >>> x = np.zeros((1, 4, 4, 1), np.float32); x[0, :2, :2] = 1
    >>> resize_images(x, 2)[0, :, :, 0].tolist()
    [[1.0, 0.0], [0.0, 0.0]]
    """
    x = np.asarray(images, dtype=np.float32)
    n, h, w, c = x.shape
    if size <= 0:
        raise ValueError(f"image_size must be positive, got {size}")
    if (h, w) == (size, size):
        return x
    if h % size == 0 and w % size == 0:
        fh, fw = h // size, w // size
        return x.reshape(n, size, fh, size, fw, c).mean(axis=(2, 4), dtype=np.float32)
    from PIL import Image

    out = np.empty((n, size, size, c), dtype=np.float32)
    for i in range(n):
        for k in range(c):
            im = Image.fromarray(np.ascontiguousarray(x[i, :, :, k]), mode="F")
            out[i, :, :, k] = np.asarray(im.resize((size, size), Image.Resampling.LANCZOS))
    return np.clip(out, 0.0, 1.0, out=out)


def lanczos_uint8(image: np.ndarray, size: int) -> np.ndarray:
    """Resize one uint8 image (height, width[, channel]) to size x size with LANCZOS.

    This is how disentanglement_lib brings smallNORB (96 -> 64) and Cars3D (128 -> 64)
    to 64 x 64, so the resulting pixels match what its models were trained on.
    """
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(image))
    return np.asarray(im.resize((size, size), Image.Resampling.LANCZOS))


class Dataset:
    """A finite, indexed image dataset with integer ground-truth factors.

    Subclasses set :attr:`name`, :attr:`factor_names`, :attr:`factor_sizes`,
    :attr:`image_shape` and implement :meth:`_images` and :meth:`_factors`, which receive
    validated int64 indices.

    Attributes
    ----------
    name : str
        The dataset's registry name, as given to :func:`repspace.data.load_dataset`.
    factor_names : tuple of str, length k
    factor_sizes : tuple of int, length k
        Number of classes of each factor; factor ``j`` takes values in
        ``[0, factor_sizes[j])``.
    image_shape : tuple of int
        ``(height, width, channel)`` of the images returned by :meth:`images`.
    options : dict
        Loader options that change the images (recorded with fingerprints).
    """

    name: str
    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    image_shape: tuple[int, int, int]
    options: dict[str, Any]

    def __len__(self) -> int:
        raise NotImplementedError

    def images(self, indices: Any) -> np.ndarray:
        """Images at ``indices``: float32, shape (n, height, width, channel), in [0, 1]."""
        idx = as_indices(indices, len(self))
        out = np.asarray(self._images(idx), dtype=np.float32)
        expected = (idx.size, *self.image_shape)
        if out.shape != expected:  # pragma: no cover - guards subclass bugs
            raise AssertionError(f"{self.name}: images shape {out.shape}, expected {expected}")
        return out

    def factors(self, indices: Any) -> np.ndarray:
        """Factor classes at ``indices``: int64, shape (n, k), columns as :attr:`factor_names`."""
        idx = as_indices(indices, len(self))
        return np.asarray(self._factors(idx), dtype=np.int64).reshape(idx.size, len(self.factor_names))

    def _images(self, indices: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _factors(self, indices: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        factors = ", ".join(f"{n}={s}" for n, s in zip(self.factor_names, self.factor_sizes))
        return f"<{type(self).__name__} {self.name!r}: {len(self)} images {self.image_shape}, factors {factors}>"


class ArrayDataset(Dataset):
    """A dataset held in memory as arrays.

    Parameters
    ----------
    name : str
    images : uint8 or float array, shape (n, height, width, channel)
        uint8 images are divided by ``scale`` (255 by default); floats are taken as is.
    factors : int array, shape (n, k)
    factor_names, factor_sizes : sequences of length k
    image_size : int, optional
        Resize to ``image_size`` x ``image_size`` on the way out.
    scale : float
        Divisor that maps stored pixel values to [0, 1].
    """

    def __init__(
        self,
        name: str,
        images: np.ndarray,
        factors: np.ndarray,
        factor_names: Sequence[str],
        factor_sizes: Sequence[int],
        *,
        image_size: int | None = None,
        scale: float = 255.0,
        options: dict[str, Any] | None = None,
    ) -> None:
        if images.ndim != 4:
            raise ValueError(f"{name}: images must be (n, height, width, channel), got {images.shape}")
        if factors.shape != (images.shape[0], len(factor_names)):
            raise ValueError(
                f"{name}: factors shape {factors.shape} does not match "
                f"{images.shape[0]} images and factors {tuple(factor_names)}"
            )
        self.name = name
        self._data = images
        self._factor_array = np.asarray(factors, dtype=np.int64)
        self._scale = float(scale)
        self._size = image_size
        self.factor_names = tuple(factor_names)
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        h, w, c = images.shape[1:]
        self.image_shape = (image_size, image_size, c) if image_size else (h, w, c)
        self.options = dict(options or {})

    def __len__(self) -> int:
        return int(self._data.shape[0])

    def _images(self, indices: np.ndarray) -> np.ndarray:
        x = self._data[indices]
        x = x.astype(np.float32) / np.float32(self._scale) if x.dtype == np.uint8 else x.astype(np.float32)
        return resize_images(x, self._size) if self._size else x

    def _factors(self, indices: np.ndarray) -> np.ndarray:
        return self._factor_array[indices]


class IndexedFactorsDataset(Dataset):
    """Base for datasets laid out as a full row-major factor grid (factors from the index)."""

    def __len__(self) -> int:
        return int(np.prod(self.factor_sizes))

    def _factors(self, indices: np.ndarray) -> np.ndarray:
        return grid_factors(indices, self.factor_sizes)
