"""Similarity measures between representation spaces: HSIC and CKA, and the stochastic shape distance
(numpy and scipy only).

A space is N items; a kernel is an N x N matrix of its items' similarities: the means' inner
products (linear CKA), an RBF of the means, or the Bhattacharyya coefficients of the posteriors
(CKA on BC matrices).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["center_gram", "hsic", "cka", "linear_kernel", "rbf_kernel", "mean_posterior_std", "bures_squared",
           "stochastic_shape_distance", "jensen_shannon", "jensen_shannon_matrix", "classifier_information",
           "cka_all_pairs", "linear_cka_all_pairs"]


def center_gram(k: np.ndarray) -> np.ndarray:
    """H K H with H = I - 11^T/N, without forming H.

    >>> center_gram(np.ones((3, 3)))
    array([[0., 0., 0.],
           [0., 0., 0.],
           [0., 0., 0.]])
    """
    k = np.asarray(k, dtype=np.float64)
    return k - k.mean(axis=0, keepdims=True) - k.mean(axis=1, keepdims=True) + k.mean()


def hsic(k: np.ndarray, l: np.ndarray, *, debiased: bool = False) -> float:
    """The Hilbert-Schmidt independence criterion of two N x N kernels.

    .. math::

        \\mathrm{HSIC}_0 = \\frac{\\mathrm{tr}(K H L H)}{(N-1)^2}, \\qquad
        \\mathrm{HSIC}_1 = \\frac{1}{N(N-3)}\\Big[\\mathrm{tr}(\\tilde K \\tilde L)
          + \\frac{\\mathbf 1^T \\tilde K \\mathbf 1 \\, \\mathbf 1^T \\tilde L \\mathbf 1}{(N-1)(N-2)}
          - \\frac{2}{N-2} \\mathbf 1^T \\tilde K \\tilde L \\mathbf 1\\Big]

    the biased estimator, and with ``debiased`` the unbiased one of Song et al. (2012), where
    :math:`\\tilde K, \\tilde L` are K, L with their diagonals set to 0 (N >= 4).
    """
    k, l = np.asarray(k, np.float64), np.asarray(l, np.float64)
    n = k.shape[0]
    if not debiased:
        return float(np.sum(center_gram(k) * l) / (n - 1) ** 2)
    if n < 4:
        raise ValueError(f"the debiased HSIC needs at least 4 items, got {n}")
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0.0)
    np.fill_diagonal(lt, 0.0)
    trace = np.sum(kt * lt)
    sums = kt.sum() * lt.sum() / ((n - 1) * (n - 2))
    cross = 2.0 / (n - 2) * (kt.sum(axis=0) @ lt.sum(axis=1))
    return float((trace + sums - cross) / (n * (n - 3)))


def cka(k: np.ndarray, l: np.ndarray, *, debiased: bool = False) -> float:
    """Centred kernel alignment HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)); NaN when a kernel is constant.

    >>> x = np.random.default_rng(0).normal(size=(20, 3))
    >>> round(cka(linear_kernel(x), linear_kernel(2 * x)), 12)
    1.0
    """
    kl, kk, ll = hsic(k, l, debiased=debiased), hsic(k, k, debiased=debiased), hsic(l, l, debiased=debiased)
    denom = kk * ll
    return float(kl / np.sqrt(denom)) if denom > 0 else float("nan")


def _hsic_terms(k: np.ndarray, debiased: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per kernel (block, N, N): the flattened matrix whose dot products give the trace term, and
    (debiased only) the total and the row sums of the zero-diagonal kernel."""
    k = np.asarray(k, np.float64)
    b, n = k.shape[0], k.shape[1]
    if not debiased:
        c = k - k.mean(axis=1, keepdims=True) - k.mean(axis=2, keepdims=True) + k.mean(axis=(1, 2), keepdims=True)
        return c.reshape(b, n * n), np.zeros(b), np.zeros((b, n))
    kt = k.copy()
    kt[:, np.arange(n), np.arange(n)] = 0.0
    return kt.reshape(b, n * n), kt.sum(axis=(1, 2)), kt.sum(axis=2)


