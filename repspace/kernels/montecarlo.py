"""Monte Carlo estimates of the information whole latent spaces carry about a dataset.

    I(U;X) = E_{i, u ~ p(u|x_i)} [ log p(u|x_i) - log( 1/M sum_j p(u|x_j) ) ]

over M images with diagonal-Gaussian posteriors. The log-likelihood of S samples under
all M posteriors is one matrix product: log N(u; mu_j, s2_j) is -1/2 times the dot
product of [u^2, u, 1] with [1/s2_j, -2 mu_j/s2_j, sum_k (mu_jk^2/s2_jk + log s2_jk) + d log 2 pi],
followed by a log-sum-exp over j taken block by block (a running maximum and sum), so no
S x M matrix is ever held. Pairs of spaces use the concatenated space (U, V); I(U,U')
uses the space tiled twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._array import check_posteriors, float_dtype, namespace, to_numpy

__all__ = [
    "MCOptions",
    "MCEstimate",
    "MCComparison",
    "log_mean_likelihood",
    "mc_information",
    "mc_compare",
    "inverse_variance_mean",
    "propagate_nmi_vi",
    "SharedGroup",
    "combine_shared",
]

_LOG_2PI = math.log(2.0 * math.pi)
_LN2 = math.log(2.0)


@dataclass(frozen=True)
class MCOptions:
    """Block sizes of the Monte Carlo estimator.

    Attributes
    ----------
    sample_block : int   samples per likelihood block
    image_block : int    posteriors per likelihood block (the log-sum-exp is taken across blocks)
    """

    sample_block: int = 2048
    image_block: int = 16384


@dataclass(frozen=True)
class MCEstimate:
    """An information estimate in bits with its standard error."""

    bits: float
    se: float

    def __iter__(self):  # allows ``bits, se = estimate``
        return iter((self.bits, self.se))


@dataclass(frozen=True)
class MCComparison:
    """Monte Carlo comparison of two spaces U and V, all in bits (NMI unitless)."""

    information_a: MCEstimate
    information_b: MCEstimate
    information_twice_a: MCEstimate
    information_twice_b: MCEstimate
    joint_information: MCEstimate
    nmi: float
    nmi_se: float
    vi: float
    vi_se: float


def _features(xp: Any, u: Any) -> Any:
    """[u^2, u, 1] per sample: (S, 2d + 1)."""
    return xp.concat([u * u, u, xp.ones((u.shape[0], 1), dtype=u.dtype)], axis=1)


def _weights(xp: Any, mu: Any, logvar: Any) -> Any:
    """[1/s2, -2 mu/s2, sum(mu^2/s2 + log s2) + d log 2 pi] per posterior: (M, 2d + 1)."""
    inv = xp.exp(-logvar)
    const = xp.sum(mu * mu * inv + logvar, axis=1, keepdims=True) + mu.shape[1] * _LOG_2PI
    return xp.concat([inv, -2.0 * mu * inv, const], axis=1)


def log_mean_likelihood(
    u: Any, mu: Any, logvar: Any, *, image_block: int | None = None, shift: Any = None
) -> Any:
    """log( 1/M sum_j N(u_s; mu_j, diag(exp(logvar_j))) ) for every sample, blockwise over j.

    Parameters
    ----------
    u : array (S, d)
    mu, logvar : array (M, d)
    image_block : posteriors per block; all at once when None
    shift : array (S,), optional
        A log-density known to be one of each sample's terms (the sample's own posterior).
        The exponent L_sj - shift_s then comes out of the matrix product directly, and the
        sum (at least 1, the own term) needs no running maximum: three passes over each
        block instead of six. Without it, a running maximum keeps the sum in range.

    Returns
    -------
    array (S,), natural log
    """
    xp = namespace(u, mu, logvar)
    m = mu.shape[0]
    block = m if image_block is None else max(1, image_block)
    feats = _features(xp, u)
    if shift is not None:
        # [F_s, shift_s] . [-G_j / 2, -1] = L_sj - shift_s
        feats_shifted = xp.concat([feats, shift[:, None]], axis=1)
        limit = 80.0 if feats.dtype == xp.float32 else 700.0
        total = xp.zeros((u.shape[0],), dtype=feats.dtype)
        for j0 in range(0, m, block):
            j1 = min(m, j0 + block)
            w = _weights(xp, mu[j0:j1, :], logvar[j0:j1, :])
            w = xp.concat([-0.5 * w, -xp.ones((j1 - j0, 1), dtype=w.dtype)], axis=1)
            exponent = xp.matmul(feats_shifted, xp.permute_dims(w, (1, 0)))
            if float(xp.max(exponent)) > limit:  # a term far above the shift: take the safe road
                return log_mean_likelihood(u, mu, logvar, image_block=image_block)
            total = total + xp.sum(xp.exp(exponent), axis=1)
        return shift + xp.log(total) - math.log(m)
    running_max = None
    running_sum = None
    for j0 in range(0, m, block):
        j1 = min(m, j0 + block)
        loglik = -0.5 * xp.matmul(feats, xp.permute_dims(_weights(xp, mu[j0:j1, :], logvar[j0:j1, :]), (1, 0)))
        block_max = xp.max(loglik, axis=1)
        if running_max is None:
            running_max = block_max
            running_sum = xp.sum(xp.exp(loglik - block_max[:, None]), axis=1)
            continue
        new_max = xp.maximum(running_max, block_max)
        running_sum = running_sum * xp.exp(running_max - new_max) + xp.sum(
            xp.exp(loglik - new_max[:, None]), axis=1
        )
        running_max = new_max
    return running_max + xp.log(running_sum) - math.log(m)


def mc_information(
    mu: Any,
    logvar: Any,
    *,
    n_samples: int,
    rng: np.random.Generator,
    options: MCOptions | None = None,
    dtype: Any = None,
) -> MCEstimate:
    """Monte Carlo estimate of I(U;X) in bits, with its standard error.

    Parameters
    ----------
    mu, logvar : array (M, d)
        Posteriors of the whole space over the M images.
    n_samples : int
        S, the number of (image, sample) draws.
    rng : numpy.random.Generator
        The source of randomness (images are drawn uniformly with replacement).
    options : MCOptions
    dtype : float dtype of the computation; float64 unless given.

    Returns
    -------
    MCEstimate
    """
    xp = namespace(mu, logvar)
    if mu.ndim != 2:
        raise ValueError(f"a latent space needs shape (image, dim), got {tuple(mu.shape)}")
    check_posteriors(mu, logvar, unit_axis=None, image_axis=0)
    float_dtype(xp, mu, logvar)
    if n_samples < 2:
        raise ValueError(f"n_samples must be at least 2, got {n_samples}")
    options = options or MCOptions()
    dtype = xp.float64 if dtype is None else dtype
    mu, logvar = xp.astype(mu, dtype, copy=False), xp.astype(logvar, dtype, copy=False)
    m, d = mu.shape
    values = []
    for s0 in range(0, n_samples, options.sample_block):
        s = min(options.sample_block, n_samples - s0)
        idx = xp.asarray(rng.integers(0, m, size=s))
        eps = xp.asarray(rng.standard_normal((s, d)), dtype=dtype)
        mu_i, lv_i = xp.take(mu, idx, axis=0), xp.take(logvar, idx, axis=0)
        u = mu_i + xp.exp(0.5 * lv_i) * eps
        own = -0.5 * xp.sum(eps * eps + lv_i, axis=1) - 0.5 * d * _LOG_2PI
        values.append(to_numpy(own - log_mean_likelihood(u, mu, logvar, image_block=options.image_block, shift=own)))
    v = np.concatenate(values).astype(np.float64) / _LN2
    return MCEstimate(float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size)))


def _tile(xp: Any, a: Any, b: Any) -> Any:
    return xp.concat([a, b], axis=1)


def mc_compare(
    mu_a: Any,
    logvar_a: Any,
    mu_b: Any,
    logvar_b: Any,
    *,
    n_samples: int,
    seed: int | np.random.SeedSequence,
    options: MCOptions | None = None,
    dtype: Any = None,
) -> MCComparison:
    """NMI and VI between two whole spaces by Monte Carlo, with propagated errors.

    The five estimates I(U), I(V), I(U,U'), I(V,V') and I(U,V) use independent streams
    spawned from ``seed``, so their errors add in quadrature.

    Parameters
    ----------
    mu_a, logvar_a : array (M, d_a)
    mu_b, logvar_b : array (M, d_b)   over the same M images
    n_samples : samples per estimate
    seed : int or SeedSequence
    """
    if mu_a.shape[0] != mu_b.shape[0]:
        raise ValueError(f"the two spaces cover different numbers of images: {mu_a.shape[0]} vs {mu_b.shape[0]}")
    xp = namespace(mu_a, logvar_a, mu_b, logvar_b)
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    streams = [np.random.default_rng(s) for s in seq.spawn(5)]
    spaces = [
        (mu_a, logvar_a),
        (mu_b, logvar_b),
        (_tile(xp, mu_a, mu_a), _tile(xp, logvar_a, logvar_a)),
        (_tile(xp, mu_b, mu_b), _tile(xp, logvar_b, logvar_b)),
        (_tile(xp, mu_a, mu_b), _tile(xp, logvar_a, logvar_b)),
    ]
    ia, ib, sa, sb, jab = (
        mc_information(m, lv, n_samples=n_samples, rng=r, options=options, dtype=dtype)
        for (m, lv), r in zip(spaces, streams)
    )
    nmi, nmi_se, vi, vi_se = propagate_nmi_vi(ia, ib, sa, sb, jab)
    return MCComparison(ia, ib, sa, sb, jab, nmi, nmi_se, vi, vi_se)


def propagate_nmi_vi(
    ia: MCEstimate, ib: MCEstimate, sa: MCEstimate, sb: MCEstimate, jab: MCEstimate
) -> tuple[float, float, float, float]:
    """NMI and VI with first-order error propagation from independent estimates."""
    n = ia.bits + ib.bits - jab.bits
    aa, ab = 2 * ia.bits - sa.bits, 2 * ib.bits - sb.bits
    vi = 2 * jab.bits - sa.bits - sb.bits
    vi_se = math.sqrt(4 * jab.se**2 + sa.se**2 + sb.se**2)
    if aa <= 0 or ab <= 0:
        return math.nan, math.nan, vi, vi_se
    den = math.sqrt(aa * ab)
    nmi = n / den
    grads = (
        (1 / den - n / (den * aa), ia.se),  # d/dI(U)
        (1 / den - n / (den * ab), ib.se),  # d/dI(V)
        (n / (2 * den * aa), sa.se),  # d/dI(U,U')
        (n / (2 * den * ab), sb.se),  # d/dI(V,V')
        (-1 / den, jab.se),  # d/dI(U,V)
    )
    nmi_se = math.sqrt(sum((g * e) ** 2 for g, e in grads))
    return nmi, nmi_se, vi, vi_se


def inverse_variance_mean(values: Any, errors: Any) -> tuple[float, float]:
    """Inverse-variance-weighted mean of estimates and its standard error.

    Estimates with a zero error dominate (they are averaged among themselves);
    NaN estimates are skipped.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    e = np.asarray(errors, dtype=np.float64).ravel()
    if v.shape != e.shape:
        raise ValueError(f"values and errors differ in size: {v.size} vs {e.size}")
    ok = np.isfinite(v) & np.isfinite(e)
    if not ok.any():
        return math.nan, math.nan
    v, e = v[ok], e[ok]
    exact = e == 0
    if exact.any():
        return float(v[exact].mean()), 0.0
    w = 1.0 / e**2
    return float((w * v).sum() / w.sum()), float(1.0 / math.sqrt(w.sum()))


