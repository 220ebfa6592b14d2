"""How stable a clustering of channels is under the sampling error of the values it was made from.

The pairs' NMI and VI come with standard errors (a jackknife over the fingerprint images). Drawing
values anew, ``v* = v + se * z`` with z standard normal, symmetric, and clustering each draw the
same way gives, for every cluster of the clustering of ``v``:

- ``cluster``: the fraction of its member pairs that a draw puts in one cluster, averaged over
  draws (1: every draw keeps the cluster together);
- ``member``: per channel, the fraction of draws in which it shares a cluster with the majority
  of its cluster's members (for a noise channel: in which it is noise again).

The draws perturb every pair independently, where the real errors of two pairs that share images
are correlated; independent noise of the same size is the harsher test for most structures, so
these are cautious figures, not exact probabilities.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["ClusterStability", "cluster_stability", "perturbed"]


@dataclass(frozen=True)
class ClusterStability:
    """Stability of a clustering (see the module docstring).

    Attributes
    ----------
    cluster : (n_clusters,) the fraction of member pairs kept together, mean over draws (NaN for a
        cluster of one).
    member : (unit,) per channel, the fraction of draws in which it stays with its cluster's majority
        (noise channels: stays noise).
    draws : the number of draws.
    """

    cluster: np.ndarray
    member: np.ndarray
    draws: int


def perturbed(values: np.ndarray, se: np.ndarray, rng: np.random.Generator, lower: float | None = None,
              upper: float | None = None) -> np.ndarray:
    """``values + se * z`` with z standard normal and symmetric (z_ab = z_ba), the diagonal unchanged, clipped to
    [lower, upper] where given; NaN errors count as 0.

    >>> v = np.array([[1.0, 0.5], [0.5, 1.0]])
    >>> p = perturbed(v, np.full((2, 2), 0.1), np.random.default_rng(0), 0.0, 1.0)
    >>> bool(p[0, 1] == p[1, 0]) and np.diag(p).tolist() == [1.0, 1.0]
    True
    """
    n = values.shape[0]
    z = rng.standard_normal((n, n)).astype(values.dtype, copy=False)
    z = np.triu(z, 1)
    z = z + z.T
    out = values + np.nan_to_num(se, nan=0.0).astype(values.dtype, copy=False) * z
    if lower is not None or upper is not None:
        np.clip(out, lower, upper, out=out)
    np.fill_diagonal(out, np.diagonal(values))
    return out


def cluster_stability(labels: np.ndarray, draw: Callable[[np.random.Generator], np.ndarray], draws: int,
                      seed: int | np.random.Generator) -> ClusterStability:
    """Cluster ``draws`` perturbed copies (``draw(rng)`` returns the labels of one, -1 for noise) and compare each
    with ``labels``.

    >>> labels = np.array([0, 0, 0, 1, 1, -1])
    >>> same = cluster_stability(labels, lambda rng: labels, draws=3, seed=0)
    >>> same.cluster.tolist(), same.member.tolist()
    ([1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    >>> split = cluster_stability(labels, lambda rng: np.array([0, 0, 1, 2, 2, 3]), draws=2, seed=0)
    >>> [round(x, 3) for x in split.cluster.tolist()], split.member.tolist()
    ([0.333, 1.0], [1.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    n_clusters = int(labels.max()) + 1 if labels.size else 0
    together = np.zeros(n_clusters)
    stays = np.zeros(labels.size)
    for _ in range(draws):
        got = np.asarray(draw(rng))
        for k in range(n_clusters):
            members = np.flatnonzero(labels == k)
            lab = got[members]
            clustered = lab[lab >= 0]
            if members.size > 1:
                counts = np.bincount(clustered) if clustered.size else np.zeros(1)
                together[k] += float((counts * (counts - 1)).sum()) / (members.size * (members.size - 1))
            if clustered.size:
                majority = np.bincount(clustered).argmax()
                stays[members] += lab == majority
        noise = labels < 0
        stays[noise] += got[noise] < 0
    sizes = np.bincount(labels[labels >= 0], minlength=n_clusters) if n_clusters else np.zeros(0)
    cluster = np.where(sizes > 1, together / max(draws, 1), np.nan)
    return ClusterStability(cluster=cluster, member=stays / max(draws, 1), draws=draws)