def cka_all_pairs(kernels: Any, *, debiased: bool = False, block: int = 32) -> np.ndarray:
    """CKA between every two of S kernels (S, N, N) at once: (S, S).

    ``kernels`` is an array, or any sequence whose slices give (b, N, N) arrays (so that kernels
    can be made as they are needed).

    HSIC is bilinear in the two kernels, so every pair's HSIC is one entry of a Gram matrix of
    the kernels flattened (centred for the biased estimator; with zero diagonals, plus two rank-one
    corrections, for the debiased one), computed ``block`` kernels at a time (memory about
    5 x 8 x block x N^2 bytes: two blocks of kernels, their centred copies and the slices).

    >>> x = np.random.default_rng(0).normal(size=(3, 20, 2))
    >>> k = np.stack([linear_kernel(m) for m in x])
    >>> bool(np.allclose(cka_all_pairs(k)[0, 1], cka(k[0], k[1])))
    True
    """
    s, n = len(kernels), np.asarray(kernels[0:1]).shape[1]
    if debiased and n < 4:
        raise ValueError(f"the debiased HSIC needs at least 4 items, got {n}")
    h = np.empty((s, s))
    starts = range(0, s, block)
    for a0 in starts:
        fa, ta, ra = _hsic_terms(kernels[a0:a0 + block], debiased)
        for b0 in starts:
            if b0 < a0:
                continue
            fb, tb, rb = (fa, ta, ra) if b0 == a0 else _hsic_terms(kernels[b0:b0 + block], debiased)
            g = fa @ fb.T
            if debiased:
                g = (g + np.outer(ta, tb) / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (ra @ rb.T)) / (n * (n - 3))
            else:
                g = g / (n - 1) ** 2
            h[a0:a0 + len(fa), b0:b0 + len(fb)] = g
            h[b0:b0 + len(fb), a0:a0 + len(fa)] = g.T
    return _normalise(h)


def _normalise(h: np.ndarray) -> np.ndarray:
    d = np.diag(h).copy()
    denom = np.outer(d, d)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(denom > 0, h / np.sqrt(np.where(denom > 0, denom, 1.0)), np.nan)
    return out


def linear_cka_all_pairs(mus: list[np.ndarray]) -> np.ndarray:
    """Linear CKA (biased HSIC) between every two spaces from their features, never forming a kernel: (S, S).

    With the means centred over the items, HSIC(X X^T, Y Y^T) = ||X^T Y||_F^2 / (N-1)^2, so every
    pair comes from one (D, D) product of all spaces' features side by side (D the total
    dimension): N D^2 flops instead of N^2 per pair. For S one-dimensional spaces it is the
    squared correlation matrix of their means.

    mus : S arrays (item, dim).

    >>> x = np.random.default_rng(0).normal(size=(30, 3))
    >>> round(float(linear_cka_all_pairs([x, 2 * x, x[:, :1]])[0, 1]), 12)
    1.0
    """
    feats = [np.asarray(m, np.float64).reshape(len(m), -1) for m in mus]
    x = np.concatenate([f - f.mean(axis=0) for f in feats], axis=1)
    m = x.T @ x
    edges = np.cumsum([0] + [f.shape[1] for f in feats])
    s = len(feats)
    h = np.empty((s, s))
    for a in range(s):
        block = m[edges[a]:edges[a + 1]]
        sq = block * block
        h[a] = np.add.reduceat(sq.sum(axis=0), edges[:-1])
    return _normalise(h)


def linear_kernel(mu: np.ndarray) -> np.ndarray:
    """X X^T of the means (item, dim)."""
    mu = np.asarray(mu, np.float64).reshape(len(mu), -1)
    return mu @ mu.T


def mean_posterior_std(logvar: np.ndarray) -> float:
    """The mean posterior standard deviation of a space, exp(logvar / 2) averaged over items and dims."""
    return float(np.mean(np.exp(0.5 * np.asarray(logvar, np.float64))))


