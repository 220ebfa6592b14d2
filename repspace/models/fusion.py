"""The TensorFlow half of fusion: the objective as a differentiable graph and the gradient ascent.

:func:`repspace.fusion.fuse` checks its input, calls :func:`ascend` here and reports the result with
the kernels; this module is where TensorFlow enters (DESIGN: the TensorFlow parts of the analyses
live under ``repspace.models``). The Bhattacharyya distance in the graph is the kernels' own formula,
:func:`repspace.kernels.bhattacharyya_distance`, evaluated with TensorFlow's operations.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..kernels import bhattacharyya_distance

__all__ = ["SIMILARITIES", "FusionDiverged", "check_similarity", "objective", "ascend"]

SIMILARITIES = ("information", "vi", "nmi")
"""What fusion maximises, averaged over the members: I(U;V), exp(-VI) (both in nats), or NMI."""


class FusionDiverged(RuntimeError):
    """The ascent left the finite numbers (too large a learning rate)."""


def check_similarity(similarity: str) -> str:
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}, got {similarity!r}")
    return similarity


def _tf_ops(tf: Any) -> SimpleNamespace:
    """The operations :func:`repspace.kernels.bhattacharyya_distance` takes from its array module, in TensorFlow."""
    return SimpleNamespace(exp=tf.exp, log=tf.math.log, square=tf.square,
                           sum=lambda x, axis: tf.reduce_sum(x, axis=axis))


def _graph(tf: Any, log_bc_members: np.ndarray, similarity: str, dtype: Any):
    """The objective as a TensorFlow function of (mu, logvar): (mean similarity, per-member parts)."""
    v = tf.constant(log_bc_members, dtype=dtype)  # (K, N, N)
    n = log_bc_members.shape[1]
    log_n = math.log(n)
    ops = _tf_ops(tf)

    def info(log_bc):  # I from log BC (..., N, N), nats
        return -tf.reduce_mean(tf.reduce_logsumexp(log_bc, axis=-1) - log_n, axis=-1)

    i_v, i_vv = info(v), info(2.0 * v)  # constants of the members

    def f(mu, logvar):
        var = tf.exp(logvar)  # once per item: the gradient flows through one exp
        u = -bhattacharyya_distance(mu[:, None, :], logvar[:, None, :], mu[None, :, :], logvar[None, :, :],
                                    var_a=var[:, None, :], var_b=var[None, :, :], xp=ops)  # log BC (N, N)
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
    """The fusion objective at (mu, logvar) (item, dim) and its gradients, in float64: (value, d/dmu, d/dlogvar).

    log_bc_members : the members' log BC (unit, item, item) (:func:`repspace.fusion.member_log_bc`).
    """
    from .._quiet import import_tensorflow

    tf = import_tensorflow()
    f = _graph(tf, np.asarray(log_bc_members, np.float64), check_similarity(similarity), tf.float64)
    m, lv = tf.Variable(np.asarray(mu, np.float64)), tf.Variable(np.asarray(logvar, np.float64))
    with tf.GradientTape() as tape:
        value, _ = f(m, lv)
    gm, gl = tape.gradient(value, [m, lv])
    return float(value.numpy()), gm.numpy(), gl.numpy()


def ascend(log_bc_members: np.ndarray, *, dim: int, similarity: str, steps: int, learning_rate: float, seed: int,
           init_std: float, record_every: int, dtype: str, threads: int | None = None,
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Plain gradient ascent of the fusion objective from a seeded start (arguments checked by the caller).

    log_bc_members : (unit, item, item) float64. Means start at N(0, ``init_std``^2) from
    ``numpy.random.default_rng(seed)``, log-variances at 0; ``dtype`` ("float32" or "float64") is
    the precision of the optimisation.

    Returns
    -------
    (mu, logvar, curve_steps, curve): the fused posteriors (item, dim) float64, and the objective
    at step 0 and after every ``record_every`` steps (and the last).

    Raises
    ------
    FusionDiverged
        when the objective leaves the finite numbers.
    """
    from .._quiet import import_tensorflow
    from .tf_mlp import set_threads

    n = log_bc_members.shape[1]
    tf = import_tensorflow()
    set_threads(tf, threads)
    tdt = tf.float64 if dtype == "float64" else tf.float32
    f = _graph(tf, log_bc_members, similarity, tdt)
    rng = np.random.default_rng(seed)
    m = tf.Variable(rng.normal(0.0, init_std, size=(n, dim)), dtype=tdt)
    lv = tf.Variable(np.zeros((n, dim)), dtype=tdt)
    lr = tf.constant(learning_rate, tdt)

    @tf.function(reduce_retracing=True)
    def step_many(count):
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
        value = float(step_many(tf.constant(count)).numpy())
        done += count
        curve_steps.append(done)
        curve.append(value)
        if not math.isfinite(value):
            raise FusionDiverged(f"fusion diverged at step {done} (objective {value}); lower learning_rate")
    return (m.numpy().astype(np.float64), lv.numpy().astype(np.float64), np.asarray(curve_steps),
            np.asarray(curve))
