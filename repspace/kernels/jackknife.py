"""Delete-a-group jackknife over the fingerprint images, from the all-pairs products.

The N images are split into G random groups. The inner sums of every information estimate
split by group, S_i = sum_h S_i^(h) with S_i^(h) = sum_{j in h} BC^a_ij BC^b_ij, so the products
of :func:`repspace.kernels.pairwise_information` are made as G products over each group's images
(the same flops) and replicate g, which drops group g from both means, is

.. math::

    x_g = -\\frac{1}{N - n_g} \\sum_{i \\notin g} \\log_2 \\frac{S_i - S_i^{(g)}}{N - n_g}

with standard error SE^2 = (G-1)/G sum_g (x_g - mean_g x_g)^2. Nested subsets (the images of the
first k groups) come from the same sums: the mean over rows i in those groups of
log2(sum_{h<k} S_i^(h) / N_k).

This module holds the group labels, the reduction of the G products of a block to sums of logs
(a compiled loop on the CPU, array-module operations elsewhere) and the jackknife's variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .fused import _FLAGS, numba

__all__ = ["ImageGroups", "jackknife_groups", "jackknife_se", "grouped_log_sums", "Reduction", "rows_per_log"]


def jackknife_groups(n_images: int, n_groups: int, seed: int | np.random.Generator | None) -> np.ndarray:
    """Balanced random group labels for the delete-a-group jackknife.

    Groups must be random: fingerprint images are stored sorted by dataset index, so contiguous
    slices would follow the factors.

    Parameters
    ----------
    n_images, n_groups : sizes; each group gets floor or ceil of n_images / n_groups images.
    seed : for :func:`numpy.random.default_rng` (an int, or a Generator, used as is).

    Returns
    -------
    int64 array (image,) of labels in [0, n_groups)

    Examples
    --------
    >>> g = jackknife_groups(10, 3, seed=0)
    >>> sorted(np.bincount(g).tolist())
    [3, 3, 4]
    """
    if not 2 <= n_groups <= n_images:
        raise ValueError(f"need 2 <= groups <= images, got {n_groups} groups of {n_images} images")
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(n_images, dtype=np.int64) % n_groups)


@dataclass(frozen=True)
class ImageGroups:
    """Group labels of the images, arranged so that each group's images are contiguous.

    Attributes
    ----------
    order : int64 (image,)  the images sorted by group (stable): position k holds image order[k]
    bounds : int64 (G + 1,)  group g holds positions bounds[g]:bounds[g + 1]
    row_groups : int64 (image,)  the group of each position
    subsets : tuple of int  numbers of leading groups whose images form each nested subset
    """

    order: np.ndarray
    bounds: np.ndarray
    row_groups: np.ndarray
    subsets: tuple[int, ...] = ()

    @classmethod
    def from_labels(cls, labels: Any, n_images: int, subsets: Sequence[int] = ()) -> ImageGroups:
        labels = np.asarray(labels)
        if labels.shape != (n_images,) or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"groups need an integer array of shape ({n_images},), got {labels.dtype} {labels.shape}")
        if labels.min() < 0:
            raise ValueError("group labels must be >= 0")
        sizes = np.bincount(labels)
        if sizes.size < 2 or (sizes == 0).any():
            raise ValueError(f"groups need labels 0..G-1 with G >= 2, each used; got sizes {sizes.tolist()}")
        n_groups = sizes.size
        subsets = tuple(int(k) for k in subsets)
        if any(not 1 <= k <= n_groups for k in subsets):
            raise ValueError(f"subsets are numbers of groups in [1, {n_groups}], got {subsets}")
        order = np.argsort(labels, kind="stable").astype(np.int64)
        bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        return cls(order, bounds, labels[order].astype(np.int64), subsets)

    @property
    def n_groups(self) -> int:
        return int(self.bounds.size - 1)

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.bounds)

    @property
    def subset_images(self) -> tuple[int, ...]:
        return tuple(int(self.bounds[k]) for k in self.subsets)


def jackknife_se(replicates: Any, xp: Any = None) -> Any:
    """Delete-a-group jackknife standard error over axis 0.

    .. math:: \\mathrm{SE}^2 = \\frac{G-1}{G} \\sum_g (x_g - \\bar x)^2

    Parameters
    ----------
    replicates : array (G, ...)

    Returns
    -------
    array (...): NaN wherever a replicate is NaN.

    Examples
    --------
    >>> round(float(jackknife_se(np.array([1.0, 2.0, 3.0]))), 6)  # sqrt(2/3 * 2)
    1.154701
    """
    xp = xp or np
    g = replicates.shape[0]
    dev = replicates - xp.mean(replicates, axis=0)
    return xp.sqrt((g - 1) / g * xp.sum(dev * dev, axis=0))


# --- sums of logs over the rows of a block --------------------------------------------

_LN2 = math.log(2.0)
_SQRT2 = math.sqrt(2.0)


def _log_coefficients(dtype: Any) -> np.ndarray:
    """log2(m) = (2 / ln 2) s sum_k s^(2k) / (2k+1) with s = (m-1)/(m+1), |s| <= 0.172 for m in [1/sqrt2, sqrt2]:
    6 terms leave a relative error under 1e-10 (below float32's rounding of the products), 11 under 1e-17."""
    terms = 6 if np.dtype(dtype) == np.float32 else 11
    return np.array([2.0 / _LN2 / (2 * k + 1) for k in range(terms)], dtype=np.float64)


if numba is not None:

    @numba.njit(fastmath=_FLAGS, nogil=True, cache=True, error_model="numpy", boundscheck=False)
    def _log2_into(x, acc, buf, bits, ex, z, pl, coefs):  # pragma: no cover - compiled
        # acc[b] += log2(x[b]) for x > 0 (-inf for 0), vectorised: the exponent from the float64 bits,
        # the mantissa's log from the series of _log_coefficients
        n = x.shape[0]
        for b in range(n):
            buf[b] = x[b]
        for b in range(n):
            ib = bits[b]
            ex[b] = ((ib >> 52) & 0x7FF) - 1023
            bits[b] = (ib & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000
        for b in range(n):
            m = buf[b]
            big = m > 1.4142135623730951
            m = m * 0.5 if big else m
            ex[b] = ex[b] + 1.0 if big else ex[b]
            s = (m - 1.0) / (m + 1.0)
            buf[b] = s
            z[b] = s * s
        top = coefs.size - 1
        for b in range(n):
            pl[b] = coefs[top]
        for c in range(top - 1, -1, -1):
            cc = coefs[c]
            for b in range(n):
                pl[b] = pl[b] * z[b] + cc
        for b in range(n):
            v = ex[b] + buf[b] * pl[b]
            acc[b] += v if x[b] > 0 else -np.inf

    @numba.njit(fastmath=_FLAGS, nogil=True, cache=True, error_model="numpy", boundscheck=False)
    def _reduce(products, row_groups, subsets, prods, acc, count, per, finish, tot, cum, buf, bits, ex, z, pl,
                coefs, chunk):  # pragma: no cover - compiled
        # products (G, r, M): each group's sums of r rows over M entries. prods (S, M) float64: running products,
        # S = 1 + G + K slots (the full sums; without group g, over rows outside g; the first k groups' sums,
        # over rows in them), holding ``count`` rows already; every ``per`` rows (and at the end when
        # ``finish``) their log2 is added to acc (S, M) and they restart at 1. Entries go ``chunk`` at a time,
        # every row of a chunk before the next, so a chunk's running products stay in the cache.
        n_groups, n_rows, n_m = products.shape
        n_sub = subsets.size
        slots = 1 + n_groups + n_sub
        left = count
        for c0 in range(0, n_m, chunk):
            c1 = min(n_m, c0 + chunk)
            n = c1 - c0
            left = count
            for i in range(n_rows):
                if left == per:
                    for t in range(slots):
                        _log2_into(prods[t, c0:c1], acc[t, c0:c1], buf, bits, ex, z, pl, coefs)
                        prods[t, c0:c1] = 1.0
                    left = 0
                gi = row_groups[i]
                for b in range(n):
                    tot[b] = 0.0
                k = 0
                for h in range(n_groups):
                    ph = products[h, i, c0:c1]
                    for b in range(n):
                        tot[b] += ph[b]
                    while k < n_sub and subsets[k] == h + 1:
                        for b in range(n):
                            cum[k, b] = tot[b]
                        k += 1
                pr = prods[0, c0:c1]
                for b in range(n):
                    pr[b] *= tot[b]
                for g in range(n_groups):
                    if g == gi:
                        continue
                    pg, pr = products[g, i, c0:c1], prods[1 + g, c0:c1]
                    for b in range(n):
                        pr[b] *= tot[b] - pg[b]
                for k in range(n_sub):
                    if gi < subsets[k]:
                        pr = prods[1 + n_groups + k, c0:c1]
                        for b in range(n):
                            pr[b] *= cum[k, b]
                left += 1
            if finish:
                for t in range(slots):
                    _log2_into(prods[t, c0:c1], acc[t, c0:c1], buf, bits, ex, z, pl, coefs)
                    prods[t, c0:c1] = 1.0
        return 0 if finish else left


_CHUNK = 1024  # entries per pass of the compiled reduction: (slots + groups) x 1024 x 8 bytes stay in the L2 cache


def rows_per_log(n: int, unit_diagonal: bool) -> int:
    """Rows whose float64 product of sums stays in range (each sum in [1, n] with a unit diagonal), at most 64."""
    if not unit_diagonal:
        return 1
    return max(1, min(64, int(1021 // max(math.log2(max(n, 2)), 1.0))))


class Reduction:
    """The compiled reduction's sums of logs for one block of entries, (1 + G + K, M) float64.

    Each call multiplies rows into running float64 products (in ``scratch``, shared between blocks: a block's
    rows are added from its first call to the one with ``finish``, before the next block's), and takes one
    log per ``per`` rows.
    """

    def __init__(self, slots: int, entries: int) -> None:
        self.acc = np.zeros((slots, entries), dtype=np.float64)
        self.count = 0

    def add(self, products: np.ndarray, row_groups: np.ndarray, groups: ImageGroups, per: int, finish: bool,
            scratch: Any) -> None:
        """Multiply in the sums of ``products`` (G, rows, M), C-contiguous; ``finish``: take the logs of the rest."""
        dtype, k = products.dtype, len(groups.subsets)
        slots, entries = self.acc.shape
        chunk = min(_CHUNK, entries)
        prods = scratch.get("jk_prods", (slots, entries), np.float64)
        if self.count == 0:
            prods.fill(1.0)
        tot = scratch.get("jk_tot", (chunk,), dtype)
        cum = scratch.get("jk_cum", (max(k, 1), chunk), dtype)
        buf = scratch.get("jk_buf", (chunk,), np.float64)
        ex, z, pl = (scratch.get(name, (chunk,), np.float64) for name in ("jk_ex", "jk_z", "jk_pl"))
        self.count = int(_reduce(products, np.ascontiguousarray(row_groups, dtype=np.int64),
                                 np.asarray(groups.subsets, dtype=np.int64), prods, self.acc, self.count,
                                 max(1, per), finish, tot, cum, buf, buf.view(np.int64), ex, z, pl,
                                 _log_coefficients(dtype), chunk))


def compiled() -> bool:
    """Whether the compiled reduction can run (numba is importable)."""
    return numba is not None


def grouped_log_sums(xp: Any, products: Any, row_groups: Any, groups: ImageGroups, point: Any, rep: Any,
                     sub: Any) -> tuple[Any, Any, Any]:
    """Add a block's sums of logs to float64 accumulators, with array-module operations (one log per row and sum).

    Parameters
    ----------
    products : (G, rows, A, B)  each group's inner sums S_i^(h)
    row_groups : int (rows,)  the group of each row (numpy)
    point : (A, B) + sum_i log2 S_i
    rep : (G, A, B) + sum_{i not in g} log2(S_i - S_i^(g))
    sub : (K, A, B) + sum_{i in the first k groups} log2(sum_{h<k} S_i^(h))

    Returns the new accumulators. (:class:`Reduction` does the same on the CPU, compiled.)
    """
    return _grouped_log_sums_xp(xp, products, row_groups, groups, point, rep, sub)


def _grouped_log_sums_xp(xp: Any, products: Any, row_groups: Any, groups: ImageGroups, point: Any, rep: Any,
                         sub: Any) -> tuple[Any, Any, Any]:
    """The array-module path of :func:`grouped_log_sums` (one log per row and sum; returns new accumulators)."""
    n_groups = products.shape[0]
    extra = (1,) * (products.ndim - 2)
    rg = xp.reshape(xp.asarray(np.asarray(row_groups, dtype=np.int64)), (-1, *extra))
    total = xp.sum(products, axis=0)
    one = xp.ones_like(total)
    point = point + xp.sum(xp.log2(total), axis=0, dtype=xp.float64)
    reps = []
    for g in range(n_groups):
        kept = xp.where(rg != g, total - products[g, ...], one)
        reps.append(xp.sum(xp.log2(kept), axis=0, dtype=xp.float64))
    rep = rep + xp.stack(reps, axis=0)
    if groups.subsets:
        subs = []
        for k in groups.subsets:
            kept = xp.where(rg < k, xp.sum(products[:k, ...], axis=0), one)
            subs.append(xp.sum(xp.log2(kept), axis=0, dtype=xp.float64))
        sub = sub + xp.stack(subs, axis=0)
    return point, rep, sub
