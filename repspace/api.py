"""The public API: thin wrappers that call the kernels and label results with xarray.

**One axis convention.** Posteriors are arrays ``(unit..., image[, dim])``: leading axes
enumerate units, then come the images, then the dimensions of each unit's posterior. The
``dim`` axis may be left out where units are one-dimensional (latent channels). A whole
latent space (``mc_*``) is one unit: ``(image, dim)``. Labelled input works too: pass
``xarray.DataArray`` s and the axes are found by name, as xskillscore does: ``image_dim``
(default ``"image"``) holds the images, ``dim`` (default None: every unit is one-dimensional;
for ``mc_*``: the one dim that is not ``image_dim``) the dimensions of each unit, and every
other dim enumerates units, whose labels come back as coordinates along ``unit``.
"""

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


def _units(mu: Any, logvar: Any, *, dim: str | None, image_dim: str) -> tuple[Any, Any, dict[str, np.ndarray], tuple]:
    """Plain arrays as they are; DataArrays as (unit, image[, dim]) arrays, with the labels of each
    unit (one array per enumerating dim) and the enumerating dims' names and sizes."""
    if not isinstance(mu, xr.DataArray):
        return mu, logvar, {}, ()
    if not isinstance(logvar, xr.DataArray) or set(logvar.dims) != set(mu.dims):
        raise ValueError(f"logvar must be a DataArray with the dims of mu {mu.dims}")
    for need in (image_dim,) + ((dim,) if dim else ()):
        if need not in mu.dims:
            raise ValueError(f"mu has dims {mu.dims}; expected a {need!r} dim")
    lead = [d for d in mu.dims if d not in (image_dim, dim)]
    order = [*lead, image_dim, *([dim] if dim else [])]
    m, lv = mu.transpose(*order), logvar.transpose(*order)
    tail = (m.sizes[image_dim],) + ((m.sizes[dim],) if dim else ())
    labels: dict[str, np.ndarray] = {}
    if lead:
        grid = np.meshgrid(*[np.asarray(m[d].values) for d in lead], indexing="ij")
        labels = {d: g.ravel() for d, g in zip(lead, grid)}
    return (np.asarray(m.values).reshape(-1, *tail), np.asarray(lv.values).reshape(-1, *tail), labels,
            tuple((d, m.sizes[d]) for d in lead))


def _label(ds: xr.Dataset, labels_a: dict[str, np.ndarray], labels_b: dict[str, np.ndarray], same: bool) -> xr.Dataset:
    coords = {}
    for side, labels in (("a", labels_a), ("b", labels_a if same else labels_b)):
        coords.update({f"{k}_{side}": (f"unit_{side}", v) for k, v in labels.items()})
    if same:
        coords.update({k: ("unit", v) for k, v in labels_a.items()})
    return ds.assign_coords(coords)


