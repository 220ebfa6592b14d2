"""How continuously a space holds items that lie in order on a loop (the paper's SO(2) metric; numpy only)."""

from __future__ import annotations

import numpy as np

from .bhattacharyya import bhattacharyya_distance

__all__ = ["continuity"]


def continuity(mu: np.ndarray, logvar: np.ndarray, *, percentile: float = 90.0, closed: bool = True) -> float:
    """How continuously a space holds items that lie in order on a loop.

    .. math::  C = \\frac{\\max_i D_{i,i+1}}{P_{90}(D_{i,i+1})}

    the largest Bhattacharyya distance (:func:`repspace.kernels.bhattacharyya_distance`) between
    neighbouring items over its ``percentile``-th percentile: about 1 for a space that keeps every
    neighbour close, large where it tears the loop apart somewhere. mu, logvar : (item, dim) or
    (item,), items in their order on the loop; ``closed`` counts the last and the first as
    neighbours (the paper's code leaves that pair out). NaN where the percentile is 0 (every
    neighbour on one point).

    >>> t = np.linspace(0, 2 * np.pi, 50, endpoint=False)
    >>> circle = np.column_stack([np.cos(t), np.sin(t)])
    >>> round(continuity(circle, np.full((50, 2), -4.0)), 6)
    1.0
    """
    mu, logvar = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
    if mu.ndim == 1:
        mu, logvar = mu[:, None], logvar[:, None]
    nxt = np.roll(np.arange(len(mu)), -1) if closed else np.arange(1, len(mu))
    here = np.arange(len(nxt))
    d = bhattacharyya_distance(mu[here], logvar[here], mu[nxt], logvar[nxt], xp=np)
    typical = np.percentile(d, percentile)
    if not typical > 0:  # collapsed: the neighbours all on one point
        return float("nan")
    return float(d.max() / typical)
