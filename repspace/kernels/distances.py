"""Distances and similarities from NMI and VI, and the entropy of a uniform set of images.

Pure numpy: what the structure stage clusters on and what the figures show.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["CLUSTER_MEASURES", "distance_matrix", "similarity", "uniform_entropy"]

CLUSTER_MEASURES = ("vi", "nmi")
"""The two measures channels are clustered by: VI (bits) and NMI."""


def distance_matrix(values: np.ndarray, measure: str) -> np.ndarray:
    """OPTICS distances from a square NMI or VI matrix: VI clipped at 0, or -log NMI.

    Undefined entries (NaN) get the largest finite distance; the result is symmetric
    with a zero diagonal.

    Parameters
    ----------
    values : (unit, unit) NMI or VI
    measure : "vi" or "nmi"

    Examples
    --------
    >>> distance_matrix(np.array([[1.0, 0.5], [0.5, 1.0]]), "nmi").round(3)
    array([[0.   , 0.693],
           [0.693, 0.   ]])
    >>> distance_matrix(np.array([[0.0, -0.01], [np.nan, 0.0]]), "vi")
    array([[0., 0.],
           [0., 0.]])
    """
    if measure not in CLUSTER_MEASURES:
        raise ValueError(f"measure must be 'vi' or 'nmi', got {measure!r}")
    d = np.array(values, dtype=np.float64)  # the one n x n array: everything below is in place, block by block
    n = d.shape[0]
    block = 1024
    fill = -np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        for r0 in range(0, n, block):
            rows = d[r0:r0 + block]
            if measure == "vi":
                np.maximum(rows, 0.0, out=rows)
            else:
                np.clip(rows, 1e-12, 1.0, out=rows)
                np.log(rows, out=rows)
                np.negative(rows, out=rows)
            finite = np.isfinite(rows)
            if finite.any():
                fill = max(fill, float(rows[finite].max()))
    fill = fill if np.isfinite(fill) else 1.0
    for r0 in range(0, n, block):
        rows = d[r0:r0 + block]
        rows[~np.isfinite(rows)] = fill
    for r0 in range(0, n, block):  # d = (d + d.T) / 2, a pair of blocks at a time
        for c0 in range(r0, n, block):
            mean = 0.5 * (d[r0:r0 + block, c0:c0 + block] + d[c0:c0 + block, r0:r0 + block].T)
            d[r0:r0 + block, c0:c0 + block] = mean
            d[c0:c0 + block, r0:r0 + block] = mean.T
    np.fill_diagonal(d, 0.0)
    return d


def similarity(values: np.ndarray, measure: str) -> np.ndarray:
    """What the figures show: exp(-VI) or NMI, clipped to [0, 1].

    Examples
    --------
    >>> similarity(np.array([0.0, 1.0, -0.5]), "vi").round(3)
    array([1.   , 0.368, 1.   ])
    >>> similarity(np.array([1.2, 0.5]), "nmi")
    array([1. , 0.5])
    """
    v = np.asarray(values, dtype=np.float64)
    if measure not in CLUSTER_MEASURES:
        raise ValueError(f"measure must be 'vi' or 'nmi', got {measure!r}")
    return np.exp(-np.clip(v, 0.0, None)) if measure == "vi" else np.clip(v, 0.0, 1.0)


def uniform_entropy(n: int) -> float:
    """H(X) of n equally likely images, in bits: log2 n, the most a unit can carry about them.

    >>> uniform_entropy(1024)
    10.0
    """
    if n < 1:
        raise ValueError(f"need at least one image, got {n}")
    return math.log2(n)
