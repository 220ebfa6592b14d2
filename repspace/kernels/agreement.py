"""How two measures between spaces agree: the Spearman correlation over the distinct pairs of spaces, and
its bootstrap over the spaces (numpy only).

The pairs of spaces are not independent items: every space takes part in S - 1 of them, so resampling
the pairs would treat S(S - 1)/2 values as independent evidence when they come from S spaces, and give
intervals too narrow. The bootstrap resamples the *spaces* instead (S draws with replacement) and
recomputes the correlation over the distinct pairs among the resampled spaces, dropping each pair of a
space with its own copy (its value is the measure's diagonal, not a comparison). A space drawn c times
makes each pair it is in count c times, so a resample is the original pairs with frequency weights
c_a c_b, and the correlation with weights is the correlation over the expanded list:
:func:`space_resample_weights` gives the weights, :func:`weighted_spearman` the correlations of many
resamples at once, :func:`spearman_interval` the percentile interval.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

__all__ = ["space_resample_weights", "weighted_spearman", "spearman_interval"]

_CHUNK = 4_000_000
"""At most this many (resample, pair, measure) values at a time."""


def space_resample_weights(n_spaces: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Frequency weights of the distinct pairs of spaces in ``n_resamples`` bootstrap resamples of the spaces.

    The draws are ``rng.integers(0, n_spaces, (n_resamples, n_spaces))``; a space drawn c_a times and
    another drawn c_b times make their pair count c_a c_b times; a space's pairs with its own copies
    are dropped.

    Parameters
    ----------
    n_spaces : S, the spaces.
    n_resamples : B, the resamples.
    rng : the generator of the draws.

    Returns
    -------
    (B, S(S - 1)/2) float64 weights, the pairs (a < b) in ``numpy.triu_indices(S, 1)`` order.

    Examples
    --------
    >>> w = space_resample_weights(4, 2, np.random.default_rng(0))
    >>> w.shape, bool((w.sum(axis=1) <= 4 * 3 / 2).all())
    ((2, 6), True)
    """
    if n_spaces < 2 or n_resamples < 1:
        raise ValueError(f"need at least 2 spaces and 1 resample, got {n_spaces} and {n_resamples}")
    draws = rng.integers(0, n_spaces, (n_resamples, n_spaces))
    offsets = n_spaces * np.arange(n_resamples)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=n_resamples * n_spaces).reshape(n_resamples, n_spaces)
    a, b = np.triu_indices(n_spaces, 1)
    return (counts[:, a] * counts[:, b]).astype(np.float64)


