"""Similarity measures between whole representation spaces, side by side (the paper's Sec. 4.1).

Each space is a set of diagonal-Gaussian posteriors over the same N items: ``mu``, ``logvar``
shaped (item, dim); spaces may differ in dim. :func:`compare_spaces` computes every measure for
every pair of spaces; :func:`measure_agreement` says how the measures agree (Spearman).

========== ==============================================================================
measure    what it is
========== ==============================================================================
nmi_bc     NMI from the spaces' Bhattacharyya matrices (the core's, bits)
vi_bc      VI from the same (bits)
nmi_mc     NMI by Monte Carlo (``nmi_mc_se``: its standard error)
vi_mc      VI by Monte Carlo (``vi_mc_se``)
cka_linear CKA with the linear kernel of the means
cka_bc     CKA with the Bhattacharyya matrices as kernels
cka_rbf    CKA with an RBF kernel of the means, bandwidth the space's mean posterior std
shape      the Gaussian stochastic shape distance (Duong et al. 2023), alpha 1 by default, over
           the posterior variances; between spaces of one dimension only (NaN otherwise)
========== ==============================================================================

The CKA measures take the biased HSIC estimator, or the debiased one (Song et al. 2012) with
``debiased=True``.

The shape distance is given the posterior *variances* as covariances. The paper's notebook passes
``diag(exp(-logvar))``, the precision, instead. On the eight two-dimensional spaces of
:func:`repspace.data.synthetic_spaces.nine_spaces` the two versions rank the 28 pairs with a
Spearman correlation of 0.82. The precision version all but ignores large posteriors: the four
clusters against the same clusters smeared vertically into each other are 5.74 apart with variances
and 0.47 with precisions, and the spiral against the bloated spiral 2.55 and 0.85 (measured
2026-12-01, 4 starts per component).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from . import kernels

__all__ = ["MEASURES", "compare_spaces", "measure_agreement"]

MEASURES = ("nmi_bc", "vi_bc", "nmi_mc", "vi_mc", "cka_linear", "cka_bc", "cka_rbf", "shape")
_UNITS = {"nmi_bc": "1", "vi_bc": "bits", "nmi_mc": "1", "vi_mc": "bits", "cka_linear": "1", "cka_bc": "1",
          "cka_rbf": "1", "shape": "1"}


def _spaces(mus: Any, logvars: Any, item_dim: str | None) -> tuple[list[np.ndarray], list[np.ndarray], list]:
    """Lists of (item, dim) float64 arrays, from arrays or DataArrays (dims by name), and the spaces' names."""
    out_mu, out_lv, names = [], [], []
    for k, (m, lv) in enumerate(zip(mus, logvars)):
        if isinstance(m, xr.DataArray):
            dim = item_dim or next((d for d in ("item", "image") if d in m.dims), None)
            if dim is None or dim not in m.dims:
                raise ValueError(f"space {k}: mu has dims {m.dims}; name its item dim with item_dim")
            other = [d for d in m.dims if d != dim]
            names.append(m.name if m.name is not None else k)
            m, lv = m.transpose(dim, *other).values, lv.transpose(dim, *other).values
        else:
            names.append(k)
        m, lv = np.asarray(m, np.float64), np.asarray(lv, np.float64)
        m, lv = (m[:, None], lv[:, None]) if m.ndim == 1 else (m, lv)
        if m.ndim != 2 or m.shape != lv.shape:
            raise ValueError(f"space {k}: mu and logvar must share a shape (item, dim), got {m.shape}, {lv.shape}")
        if not (np.isfinite(m).all() and np.isfinite(lv).all()):
            raise ValueError(f"space {k}: NaN or infinite posteriors")
        out_mu.append(m)
        out_lv.append(lv)
    if len(out_mu) < 2:
        raise ValueError(f"compare_spaces needs at least two spaces, got {len(out_mu)}")
    n = {m.shape[0] for m in out_mu}
    if len(n) != 1:
        raise ValueError(f"the spaces must share their items; they have {sorted(n)} items")
    return out_mu, out_lv, names