@dataclass(frozen=True)
class SharedGroup:
    """A group of spaces compared with shared terms (:func:`combine_shared`); bits, NMI unitless.

    Attributes
    ----------
    nmi, nmi_se, vi, vi_se : (n, n) per pair, symmetric, NaN on the diagonal and where a term is missing
    nmi_mean, nmi_mean_se, vi_mean, vi_mean_se : the group's inverse-variance-weighted means over its
        pairs, with errors that count each shared estimate once
    n_pairs : pairs with every term
    """

    nmi: np.ndarray
    nmi_se: np.ndarray
    vi: np.ndarray
    vi_se: np.ndarray
    nmi_mean: float
    nmi_mean_se: float
    vi_mean: float
    vi_mean_se: float
    n_pairs: int


def combine_shared(information: Any, information_se: Any, twice: Any, twice_se: Any, joint: Any,
                   joint_se: Any) -> SharedGroup:
    """NMI and VI of every pair of a group, and the group's means, from shared estimates.

    Each space's I(U) and I(U,U') is estimated once and used by all its pairs; each pair adds
    only its I(U,V) (2n + n(n-1)/2 estimates for n spaces instead of n + 5 n(n-1)/2). Every
    estimate has its own random stream, so the estimates are independent, but pairs that share
    one are not: the group's mean sum_p w_p f_p (w_p the normalised inverse variances of the
    pairs' own propagated errors) gets its first-order error from the gradient with respect to
    every distinct estimate, sum_e (sum_p w_p df_p/de)^2 se_e^2, so a shared estimate's error
    enters once with the weight of all its pairs rather than as if independent in each.

    Parameters
    ----------
    information, information_se, twice, twice_se : (n,) I(U;X) and I(U,U';X) of each space
    joint, joint_se : (n, n) I(U,V;X) of each pair (either triangle; NaN where not estimated)
    """
    ia, ia_se = (np.asarray(x, np.float64) for x in (information, information_se))
    sa, sa_se = (np.asarray(x, np.float64) for x in (twice, twice_se))
    jab, jab_se = (np.asarray(x, np.float64) for x in (joint, joint_se))
    n = ia.size
    if not (ia_se.shape == sa.shape == sa_se.shape == (n,) and jab.shape == jab_se.shape == (n, n)):
        raise ValueError(f"shared estimates need (n,) terms and (n, n) joints; got {ia.shape}, {sa.shape} and "
                         f"{jab.shape}")
    jab = np.where(np.isfinite(jab), jab, jab.T)
    jab_se = np.where(np.isfinite(jab_se), jab_se, jab_se.T)
    out = {k: np.full((n, n), np.nan) for k in ("nmi", "nmi_se", "vi", "vi_se")}
    rows = []
    for i in range(n):
        for j in range(i + 1, n):
            terms = (ia[i], ia[j], sa[i], sa[j], jab[i, j])
            errors = (ia_se[i], ia_se[j], sa_se[i], sa_se[j], jab_se[i, j])
            if not np.isfinite(terms + errors).all():
                continue
            values = propagate_nmi_vi(*(MCEstimate(float(b), float(e)) for b, e in zip(terms, errors)))
            for key, v in zip(("nmi", "nmi_se", "vi", "vi_se"), values):
                out[key][i, j] = out[key][j, i] = v
            rows.append((i, j, *values))
    means = []
    for which in ("nmi", "vi"):
        grad_i, grad_s, grads_j, total, weights = np.zeros(n), np.zeros(n), [], 0.0, []
        ok = [r for r in rows if np.isfinite(r[2 if which == "nmi" else 4])]
        se_of = {r[:2]: r[3 if which == "nmi" else 5] for r in ok}
        exact = [p for p, e in se_of.items() if e == 0]
        use = [r for r in ok if (r[:2] in exact) == bool(exact)]
        if not use:
            means += [math.nan, math.nan]
            continue
        weights = np.array([1.0 if exact else 1.0 / se_of[r[:2]] ** 2 for r in use])
        weights /= weights.sum()
        for w, (i, j, nmi, _, vi, _) in zip(weights, use):
            if which == "vi":
                total += w * vi
                grad_s[i] -= w
                grad_s[j] -= w
                grads_j.append((i, j, 2.0 * w))
                continue
            num, aa, ab = ia[i] + ia[j] - jab[i, j], 2 * ia[i] - sa[i], 2 * ia[j] - sa[j]
            den = math.sqrt(aa * ab)
            total += w * nmi
            grad_i[i] += w * (1 / den - num / (den * aa))
            grad_i[j] += w * (1 / den - num / (den * ab))
            grad_s[i] += w * num / (2 * den * aa)
            grad_s[j] += w * num / (2 * den * ab)
            grads_j.append((i, j, -w / den))
        var = float(np.nansum((grad_i * ia_se) ** 2) + np.nansum((grad_s * sa_se) ** 2)
                    + sum((g * jab_se[i, j]) ** 2 for i, j, g in grads_j))
        means += [float(total), math.sqrt(var)]
    return SharedGroup(**out, nmi_mean=means[0], nmi_mean_se=means[1], vi_mean=means[2], vi_mean_se=means[3],
                       n_pairs=len(rows))