def _midranks(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted mid-ranks (R, P) of the values ``x`` (P,) under frequency weights ``w`` (R, P): the ranks a
    value repeated w times would have on average among the expanded list, ties shared."""
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])  # NaNs (weight 0 here) fall in groups of one
    group = np.cumsum(np.r_[False, xs[1:] != xs[:-1]])
    total = np.add.reduceat(w[:, order], starts, axis=1)  # (R, G)
    mid = np.cumsum(total, axis=1) - total + (total + 1) / 2
    ranks = np.empty_like(w)
    ranks[:, order] = mid[:, group]
    return ranks


def _pearson(r: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted Pearson correlations (R, C, C) of the columns of ``r`` (R, P, C) under weights ``w`` (R, P)."""
    with np.errstate(divide="ignore", invalid="ignore"):  # no weight, or a constant column: NaN
        n = w.sum(axis=1)[:, None, None]
        d = r - np.einsum("rp,rpc->rc", w, r)[:, None, :] / n
        cov = np.einsum("rp,rpc,rpd->rcd", w, d, d)
        sd = np.sqrt(np.einsum("rcc->rc", cov))
        return np.clip(cov / (sd[:, :, None] * sd[:, None, :]), -1.0, 1.0)


def weighted_spearman(columns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Spearman correlation of every two columns under frequency weights, for many sets of weights at once.

    With integer weights this is the Spearman correlation over the list with each row repeated
    ``weight`` times (mid-ranks for ties):

    .. math::

        \\rho_{ab} = \\frac{\\sum_p w_p (r_{pa} - \\bar r_a)(r_{pb} - \\bar r_b)}
                         {\\sqrt{\\sum_p w_p (r_{pa} - \\bar r_a)^2 \\sum_p w_p (r_{pb} - \\bar r_b)^2}},
        \\qquad \\bar r_a = \\frac{\\sum_p w_p r_{pa}}{\\sum_p w_p},

    with :math:`r_{pa}` row p's weighted mid-rank in column a. Rows where either column is NaN are left
    out of that pair of columns (and out of its ranks).

    Parameters
    ----------
    columns : (P, M) float64 values, one row per pair of spaces, one column per measure; NaN: undefined.
    weights : (R, P) non-negative weights, one row per resample (ones: the plain correlation).

    Returns
    -------
    (R, M, M) correlations; 1 on the diagonal; NaN where fewer than 3 rows of positive weight are left
    or a column is constant over them.

    Examples
    --------
    >>> x = np.array([[1.0, 10.0], [2.0, 30.0], [3.0, 20.0], [4.0, 40.0]])
    >>> weighted_spearman(x, np.ones((1, 4)))[0, 0, 1].round(6)  # as scipy.stats.spearmanr
    np.float64(0.8)
    >>> weighted_spearman(x, np.array([[2.0, 1.0, 1.0, 1.0]]))[0, 0, 1].round(6)  # row 0 twice: 5 rows
    np.float64(0.894737)
    """
    columns = np.asarray(columns, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if columns.ndim != 2 or weights.ndim != 2 or weights.shape[1] != columns.shape[0]:
        raise ValueError(f"columns must be (P, M) and weights (R, P); got {columns.shape} and {weights.shape}")
    if (weights < 0).any():
        raise ValueError("weights must be non-negative")
    (p, m), r = columns.shape, weights.shape[0]
    finite = np.isfinite(columns)
    out = np.full((r, m, m), np.nan)
    masks: dict[bytes, tuple[np.ndarray, list[tuple[int, int]]]] = {}
    for a in range(m):  # pairs of columns grouped by the rows both define: ranked once per group
        for b in range(a + 1, m):
            joint = finite[:, a] & finite[:, b]
            masks.setdefault(joint.tobytes(), (joint, []))[1].append((a, b))
    step = max(1, _CHUNK // max(1, p * m))
    for joint, pairs in masks.values():
        cols = sorted({c for pair in pairs for c in pair})
        at = {c: k for k, c in enumerate(cols)}
        ia, ib = np.array([at[a] for a, _ in pairs]), np.array([at[b] for _, b in pairs])
        oa, ob = np.array([a for a, _ in pairs]), np.array([b for _, b in pairs])
        for lo in range(0, r, step):
            w = weights[lo: lo + step] * joint
            ranks = np.stack([_midranks(np.where(joint, columns[:, c], np.nan), w) for c in cols], axis=2)
            rho = _pearson(ranks, w)
            rho[(w > 0).sum(axis=1) < 3] = np.nan
            out[lo: lo + step, oa, ob] = out[lo: lo + step, ob, oa] = rho[:, ia, ib]
    out[:, np.arange(m), np.arange(m)] = 1.0
    return out


def spearman_interval(matrices: Sequence[np.ndarray] | np.ndarray, rng: np.random.Generator, *,
                      n_resamples: int = 1000, level: float = 0.95,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The Spearman correlation of every two measures over the distinct pairs of spaces, with its percentile
    bootstrap interval over the spaces.

    Each resample draws S spaces with replacement and takes the correlation over the distinct pairs among
    them, a space's pairs with its own copies dropped (:func:`space_resample_weights`); the interval is the
    (1 - level)/2 and (1 + level)/2 percentiles of the resamples' correlations, over the resamples where
    it is defined (:func:`weighted_spearman`; too few distinct spaces drawn leave it undefined).

    Parameters
    ----------
    matrices : (M, S, S) symmetric matrices, one per measure, between every two of S spaces (NaN: undefined).
    rng : the generator of the resamples.
    n_resamples : B.
    level : the interval's coverage, in (0, 1).

    Returns
    -------
    rho, low, high : (M, M) each: the correlation and the interval's ends (1 on the diagonal).
    undefined : (M, M) int, the resamples where the correlation was undefined, left out.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> d = rng.random((20, 20)); d = d + d.T
    >>> rho, low, high, _ = spearman_interval([d, np.exp(d), rng.random((20, 20))], np.random.default_rng(1))
    >>> [round(float(x[0, 1]), 12) for x in (rho, low, high)]  # one measure a monotone function of the other
    [1.0, 1.0, 1.0]
    >>> bool(low[0, 2] < rho[0, 2] < high[0, 2])
    True
    """
    mats = np.asarray(matrices, dtype=np.float64)
    if mats.ndim != 3 or mats.shape[1] != mats.shape[2]:
        raise ValueError(f"matrices must be (measure, space, space), got {mats.shape}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    s = mats.shape[1]
    iu = np.triu_indices(s, 1)
    if iu[0].size < 3:
        raise ValueError(f"Spearman over pairs of spaces needs at least 3 distinct pairs; {s} spaces give {iu[0].size}")
    columns = mats[:, iu[0], iu[1]].T  # (pair, measure)
    rho = weighted_spearman(columns, np.ones((1, columns.shape[0])))[0]
    boot = weighted_spearman(columns, space_resample_weights(s, n_resamples, rng))
    tail = 50.0 * (1.0 - level)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a pair of measures undefined in every resample
        low, high = np.nanpercentile(boot, [tail, 100.0 - tail], axis=0)
    return rho, low, high, np.isnan(boot).sum(axis=0)
