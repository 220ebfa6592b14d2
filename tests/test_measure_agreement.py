"""The measures' Spearman agreement with its bootstrap interval over the spaces: the weighted kernel against
the resampled list written out and scipy, the point estimate against measure_agreement, the interval's
behaviour (perfect agreement, noise, more spaces) and its seeding."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy.stats import spearmanr

from repspace.data.synthetic_spaces import nine_spaces
from repspace.kernels import space_resample_weights, spearman_interval, weighted_spearman
from repspace.measures import compare_spaces, measure_agreement, measure_agreement_interval

CHEAP = ["nmi_bc", "vi_bc", "cka_linear", "cka_rbf", "cka_bc"]


def expanded_resample_spearman(matrices: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Slow and obviously correct: for each row of ``draws`` (the spaces drawn), list every pair of drawn
    spaces (i < j in the draw) that are not the same space, and take scipy's Spearman of every two
    measures over that list, leaving out the pairs where either is NaN (NaN with fewer than 3 distinct
    pairs of spaces left)."""
    m = matrices.shape[0]
    out = np.full((len(draws), m, m), np.nan)
    for r, drawn in enumerate(draws):
        pairs = [(a, b) for i, a in enumerate(drawn) for b in drawn[i + 1:] if a != b]
        values = np.array([[matrices[k, a, b] for k in range(m)] for a, b in pairs])
        distinct = np.array([min(a, b) * 10_000 + max(a, b) for a, b in pairs])
        for a in range(m):
            out[r, a, a] = 1.0
            for b in range(a + 1, m):
                ok = np.isfinite(values[:, a]) & np.isfinite(values[:, b])
                if np.unique(distinct[ok]).size >= 3:
                    out[r, a, b] = out[r, b, a] = spearmanr(values[ok, a], values[ok, b]).statistic
    return out


def symmetric(rng: np.random.Generator, s: int) -> np.ndarray:
    x = rng.random((s, s))
    return x + x.T


def related(s: int, noise: float, seed: int) -> np.ndarray:
    """Two measures between ``s`` spaces: distances of points in the plane, and those plus ``noise``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(s, 2))
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    return np.stack([d, d + noise * symmetric(rng, s)])


def test_weighted_spearman_is_the_spearman_of_the_resampled_list():
    rng = np.random.default_rng(3)
    s, b = 5, 60
    mats = np.stack([symmetric(rng, s), symmetric(rng, s), symmetric(rng, s)])
    mats[1] = np.round(mats[1], 1)  # ties
    mats[2, 0, 1:] = mats[2, 1:, 0] = np.nan  # a measure undefined between space 0 and the rest
    iu = np.triu_indices(s, 1)
    weights = space_resample_weights(s, b, np.random.default_rng(11))
    want = expanded_resample_spearman(mats, np.random.default_rng(11).integers(0, s, (b, s)))
    got = weighted_spearman(mats[:, iu[0], iu[1]].T, weights)
    assert np.isnan(want).any() and not np.isnan(want).all()  # some resamples drew too few spaces
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_the_point_estimate_is_measure_agreement_and_lies_in_its_interval():
    spaces = nine_spaces(16)
    ds = compare_spaces([x.mu for x in spaces], [x.logvar for x in spaces], CHEAP)
    agree = measure_agreement_interval(ds, np.random.default_rng(0))
    np.testing.assert_allclose(agree.spearman.values, measure_agreement(ds).values, atol=1e-12)
    rho, low, high = agree.spearman.values, agree.spearman_low.values, agree.spearman_high.values
    assert (low <= rho + 1e-12).all() and (rho <= high + 1e-12).all()
    assert agree.attrs["n_resamples"] == 1000 and agree.attrs["level"] == 0.95 and agree.attrs["pairs"] == 36
    assert "bootstrap over the spaces" in agree.attrs["method"]
    assert (agree.spearman_undefined.values < 10).all()  # nine spaces: almost every resample draws three


def test_perfect_agreement_is_a_degenerate_interval_and_noise_a_wide_one():
    rng = np.random.default_rng(1)
    d = symmetric(rng, 40)
    rho, low, high, undefined = spearman_interval([d, np.exp(d), -d, symmetric(rng, 40)], np.random.default_rng(2))
    np.testing.assert_allclose([rho[0, 1], low[0, 1], high[0, 1]], 1.0, atol=1e-12)  # monotone: 1 in every resample
    np.testing.assert_allclose([rho[0, 2], low[0, 2], high[0, 2]], -1.0, atol=1e-12)
    assert low[0, 3] < 0.0 < high[0, 3] and high[0, 3] - low[0, 3] > 0.05  # unrelated: about 0, not certain
    assert (undefined == 0).all()
    _, low, high, _ = spearman_interval(related(10, 2.0, 0), np.random.default_rng(2))  # few spaces, much noise
    assert high[0, 1] - low[0, 1] > 0.5


def test_the_interval_narrows_with_more_spaces():
    widths = []
    for s in (8, 20, 60):
        _, low, high, _ = spearman_interval(related(s, 0.5, 5), np.random.default_rng(0))
        widths.append(high[0, 1] - low[0, 1])
    assert widths[0] > widths[1] > widths[2] > 0.0


def test_the_interval_is_seeded():
    mats = related(15, 0.5, 1)
    one, again, other = (spearman_interval(mats, np.random.default_rng(seed), n_resamples=200) for seed in (4, 4, 5))
    for a, b in zip(one, again):
        np.testing.assert_array_equal(a, b)
    assert one[1][0, 1] != other[1][0, 1]
    np.testing.assert_array_equal(one[0], other[0])  # the point estimate draws nothing


def test_refusals():
    with pytest.raises(ValueError, match="level must be in"):
        spearman_interval(related(5, 0.1, 0), np.random.default_rng(0), level=1.0)
    with pytest.raises(ValueError, match="at least 3 distinct pairs"):
        spearman_interval(related(2, 0.1, 0), np.random.default_rng(0))
    with pytest.raises(ValueError, match="non-negative"):
        weighted_spearman(np.ones((3, 2)), -np.ones((1, 3)))
    ds = xr.Dataset({"a": (("space_a", "space_b"), np.eye(2)), "b": (("space_a", "space_b"), np.eye(2))})
    with pytest.raises(ValueError, match="at least 3 distinct pairs"):
        measure_agreement_interval(ds, np.random.default_rng(0))
