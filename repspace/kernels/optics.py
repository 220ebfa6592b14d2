"""The OPTICS ordering of points from a precomputed distance matrix (numpy only).

OPTICS (Ankerst et al. 1999) visits the points one at a time, always next the open point of
smallest reachability, and lowers the reachability of every open point to its distance from the
visited one (at least that point's core distance: its distance to its ``min_samples``-th nearest
point, itself included). Clusters are then read off the reachability plot (scikit-learn's
``cluster_optics_xi`` does that from the three arrays returned here).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["OpticsOrdering", "optics_ordering"]


class OpticsOrdering(NamedTuple):
    """The OPTICS ordering of n points.

    ordering : (n,) int, the point visited at each position.
    reachability : (n,) float64, each point's reachability distance (inf: none, as for the first point).
    predecessor : (n,) int, the point each one was reached from (-1: none).
    min_samples : the neighbourhood size used, ``min_samples`` clamped to [2, n].
    """

    ordering: np.ndarray
    reachability: np.ndarray
    predecessor: np.ndarray
    min_samples: int


def optics_ordering(d: np.ndarray, min_samples: int) -> OpticsOrdering:
    """The OPTICS ordering of a precomputed distance matrix ``d`` (n, n).

    The same ordering, reachability and predecessors as scikit-learn's
    ``OPTICS(min_samples, metric="precomputed")`` (its defaults: no max_eps; ties broken the same
    way, distances rounded to the same precision; tested equal), but built from whole rows of ``d``
    with a few numpy passes per point, where scikit-learn's loop queries a neighbour index once per
    point: seconds instead of minutes at 10,000 points, and no copy of ``d`` (read as float64).

    >>> d = np.array([[0.0, 1.0, 5.0], [1.0, 0.0, 4.0], [5.0, 4.0, 0.0]])
    >>> r = optics_ordering(d, 2)
    >>> r.ordering.tolist(), r.reachability.tolist(), r.predecessor.tolist()
    ([0, 1, 2], [inf, 1.0, 4.0], [-1, 0, 1])
    """
    n = d.shape[0]
    k = max(2, min(min_samples, n))
    if n < 2:
        return OpticsOrdering(np.arange(n), np.full(n, np.inf), np.full(n, -1, dtype=np.intp), k)
    precision = np.finfo(np.float64).precision
    core = np.empty(n)
    for r0 in range(0, n, 256):  # the k-th smallest distance of each point, itself included
        core[r0:r0 + 256] = np.partition(d[r0:r0 + 256], k - 1, axis=1)[:, k - 1]
    np.around(core, decimals=precision, out=core)
    reach = np.full(n, np.inf)
    predecessor = np.full(n, -1, dtype=np.intp)
    ordering = np.empty(n, dtype=np.intp)
    open_ = np.ones(n, dtype=bool)
    for position in range(n):
        left = np.flatnonzero(open_)
        point = left[np.argmin(reach[left])]  # the first of the smallest reachability, as scikit-learn takes it
        open_[point] = False
        ordering[position] = point
        if not np.isfinite(core[point]) or left.size == 1:
            continue
        left = left[left != point]
        through = np.maximum(d[point, left], core[point])
        np.around(through, decimals=precision, out=through)
        better = through < reach[left]
        reach[left[better]] = through[better]
        predecessor[left[better]] = point
    return OpticsOrdering(ordering, reach, predecessor, k)
