"""Slow, obviously correct reference implementations (per-pair loops, float64).

They follow the formulas of the paper literally and exist only to check the fast kernels.
"""

from __future__ import annotations

import math

import numpy as np


def bc_pair(mu_i, var_i, mu_j, var_j) -> float:
    """Bhattacharyya coefficient of two diagonal Gaussians, straight from the textbook formula."""
    mu_i, var_i, mu_j, var_j = (np.asarray(x, dtype=np.float64) for x in (mu_i, var_i, mu_j, var_j))
    var_mean = (var_i + var_j) / 2
    distance = 0.125 * np.sum((mu_i - mu_j) ** 2 / var_mean) + 0.5 * math.log(
        np.prod(var_mean) / math.sqrt(np.prod(var_i) * np.prod(var_j))
    )
    return math.exp(-distance)


def bc_matrix(mu, logvar) -> np.ndarray:
    """BC matrix of one unit: mu, logvar (image, dim) -> (image, image), one pair at a time."""
    mu, var = np.asarray(mu, np.float64), np.exp(np.asarray(logvar, np.float64))
    n = mu.shape[0]
    out = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            out[i, j] = bc_pair(mu[i], var[i], mu[j], var[j])
    return out


def information(bc) -> float:
    bc = np.asarray(bc, np.float64)
    n = bc.shape[0]
    return -sum(math.log2(sum(bc[i, j] for j in range(n)) / n) for i in range(n)) / n


def joint_information(bc_u, bc_v) -> float:
    return information(np.asarray(bc_u, np.float64) * np.asarray(bc_v, np.float64))


def all_pairs(bcs_a, bcs_b=None) -> dict:
    """information, information_twice, joint_information, nmi, vi for every pair, with a Python loop over pairs."""
    same = bcs_b is None
    bcs_b = bcs_a if same else bcs_b
    information_a = np.array([information(b) for b in bcs_a])
    information_b = np.array([information(b) for b in bcs_b])
    self_a = np.array([joint_information(b, b) for b in bcs_a])
    self_b = np.array([joint_information(b, b) for b in bcs_b])
    joint = np.empty((len(bcs_a), len(bcs_b)))
    nmi = np.empty_like(joint)
    vi = np.empty_like(joint)
    for a in range(len(bcs_a)):
        for b in range(len(bcs_b)):
            joint[a, b] = joint_information(bcs_a[a], bcs_b[b])
            nmi[a, b] = (information_a[a] + information_b[b] - joint[a, b]) / math.sqrt(
                (2 * information_a[a] - self_a[a]) * (2 * information_b[b] - self_b[b])
            )
            vi[a, b] = 2 * joint[a, b] - self_a[a] - self_b[b]
    return dict(information_a=information_a, information_b=information_b, self_a=self_a, self_b=self_b, joint_information=joint, nmi=nmi, vi=vi)


def entropy_bits(labels) -> float:
    _, counts = np.unique(np.asarray(labels), return_counts=True, axis=0)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def mixture_information_1d(mu, var, grid_points: int = 200_001) -> float:
    """I(U;X) in bits for a 1-D space of M Gaussian posteriors, by quadrature.

    I = h(mixture) - mean_i h(N(mu_i, var_i)), the differential entropies in bits.
    """
    mu, var = np.asarray(mu, np.float64), np.asarray(var, np.float64)
    sd = np.sqrt(var)
    lo, hi = (mu - 12 * sd).min(), (mu + 12 * sd).max()
    u = np.linspace(lo, hi, grid_points)
    du = u[1] - u[0]
    density = np.zeros_like(u)
    for m, s in zip(mu, sd):
        density += np.exp(-0.5 * ((u - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
    density /= mu.size
    positive = density > 0
    h_mix = -np.sum(density[positive] * np.log2(density[positive])) * du
    h_post = np.mean(0.5 * np.log2(2 * math.pi * math.e * var))
    return float(h_mix - h_post)
