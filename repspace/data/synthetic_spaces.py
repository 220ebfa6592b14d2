"""The nine synthetic representation spaces of the paper's measure comparison (its Sec. 4.1).

Each embeds the same N = 64 items (the points x = 0..63) as diagonal-Gaussian posteriors in one or
two dimensions. Spirals keep the items' order along a curve, with constant, larger or growing
posterior variances; a square spiral does the same on a grid-like path; a line embeds them in 1-D;
and three spaces collapse the items into two or four indistinguishable clusters (one with the
clusters smeared vertically into each other), so that they keep only 1 or 2 bits.

>>> spaces = nine_spaces()
>>> [s.name for s in spaces][:3], spaces[5].mu.shape, spaces[0].mu.shape
(['spiral', 'bloated spiral', 'growing spiral'], (64, 1), (64, 2))
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["SyntheticSpace", "nine_spaces"]


@dataclasses.dataclass(frozen=True)
class SyntheticSpace:
    """One synthetic space: posteriors ``mu``, ``logvar`` (item, dim) and what it is."""

    name: str
    description: str
    mu: np.ndarray
    logvar: np.ndarray


def _spiral(x: np.ndarray, frequency: float = 0.2) -> np.ndarray:
    r = np.sqrt(x)
    return r[:, None] * np.stack([np.cos(2 * np.pi * r * frequency), np.sin(2 * np.pi * r * frequency)], axis=1)


def _square_spiral(n: int, step: float = 0.5, growth: float = 0.1) -> np.ndarray:
    """Points along a square spiral: legs of 1, 1, 2, 2, 3, 3, ... steps; the step grows after every leg."""
    directions = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]])
    points, here, heading, leg, taken = [np.zeros(2)], np.zeros(2), 0, 1, 0
    while len(points) < n:
        here = here + step * directions[heading]
        points.append(here)
        taken += 1
        if taken == leg:
            taken, heading, step = 0, (heading + 1) % 4, step + growth
            if heading % 2 == 0:
                leg += 1
    return np.array(points)


def nine_spaces(n: int = 64) -> list[SyntheticSpace]:
    """The nine spaces over ``n`` items (the paper's n = 64, a square number)."""
    side = int(round(np.sqrt(n)))
    if side * side != n or n % 4:
        raise ValueError(f"n must be a square number divisible by 4, got {n}")
    x = np.arange(n, dtype=np.float64)
    spiral = _spiral(x)
    square = _square_spiral(n)
    two = np.repeat([[-0.8 * side, 0.0], [0.8 * side, 0.0]], n // 2, axis=0)
    c = 0.7 * side
    four = np.repeat([[-c, c], [c, c], [c, -c], [-c, -c]], n // 4, axis=0)
    four_overlapping = np.repeat([[-c, c], [-c, -c], [c, -c], [c, c]], n // 4, axis=0)
    full = np.ones((n, 2))
    return [
        SyntheticSpace("spiral", "a spiral, every item the same small variance", spiral, 0.1 * full),
        SyntheticSpace("bloated spiral", "the spiral with variances e^2 times larger", spiral, 2.1 * full),
        SyntheticSpace("growing spiral", "the spiral with variances that grow along it", spiral,
                       0.1 + np.sqrt(x)[:, None] - 4.5 + 0 * full),
        SyntheticSpace("square spiral", "a square spiral of growing steps, unit variances", square, 0 * full),
        SyntheticSpace("bloated square spiral", "the square spiral with variances e^2.5", square, 2.5 * full),
        SyntheticSpace("line", "the items in order on a line, in one dimension",
                       np.linspace(-n / 2, n / 2, n)[:, None], -np.ones((n, 1))),
        SyntheticSpace("two clusters", "two far-apart clusters of half the items each (1 bit)", two, full.copy()),
        SyntheticSpace("four clusters", "four far-apart clusters of a quarter each (2 bits)", four, full.copy()),
        SyntheticSpace("four overlapping clusters", "four clusters, in another order, smeared vertically into "
                       "each other", four_overlapping, np.column_stack([np.ones(n), 4.0 * np.ones(n)])),
    ]
