"""The circle of the paper's fusion experiment (its Sec. 4.4): fingerprint points on SO(2), and weak
learners that tear it.

A one-dimensional code cannot hold a circle without cutting it somewhere: points on either side
of the cut land far apart. :func:`torn_learners` makes such codes directly (the angle measured
from a random cut, in a random direction, with a small posterior variance), in place of training
1-D VAEs, which tear the circle the same way; 1-D *projections* of the circle (cos(theta - c)) fold
it instead, keep neighbours together, and show no fusion effect.

>>> theta, points = circle_points(8)
>>> points.shape, round(float(theta[2]), 4)
((8, 2), 1.5708)
>>> mu, logvar = torn_learners(theta, 3, seed=0)
>>> mu.shape, logvar.shape
((3, 8, 1), (3, 8, 1))
"""

from __future__ import annotations

import numpy as np

__all__ = ["circle_points", "torn_learners"]


def circle_points(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` equally spaced angles in [0, 2 pi) and their points (cos, sin): (n,), (n, 2)."""
    if n < 3:
        raise ValueError(f"a circle needs at least 3 points, got {n}")
    theta = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    return theta, np.column_stack([np.cos(theta), np.sin(theta)])


def torn_learners(theta: np.ndarray, k: int, *, seed: int = 0, logvar: float = -4.0) -> tuple[np.ndarray, np.ndarray]:
    """``k`` one-dimensional codes of the angles ``theta``, each torn at a random angle.

    Learner j codes angle t as ``s_j * (((t - c_j) mod 2 pi) - pi)``, with c_j uniform and s_j = +-1,
    and a posterior log-variance ``logvar`` everywhere. Returns mu, logvar (k, item, 1).
    """
    rng = np.random.default_rng(seed)
    cuts = rng.uniform(0.0, 2.0 * np.pi, k)
    signs = rng.choice([-1.0, 1.0], k)
    theta = np.asarray(theta, np.float64)
    mu = signs[:, None] * (np.mod(theta[None, :] - cuts[:, None], 2.0 * np.pi) - np.pi)
    return mu[..., None], np.full(mu.shape + (1,), float(logvar))
