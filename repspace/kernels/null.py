"""The NMI two channels show at this fingerprint size when they share no information: the estimator's floor.

A channel's posteriors, with its images permuted against another channel's, share nothing with it,
but their NMI estimate is not 0: over N images it carries a bias that grows with the channels'
information and falls with N. :func:`permutation_null` measures it: the NMI of every two channels of
a sample, one of them with its images permuted, against the geometric mean of their information,
and the ``level`` quantile of it in bins of that information (the floor). A pair whose NMI is not
above the floor at its information is indistinguishable, at this N, from channels that share nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .information import PosteriorRows, pairwise_information

__all__ = ["NullFloor", "permutation_null"]


@dataclass(frozen=True)
class NullFloor:
    """The null NMI's ``level`` quantile against information.

    Attributes
    ----------
    information : (bin,) the bins' geometric-mean information sqrt(I(U) I(V)), bits (their medians)
    floor : (bin,) the ``level`` quantile of the null NMI in each bin
    level : the quantile (0.95: 5% of unrelated pairs lie above the floor)
    n_pairs : pairs the floor was measured on
    """

    information: np.ndarray
    floor: np.ndarray
    level: float
    n_pairs: int

    def __call__(self, information: Any) -> np.ndarray:
        """The floor at geometric-mean information ``information`` (bits), interpolated, constant beyond the bins.

        >>> NullFloor(np.array([0.5, 1.0]), np.array([0.1, 0.2]), 0.95, 10)(np.array([0.1, 0.75, 3.0])).tolist()
        [0.1, 0.15000000000000002, 0.2]
        """
        return np.interp(np.asarray(information, dtype=np.float64), self.information, self.floor)


def permutation_null(mu: np.ndarray, logvar: np.ndarray, rng: np.random.Generator, *, level: float = 0.95,
                     bins: int = 8) -> NullFloor:
    """The NMI floor of unrelated channels at this N, from a sample of channels.

    Parameters
    ----------
    mu, logvar : (unit, image) the sample's posteriors
    rng : draws the permutation of the images
    level : the quantile of the null NMI that makes the floor
    bins : bins of sqrt(I(U) I(V)), equally filled

    Returns
    -------
    NullFloor
    """
    units, n = mu.shape
    if units < 2:
        raise ValueError(f"a null needs at least 2 channels, got {units}")
    perm = rng.permutation(n)
    res = pairwise_information(PosteriorRows(mu, logvar), PosteriorRows(mu[:, perm], logvar[:, perm]))
    nmi, _ = res.nmi_vi()
    info = np.sqrt(np.outer(np.maximum(res.information_a, 0.0), np.maximum(res.information_b, 0.0)))
    ok = np.isfinite(nmi)
    values, where = np.asarray(nmi)[ok], info[ok]
    if values.size < 2:
        raise ValueError("the sample's channels carry no information: no null to measure")
    order = np.argsort(where)
    parts = np.array_split(order, min(bins, values.size // 2))
    centers = np.array([np.median(where[p]) for p in parts])
    floor = np.array([np.quantile(values[p], level) for p in parts])
    return NullFloor(information=centers, floor=floor, level=float(level), n_pairs=int(values.size))