def bhattacharyya(mu: Any, logvar: Any, *, dim: str | None = None, image_dim: str = "image") -> Any:
    """Bhattacharyya coefficients between the posteriors of every pair of images.

    .. math::

        BC_{ij} = \\exp\\Big(-\\tfrac18 \\sum_k \\frac{(\\mu_{ik}-\\mu_{jk})^2}{\\bar s^2_k}
                  - \\tfrac12 \\sum_k \\big[\\log \\bar s^2_k - \\tfrac12(\\log s^2_{ik} + \\log s^2_{jk})\\big]\\Big),
        \\quad \\bar s^2_k = \\tfrac12 (s^2_{ik} + s^2_{jk})

    Parameters
    ----------
    mu, logvar : array, shape (..., image, dim), numpy or cupy, float32 or float64; or
        DataArrays with an ``image_dim`` dim (and ``dim``, the dims of each unit's posterior;
        None: every entry of the other dims is a one-dimensional unit).

    Returns
    -------
    array, shape (..., image, image), or a DataArray (..., image_a, image_b)
        BC_ij = exp(-D_ij) in (0, 1], with ones on the diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> bc = bhattacharyya(np.array([[0.0], [1.0], [20.0]]), np.zeros((3, 1)))
    >>> bc.round(4)  # exp(-(mu_i - mu_j)^2 / 8) for unit variances
    array([[1.    , 0.8825, 0.    ],
           [0.8825, 1.    , 0.    ],
           [0.    , 0.    , 1.    ]])
    >>> da = xr.DataArray(np.zeros((2, 3, 4)), dims=("model", "image", "channel"))
    >>> bhattacharyya(da, da, dim="channel").dims
    ('model', 'image_a', 'image_b')
    """
    if not isinstance(mu, xr.DataArray):
        return kernels.bhattacharyya_coefficients(mu, logvar)
    m, lv, _, lead = _units(mu, logvar, dim=dim, image_dim=image_dim)
    if dim is None:
        m, lv = m[..., None], lv[..., None]
    bc = to_numpy(kernels.bhattacharyya_coefficients(m, lv)).reshape(*[s for _, s in lead], m.shape[1], m.shape[1])
    names = [d for d, _ in lead]
    return xr.DataArray(bc, dims=(*names, "image_a", "image_b"), coords={d: mu[d].values for d in names if d in mu.coords},
                        attrs={"units": "1", "long_name": "Bhattacharyya coefficient"})


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
    ``information_a``, ``information_twice_a`` over ``unit_a`` and ``information_b``,
    ``information_twice_b`` over ``unit_b``. Always ``joint_information``, ``nmi`` and ``vi`` over
    (unit_a, unit_b).
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
            data[f"information_twice_{side}"] = (f"unit_{side}", host[f"information_twice_{side}"],
                                                 {**BITS, "long_name": "I(U,U')"})
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
        ``information``, ``information_twice`` (unit) [or ``information_a``/``information_b`` ...
        with two sets], and ``joint_information``, ``nmi``, ``vi`` over (unit_a, unit_b); bits.

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
    dim: str | None = None,
    image_dim: str = "image",
    options: BlockOptions | None = None,
) -> xr.Dataset:
    """All-pairs information of units given by their posteriors, never holding every BC matrix.

    .. math::

        NMI(U,V) = \\frac{I(U) + I(V) - I(U,V)}{\\sqrt{(2I(U) - I(U,U'))\\,(2I(V) - I(V,V'))}}, \\qquad
        VI(U,V) = 2I(U,V) - I(U,U') - I(V,V')

    Parameters
    ----------
    mu, logvar : array, shape (unit, image) or (unit, image, dim); or DataArrays (see the module
        docstring: with dims (model, channel, image), every channel of every model is a unit)
    mu_b, logvar_b : optional, a second set of units over the same images.
    dim, image_dim : names of the dims of labelled input.
    options : BlockOptions
        Unit and row block sizes, or a memory budget.

    Returns
    -------
    xarray.Dataset
        As :func:`compare`; labelled input's unit labels come back as coordinates along ``unit``
        (``unit_a``, ``unit_b``), e.g. ``model_a`` and ``channel_a``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mu = xr.DataArray(rng.normal(size=(2, 3, 50)), dims=("model", "channel", "image"),
    ...                   coords={"model": ["m0", "m1"]})
    >>> ds = compare_channels(mu, xr.full_like(mu, -2.0))
    >>> ds["nmi"].dims, ds["model_a"].values.tolist()
    (('unit_a', 'unit_b'), ['m0', 'm0', 'm0', 'm1', 'm1', 'm1'])
    """
    m, lv, labels_a, _ = _units(mu, logvar, dim=dim, image_dim=image_dim)
    a = kernels.PosteriorRows(m, lv)
    b, labels_b = None, {}
    if mu_b is not None:
        m_b, lv_b, labels_b, _ = _units(mu_b, logvar_b, dim=dim, image_dim=image_dim)
        b = kernels.PosteriorRows(m_b, lv_b)
    ds = information_dataset(kernels.pairwise_information(a, b, options=options), same=b is None)
    return _label(ds, labels_a, labels_b, same=b is None)


