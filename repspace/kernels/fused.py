"""BC rows in one fused pass on the CPU (numba), about 1 ns per element instead of 13.

:class:`repspace.kernels.PosteriorRows` generates rows through separate numpy passes (a
difference, a square, a sum, a division, an exponential, a square root, two products), each
over a block that has just left the cache. Here one compiled loop per (unit, row) does it all
over the unit's N images, which stay in the L1 cache while every row of a block is made, and
also returns each row's sum and sum of squares (what I(U) and I(U,U') need), so nothing passes
over the rows again.

The exponential is written out so that the compiler vectorises it: exp(x) = 2^n 2^f with
t = x log2(e) rounded to n, f = t - n in [-1/2, 1/2], 2^f a polynomial (Taylor to degree 7 in
float32, 12 in float64: relative error under 1e-8 and 4e-16) and 2^n made from its exponent
bits. Arguments below 2^-125 (float32) or 2^-1021 (float64) give that floor instead of
subnormals; such entries are negligible next to the diagonal's 1 in every sum they enter.

Without numba (an optional dependency) the rows come from numpy as before.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["available", "bc_rows", "bc_rows_grouped"]

try:
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; this keeps the numpy path usable
    numba = None

_FLAGS = {"nsz", "arcp", "contract", "afn", "reassoc"}  # no 'nnan'/'ninf': infinite differences must stay exact


def available() -> bool:
    """Whether the fused CPU kernel can run (numba is importable)."""
    return numba is not None


def _constants(dtype: np.dtype) -> tuple[np.ndarray, np.ndarray, int, int, type]:
    """(log2 e, lowest exponent, 1/2, 1, 0), the polynomial's coefficients, the exponent's shift and bias,
    and the integer type whose bits are a float of ``dtype``."""
    if dtype == np.float32:
        degree, lowest, shift, bias, itype = 7, -125.0, 23, 127, np.int32
    else:
        degree, lowest, shift, bias, itype = 12, -1021.0, 52, 1023, np.int64
    coefs = np.array([math.log(2.0) ** k / math.factorial(k) for k in range(degree + 1)], dtype=dtype)
    consts = np.array([1.0 / math.log(2.0), lowest, 0.5, 1.0, 0.0], dtype=dtype)
    return consts, coefs, shift, bias, itype


if numba is not None:

    @numba.njit(fastmath=_FLAGS, nogil=True, cache=True, error_model="numpy", boundscheck=False)
    def _kernel(m, v, q, r0, r1, consts, coefs, shift, bias, out, rowsum, twice, xs, ps, pl, bits, scale):  # pragma: no cover - compiled
        n_dims, n_units, n = m.shape
        log2e, lowest, half, one, zero = consts[0], consts[1], consts[2], consts[3], consts[4]
        top = coefs.size - 1
        for u in range(n_units):
            for r in range(r0, r1):
                for j in range(n):
                    xs[j] = zero
                    ps[j] = one
                for k in range(n_dims):
                    mr, vr, qr = m[k, u, r], v[k, u, r], q[k, u, r]
                    mk, vk, qk = m[k, u], v[k, u], q[k, u]
                    for j in range(n):
                        d = mr - mk[j]
                        inv = one / (vr + vk[j])
                        xs[j] -= d * d * inv
                        ps[j] *= qr * qk[j] * math.sqrt(inv)
                for j in range(n):
                    t = max(xs[j] * log2e, lowest)
                    e = np.floor(t + half)  # the nearest integer, in the float type
                    xs[j] = t - e
                    bits[j] = (int(e) + bias) << shift
                for j in range(n):
                    pl[j] = coefs[top]
                for c in range(top - 1, -1, -1):
                    cc = coefs[c]
                    for j in range(n):
                        pl[j] = pl[j] * xs[j] + cc
                o = out[r - r0, u]
                a, b = zero, zero
                for j in range(n):
                    y = ps[j] * pl[j] * scale[j]
                    o[j] = y
                    a += y
                    b += y * y
                rowsum[r - r0, u] = a
                twice[r - r0, u] = b

    @numba.njit(fastmath=_FLAGS, nogil=True, cache=True, error_model="numpy", boundscheck=False)
    def _kernel_grouped(m, v, q, r0, r1, bounds, consts, coefs, shift, bias, out, rowsum, twice, xs, ps, pl, bits,
                        scale):  # pragma: no cover - compiled
        # _kernel, with each row's sums split over the column groups bounds[g]:bounds[g + 1]
        n_dims, n_units, n = m.shape
        log2e, lowest, half, one, zero = consts[0], consts[1], consts[2], consts[3], consts[4]
        top = coefs.size - 1
        for u in range(n_units):
            for r in range(r0, r1):
                for j in range(n):
                    xs[j] = zero
                    ps[j] = one
                for k in range(n_dims):
                    mr, vr, qr = m[k, u, r], v[k, u, r], q[k, u, r]
                    mk, vk, qk = m[k, u], v[k, u], q[k, u]
                    for j in range(n):
                        d = mr - mk[j]
                        inv = one / (vr + vk[j])
                        xs[j] -= d * d * inv
                        ps[j] *= qr * qk[j] * math.sqrt(inv)
                for j in range(n):
                    t = max(xs[j] * log2e, lowest)
                    e = np.floor(t + half)
                    xs[j] = t - e
                    bits[j] = (int(e) + bias) << shift
                for j in range(n):
                    pl[j] = coefs[top]
                for c in range(top - 1, -1, -1):
                    cc = coefs[c]
                    for j in range(n):
                        pl[j] = pl[j] * xs[j] + cc
                o = out[r - r0, u]
                for j in range(n):
                    o[j] = ps[j] * pl[j] * scale[j]
                for g in range(bounds.size - 1):  # the row is still in the L1 cache
                    a, b = zero, zero
                    for j in range(bounds[g], bounds[g + 1]):
                        y = o[j]
                        a += y
                        b += y * y
                    rowsum[g, r - r0, u] = a
                    twice[g, r - r0, u] = b


class _Scratch:
    """One thread's buffers: per-image work space and the rows themselves (reused, so pages are touched once)."""

    def __init__(self) -> None:
        self.arrays: dict[tuple, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        key = (name, np.dtype(dtype).str)
        arr = self.arrays.get(key)
        size = int(np.prod(shape))
        if arr is None or arr.size < size:
            arr = np.empty(size, dtype=dtype)
            self.arrays[key] = arr
        return arr[:size].reshape(shape)


def scratch() -> _Scratch:
    """Buffers for :func:`bc_rows`, one set per thread."""
    return _Scratch()


def bc_rows(m: np.ndarray, v: np.ndarray, q: np.ndarray, start: int, stop: int,
            buffers: _Scratch | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows start:stop of every unit's BC matrix from the scaled posteriors, with their sums.

    Parameters
    ----------
    m, v, q : C-contiguous arrays (dim, unit, image) of float32 or float64: the pieces of
        :func:`repspace.kernels.bhattacharyya.scaled_posteriors`.
    start, stop : the rows (images).
    buffers : from :func:`scratch`; the rows are written into them and stay valid until the
        next call with the same buffers.

    Returns
    -------
    rows : (stop - start, unit, image)
    row_sums, row_squares : (stop - start, unit), sum_j BC_ij and sum_j BC_ij^2
    """
    dtype = m.dtype
    _, n_units, n = m.shape
    buffers = buffers or _Scratch()
    consts, coefs, shift, bias, itype = _constants(dtype)
    rows = stop - start
    out, rowsum, twice, xs, ps, pl, bits = _carve(buffers, dtype, [(rows, n_units, n), (rows, n_units), (rows, n_units),
                                                                  (n,), (n,), (n,), (n,)])
    bits = bits.view(itype)
    _kernel(m, v, q, start, stop, consts, coefs, shift, bias, out, rowsum, twice, xs, ps, pl, bits, bits.view(dtype))
    return out, rowsum, twice


def bc_rows_grouped(m: np.ndarray, v: np.ndarray, q: np.ndarray, start: int, stop: int, bounds: np.ndarray,
                    buffers: _Scratch | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`bc_rows` with each row's sums split over groups of contiguous images.

    Parameters
    ----------
    bounds : int64 array (groups + 1,), increasing from 0 to the number of images: group g holds
        images bounds[g]:bounds[g + 1].

    Returns
    -------
    rows : (stop - start, unit, image)
    row_sums, row_squares : (groups, stop - start, unit), the sums over each group's images
    """
    dtype = m.dtype
    _, n_units, n = m.shape
    buffers = buffers or _Scratch()
    consts, coefs, shift, bias, itype = _constants(dtype)
    rows, groups = stop - start, len(bounds) - 1
    out, rowsum, twice, xs, ps, pl, bits = _carve(buffers, dtype, [(rows, n_units, n), (groups, rows, n_units),
                                                                  (groups, rows, n_units), (n,), (n,), (n,), (n,)])
    bits = bits.view(itype)
    _kernel_grouped(m, v, q, start, stop, np.asarray(bounds, dtype=np.int64), consts, coefs, shift, bias, out, rowsum,
                    twice, xs, ps, pl, bits, bits.view(dtype))
    return out, rowsum, twice


GUARD_BYTES = 4096
"""Space between any two of the kernel's buffers, and before the first. The compiled loops check
at run time whether the arrays they store into lie within a vector's reach (a few hundred bytes)
of those they read, and take a scalar path (other roundings, under fast-math) when they do:
small buffers from the heap sometimes did, so a block's sums depended on where its buffers
happened to lie. Carved from one allocation with this space between them, they never do."""


def _carve(buffers: _Scratch, dtype: np.dtype, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """Arrays of ``shapes`` from one reused allocation, GUARD_BYTES apart (and after its start)."""
    guard = -(-GUARD_BYTES // np.dtype(dtype).itemsize)
    sizes = [math.prod(shape) for shape in shapes]
    arena = buffers.get("arena", (sum(sizes) + guard * (len(sizes) + 1),), dtype)
    out, at = [], guard
    for shape, size in zip(shapes, sizes):
        out.append(arena[at:at + size].reshape(shape))
        at += size + guard
    return out
