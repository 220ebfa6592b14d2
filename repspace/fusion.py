"""Fusion (the paper's Sec. 4.4): one representation space from an ensemble, by the information it shares.

The fused space is a set of diagonal-Gaussian posteriors ``mu``, ``logvar`` (item, dim) over the
ensemble's items. Its parameters are optimised by gradient ascent (plain SGD, gradients by
TensorFlow's automatic differentiation) to maximise the mean similarity with every member V_k of
the ensemble, all from Bhattacharyya fingerprints (DESIGN §1):

.. math::

    \\max_{\\mu, \\log\\sigma^2} \\frac1K \\sum_k s(U, V_k), \\qquad
    s \\in \\{ I(U;V) = I(U) + I(V) - I(U,V),\\; e^{-\\mathrm{VI}(U,V)},\\; \\mathrm{NMI}(U,V) \\}

with every I computed in log-sum-exp form from log BC, so nothing underflows:
``I(U,V) = -1/N sum_i (logsumexp_j(log BC^U_ij + log BC^V_ij) - log N)``. The objective is in
nats, as in the paper's code, so that its learning rate (3) carries over; the results are
reported in bits. (The paper's code leaves out the ``log N`` terms. They cancel in I(U;V)'s
gradient and in VI, but not in its NMI, whose numerator and denominator they shift; here NMI is
the core's.) The members' BC matrices are fixed; the fused space's are recomputed from its
parameters at every step. Means start at N(0, init_std^2) from a seeded numpy Generator,
log-variances at 0.

This module checks the input and reports the fused space with the kernels; the TensorFlow graph
and the ascent are :mod:`repspace.models.fusion`, and :func:`continuity` is
:func:`repspace.kernels.continuity`.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> line = np.linspace(-3, 3, 12)[:, None]
>>> ds = fuse(np.stack([line, line]), np.full((2, 12, 1), -2.0), dim=1, steps=300, learning_rate=1.0)
>>> ds.mu.shape, bool(ds.nmi.min() > 0.8)
((12, 1), True)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import xarray as xr

from . import kernels
from ._checks import check_types
from .kernels import continuity
from .models.fusion import SIMILARITIES, FusionDiverged, ascend, check_similarity, objective

__all__ = ["SIMILARITIES", "FuseOptions", "FusionDiverged", "fuse", "objective", "member_log_bc", "continuity"]


@dataclasses.dataclass(frozen=True)
class FuseOptions:
    """The options of :func:`fuse`, with their defaults and checks (the fusion stage's ``[fusion]`` table adds
    which channels to fuse to these, under the same names).

    Attributes
    ----------
    dim : dimensions of the fused space.
    similarity : "vi" (exp(-VI)), "information" (I(U;V)) or "nmi", averaged over the members and maximised.
    steps, learning_rate : plain gradient ascent (the paper: 20,000 steps at 3); 0 steps: the initial space.
    init_std : the initial means' standard deviation, N(0, init_std^2).
    dtype : "float32" (as the paper's code) or "float64", the precision of the optimisation.
    """

    dim: int = 2
    similarity: str = "vi"
    steps: int = 20_000
    learning_rate: float = 3.0
    init_std: float = 0.05
    dtype: str = "float32"

    def __post_init__(self) -> None:
        check_types(self, "")
        check_similarity(self.similarity)
        if self.dim < 1:
            raise ValueError(f"dim must be a positive integer, got {self.dim!r}")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate}")
        if not (math.isfinite(self.init_std) and self.init_std >= 0):
            raise ValueError(f"init_std must be 0 or more, got {self.init_std}")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")


def member_log_bc(mu: Any = None, logvar: Any = None, *, bc: Any = None) -> np.ndarray:
    """log BC of every member (unit, item, item) float64, floored at log 1e-300, from posteriors
    (unit, item) or (unit, item, d_unit), or from BC matrices (unit, item, item); checked."""
    if bc is not None:
        if mu is not None or logvar is not None:
            raise ValueError("give the members as posteriors (mu, logvar) or as BC matrices (bc), not both")
        bc = np.asarray(bc, np.float64)
        if bc.ndim != 3 or bc.shape[1] != bc.shape[2]:
            raise ValueError(f"bc must be (unit, item, item), got shape {bc.shape}")
        if bc.shape[0] == 0:
            raise ValueError("the ensemble is empty: nothing to fuse")
        if not np.isfinite(bc).all() or (bc < 0).any() or (bc > 1 + 1e-9).any():
            raise ValueError("bc must hold Bhattacharyya coefficients: finite, in [0, 1]")
        return np.log(np.clip(bc, 1e-300, 1.0))
    if mu is None or logvar is None:
        raise ValueError("give the members' mu and logvar, or their BC matrices (bc=...)")
    mu, logvar = np.asarray(mu, np.float64), np.asarray(logvar, np.float64)
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must share a shape, got {mu.shape} and {logvar.shape}")
    if mu.ndim == 2:
        mu, logvar = mu[..., None], logvar[..., None]
    if mu.ndim != 3:
        raise ValueError(f"members must be (unit, item) or (unit, item, d_unit), got shape {mu.shape}")
    if mu.shape[0] == 0:
        raise ValueError("the ensemble is empty: nothing to fuse")
    bad = [k for k in range(mu.shape[0]) if not (np.isfinite(mu[k]).all() and np.isfinite(logvar[k]).all())]
    if bad:
        raise ValueError(f"members {bad[:10]} have NaN or infinite posteriors")
    bc = np.stack([kernels.bhattacharyya_coefficients(m, v) for m, v in zip(mu, logvar)])
    return np.log(np.clip(bc, 1e-300, 1.0))


def fuse(
    mu: Any = None,
    logvar: Any = None,
    *,
    dim: int,
    bc: Any = None,
    similarity: str = FuseOptions.similarity,
    steps: int = FuseOptions.steps,
    learning_rate: float = FuseOptions.learning_rate,
    seed: int = 0,
    init_std: float = FuseOptions.init_std,
    record_every: int = 100,
    dtype: str = FuseOptions.dtype,
    threads: int | None = None,
) -> xr.Dataset:
    """Fuse an ensemble of units over one set of items into one ``dim``-dimensional space.

    Parameters
    ----------
    mu, logvar : the members' posteriors, (unit, item) or (unit, item, d_unit); or leave them out and
        give ``bc``, the members' BC matrices (unit, item, item).
    dim, similarity, steps, learning_rate, init_std, dtype : as :class:`FuseOptions` (I and VI in nats
        inside the objective; the results are recomputed in float64 by the kernels).
    seed : seeds the initial means, N(0, ``init_std``^2); log-variances start at 0.
    record_every : steps between the points of the objective's curve.
    threads : TensorFlow's thread pools, where this process has not started them yet (None: as they are).

    Returns
    -------
    xarray.Dataset
        ``mu``, ``logvar`` (item, dim); ``objective`` (step); the fused space's ``nmi``, ``vi`` (bits)
        and ``mutual_information`` (bits) with each member (member); its ``information`` I(U) (bits).
        Deterministic for a seed on one machine; runs on a GPU when TensorFlow sees one.
    """
    if isinstance(dim, np.integer):
        dim = int(dim)
    FuseOptions(dim=dim, similarity=similarity, steps=steps, learning_rate=learning_rate, init_std=init_std, dtype=dtype)
    if record_every < 1:
        raise ValueError(f"record_every must be >= 1, got {record_every}")
    log_v = member_log_bc(mu, logvar, bc=bc)
    k, n = log_v.shape[0], log_v.shape[1]
    if n < 2:
        raise ValueError(f"fusion needs at least two items, got {n}")
    mu_u, lv_u, curve_steps, curve = ascend(log_v, dim=dim, similarity=similarity, steps=steps,
                                            learning_rate=learning_rate, seed=seed, init_std=init_std,
                                            record_every=record_every, dtype=dtype, threads=threads)
    bc_u = kernels.bhattacharyya_coefficients(mu_u, lv_u)
    res = kernels.pairwise_information(kernels.MatrixRows(bc_u[None]), kernels.MatrixRows(np.exp(log_v)))
    nmi, vi = (kernels.to_numpy(x)[0] for x in res.nmi_vi())
    i_u = float(kernels.to_numpy(res.information_a)[0])
    mi = _mutual_information(res)
    return xr.Dataset(
        {"mu": (("item", "dim"), mu_u, {"long_name": "fused posterior means"}),
         "logvar": (("item", "dim"), lv_u, {"long_name": "fused posterior log-variances"}),
         "objective": ("step", curve, {"long_name": f"mean similarity ({similarity}) with the members",
                                       "units": "nats" if similarity == "information" else "1"}),
         "nmi": ("member", nmi, {"units": "1"}),
         "vi": ("member", vi, {"units": "bits"}),
         "mutual_information": ("member", mi, {"units": "bits", "long_name": "I(U;V) with each member"})},
        coords={"item": np.arange(n), "dim": np.arange(dim), "step": curve_steps, "member": np.arange(k)},
        attrs={"similarity": similarity, "steps": int(steps), "learning_rate": float(learning_rate), "seed": int(seed),
               "init_std": float(init_std), "dtype": dtype, "information_bits": i_u})


def _mutual_information(res: Any) -> np.ndarray:
    """I(U;V) = I(U) + I(V) - I(U,V) of the fused space (row 0) with each member, from a cross result."""
    a = kernels.to_numpy(res.information_a)[0]
    b = kernels.to_numpy(res.information_b)
    joint = kernels.to_numpy(res.joint_information)[0]
    return a + b - joint
