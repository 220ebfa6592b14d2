"""Similarity measures between whole representation spaces, side by side (the paper's Sec. 4.1).

Each space is a set of diagonal-Gaussian posteriors over the same N items: ``mu``, ``logvar``
shaped (item, dim); spaces may differ in dim. :func:`compare_spaces` computes every measure for
every pair of spaces; :func:`repspace.agreement.measure_agreement` says how the measures agree (Spearman), and
:func:`repspace.agreement.measure_agreement_interval` adds its bootstrap interval over the spaces.

================ ========================================================================
measure          what it is
================ ========================================================================
nmi_bc           NMI from the spaces' Bhattacharyya matrices (the core's)
vi_bc            VI from the same (bits)
nmi_mc           NMI by Monte Carlo (``nmi_mc_se``: its standard error)
vi_mc            VI by Monte Carlo (bits; ``vi_mc_se``)
cka_linear       CKA with the linear kernel of the means
cka_bc           CKA with the Bhattacharyya matrices as kernels
cka_rbf          CKA with an RBF kernel of the means, bandwidth the space's mean posterior std
stochastic_shape the Gaussian stochastic shape distance (Duong et al. 2023), alpha 1 (2-Wasserstein)
                 by default (2: the means only, 0: the covariances only), over the posterior
                 variances, means centred; between spaces of one dimension only (NaN otherwise)
jsd_classifier   the Jensen-Shannon divergence (nats) between two classifiers' mean predicted
                 distributions, each classifier trained to name the item from a posterior sample
                 of its space (``classifier_information``: what each classifier recovers, bits)
================ ========================================================================

The measures fall into *families* computed together (:data:`FAMILIES`): the three
Bhattacharyya measures come from one pass over the BC matrices, the two Monte Carlo ones
from the same five estimates per pair.

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

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from . import kernels
from .agreement import AGREEMENT_METHOD, measure_agreement, measure_agreement_interval  # noqa: F401  (re-exported)
from ._checks import check_types
from .models.classifier import PAPER_CLASSIFIER, ClassifierOptions

__all__ = ["MEASURES", "FAMILIES", "ROW_FAMILIES", "MeasureOptions", "ClassifierOptions", "compare_spaces", "measure_agreement",
           "measure_agreement_interval", "AGREEMENT_METHOD",
           "family_of", "compute_family", "classifier_predictions", "jsd_matrix"]

FAMILIES: dict[str, tuple[str, ...]] = {
    "bc": ("nmi_bc", "vi_bc", "cka_bc"),
    "mc": ("nmi_mc", "vi_mc"),
    "cka_linear": ("cka_linear",),
    "cka_rbf": ("cka_rbf",),
    "stochastic_shape": ("stochastic_shape",),
    "jsd_classifier": ("jsd_classifier",),
}
"""Measures computed together, by family."""
MEASURES = tuple(m for members in FAMILIES.values() for m in members)
UNITS = {"nmi_bc": "1", "vi_bc": "bits", "nmi_mc": "1", "vi_mc": "bits", "cka_linear": "1", "cka_bc": "1",
         "cka_rbf": "1", "stochastic_shape": "1", "jsd_classifier": "nats"}
DISTANCES = ("vi_bc", "vi_mc", "stochastic_shape", "jsd_classifier")
"""The measures that are distances (0 for equal spaces); the rest are similarities (1 for equal spaces)."""


@dataclasses.dataclass(frozen=True)
class MeasureOptions:
    """How the measures are computed.

    Attributes
    ----------
    seed : seeds the Monte Carlo streams (one per pair), the shape search and the classifiers.
    debiased : the debiased HSIC estimator for the CKA measures.
    mc_samples : samples per Monte Carlo information estimate.
    shape_alpha : alpha of the shape distance, as in Duong et al. (2023) and netrep (2: the means only,
        1: the 2-Wasserstein distance, 0: the covariances only); see
        :func:`repspace.kernels.stochastic_shape_distance`.
    shape_restarts : seeded random starts of its search over alignments in each component of O(d),
        beside the Procrustes alignment of the means (0: that start alone; random starts cost
        seconds each between 10-dimensional spaces).
    classifier : ClassifierOptions of the classifier measure (default: the paper's).
    """

    seed: int = 0
    debiased: bool = False
    mc_samples: int = 2000
    shape_alpha: float = 1.0
    shape_restarts: int = 8
    classifier: ClassifierOptions = PAPER_CLASSIFIER

    def __post_init__(self) -> None:
        if isinstance(self.classifier, dict):
            object.__setattr__(self, "classifier", ClassifierOptions(**self.classifier))
        check_types(self, "")
        if self.mc_samples < 2:
            raise ValueError(f"mc_samples must be at least 2 (a standard error needs two), got {self.mc_samples}")
        if not 0.0 <= self.shape_alpha <= 2.0:
            raise ValueError(f"shape_alpha must be in [0, 2], got {self.shape_alpha}")
        if self.shape_restarts < 0:
            raise ValueError(f"shape_restarts must be 0 or more, got {self.shape_restarts}")

    def as_dict(self) -> dict[str, Any]:
        """The options as plain data (lists, not tuples): what a task gets and a stored result records."""
        d = dataclasses.asdict(self)
        d["classifier"]["hidden"] = list(d["classifier"]["hidden"])
        return d

    def of_family(self, family: str, measures: Sequence[str] | None = None) -> dict[str, Any]:
        """The options a family's values depend on (what a stored result records), for its ``measures``
        (default: all of the family's)."""
        keys = {"bc": (), "mc": ("seed", "mc_samples"), "cka_linear": ("debiased",), "cka_rbf": ("debiased",),
                "stochastic_shape": ("seed", "shape_alpha", "shape_restarts"),
                "jsd_classifier": ("seed", "classifier")}[family]
        d = self.as_dict()
        out = {k: d[k] for k in keys}
        if family == "bc" and (measures is None or "cka_bc" in measures):
            out["debiased"] = self.debiased  # cka_bc's estimator; NMI and VI do not depend on it
        return out


def family_of(measure: str) -> str:
    """The family a measure belongs to."""
    for family, members in FAMILIES.items():
        if measure in members:
            return family
    raise ValueError(f"unknown measure {measure!r}; measures are {', '.join(MEASURES)}")


def _spaces(mus: Any, logvars: Any, item_dim: str | None) -> tuple[list[np.ndarray], list[np.ndarray], list]:
    """Lists of (item, dim) float64 arrays, from arrays or DataArrays (dims by name), and the spaces' names."""
    if len(mus) != len(logvars):
        raise ValueError(f"{len(mus)} spaces of means but {len(logvars)} of log-variances")
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


def _pairs(s: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(s) for b in range(a, s)]


def _pair_matrix(s: int, value: Any, rows: Sequence[int] | None = None) -> np.ndarray:
    """An (s, s) symmetric matrix of ``value(a, b)`` over a <= b (only pairs with a in ``rows``, when given)."""
    out = np.full((s, s), np.nan)
    keep = None if rows is None else set(rows)
    for a, b in _pairs(s):
        if keep is None or a in keep:
            out[a, b] = out[b, a] = value(a, b)
    return out


class _Kernels:
    """The spaces' kernels (linear or RBF of the means), made a block at a time as slices are taken."""

    def __init__(self, family: str, mu: Sequence[np.ndarray], logvar: Sequence[np.ndarray]):
        self.family, self.mu, self.logvar = family, mu, logvar

    def __len__(self) -> int:
        return len(self.mu)

    def __getitem__(self, index: slice) -> np.ndarray:
        def one(k: int) -> np.ndarray:
            if self.family == "cka_linear":
                return kernels.linear_kernel(self.mu[k])
            return kernels.rbf_kernel(self.mu[k], kernels.mean_posterior_std(self.logvar[k]))
        return np.stack([one(k) for k in range(len(self.mu))[index]])


def classifier_predictions(mu: np.ndarray, logvar: np.ndarray, options: MeasureOptions, *,
                           threads: int | None = None) -> tuple[np.ndarray, float]:
    """One space's classifier: its mean predicted distributions (item, item) and the bits it recovers.

    The classifier is :func:`repspace.models.classifier.item_predictions` (TensorFlow); the bits are
    :func:`repspace.kernels.classifier_information`, log2 N minus the cross-entropy of the mean
    predicted distributions with the items' own names, the paper's "info in" line: log2 N for a
    classifier that names every item.
    """
    from .models.classifier import item_predictions  # TensorFlow, only when called

    pred, _ = item_predictions(mu, logvar, options.classifier, seed=options.seed, threads=threads)
    return pred, kernels.classifier_information(pred)


def jsd_matrix(predictions: Sequence[np.ndarray]) -> np.ndarray:
    """The classifier measure between every two spaces from their mean predicted distributions: (space, space)
    (:func:`repspace.kernels.jensen_shannon_matrix`)."""
    return kernels.jensen_shannon_matrix(predictions)


ROW_FAMILIES = ("mc", "stochastic_shape")
"""Families whose pairs cost enough to be split by rows (:func:`compute_family`'s ``rows``)."""


def compute_family(family: str, mu: Sequence[np.ndarray], logvar: Sequence[np.ndarray], options: MeasureOptions,
                   measures: Sequence[str] | None = None, *, rows: Sequence[int] | None = None,
                   ) -> dict[str, np.ndarray]:
    """The measures of one family between every two spaces.

    Parameters
    ----------
    family : a key of :data:`FAMILIES`.
    mu, logvar : the spaces, (item, dim) float64 each (checked by :func:`compare_spaces`).
    options : MeasureOptions.
    measures : the family's measures wanted (default: all of them).
    rows : for the families of :data:`ROW_FAMILIES`, only the pairs (a, b >= a) with a in ``rows``
        (the rest NaN); each pair's value is the same as in the whole matrix.

    Returns
    -------
    {name: (space, space) array}, with ``*_mc_se`` for the Monte Carlo measures and
    ``classifier_information`` (space,) for the classifier's.
    """
    wanted = list(FAMILIES[family] if measures is None else [m for m in measures if m in FAMILIES[family]])
    s = len(mu)
    out: dict[str, np.ndarray] = {}
    if family == "bc":
        bc = np.stack([kernels.bhattacharyya_coefficients(m, v) for m, v in zip(mu, logvar)])  # (space, item, item)
        res = kernels.pairwise_information(kernels.MatrixRows(bc), cka="cka_bc" in wanted and not options.debiased)
        nmi, vi = (kernels.to_numpy(x) for x in res.nmi_vi())
        if "cka_bc" in wanted:
            out["cka_bc"] = (kernels.to_numpy(res.cka_bc) if not options.debiased else
                             _pair_matrix(s, lambda a, b: kernels.cka(bc[a], bc[b], debiased=True)))
        out.update({k: v for k, v in (("nmi_bc", nmi), ("vi_bc", vi)) if k in wanted})
    elif family == "mc":
        streams = np.random.SeedSequence(options.seed).spawn(s * (s + 1) // 2)
        est = {k: np.full((s, s), np.nan) for k in ("nmi_mc", "nmi_mc_se", "vi_mc", "vi_mc_se")}
        for k, (a, b) in enumerate(_pairs(s)):
            if rows is not None and a not in rows:
                continue
            r = kernels.mc_compare(mu[a], logvar[a], mu[b], logvar[b], n_samples=options.mc_samples, seed=streams[k])
            for key, v in (("nmi_mc", r.nmi), ("nmi_mc_se", r.nmi_se), ("vi_mc", r.vi), ("vi_mc_se", r.vi_se)):
                est[key][a, b] = est[key][b, a] = v
        for name in wanted:
            out[name], out[f"{name}_se"] = est[name], est[f"{name}_se"]
    elif family == "cka_linear" and not options.debiased:
        out[family] = kernels.linear_cka_all_pairs(mu)  # from the features: no N x N kernel at all
    elif family in ("cka_linear", "cka_rbf"):
        out[family] = kernels.cka_all_pairs(_Kernels(family, mu, logvar), debiased=options.debiased)
    elif family == "stochastic_shape":
        def shape(a: int, b: int) -> float:
            if mu[a].shape[1] != mu[b].shape[1]:
                return np.nan
            return kernels.stochastic_shape_distance(mu[a], np.exp(logvar[a]), mu[b], np.exp(logvar[b]),
                                                     alpha=options.shape_alpha, n_restarts=options.shape_restarts,
                                                     seed=options.seed)
        out["stochastic_shape"] = _pair_matrix(s, shape, rows)
    elif family == "jsd_classifier":
        fits = [classifier_predictions(m, v, options) for m, v in zip(mu, logvar)]
        out["jsd_classifier"] = jsd_matrix([p for p, _ in fits])
        out["classifier_information"] = np.array([bits for _, bits in fits])
    else:
        raise ValueError(f"unknown family {family!r}; families are {', '.join(FAMILIES)}")
    return out


def measures_dataset(values: dict[str, np.ndarray], names: Sequence[Any], options: MeasureOptions) -> xr.Dataset:
    """The Dataset of :func:`compare_spaces` from the families' values."""
    pair = ("space_a", "space_b")
    data: dict[str, Any] = {}
    for name in [m for m in MEASURES for m in (m, f"{m}_se") if m in values]:
        data[name] = (pair, values[name], {"units": UNITS[name.removesuffix("_se")]})
    if "classifier_information" in values:
        data["classifier_information"] = ("space_a", values["classifier_information"],
                                          {"units": "bits", "long_name": "log2 N minus the cross-entropy of the "
                                           "space's classifier"})
    return xr.Dataset(data, coords={"space_a": list(names), "space_b": list(names)},
                      attrs={"debiased_hsic": int(options.debiased), "mc_samples": int(options.mc_samples),
                             "seed": int(options.seed), "shape_alpha": float(options.shape_alpha)})


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
    classifier: ClassifierOptions = PAPER_CLASSIFIER,
    item_dim: str | None = None,
) -> xr.Dataset:
    """Every measure between every two spaces.

    Parameters
    ----------
    mus, logvars : sequences of arrays (item, dim), or of DataArrays with an item dim (``item_dim``,
        by default "item" or "image") and one dim more
    measures : names from :data:`MEASURES` (default: all)
    seed, debiased, mc_samples, shape_alpha, shape_restarts, classifier : see :class:`MeasureOptions`.
        The classifier measure trains one TensorFlow MLP per space; with the paper's settings
        (the default) that is minutes per space on a laptop: pass a smaller ClassifierOptions
        to try it.

    Returns
    -------
    xarray.Dataset
        One variable per measure over (space_a, space_b), symmetric; ``*_mc_se`` standard errors;
        ``classifier_information`` (space_a,) with the classifier measure.

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
    families = list(dict.fromkeys(family_of(m) for m in measures))
    options = MeasureOptions(seed=seed, debiased=debiased, mc_samples=mc_samples, shape_alpha=shape_alpha,
                             shape_restarts=shape_restarts, classifier=classifier)
    mu, lv, names = _spaces(mus, logvars, item_dim)
    values: dict[str, np.ndarray] = {}
    for family in families:
        values.update(compute_family(family, mu, lv, options, measures))
    return measures_dataset(values, names, options)