def rbf_kernel(mu: np.ndarray, bandwidth: float) -> np.ndarray:
    """exp(-|x_i - x_j|^2 / (2 l^2)) of the means (item, dim), bandwidth l."""
    mu = np.asarray(mu, np.float64).reshape(len(mu), -1)
    sq = np.sum(mu * mu, axis=1)
    d2 = np.clip(sq[:, None] + sq[None, :] - 2.0 * mu @ mu.T, 0.0, None)
    return np.exp(-d2 / (2.0 * bandwidth**2))


def bures_squared(var_a: np.ndarray, var_b: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Squared Bures distance between diag(var_a[i]) and Q diag(var_b[i]) Q^T for every item: (item,).

    .. math::  B^2 = \\mathrm{tr}\\,\\Sigma_a + \\mathrm{tr}\\,\\Sigma_b
                     - 2\\,\\mathrm{tr}\\big(\\Sigma_a^{1/2} Q \\Sigma_b Q^T \\Sigma_a^{1/2}\\big)^{1/2}

    The trace of the square root is the nuclear norm of :math:`\\Sigma_a^{1/2} Q \\Sigma_b^{1/2}`
    (the sum of its singular values), which is how it is computed.
    """
    x = np.sqrt(var_a)[:, :, None] * q[None] * np.sqrt(var_b)[:, None, :]
    fidelity = np.linalg.svd(x, compute_uv=False).sum(axis=1)
    return var_a.sum(axis=1) + var_b.sum(axis=1) - 2.0 * fidelity


def _shape_objective(q, mu_a, var_a, mu_b, var_b, alpha):
    return _shape_value_grad(q, mu_a, var_a, mu_b, var_b, alpha, grad=False)[0]


def _shape_value_grad(q, mu_a, var_a, mu_b, var_b, alpha, grad=True):
    """The shape objective at Q and its gradient with respect to Q (d, d), as if Q were unconstrained.

    d||a - Q b||^2 = -2 (a - Q b) b^T dQ, and the nuclear norm of X = A Q D^{1/2} has gradient
    U V^T (X = U S V^T), so d tr(...)^{1/2} / dQ = A U V^T D^{1/2}.
    """
    n = len(mu_a)
    r = mu_a - mu_b @ q.T
    ra, rb = np.sqrt(var_a), np.sqrt(var_b)
    x = ra[:, :, None] * q[None] * rb[:, None, :]
    if not grad:
        fidelity = np.linalg.svd(x, compute_uv=False).sum(axis=1)
    else:
        u, sv, vt = np.linalg.svd(x)
        fidelity = sv.sum(axis=1)
    b2 = var_a.sum(axis=1) + var_b.sum(axis=1) - 2.0 * fidelity
    value = float(np.mean(alpha * np.sum(r * r, axis=1) + (2.0 - alpha) * b2))
    if not grad:
        return value, None
    g_fid = np.einsum("ij,ijk,ik->jk", ra, u @ vt, rb)
    return value, (-2.0 * alpha * (r.T @ mu_b) - 2.0 * (2.0 - alpha) * g_fid) / n


def _skew(theta: np.ndarray, d: int) -> np.ndarray:
    s = np.zeros((d, d))
    s[np.triu_indices(d, 1)] = theta
    return s - s.T


def _reflection(d: int, reflect: bool) -> np.ndarray:
    return np.diag([-1.0 if reflect else 1.0] + [1.0] * (d - 1))


def _orthogonal(theta: np.ndarray, d: int, reflect: bool) -> np.ndarray:
    from scipy.linalg import expm

    return expm(_skew(theta, d)) @ _reflection(d, reflect)


def _procrustes(mu_a: np.ndarray, mu_b: np.ndarray) -> list[np.ndarray]:
    """The orthogonal Q minimising sum ||a_i - Q b_i||^2 in each component of O(d): [det +1, det -1]."""
    u, _, vt = np.linalg.svd(mu_a.T @ mu_b)
    q = u @ vt
    flip = u @ np.diag([1.0] * (len(q) - 1) + [-1.0]) @ vt
    return [q, flip] if np.linalg.det(q) > 0 else [flip, q]


def stochastic_shape_distance(mu_a: np.ndarray, var_a: np.ndarray, mu_b: np.ndarray, var_b: np.ndarray, *,
                              alpha: float = 1.0, n_restarts: int = 8, seed: int = 0) -> float:
    """The Gaussian stochastic shape distance of Duong et al. (2023) between two spaces of equal dimension.

    .. math::

        d_\\alpha(A, B)^2 = \\min_{Q \\in O(d)} \\frac1N \\sum_i \\Big[\\alpha\\,\\|\\mu^A_i - Q\\mu^B_i\\|^2
            + (2-\\alpha)\\, B^2\\big(\\Sigma^A_i, Q\\Sigma^B_i Q^T\\big)\\Big]

    with B the Bures distance and alpha in [0, 2], weighted as in Duong et al. and netrep's
    ``GaussianStochasticMetric``: alpha = 2 is the deterministic shape metric on the means
    (orthogonal Procrustes), alpha = 1 the 2-Wasserstein distance between the posteriors, alpha = 0
    compares the covariances only. ``var_*`` are the posterior variances (item, dim).

    Unlike netrep, the means are centred over the items first, so the distance is invariant to
    translating a space. netrep's value is the same for centred spaces; for spaces off centre its
    objective adds alpha |mean_A - Q mean_B|^2 at every Q (on the nine synthetic spaces the spirals
    are off centre: the spiral against the four clusters is 4.76 centred, 5.01 uncentred).

    The minimum over O(d) is exact in one dimension (Q = +-1) and otherwise found by L-BFGS with the
    objective's exact gradient (Q = Q0 expm(K), K skew), from the Procrustes alignment of the means
    (Q0 itself) and ``n_restarts`` seeded random starts in each of O(d)'s two components.

    >>> mu = np.random.default_rng(0).normal(size=(10, 2))
    >>> var = np.full((10, 2), 0.5)
    >>> round(stochastic_shape_distance(mu, var, mu @ np.array([[0.0, -1.0], [1.0, 0.0]]), var), 6)
    0.0
    """
    from scipy.linalg import expm, expm_frechet
    from scipy.optimize import minimize

    if not 0.0 <= alpha <= 2.0:
        raise ValueError(f"alpha must be in [0, 2], got {alpha}")
    mu_a, mu_b = (np.asarray(m, np.float64) for m in (mu_a, mu_b))
    var_a, var_b = (np.asarray(v, np.float64) for v in (var_a, var_b))
    if mu_a.shape != mu_b.shape:
        raise ValueError(f"the shape metric compares spaces of one dimension over the same items; got {mu_a.shape} "
                         f"and {mu_b.shape}")
    mu_a, mu_b = mu_a - mu_a.mean(axis=0), mu_b - mu_b.mean(axis=0)
    d = mu_a.shape[1]
    if d == 1:
        best = min(_shape_objective(np.array([[s]]), mu_a, var_a, mu_b, var_b, alpha) for s in (1.0, -1.0))
        return float(np.sqrt(max(best, 0.0)))
    rng = np.random.default_rng(seed)
    iu = np.triu_indices(d, 1)
    basis = []
    for k in range(iu[0].size):
        e = np.zeros((d, d))
        e[iu[0][k], iu[1][k]], e[iu[1][k], iu[0][k]] = 1.0, -1.0
        basis.append(e)

    def value_grad(theta: np.ndarray, base: np.ndarray) -> tuple[float, np.ndarray]:
        k = _skew(theta, d)
        value, g = _shape_value_grad(base @ expm(k), mu_a, var_a, mu_b, var_b, alpha)
        g_k = base.T @ g  # d/d expm(K), since Q = base expm(K)
        return value, np.array([np.sum(g_k * expm_frechet(k, e, compute_expm=False)) for e in basis])

    best = np.inf
    zero = np.zeros(iu[0].size)
    for reflect, aligned in zip((False, True), _procrustes(mu_a, mu_b)):
        # Q = base expm(K): from the Procrustes alignment itself (K = 0), then from random rotations of the component
        starts = [(aligned, zero)] + [(_reflection(d, reflect), rng.uniform(-np.pi, np.pi, iu[0].size))
                                      for _ in range(n_restarts)]
        for base, start in starts:
            fit = minimize(value_grad, start, args=(base,), jac=True, method="L-BFGS-B")
            best = min(best, float(fit.fun))
    return float(np.sqrt(max(best, 0.0)))


def _jsd_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The mean JSD (nats) of p (item, outcome) against each of q (k, item, outcome): (k,), clipped to [0, ln 2]."""
    from scipy.special import xlogy

    m = 0.5 * (p + q)
    kl_p = np.sum(xlogy(p, p) - xlogy(p, m), axis=-1)
    kl_q = np.sum(xlogy(q, q) - xlogy(q, m), axis=-1)
    return np.clip(np.mean(0.5 * (kl_p + kl_q), axis=-1), 0.0, np.log(2))


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """The mean Jensen-Shannon divergence (nats) between two sets of distributions, row by row.

    .. math::  \\mathrm{JSD} = \\frac1N \\sum_i \\tfrac12 \\mathrm{KL}(p_i \\| m_i) + \\tfrac12 \\mathrm{KL}(q_i \\| m_i),
               \\qquad m_i = (p_i + q_i)/2

    p, q : (item, outcome), rows summing to 1. 0 log 0 = 0, so the result lies in [0, ln 2].

    >>> p = np.array([[1.0, 0.0], [0.5, 0.5]])
    >>> round(jensen_shannon(p, p), 12), round(float(jensen_shannon(p[:1], p[:1, ::-1]) / np.log(2)), 12)
    (0.0, 1.0)
    """
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    if p.shape != q.shape or p.ndim != 2:
        raise ValueError(f"jensen_shannon takes two (item, outcome) arrays of one shape, got {p.shape} and {q.shape}")
    return float(_jsd_rows(p, q[None])[0])


def jensen_shannon_matrix(predictions: Any) -> np.ndarray:
    """:func:`jensen_shannon` between every two of S sets of distributions: (S, S), symmetric, zero diagonal.

    predictions : S arrays (item, outcome) of one shape, rows summing to 1 (the classifier
    measure's mean predicted distributions, one set per space). One row of the matrix at a time.

    >>> p = np.array([[1.0, 0.0], [0.5, 0.5]])
    >>> jensen_shannon_matrix([p, p[:, ::-1]]).round(6).tolist()
    [[0.0, 0.346574], [0.346574, 0.0]]
    """
    p = np.stack([np.asarray(x, np.float64) for x in predictions])
    if p.ndim != 3:
        raise ValueError(f"jensen_shannon_matrix takes S arrays (item, outcome), got shape {p.shape}")
    s = p.shape[0]
    out = np.full((s, s), np.nan)
    for a in range(s):
        out[a, a:] = out[a:, a] = _jsd_rows(p[a], p[a:])
    return out


def classifier_information(predictions: np.ndarray) -> float:
    """The bits a classifier recovers from its mean predicted distributions (item, item), row i for item i.

    .. math::  I = \\log_2 N + \\frac1N \\sum_i \\log_2 p_i(i)

    log2 N minus the cross-entropy with the items' own names (the paper's "info in" line):
    log2 N for a classifier that names every item, 0 for one that guesses uniformly. Probabilities
    are floored at 1e-300.

    >>> classifier_information(np.eye(4)), classifier_information(np.full((4, 4), 0.25))
    (2.0, 0.0)
    """
    predictions = np.asarray(predictions, np.float64)
    n = predictions.shape[0]
    return float((np.log(n) + np.mean(np.log(np.clip(np.diag(predictions), 1e-300, None)))) / np.log(2))