def compare_factors(
    mu: Any,
    logvar: Any,
    labels: Any,
    *,
    factor_names: Sequence[str] | None = None,
    dim: str | None = None,
    image_dim: str = "image",
    options: BlockOptions | None = None,
) -> xr.Dataset:
    """Every unit against every ground-truth factor: NMI and VI over (unit_a, unit_b = factor).

    Parameters
    ----------
    mu, logvar : array, shape (unit, image) or (unit, image, dim), or DataArrays (module docstring)
    labels : integer array, shape (image, factor), or a DataArray with ``image_dim`` and one factor dim
        (whose coordinate names the factors)
    factor_names : names of the factors, used as the ``unit_b`` coordinate
    """
    m, lv, labels_a, _ = _units(mu, logvar, dim=dim, image_dim=image_dim)
    if isinstance(labels, xr.DataArray):
        other = [d for d in labels.dims if d != image_dim]
        if len(other) != 1:
            raise ValueError(f"labels must have dims ({image_dim!r}, factor), got {labels.dims}")
        labels = labels.transpose(image_dim, other[0])
        if factor_names is None and other[0] in labels.coords:
            factor_names = [str(f) for f in labels[other[0]].values]
        labels = labels.values
    a = kernels.PosteriorRows(m, lv)
    b = kernels.LabelRows(labels, a.dtype)
    ds = information_dataset(kernels.pairwise_information(a, b, options=options), same=False, units_b=factor_names)
    return _label(ds, labels_a, {}, same=False)


def _space(mu: Any, logvar: Any, image_dim: str) -> tuple[Any, Any]:
    """A whole latent space as (image, dim) arrays; a DataArray by its dim names."""
    if not isinstance(mu, xr.DataArray):
        return mu, logvar
    other = [d for d in mu.dims if d != image_dim]
    if image_dim not in mu.dims or len(other) != 1:
        raise ValueError(f"a latent space needs dims ({image_dim!r}, <dim>), got {mu.dims}")
    return mu.transpose(image_dim, other[0]).values, logvar.transpose(image_dim, other[0]).values


def mc_information(
    mu: Any, logvar: Any, *, n_samples: int, seed: int, image_dim: str = "image", options: MCOptions | None = None
) -> tuple[float, float]:
    """Monte Carlo I(U;X) of a whole latent space, in bits: (estimate, standard error).

    .. math::

        I(U;X) = \\mathbb{E}_{i,\\,u \\sim p(u|x_i)}\\Big[\\log_2 p(u|x_i) - \\log_2 \\tfrac1M \\textstyle\\sum_j p(u|x_j)\\Big]

    Parameters
    ----------
    mu, logvar : array, shape (image, dim); or DataArrays with ``image_dim`` and one other dim
    n_samples : number of samples
    seed : seed of the numpy Generator that draws them

    Examples
    --------
    >>> mu = np.repeat([[0.0], [100.0]], 50, axis=0)  # two far-apart clusters: one bit
    >>> bits, se = mc_information(mu, np.zeros_like(mu), n_samples=200, seed=0)
    >>> round(bits, 3)
    1.0
    """
    mu, logvar = _space(mu, logvar, image_dim)
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
    image_dim: str = "image",
    options: MCOptions | None = None,
) -> MCComparison:
    """Monte Carlo NMI and VI (with standard errors) between two whole latent spaces.

    Parameters
    ----------
    mu_a, logvar_a : array, shape (image, dim_a), or DataArrays (see :func:`mc_information`)
    mu_b, logvar_b : array, shape (image, dim_b)
    n_samples : samples per information estimate
    seed : seed for the five independent streams

    Returns
    -------
    MCComparison
        ``nmi``, ``nmi_se``, ``vi``, ``vi_se`` and the five estimates behind them.
    """
    mu_a, logvar_a = _space(mu_a, logvar_a, image_dim)
    mu_b, logvar_b = _space(mu_b, logvar_b, image_dim)
    return kernels.mc_compare(mu_a, logvar_a, mu_b, logvar_b, n_samples=n_samples, seed=seed, options=options)
