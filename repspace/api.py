"""The public API: thin wrappers that call the kernels and label results with xarray."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from . import kernels
from .kernels import BlockOptions, MCComparison, MCOptions
from .kernels._array import to_numpy

__all__ = [
    "bhattacharyya",
    "compare",
    "compare_channels",
    "compare_factors",
    "label_coefficients",
    "mc_information",
    "mc_compare",
    "information_dataset",
]

BITS = {"units": "bits"}


def bhattacharyya(mu: Any, logvar: Any) -> Any:
    """Bhattacharyya coefficients between the posteriors of every pair of images.

    Parameters
    ----------
    mu, logvar : array, shape (..., image, dim)
        Diagonal-Gaussian posteriors (numpy or cupy), float32 or float64.

    Returns
    -------
    array, shape (..., image, image)
        BC_ij = exp(-D_ij) in (0, 1], with ones on the diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> bc = bhattacharyya(np.array([[0.0], [1.0], [20.0]]), np.zeros((3, 1)))
    >>> bc.round(4)  # exp(-(mu_i - mu_j)^2 / 8) for unit variances
    array([[1.    , 0.8825, 0.    ],
           [0.8825, 1.    , 0.    ],
           [0.    , 0.    , 1.    ]])
    """
    return kernels.bhattacharyya_coefficients(mu, logvar)


def label_coefficients(labels: Any) -> Any:
    """BC matrices of ground-truth factors, shape (factor, image, image), from labels (image, factor)."""
    return kernels.label_coefficients(labels)


def information_dataset(
    result: kernels.PairwiseInformation,
    *,
    same: bool,
    units_a: Sequence[Any] | None = None,
    units_b: Sequence[Any] | None = None,
) -> xr.Dataset:
    """Label a :class:`~repspace.kernels.PairwiseInformation` as an xarray Dataset.

    One set of units (``same``): ``information`` and ``information_twice`` over ``unit``; two sets:
    ``information_a``, ``information_twice_a`` over ``unit_a`` and ``information_b``, ``information_twice_b`` over
    ``unit_b``. Always ``joint_information``, ``nmi`` and ``vi`` over (unit_a, unit_b).
    """
    nmi, vi = result.nmi_vi()
    host = {k: to_numpy(v) for k, v in vars(result).items()}
    nmi, vi = to_numpy(nmi), to_numpy(vi)
    n_a, n_b = host["joint_information"].shape
    ua = np.arange(n_a) if units_a is None else np.asarray(units_a)
    ub = np.arange(n_b) if units_b is None else np.asarray(units_b)
    pair = ("unit_a", "unit_b")
    data: dict[str, Any] = {
        "joint_information": (pair, host["joint_information"], {**BITS, "long_name": "I(U,V)"}),
        "nmi": (pair, nmi, {"units": "1", "long_name": "normalized mutual information"}),
        "vi": (pair, vi, {**BITS, "long_name": "variation of information"}),
    }
    if same:
        data["information"] = ("unit", host["information_a"], {**BITS, "long_name": "I(U)"})
        data["information_twice"] = ("unit", host["information_twice_a"], {**BITS, "long_name": "I(U,U')"})
        coords = {"unit": ua, "unit_a": ua, "unit_b": ua}
    else:
        for side in ("a", "b"):
            data[f"information_{side}"] = (f"unit_{side}", host[f"information_{side}"], {**BITS, "long_name": "I(U)"})
            data[f"information_twice_{side}"] = (f"unit_{side}", host[f"information_twice_{side}"], {**BITS, "long_name": "I(U,U')"})
        coords = {"unit_a": ua, "unit_b": ub}
    return xr.Dataset(data, coords=coords)


def compare(bc: Any, bc_b: Any | None = None, *, options: BlockOptions | None = None) -> xr.Dataset:
    """Information of units and of every pair of units, from their BC matrices.

    .. math::

        I(U) = -\\frac{1}{N}\\sum_i \\log_2 \\frac{1}{N}\\sum_j BC^U_{ij}, \\qquad
        I(U,V) = -\\frac{1}{N}\\sum_i \\log_2 \\frac{1}{N}\\sum_j BC^U_{ij} BC^V_{ij}

    Parameters
    ----------
    bc : array, shape (unit, image, image)
    bc_b : array, shape (unit, image, image), optional
        A second set of units over the same images.

    Returns
    -------
    xarray.Dataset
        ``information``, ``information_twice`` (unit) [or ``information_a``/``information_b`` ... with two sets], and
        ``joint_information``, ``nmi``, ``vi`` over (unit_a, unit_b); bits.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.array([[0], [0], [1], [1]])
    >>> ds = compare(label_coefficients(labels))
    >>> float(ds["information"][0]), float(ds.nmi[0, 0]), float(ds.vi[0, 0])
    (1.0, 1.0, 0.0)
    """
    a = kernels.MatrixRows(bc)
    b = None if bc_b is None else kernels.MatrixRows(bc_b)
    return information_dataset(kernels.pairwise_information(a, b, options=options), same=b is None)


def compare_channels(
    mu: Any,
    logvar: Any,
    mu_b: Any | None = None,
    logvar_b: Any | None = None,
    *,
    options: BlockOptions | None = None,
) -> xr.Dataset:
    """All-pairs information of units given by their posteriors, never holding every BC matrix.

    Parameters
    ----------
    mu, logvar : array, shape (unit, image) or (unit, image, dim)
    mu_b, logvar_b : array, optional
        A second set of units over the same images.
    options : BlockOptions
        Unit and row block sizes, or a memory budget.

    Returns
    -------
    xarray.Dataset
        As :func:`compare`.
    """
    a = kernels.PosteriorRows(mu, logvar)
    b = None if mu_b is None else kernels.PosteriorRows(mu_b, logvar_b)
    return information_dataset(kernels.pairwise_information(a, b, options=options), same=b is None)


def compare_factors(
    mu: Any,
    logvar: Any,
    labels: Any,
    *,
    factor_names: Sequence[str] | None = None,
    options: BlockOptions | None = None,
) -> xr.Dataset:
    """Every unit against every ground-truth factor: NMI and VI over (unit_a, unit_b = factor).

    Parameters
    ----------
    mu, logvar : array, shape (unit, image) or (unit, image, dim)
    labels : integer array, shape (image, factor)
    factor_names : names of the factors, used as the ``unit_b`` coordinate
    """
    a = kernels.PosteriorRows(mu, logvar)
    b = kernels.LabelRows(labels, a.dtype)
    return information_dataset(kernels.pairwise_information(a, b, options=options), same=False, units_b=factor_names)


def mc_information(
    mu: Any, logvar: Any, *, n_samples: int, seed: int, options: MCOptions | None = None
) -> tuple[float, float]:
    """Monte Carlo I(U;X) of a whole latent space, in bits: (estimate, standard error).

    Parameters
    ----------
    mu, logvar : array, shape (image, dim)
    n_samples : number of samples
    seed : seed of the numpy Generator that draws them
    """
    est = kernels.mc_information(mu, logvar, n_samples=n_samples, rng=np.random.default_rng(seed), options=options)
    return est.bits, est.se


def mc_compare(
    mu_a: Any,
    logvar_a: Any,
    mu_b: Any,
    logvar_b: Any,
    *,
    n_samples: int,
    seed: int,
    options: MCOptions | None = None,
) -> MCComparison:
    """Monte Carlo NMI and VI (with standard errors) between two whole latent spaces.

    Parameters
    ----------
    mu_a, logvar_a : array, shape (image, dim_a)
    mu_b, logvar_b : array, shape (image, dim_b)
    n_samples : samples per information estimate
    seed : seed for the five independent streams

    Returns
    -------
    MCComparison
        ``nmi``, ``nmi_se``, ``vi``, ``vi_se`` and the five estimates behind them.
    """
    return kernels.mc_compare(mu_a, logvar_a, mu_b, logvar_b, n_samples=n_samples, seed=seed, options=options)
