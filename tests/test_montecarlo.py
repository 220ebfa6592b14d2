"""The Monte Carlo estimator against closed forms, quadrature and the Bhattacharyya bound."""

from __future__ import annotations

import math

import numpy as np
import pytest

import repspace
from repspace import kernels
from repspace.kernels import MCEstimate, MCOptions

from . import reference as ref


def clusters(k, per_cluster, dim, rng, spread=0.0, logvar=-4.0):
    centres = rng.normal(scale=1.0, size=(k, dim)) * 200.0
    mu = np.repeat(centres, per_cluster, axis=0) + rng.normal(scale=spread, size=(k * per_cluster, dim))
    return mu, np.full_like(mu, logvar)


@pytest.mark.parametrize("k", [2, 5, 8])
def test_separated_clusters_carry_log2_k_bits(k):
    rng = np.random.default_rng(k)
    mu, logvar = clusters(k, 30, 3, rng, spread=0.5, logvar=-1.0)
    # within a cluster the posteriors overlap, so I(U;X) = log2 k + mean_c I(U;X | cluster c)
    bits, se = repspace.mc_information(mu, logvar, n_samples=4000, seed=0)
    within = [
        repspace.mc_information(mu[c * 30 : (c + 1) * 30], logvar[c * 30 : (c + 1) * 30], n_samples=4000, seed=c + 1)
        for c in range(k)
    ]
    within_bits = np.mean([b for b, _ in within])
    within_se = math.sqrt(sum(e**2 for _, e in within)) / k
    assert abs(bits - (math.log2(k) + within_bits)) < 3 * math.hypot(se, within_se)
    # identical posteriors inside each cluster: exactly log2 k, whatever the sample
    mu, logvar = clusters(k, 20, 3, rng)
    bits, se = repspace.mc_information(mu, logvar, n_samples=1000, seed=1)
    assert bits == pytest.approx(math.log2(k), abs=1e-9)


def test_one_dimensional_space_matches_quadrature():
    rng = np.random.default_rng(3)
    mu = rng.normal(size=(40, 1)) * 2.0
    logvar = rng.normal(loc=-1.0, scale=0.7, size=(40, 1))
    truth = ref.mixture_information_1d(mu[:, 0], np.exp(logvar[:, 0]))
    bits, se = repspace.mc_information(mu, logvar, n_samples=20000, seed=4)
    assert se < 0.02
    assert abs(bits - truth) < 3 * se


def test_bhattacharyya_bound_never_exceeds_monte_carlo():
    rng = np.random.default_rng(5)
    for trial in range(4):
        mu = rng.normal(size=(80, 2)) * rng.uniform(0.5, 3)
        logvar = rng.normal(loc=-1.0, size=(80, 2))
        bound = float(repspace.compare_channels(mu[None], logvar[None])["information"][0])
        bits, se = repspace.mc_information(mu, logvar, n_samples=6000, seed=trial)
        assert bound <= bits + 3 * se
        assert bound > 0.2 * bits  # and it is a bound that says something


@pytest.mark.parametrize("block", [1, 7, 64])
def test_blocked_log_sum_exp_equals_unblocked(block):
    rng = np.random.default_rng(6)
    mu = rng.normal(size=(100, 4)) * 3
    logvar = rng.normal(size=(100, 4)) - 2
    u = rng.normal(size=(30, 4)) * 3
    whole = kernels.log_mean_likelihood(u, mu, logvar)
    blocked = kernels.log_mean_likelihood(u, mu, logvar, image_block=block)
    np.testing.assert_allclose(blocked, whole, rtol=0, atol=1e-10)
    # and both equal the direct broadcast evaluation
    var = np.exp(logvar)
    logp = -0.5 * (((u[:, None, :] - mu[None]) ** 2 / var[None]).sum(-1) + logvar.sum(-1)[None] + 4 * math.log(2 * math.pi))
    direct = np.log(np.exp(logp - logp.max(1, keepdims=True)).mean(1)) + logp.max(1)
    np.testing.assert_allclose(whole, direct, rtol=0, atol=1e-9)
    # the shifted road (the shift one of each sample's own terms) gives the same sums
    own = logp[np.arange(30), np.arange(30)]
    shifted = kernels.log_mean_likelihood(u, mu, logvar, image_block=block, shift=own)
    np.testing.assert_allclose(shifted, direct, rtol=0, atol=1e-9)


def test_shifted_sum_falls_back_when_a_term_is_far_above_the_shift():
    d = 20
    mu = np.zeros((2, d))
    logvar = np.stack([np.zeros(d), np.full(d, -75.0)])  # the second density at 0 is e^750 times the first's
    u = np.zeros((1, d))
    own = np.array([-0.5 * d * math.log(2 * math.pi)])  # the first posterior's log-density at 0
    got = kernels.log_mean_likelihood(u, mu, logvar, shift=own)
    np.testing.assert_allclose(got, kernels.log_mean_likelihood(u, mu, logvar), rtol=1e-12)
    assert np.isfinite(got).all()


