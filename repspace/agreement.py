"""How similarity measures between representation spaces agree: the Spearman correlation of every two measures
over the distinct pairs of spaces (:func:`measure_agreement`), and its bootstrap interval over the spaces
(:func:`measure_agreement_interval`), for a Dataset of :func:`repspace.measures.compare_spaces`.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import kernels

__all__ = ["AGREEMENT_METHOD", "measure_agreement", "measure_agreement_interval"]


def _agreement_names(ds: xr.Dataset) -> list:
    return [n for n in ds.data_vars if not str(n).endswith("_se") and ds[n].dims == ("space_a", "space_b")]


def measure_agreement(ds: xr.Dataset) -> xr.DataArray:
    """The Spearman correlation of every two measures over the distinct pairs of spaces: (measure_a, measure_b).

    Standard-error variables (``*_se``) are left out, and so are pairs where a measure is undefined
    (NaN, e.g. the shape distance between spaces of different dimension). A distance (VI, shape)
    correlates negatively with the similarities.
    """
    from scipy.stats import spearmanr

    names = _agreement_names(ds)
    s = ds.sizes["space_a"]
    iu = np.triu_indices(s, 1)
    if iu[0].size < 3:
        raise ValueError(f"Spearman over pairs of spaces needs at least 3 distinct pairs; {s} spaces give {iu[0].size}")
    cols = np.stack([ds[n].values[iu] for n in names], axis=1)
    rho = np.eye(len(names))
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            ok = np.isfinite(cols[:, a]) & np.isfinite(cols[:, b])
            rho[a, b] = rho[b, a] = spearmanr(cols[ok, a], cols[ok, b]).statistic if ok.sum() >= 3 else np.nan
    return xr.DataArray(rho, dims=("measure_a", "measure_b"), coords={"measure_a": names, "measure_b": names},
                        name="spearman", attrs={"long_name": "Spearman correlation over the distinct pairs of spaces",
                                                "pairs": int(iu[0].size)})


AGREEMENT_METHOD = "percentile bootstrap over the spaces (pairs of a space with its own copy dropped)"
"""The interval of :func:`measure_agreement_interval`, as its attrs name it."""


def measure_agreement_interval(ds: xr.Dataset, rng: np.random.Generator, *, n_resamples: int = 1000,
                               level: float = 0.95) -> xr.Dataset:
    """The Spearman agreement of every two measures (:func:`measure_agreement`) with its bootstrap interval.

    The items resampled are the *spaces*, not the pairs of spaces: each space takes part in S - 1 pairs,
    so the S(S - 1)/2 pairs are not independent, and resampling them would give intervals too narrow for
    S spaces. Each of ``n_resamples`` resamples draws S spaces with replacement and recomputes the
    correlation over the distinct pairs among the drawn spaces, dropping the pairs of a space with its
    own copy; the interval is the percentile interval of those correlations at ``level``
    (:func:`repspace.kernels.spearman_interval`). Resamples with fewer than 3 distinct pairs left (too
    few distinct spaces drawn; likely with 3 or 4 spaces) are left out and counted.

    Parameters
    ----------
    ds : a Dataset of :func:`compare_spaces` (or one with its measures over (space_a, space_b));
        ``*_se`` variables are left out, and NaN pairs (undefined) from each pair of measures they touch.
    rng : the generator of the resamples (seeded: the same seed gives the same interval).
    n_resamples : B, the resamples (1,000 take well under a second for tens of spaces).
    level : the interval's coverage, in (0, 1).

    Returns
    -------
    xarray.Dataset
        ``spearman``, ``spearman_low``, ``spearman_high`` over (measure_a, measure_b), and
        ``spearman_undefined``, the resamples left out; attrs ``method``, ``n_resamples``, ``level``
        and ``pairs``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> a = rng.random((12, 12)); a = a + a.T
    >>> ds = xr.Dataset({"m": (("space_a", "space_b"), a), "exp_m": (("space_a", "space_b"), np.exp(a)),
    ...                  "other": (("space_a", "space_b"), a + 2 * rng.random((12, 12)))})
    >>> agree = measure_agreement_interval(ds, np.random.default_rng(1))
    >>> [round(float(agree[v].sel(measure_a="m", measure_b="exp_m")), 9)
    ...  for v in ("spearman", "spearman_low", "spearman_high")]
    [1.0, 1.0, 1.0]
    >>> low, high = (float(agree[v].sel(measure_a="m", measure_b="other")) for v in ("spearman_low", "spearman_high"))
    >>> bool(low < float(agree.spearman.sel(measure_a="m", measure_b="other")) < high)
    True
    """
    names = _agreement_names(ds)
    mats = np.stack([ds[n].transpose("space_a", "space_b").values for n in names])
    rho, low, high, undefined = kernels.spearman_interval(mats, rng, n_resamples=n_resamples, level=level)
    dims = ("measure_a", "measure_b")
    pairs = ds.sizes["space_a"] * (ds.sizes["space_a"] - 1) // 2
    return xr.Dataset(
        {"spearman": (dims, rho, {"long_name": "Spearman correlation over the distinct pairs of spaces"}),
         "spearman_low": (dims, low, {"long_name": f"lower end of its {level:.0%} bootstrap interval"}),
         "spearman_high": (dims, high, {"long_name": f"upper end of its {level:.0%} bootstrap interval"}),
         "spearman_undefined": (dims, undefined, {"long_name": "resamples where it was undefined, left out"})},
        coords={"measure_a": names, "measure_b": names},
        attrs={"method": AGREEMENT_METHOD, "n_resamples": int(n_resamples), "level": float(level), "pairs": int(pairs)})
