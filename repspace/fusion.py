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

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> line = np.linspace(-3, 3, 12)[:, None]
>>> ds = fuse(np.stack([line, line]), np.full((2, 12, 1), -2.0), dim=1, steps=300, learning_rate=1.0)
>>> ds.mu.shape, bool(ds.nmi.min() > 0.8)
((12, 1), True)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from . import kernels

__all__ = ["SIMILARITIES", "FusionDiverged", "fuse", "objective", "member_log_bc", "continuity"]

SIMILARITIES = ("information", "vi", "nmi")
"""What fusion maximises, averaged over the members: I(U;V), exp(-VI) (both in nats), or NMI."""


class FusionDiverged(RuntimeError):
    """The ascent left the finite numbers (too large a learning rate)."""


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


def _graph(tf, log_bc_members, similarity: str, dtype):
    """The objective as a TensorFlow function of (mu, logvar): (mean similarity, per-member parts)."""
    v = tf.constant(log_bc_members, dtype=dtype)  # (K, N, N)
    n = log_bc_members.shape[1]
    log_n = math.log(n)

    def info(log_bc):  # I from log BC (..., N, N), nats
        return -tf.reduce_mean(tf.reduce_logsumexp(log_bc, axis=-1) - log_n, axis=-1)

    i_v, i_vv = info(v), info(2.0 * v)  # constants of the members

    def f(mu, logvar):
        var = tf.exp(logvar)
        sb2 = 0.5 * (var[:, None, :] + var[None, :, :])
        d2 = tf.square(mu[:, None, :] - mu[None, :, :])
        dist = tf.reduce_sum(0.125 * d2 / sb2 + 0.5 * (tf.math.log(sb2) - 0.5 * (logvar[:, None, :] +
                                                                                   logvar[None, :, :])), axis=-1)
        u = -dist  # log BC of the fused space (N, N)
        i_u, i_uu = info(u), info(2.0 * u)
        i_uv = info(u[None] + v)  # (K,)
        if similarity == "information":
            s = i_u + i_v - i_uv
        elif similarity == "vi":
            s = tf.exp(-(2.0 * i_uv - i_uu - i_vv))
        else:
            s = (i_u + i_v - i_uv) / tf.sqrt(tf.maximum((2.0 * i_u - i_uu) * (2.0 * i_v - i_vv), 1e-30))
        return tf.reduce_mean(s), s

    return f


def objective(mu: np.ndarray, logvar: np.ndarray, log_bc_members: np.ndarray, similarity: str = "vi",
              ) -> tuple[float, np.ndarray, np.ndarray]:
    """The fusion objective at (mu, logvar) (item, dim) and its gradients, in float64: (value, d/dmu, d/dlogvar)."""
    from ._quiet import import_tensorflow

    tf = import_tensorflow()
    f = _graph(tf, np.asarray(log_bc_members, np.float64), _check_similarity(similarity), tf.float64)
    m, lv = tf.Variable(np.asarray(mu, np.float64)), tf.Variable(np.asarray(logvar, np.float64))
    with tf.GradientTape() as tape:
        value, _ = f(m, lv)
    gm, gl = tape.gradient(value, [m, lv])
    return float(value.numpy()), gm.numpy(), gl.numpy()


def _check_similarity(similarity: str) -> str:
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}, got {similarity!r}")
    return similarity