def test_sample_blocks_do_not_change_the_estimate():
    rng = np.random.default_rng(7)
    mu = rng.normal(size=(60, 2))
    logvar = rng.normal(size=(60, 2)) - 1
    a = kernels.mc_information(mu, logvar, n_samples=500, rng=np.random.default_rng(1), options=MCOptions(sample_block=500, image_block=60))
    b = kernels.mc_information(mu, logvar, n_samples=500, rng=np.random.default_rng(1), options=MCOptions(sample_block=500, image_block=7))
    assert a.bits == pytest.approx(b.bits, abs=1e-12)
    assert repspace.mc_information(mu, logvar, n_samples=300, seed=9) == repspace.mc_information(mu, logvar, n_samples=300, seed=9)
    assert repspace.mc_information(mu, logvar, n_samples=300, seed=9) != repspace.mc_information(mu, logvar, n_samples=300, seed=10)


def test_copy_is_identical_and_independent_spaces_share_nothing():
    rng = np.random.default_rng(8)
    m = 400
    x = rng.integers(0, 4, m)
    y = rng.integers(0, 4, m)
    mu_x = (x[:, None] * 50.0).astype(np.float64)
    mu_y = (y[:, None] * 50.0).astype(np.float64)
    lv = np.zeros((m, 1))
    same = repspace.mc_compare(mu_x, lv, mu_x, lv, n_samples=3000, seed=1)
    assert abs(same.nmi - 1.0) <= max(3 * same.nmi_se, 1e-9)
    assert abs(same.vi) <= max(3 * same.vi_se, 1e-9)
    # two independent uniform 4-way labels: I(U;V) is the empirical MI of the draw, near 0
    indep = repspace.mc_compare(mu_x, lv, mu_y, lv, n_samples=3000, seed=2)
    h_x, h_y, h_xy = ref.entropy_bits(x), ref.entropy_bits(y), ref.entropy_bits(np.stack([x, y], 1))
    expected_nmi = (h_x + h_y - h_xy) / math.sqrt(h_x * h_y)
    assert abs(indep.nmi - expected_nmi) <= 3 * indep.nmi_se + 1e-9
    assert abs(indep.vi - (2 * h_xy - h_x - h_y)) <= 3 * indep.vi_se + 1e-9
    assert indep.nmi < 0.05


def test_noisy_copy_matches_quadrature():
    rng = np.random.default_rng(9)
    m = 60
    mu = rng.normal(size=(m, 1)) * 2.0
    sharp = np.full((m, 1), -3.0)
    noisy = np.full((m, 1), 0.0)
    res = repspace.mc_compare(mu, sharp, mu, noisy, n_samples=20000, seed=3)
    ia = ref.mixture_information_1d(mu[:, 0], np.exp(sharp[:, 0]))
    ib = ref.mixture_information_1d(mu[:, 0], np.exp(noisy[:, 0]))
    assert abs(res.information_a.bits - ia) < 3 * res.information_a.se
    assert abs(res.information_b.bits - ib) < 3 * res.information_b.se
    assert 0 < res.nmi < 1
    assert res.vi > 0


def test_error_propagation_against_finite_differences():
    est = dict(ia=MCEstimate(2.0, 0.01), ib=MCEstimate(1.5, 0.02), sa=MCEstimate(1.8, 0.015), sb=MCEstimate(1.2, 0.01), jab=MCEstimate(2.6, 0.03))
    nmi, nmi_se, vi, vi_se = kernels.propagate_nmi_vi(**est)

    def nmi_of(v):
        return (v["ia"] + v["ib"] - v["jab"]) / math.sqrt((2 * v["ia"] - v["sa"]) * (2 * v["ib"] - v["sb"]))

    centre = {k: e.bits for k, e in est.items()}
    assert nmi == pytest.approx(nmi_of(centre))
    var = 0.0
    for k, e in est.items():
        h = 1e-6
        up, down = dict(centre), dict(centre)
        up[k] += h
        down[k] -= h
        var += ((nmi_of(up) - nmi_of(down)) / (2 * h) * e.se) ** 2
    assert nmi_se == pytest.approx(math.sqrt(var), rel=1e-6)
    assert vi == pytest.approx(2 * 2.6 - 1.8 - 1.2)
    assert vi_se == pytest.approx(math.sqrt(4 * 0.03**2 + 0.015**2 + 0.01**2))


def test_inverse_variance_combination():
    mean, se = repspace.inverse_variance_mean([1.0, 2.0, 4.0], [0.1, 0.2, 0.4])
    w = np.array([100.0, 25.0, 6.25])
    assert mean == pytest.approx((w * [1, 2, 4]).sum() / w.sum())
    assert se == pytest.approx(1 / math.sqrt(w.sum()))
    assert se < 0.1
    assert repspace.inverse_variance_mean([1.0, np.nan], [0.1, 0.1]) == (1.0, 0.1)
    with pytest.raises(ValueError, match="differ in size"):
        repspace.inverse_variance_mean([1.0, 2.0], [0.1])


def test_bad_input_is_named():
    mu = np.zeros((10, 2))
    lv = np.zeros((10, 2))
    lv[4, 1] = np.nan
    with pytest.raises(ValueError, match="logvar has NaN"):
        repspace.mc_information(mu, lv, n_samples=10, seed=0)
    with pytest.raises(ValueError, match=r"\(image, dim\)"):
        repspace.mc_information(np.zeros(10), np.zeros(10), n_samples=10, seed=0)
    with pytest.raises(ValueError, match="different numbers of images"):
        repspace.mc_compare(np.zeros((10, 1)), np.zeros((10, 1)), np.zeros((9, 1)), np.zeros((9, 1)), n_samples=10, seed=0)
