"""Kernel similarity measures between representation spaces: HSIC and CKA (numpy only).

A space is N items; a kernel is an N x N matrix of its items' similarities: the means' inner
products (linear CKA), an RBF of the means, or the Bhattacharyya coefficients of the posteriors
(CKA on BC matrices).
"""

from __future__ import annotations

import numpy as np

__all__ = ["center_gram", "hsic", "cka", "linear_kernel", "rbf_kernel", "mean_posterior_std"]


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