def fuse(
    mu: Any = None,
    logvar: Any = None,
    *,
    dim: int,
    bc: Any = None,
    similarity: str = "vi",
    steps: int = 20_000,
    learning_rate: float = 3.0,
    seed: int = 0,
    init_std: float = 0.05,
    record_every: int = 100,
    dtype: str = "float32",
    threads: int | None = None,
) -> xr.Dataset:
    """Fuse an ensemble of units over one set of items into one ``dim``-dimensional space.

    Parameters
    ----------
    mu, logvar : the members' posteriors, (unit, item) or (unit, item, d_unit); or leave them out and
        give ``bc``, the members' BC matrices (unit, item, item).
    dim : dimensions of the fused space.
    similarity : "vi" (exp(-VI), the default), "information" (I(U;V)) or "nmi"; averaged over the
        members and maximised (I and VI in nats inside the objective).
    steps, learning_rate : plain gradient ascent (the paper: 20,000 steps at 3).
    seed : seeds the initial means, N(0, ``init_std``^2); log-variances start at 0.
    record_every : steps between the points of the objective's curve.
    dtype : "float32" (the default, as the paper's code) or "float64", the precision of the
        optimisation; the results are recomputed in float64 by the kernels.
    threads : TensorFlow's thread pools, where this process has not started them yet (None: as they are).

    Returns
    -------
    xarray.Dataset
        ``mu``, ``logvar`` (item, dim); ``objective`` (step); the fused space's ``nmi``, ``vi`` (bits)
        and ``mutual_information`` (bits) with each member (member); its ``information`` I(U) (bits).
        Deterministic for a seed on one machine; runs on a GPU when TensorFlow sees one.
    """
    from ._quiet import import_tensorflow

    similarity = _check_similarity(similarity)
    if not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    if steps < 0 or record_every < 1:
        raise ValueError(f"steps must be >= 0 and record_every >= 1, got {steps}, {record_every}")
    if not (learning_rate > 0 and math.isfinite(learning_rate)):
        raise ValueError(f"learning_rate must be positive, got {learning_rate}")
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    log_v = member_log_bc(mu, logvar, bc=bc)
    k, n = log_v.shape[0], log_v.shape[1]
    if n < 2:
        raise ValueError(f"fusion needs at least two items, got {n}")
    from .models.tf_mlp import set_threads

    tf = import_tensorflow()
    set_threads(tf, threads)
    tdt = tf.float64 if dtype == "float64" else tf.float32
    f = _graph(tf, log_v, similarity, tdt)
    rng = np.random.default_rng(seed)
    m = tf.Variable(rng.normal(0.0, init_std, size=(n, dim)), dtype=tdt)
    lv = tf.Variable(np.zeros((n, dim)), dtype=tdt)
    lr = tf.constant(learning_rate, tdt)

    @tf.function(reduce_retracing=True)
    def ascend(count):
        for _ in tf.range(count):
            with tf.GradientTape() as tape:
                value, _ = f(m, lv)
            gm, gl = tape.gradient(value, [m, lv])
            m.assign_add(lr * gm)
            lv.assign_add(lr * gl)
        value, _ = f(m, lv)
        return value

    curve_steps, curve = [0], [float(f(m, lv)[0].numpy())]
    done = 0
    while done < steps:
        count = min(record_every, steps - done)
        value = float(ascend(tf.constant(count)).numpy())
        done += count
        curve_steps.append(done)
        curve.append(value)
        if not math.isfinite(value):
            raise FusionDiverged(f"fusion diverged at step {done} (objective {value}); lower learning_rate")
    mu_u, lv_u = m.numpy().astype(np.float64), lv.numpy().astype(np.float64)
    bc_u = kernels.bhattacharyya_coefficients(mu_u, lv_u)
    res = kernels.pairwise_information(kernels.MatrixRows(bc_u[None]), kernels.MatrixRows(np.exp(log_v)))
    nmi, vi = (kernels.to_numpy(x)[0] for x in res.nmi_vi())
    i_u = float(kernels.to_numpy(res.information_a)[0])
    mi = _mutual_information(res)
    return xr.Dataset(
        {"mu": (("item", "dim"), mu_u, {"long_name": "fused posterior means"}),
         "logvar": (("item", "dim"), lv_u, {"long_name": "fused posterior log-variances"}),
         "objective": ("step", np.asarray(curve), {"long_name": f"mean similarity ({similarity}) with the members",
                                                    "units": "nats" if similarity == "information" else "1"}),
         "nmi": ("member", nmi, {"units": "1"}),
         "vi": ("member", vi, {"units": "bits"}),
         "mutual_information": ("member", mi, {"units": "bits", "long_name": "I(U;V) with each member"})},
        coords={"item": np.arange(n), "dim": np.arange(dim), "step": np.asarray(curve_steps), "member": np.arange(k)},
        attrs={"similarity": similarity, "steps": int(steps), "learning_rate": float(learning_rate), "seed": int(seed),
               "init_std": float(init_std), "dtype": dtype, "information_bits": i_u})


def continuity(mu: np.ndarray, logvar: np.ndarray, *, percentile: float = 90.0, closed: bool = True) -> float:
    """How continuously a space holds items that lie in order on a loop (the paper's SO(2) metric).

    .. math::  C = \\frac{\\max_i D_{i,i+1}}{P_{90}(D_{i,i+1})}

    the largest Bhattacharyya distance between neighbouring items over its ``percentile``-th
    percentile: about 1 for a space that keeps every neighbour close, large where it tears the
    loop apart somewhere. mu, logvar : (item, dim), items in their order on the loop; ``closed``
    counts the last and the first as neighbours (the paper's code leaves that pair out). NaN where the
    percentile is 0 (every neighbour on one point).

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
    var_a, var_b = np.exp(logvar[here]), np.exp(logvar[nxt])
    sb2 = 0.5 * (var_a + var_b)
    d = np.sum(0.125 * (mu[here] - mu[nxt]) ** 2 / sb2 + 0.5 * (np.log(sb2) - 0.5 * (logvar[here] + logvar[nxt])),
               axis=1)
    typical = np.percentile(d, percentile)
    if not typical > 0:  # collapsed: the neighbours all on one point
        return float("nan")
    return float(d.max() / typical)


def _mutual_information(res: Any) -> np.ndarray:
    """I(U;V) = I(U) + I(V) - I(U,V) of the fused space (row 0) with each member, from a cross result."""
    a = kernels.to_numpy(res.information_a)[0]
    b = kernels.to_numpy(res.information_b)
    joint = kernels.to_numpy(res.joint_information)[0]
    return a + b - joint
