"""Row sources: the rows of units' BC matrices, generated block by block.

A *row source* gives, for fingerprint rows r0:r1, the rows of every unit's BC matrix,
(rows, unit, image), from posteriors, ground-truth labels or explicit BC matrices; the all-pairs
computation (:mod:`repspace.kernels.information`) asks for them one row block at a time, so memory
stays bounded for any number of units.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

import numpy as np

from . import fused
from ._array import check_posteriors, contiguous, float_dtype, namespace
from .bhattacharyya import bc_factor, scaled_posteriors

__all__ = [
    "RowSource", "PosteriorRows", "LabelRows", "MatrixRows", "label_coefficients", "rows_and_sums",
    "grouped_rows_and_sums", "reordered",
]


class RowSource(Protocol):
    """Anything that yields rows of the BC matrices of a stack of units."""

    n_units: int
    n_images: int
    xp: Any
    dtype: Any

    def rows(self, start: int, stop: int) -> Any:
        """BC rows ``start:stop`` of every unit: array (stop - start, n_units, n_images)."""
        ...


def rows_and_sums(src: Any, start: int, stop: int, dtype: Any, buffers: Any = None) -> tuple[Any, Any, Any]:
    """Rows ``start:stop`` of ``src`` in ``dtype`` with each row's sum and sum of squares, (rows, unit).

    Sources with a fused kernel (:class:`PosteriorRows` on the CPU) make all three in one pass,
    into ``buffers`` (:func:`repspace.kernels.fused.scratch`) when given.
    """
    fast = getattr(src, "rows_and_sums", None)
    if fast is not None and src.dtype == dtype:
        found = fast(start, stop, buffers)
        if found is not None:
            return found
    xp = src.xp
    x = xp.astype(src.rows(start, stop), dtype, copy=False)
    return x, xp.sum(x, axis=-1), xp.vecdot(x, x, axis=-1)


def grouped_rows_and_sums(src: Any, start: int, stop: int, dtype: Any, bounds: Any, buffers: Any = None
                          ) -> tuple[Any, Any, Any]:
    """Rows ``start:stop`` of ``src`` in ``dtype`` with each row's sum and sum of squares over every group of
    images, (group, rows, unit); group g holds images ``bounds[g]:bounds[g + 1]`` (int sequence, 0 to N).

    Sources with a fused kernel make all three in one pass, as in :func:`rows_and_sums`.
    """
    fast = getattr(src, "grouped_rows_and_sums", None)
    if fast is not None and src.dtype == dtype:
        found = fast(start, stop, bounds, buffers)
        if found is not None:
            return found
    xp = src.xp
    x = xp.astype(src.rows(start, stop), dtype, copy=False)
    pieces = [x[:, :, int(c0):int(c1)] for c0, c1 in zip(bounds[:-1], bounds[1:])]
    return (x, xp.stack([xp.sum(p, axis=-1) for p in pieces], axis=0),
            xp.stack([xp.vecdot(p, p, axis=-1) for p in pieces], axis=0))


def reordered(src: Any, order: Any) -> Any:
    """The same units over the images in ``order`` (int array, image,): image k of the result is image
    ``order[k]`` of ``src``, in both the rows and the columns of every BC matrix.

    Sources with a ``reordered`` method permute what they are built from; any other source is wrapped,
    and its rows are then fetched one image at a time.
    """
    own = getattr(src, "reordered", None)
    return own(order) if own is not None else _ReorderedRows(src, order)


class _ReorderedRows:
    """Any row source over permuted images (a row at a time from the source, then its columns gathered)."""

    def __init__(self, src: Any, order: Any) -> None:
        self._src, self.xp, self.dtype = src, src.xp, src.dtype
        self.n_units, self.n_images = src.n_units, src.n_images
        self._order = [int(i) for i in order]
        self._columns = self.xp.asarray(self._order)

    def rows(self, start: int, stop: int) -> Any:
        xp = self.xp
        picked = xp.concat([self._src.rows(i, i + 1) for i in self._order[start:stop]], axis=0)
        return xp.take(picked, self._columns, axis=2)


class PosteriorRows:
    """BC rows generated from diagonal-Gaussian posteriors.

    Every BC_ii is 1 (``unit_diagonal``), so every sum over a row is at least 1.

    Parameters
    ----------
    mu, logvar : array, shape (unit, image) or (unit, image, dim)
    chunk_elements : elements per elementwise pass of the array-module path (-1: 64k on the CPU).
    fused_kernel : generate numpy rows with :mod:`repspace.kernels.fused` (None: when numba is
        there; False: the array-module path, as on cupy).
    """

    unit_diagonal = True

    def __init__(self, mu: Any, logvar: Any, *, chunk_elements: int | None = -1, fused_kernel: bool | None = None) -> None:
        xp = namespace(mu, logvar)
        if mu.ndim == 2:
            mu, logvar = mu[..., None], logvar[..., None]
        if mu.ndim != 3:
            raise ValueError(f"posteriors need shape (unit, image) or (unit, image, dim), got {tuple(mu.shape)}")
        check_posteriors(mu, logvar, unit_axis=0, image_axis=1)
        self.xp, self.dtype = xp, float_dtype(xp, mu, logvar)
        self.n_units, self.n_images = int(mu.shape[0]), int(mu.shape[1])
        # on the CPU, blocks of about 64k elements keep every elementwise pass in cache;
        # other modules (a GPU) get the whole block at once
        if chunk_elements == -1:
            chunk_elements = 65536 if xp is np else None
        self.chunk_elements = chunk_elements
        mu, logvar = xp.astype(mu, self.dtype, copy=False), xp.astype(logvar, self.dtype, copy=False)
        shift = xp.max(logvar, axis=1, keepdims=True)  # (unit, 1, d)
        m, v, q = scaled_posteriors(xp, mu, logvar, shift)
        # numpy with numba: one fused pass per row block (kernels.fused) over (dim, unit, image) pieces
        self._fused = None
        if fused_kernel and not (xp is np and fused.available()):
            raise ValueError("fused_kernel=True needs numpy arrays and numba")
        if fused_kernel is not False and xp is np and fused.available() and self.dtype in (np.float32, np.float64):
            self._fused = tuple(np.ascontiguousarray(np.moveaxis(p, 2, 0)) for p in (m, v, q))
            return
        # per dimension: (unit, image) for the columns, (image, unit, 1) for the rows
        self._cols = [tuple(contiguous(xp, p[:, :, k]) for p in (m, v, q)) for k in range(mu.shape[2])]
        self._rows = [
            tuple(contiguous(xp, xp.permute_dims(p[:, :, k], (1, 0)))[:, :, None] for p in (m, v, q))
            for k in range(mu.shape[2])
        ]

    def _block(self, r0: int, r1: int, u0: int, u1: int) -> Any:
        bc = None
        for (m_r, v_r, q_r), (m_c, v_c, q_c) in zip(self._rows, self._cols):
            rows = (slice(r0, r1), slice(u0, u1), slice(None))
            cols = (slice(u0, u1), slice(None))
            factor = bc_factor(self.xp, m_r[rows], v_r[rows], q_r[rows], m_c[cols], v_c[cols], q_c[cols])
            bc = factor if bc is None else bc * factor
        return bc

    def rows_and_sums(self, start: int, stop: int, buffers: Any = None) -> tuple[Any, Any, Any] | None:
        """Rows start:stop with their sums and sums of squares from the fused kernel (None without it)."""
        if self._fused is None:
            return None
        return fused.bc_rows(*self._fused, start, stop, buffers)

    def grouped_rows_and_sums(self, start: int, stop: int, bounds: Any, buffers: Any = None
                              ) -> tuple[Any, Any, Any] | None:
        """Rows start:stop with their sums over each group of images from the fused kernel (None without it)."""
        if self._fused is None:
            return None
        return fused.bc_rows_grouped(*self._fused, start, stop, np.asarray(bounds, dtype=np.int64), buffers)

    def reordered(self, order: Any) -> PosteriorRows:
        """The same units over the images in ``order`` (see :func:`reordered`)."""
        xp, new = self.xp, copy.copy(self)
        if self._fused is not None:
            idx = np.asarray(order, dtype=np.intp)
            new._fused = tuple(np.ascontiguousarray(p[:, :, idx]) for p in self._fused)
            return new
        idx = xp.asarray(np.asarray(order, dtype=np.int64))
        new._cols = [tuple(contiguous(xp, xp.take(p, idx, axis=1)) for p in cols) for cols in self._cols]
        new._rows = [tuple(contiguous(xp, xp.take(p, idx, axis=0)) for p in rows) for rows in self._rows]
        return new

    def rows(self, start: int, stop: int) -> Any:
        # values may exceed 1 by a rounding error on the diagonal; harmless here
        if self._fused is not None:
            return fused.bc_rows(*self._fused, start, stop)[0]
        if self.chunk_elements is None or (stop - start) * self.n_units * self.n_images <= self.chunk_elements:
            return self._block(start, stop, 0, self.n_units)
        xp = self.xp
        out = xp.empty((stop - start, self.n_units, self.n_images), dtype=self.dtype)
        step = max(1, self.chunk_elements // self.n_images)
        for i in range(start, stop):
            for u0 in range(0, self.n_units, step):
                u1 = min(self.n_units, u0 + step)
                out[i - start : i - start + 1, u0:u1, :] = self._block(i, i + 1, u0, u1)
        return out


class LabelRows:
    """Ground-truth factors as units: BC_ij = 1 where f_i = f_j, else 0.

    Parameters
    ----------
    labels : integer array, shape (image, factor)
    dtype : the float dtype of the generated rows
    """

    unit_diagonal = True

    def __init__(self, labels: Any, dtype: Any = None) -> None:
        xp = namespace(labels)
        if labels.ndim == 1:
            labels = labels[:, None]
        if labels.ndim != 2:
            raise ValueError(f"labels need shape (image, factor), got {tuple(labels.shape)}")
        if labels.shape[0] < 2:
            raise ValueError(f"need at least 2 images to compare, got {labels.shape[0]}")
        self.xp = xp
        self.dtype = xp.float64 if dtype is None else dtype
        self.n_images, self.n_units = int(labels.shape[0]), int(labels.shape[1])
        self._labels_t = xp.permute_dims(labels, (1, 0))  # (factor, image)

    def reordered(self, order: Any) -> LabelRows:
        """The same factors over the images in ``order`` (see :func:`reordered`)."""
        new = copy.copy(self)
        new._labels_t = self.xp.take(self._labels_t, self.xp.asarray(np.asarray(order, dtype=np.int64)), axis=1)
        return new

    def rows(self, start: int, stop: int) -> Any:
        xp = self.xp
        row_labels = xp.permute_dims(self._labels_t[:, start:stop], (1, 0))[:, :, None]  # (rows, factor, 1)
        return xp.astype(row_labels == self._labels_t[None, :, :], self.dtype)


class MatrixRows:
    """Rows of explicit BC matrices, shape (unit, image, image)."""

    def __init__(self, bc: Any) -> None:
        xp = namespace(bc)
        if bc.ndim == 2:
            bc = bc[None, ...]
        if bc.ndim != 3 or bc.shape[1] != bc.shape[2]:
            raise ValueError(f"BC matrices need shape (unit, image, image), got {tuple(bc.shape)}")
        if bc.shape[1] < 2:
            raise ValueError(f"need at least 2 images to compare, got {bc.shape[1]}")
        check_posteriors(bc, bc, unit_axis=0, image_axis=1)
        self.xp, self.dtype = xp, float_dtype(xp, bc)
        self.n_units, self.n_images = int(bc.shape[0]), int(bc.shape[1])
        self._bc = bc

    def reordered(self, order: Any) -> MatrixRows:
        """The same matrices over the images in ``order`` (see :func:`reordered`)."""
        xp, new = self.xp, copy.copy(self)
        idx = xp.asarray(np.asarray(order, dtype=np.int64))
        new._bc = xp.take(xp.take(self._bc, idx, axis=1), idx, axis=2)
        return new

    def rows(self, start: int, stop: int) -> Any:
        return self.xp.permute_dims(self._bc[:, start:stop, :], (1, 0, 2))


def label_coefficients(labels: Any, dtype: Any = None) -> Any:
    """BC matrices of ground-truth factors: 1 where two images share the factor's class.

    Parameters
    ----------
    labels : integer array, shape (image, factor)

    Returns
    -------
    array, shape (factor, image, image)
    """
    src = LabelRows(labels, dtype)
    return src.xp.permute_dims(src.rows(0, src.n_images), (1, 0, 2))