def compare_spaces(
    mus: Sequence[Any],
    logvars: Sequence[Any],
    measures: Sequence[str] | None = None,
    *,
    seed: int = 0,
    debiased: bool = False,
    mc_samples: int = 2000,
    shape_alpha: float = 1.0,
    shape_restarts: int = 8,
    item_dim: str | None = None,
) -> xr.Dataset:
    """Every measure between every two spaces.

    Parameters
    ----------
    mus, logvars : sequences of arrays (item, dim), or of DataArrays with an item dim (``item_dim``,
        by default "item" or "image") and one dim more
    measures : names from :data:`MEASURES` (default: all)
    seed : seeds the Monte Carlo streams (one per pair)
    debiased : the debiased HSIC estimator for the CKA measures
    mc_samples : samples per Monte Carlo information estimate
    shape_alpha, shape_restarts : alpha of the shape distance (0: means only, 1: 2-Wasserstein, 2:
        covariances only) and the seeded starts of its search over alignments

    Returns
    -------
    xarray.Dataset
        One variable per measure over (space_a, space_b), symmetric; ``*_mc_se`` standard errors.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(30, 2))
    >>> ds = compare_spaces([x, x @ [[0, 1], [-1, 0]], rng.normal(size=(30, 2))], [np.full((30, 2), -2.0)] * 3,
    ...                     measures=["cka_linear", "nmi_bc"])
    >>> round(float(ds.cka_linear[0, 1]), 6), round(float(ds.nmi_bc[0, 1]), 6)  # a rotated copy
    (1.0, 1.0)
    """
    measures = list(MEASURES if measures is None else measures)
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise ValueError(f"unknown measures {unknown}; measures are {', '.join(MEASURES)}")
    mu, lv, names = _spaces(mus, logvars, item_dim)
    s = len(mu)
    out: dict[str, np.ndarray] = {}
    bc = None
    if any(m in measures for m in ("nmi_bc", "vi_bc", "cka_bc")):
        bc = np.stack([kernels.bhattacharyya_coefficients(m, v) for m, v in zip(mu, lv)])  # (space, item, item)
    if any(m in measures for m in ("nmi_bc", "vi_bc", "cka_bc")):  # one pass over the BC rows gives all three
        res = kernels.pairwise_information(kernels.MatrixRows(bc), cka="cka_bc" in measures)
        nmi, vi = (kernels.to_numpy(x) for x in res.nmi_vi())
        for name, values in (("nmi_bc", nmi), ("vi_bc", vi), ("cka_bc", res.cka_bc)):
            if name in measures:
                out[name] = kernels.to_numpy(values)
    if "nmi_mc" in measures or "vi_mc" in measures:
        est = {k: np.full((s, s), np.nan) for k in ("nmi_mc", "nmi_mc_se", "vi_mc", "vi_mc_se")}
        root = np.random.SeedSequence(seed)
        streams = root.spawn(s * (s + 1) // 2)
        k = 0
        for a in range(s):
            for b in range(a, s):
                r = kernels.mc_compare(mu[a], lv[a], mu[b], lv[b], n_samples=mc_samples, seed=streams[k])
                k += 1
                for key, v in (("nmi_mc", r.nmi), ("nmi_mc_se", r.nmi_se), ("vi_mc", r.vi), ("vi_mc_se", r.vi_se)):
                    est[key][a, b] = est[key][b, a] = v
        for name in ("nmi_mc", "vi_mc"):
            if name in measures:
                out[name], out[f"{name}_se"] = est[name], est[f"{name}_se"]
    grams = {}
    if "cka_linear" in measures:
        grams["cka_linear"] = [kernels.linear_kernel(m) for m in mu]
    if "cka_rbf" in measures:
        grams["cka_rbf"] = [kernels.rbf_kernel(m, kernels.mean_posterior_std(v)) for m, v in zip(mu, lv)]
    for name, ks in grams.items():
        values = np.empty((s, s))
        for a in range(s):
            for b in range(a, s):
                values[a, b] = values[b, a] = kernels.cka(ks[a], ks[b], debiased=debiased)
        out[name] = values
    if "shape" in measures:
        values = np.full((s, s), np.nan)
        for a in range(s):
            for b in range(a, s):
                if mu[a].shape[1] == mu[b].shape[1]:
                    values[a, b] = values[b, a] = kernels.stochastic_shape_distance(
                        mu[a], np.exp(lv[a]), mu[b], np.exp(lv[b]), alpha=shape_alpha, n_restarts=shape_restarts,
                        seed=seed)
        out["shape"] = values
    pair = ("space_a", "space_b")
    data = {name: (pair, out[name], {"units": _UNITS.get(name.removesuffix("_se"), "1")})
            for name in [m for name in measures for m in (name, f"{name}_se") if m in out]}
    return xr.Dataset(data, coords={"space_a": names, "space_b": names},
                      attrs={"debiased_hsic": int(debiased), "mc_samples": int(mc_samples), "seed": int(seed),
                             "shape_alpha": float(shape_alpha)})


def measure_agreement(ds: xr.Dataset) -> xr.DataArray:
    """The Spearman correlation of every two measures over the distinct pairs of spaces: (measure_a, measure_b).

    Standard-error variables (``*_se``) are left out, and so are pairs where a measure is undefined
    (NaN, e.g. the shape distance between spaces of different dimension). A distance (VI, shape)
    correlates negatively with the similarities.
    """
    from scipy.stats import spearmanr

    names = [n for n in ds.data_vars if not str(n).endswith("_se")]
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
