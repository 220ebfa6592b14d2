"""Measures between whole spaces: HSIC and CKA against slow, written-out references and closed forms;
compare_spaces against the core; measure_agreement against scipy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import xarray as xr
from scipy.stats import ortho_group, spearmanr

import repspace
from repspace import kernels
from repspace.measures import MEASURES, ClassifierOptions, compare_spaces, measure_agreement


SMALL_CLASSIFIER = ClassifierOptions(hidden=(64, 64), steps=1000, batch_size=256, learning_rate=3e-3, eval_samples=200)


def hsic_biased_reference(k, l):
    n = len(k)
    h = np.eye(n) - np.ones((n, n)) / n  # the centering matrix, explicitly
    return np.trace(k @ h @ l @ h) / (n - 1) ** 2


def hsic_unbiased_reference(k, l):
    """The U-statistic over ordered distinct 4-tuples: E[k_ij l_ij] + E[k_ij] E[l_qr] - 2 E[k_ij l_iq]."""
    n = len(k)
    total, count = 0.0, 0
    for i, j, q, r in itertools.permutations(range(n), 4):
        total += k[i, j] * l[i, j] + k[i, j] * l[q, r] - 2 * k[i, j] * l[i, q]
        count += 1
    return total / count


def cka_reference(k, l, hsic):
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def spaces(seed=0, n=9):
    rng = np.random.default_rng(seed)
    return ([rng.normal(size=(n, 2)), rng.normal(size=(n, 1)), rng.normal(size=(n, 3))],
            [rng.normal(-1.5, 0.3, size=(n, 2)), rng.normal(-1.0, 0.3, size=(n, 1)), rng.normal(-2, 0.3, size=(n, 3))])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hsic_and_cka_match_the_written_out_estimators(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(7, 2)), rng.normal(size=(7, 3))
    for k, l in [(kernels.linear_kernel(x), kernels.linear_kernel(y)), (kernels.rbf_kernel(x, 0.7), kernels.rbf_kernel(y, 1.3))]:
        assert kernels.hsic(k, l) == pytest.approx(hsic_biased_reference(k, l), rel=1e-12, abs=1e-14)
        assert kernels.hsic(k, l, debiased=True) == pytest.approx(hsic_unbiased_reference(k, l), rel=1e-10, abs=1e-13)
        assert kernels.cka(k, l) == pytest.approx(cka_reference(k, l, hsic_biased_reference), rel=1e-12)
        assert kernels.cka(k, l, debiased=True) == pytest.approx(cka_reference(k, l, hsic_unbiased_reference), rel=1e-9)


def test_cka_closed_forms():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(25, 4))
    q = ortho_group.rvs(4, random_state=4)
    for debiased in (False, True):
        assert kernels.cka(kernels.linear_kernel(x), kernels.linear_kernel(x), debiased=debiased) == pytest.approx(1.0)
        # linear CKA is invariant to orthogonal transforms and isotropic scaling
        assert kernels.cka(kernels.linear_kernel(x), kernels.linear_kernel(3.5 * x @ q),
                           debiased=debiased) == pytest.approx(1.0, abs=1e-12)
    assert kernels.cka(kernels.linear_kernel(x), kernels.linear_kernel(rng.normal(size=(25, 4)))) < 0.6
    assert np.isnan(kernels.cka(np.ones((5, 5)), kernels.linear_kernel(x[:5])))  # a constant kernel


def test_compare_spaces_against_the_core_and_the_references():
    mus, lvs = spaces()
    ds = compare_spaces(mus, lvs, seed=1, mc_samples=1500, classifier=SMALL_CLASSIFIER)
    assert set(ds.data_vars) == set(MEASURES) | {"nmi_mc_se", "vi_mc_se", "classifier_information"}
    for name in MEASURES:
        np.testing.assert_allclose(ds[name].values, ds[name].values.T, err_msg=name)
    bc = np.stack([repspace.bhattacharyya(m, v) for m, v in zip(mus, lvs)])
    core = repspace.compare(bc)
    np.testing.assert_allclose(ds.nmi_bc.values, core.nmi.values, atol=1e-12)
    np.testing.assert_allclose(ds.vi_bc.values, core.vi.values, atol=1e-12)
    np.testing.assert_allclose(np.diag(ds.cka_bc.values), 1.0, atol=1e-12)
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        assert float(ds.cka_bc[a, b]) == pytest.approx(cka_reference(bc[a], bc[b], hsic_biased_reference), rel=1e-10)
        lin = [m @ m.T for m in mus]
        assert float(ds.cka_linear[a, b]) == pytest.approx(cka_reference(lin[a], lin[b], hsic_biased_reference), rel=1e-10)
        sd = [np.mean(np.exp(v / 2)) for v in lvs]
        rbf = [np.exp(-((m[:, None, :] - m[None, :, :]) ** 2).sum(-1) / (2 * s**2)) for m, s in zip(mus, sd)]
        assert float(ds.cka_rbf[a, b]) == pytest.approx(cka_reference(rbf[a], rbf[b], hsic_biased_reference), rel=1e-9)
    # Monte Carlo: a space against itself shares everything, within three standard errors
    same = compare_spaces([mus[0], mus[0]], [lvs[0], lvs[0]], ["nmi_mc", "vi_mc"], mc_samples=3000)
    assert abs(float(same.nmi_mc[0, 1]) - 1) < 3 * float(same.nmi_mc_se[0, 1]) + 1e-9
    assert abs(float(same.vi_mc[0, 1])) < 3 * float(same.vi_mc_se[0, 1]) + 1e-9
    again = compare_spaces(mus, lvs, ["vi_mc"], seed=1, mc_samples=1500)
    xr.testing.assert_equal(again.vi_mc, ds.vi_mc)  # seeded


def test_labelled_spaces_by_dim_name():
    mus, lvs = spaces(5)
    plain = compare_spaces(mus, lvs, ["cka_linear", "vi_bc"])
    named = [xr.DataArray(m.T, dims=("dim", "item"), name=f"s{k}") for k, m in enumerate(mus)]
    lv_named = [xr.DataArray(v.T, dims=("dim", "item")) for v in lvs]
    ds = compare_spaces(named, lv_named, ["cka_linear", "vi_bc"])
    assert ds.space_a.values.tolist() == ["s0", "s1", "s2"]
    np.testing.assert_allclose(ds.cka_linear.values, plain.cka_linear.values, atol=1e-12)
    np.testing.assert_allclose(ds.vi_bc.values, plain.vi_bc.values, atol=1e-12)
    with pytest.raises(ValueError, match="unknown measures"):
        compare_spaces(mus, lvs, ["cka_lin"])
    with pytest.raises(ValueError, match="share their items"):
        compare_spaces([mus[0], mus[1][:5]], [lvs[0], lvs[1][:5]])


def test_measure_agreement_is_spearman_over_distinct_pairs():
    rng = np.random.default_rng(6)
    mus = [rng.normal(size=(12, 2)) * (1 + k % 3) + k * rng.normal(size=(12, 2)) for k in range(5)]
    lvs = [np.full((12, 2), -1.0)] * 5
    ds = compare_spaces(mus, lvs, ["nmi_bc", "vi_bc", "cka_linear", "cka_bc"])
    rho = measure_agreement(ds)
    iu = np.triu_indices(5, 1)
    assert rho.attrs["pairs"] == 10
    for a, b in [("nmi_bc", "vi_bc"), ("nmi_bc", "cka_linear"), ("cka_bc", "vi_bc")]:
        assert float(rho.sel(measure_a=a, measure_b=b)) == pytest.approx(
            spearmanr(ds[a].values[iu], ds[b].values[iu]).statistic, abs=1e-12)
    assert float(rho.sel(measure_a="nmi_bc", measure_b="vi_bc")) < 0  # a distance against a similarity
    np.testing.assert_allclose(np.diag(rho.values), 1.0)
    with pytest.raises(ValueError, match="at least 3 distinct pairs"):
        measure_agreement(compare_spaces(mus[:2], lvs[:2], ["cka_linear"]))


def test_the_nine_spaces_and_what_the_measures_see_in_them():
    from repspace.data.synthetic_spaces import nine_spaces

    spaces = nine_spaces()
    assert len(spaces) == 9 and all(s.mu.shape[0] == 64 and s.mu.shape == s.logvar.shape for s in spaces)
    ds = compare_spaces([s.mu for s in spaces], [s.logvar for s in spaces], ["nmi_bc", "vi_bc", "cka_linear", "cka_bc"])
    info = repspace.compare(np.stack([repspace.bhattacharyya(s.mu, s.logvar) for s in spaces]))["information"].values
    names = [s.name for s in spaces]
    assert info[names.index("two clusters")] == pytest.approx(1.0, abs=0.01)  # two indistinguishable halves: 1 bit
    assert info[names.index("four clusters")] == pytest.approx(2.0, abs=0.02)
    assert info[names.index("line")] > info[names.index("spiral")] > info[names.index("bloated spiral")]
    a, b = names.index("spiral"), names.index("bloated spiral")
    # the same means, other variances: linear CKA sees no difference, the information measures do
    assert float(ds.cka_linear[a, b]) == pytest.approx(1.0, abs=1e-12)
    assert float(ds.nmi_bc[a, b]) < 0.95 and float(ds.vi_bc[a, b]) > 0.5
    assert float(ds.cka_bc[a, b]) < 0.99
    two, four = names.index("two clusters"), names.index("four clusters")
    assert float(ds.vi_bc[two, four]) == pytest.approx(1.0, abs=0.03)  # four clusters refine two: VI = H(4) - H(2)


def bures_reference(cov_a, cov_b):
    from scipy.linalg import sqrtm

    ra = sqrtm(cov_a)
    return float(np.trace(cov_a) + np.trace(cov_b) - 2 * np.real(np.trace(sqrtm(ra @ cov_b @ ra))))


def rotation(t):
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def shape_objective_written_out(mu_a, var_a, mu_b, var_b, q, alpha):
    """Duong et al.'s objective at one alignment Q, with full covariance matrices (means centred):
    1/N sum_i [alpha |m_a - Q m_b|^2 + (2 - alpha) Bures^2(S_a, Q S_b Q^T)]."""
    mu_a, mu_b = mu_a - mu_a.mean(0), mu_b - mu_b.mean(0)
    total = 0.0
    for i in range(len(mu_a)):
        total += alpha * np.sum((mu_a[i] - q @ mu_b[i]) ** 2)
        total += (2 - alpha) * bures_reference(np.diag(var_a[i]), q @ np.diag(var_b[i]) @ q.T)
    return total / len(mu_a)


def shape_brute_force(mu_a, var_a, mu_b, var_b, alpha, steps=7200):
    """Every rotation and reflection of the plane on a fine grid; the objective written out with full matrices."""
    best = min(shape_objective_written_out(mu_a, var_a, mu_b, var_b, q, alpha)
               for t in np.linspace(0, 2 * np.pi, steps, endpoint=False)
               for q in (rotation(t), rotation(t) @ np.diag([-1.0, 1.0])))
    return np.sqrt(best)


def test_bures_matches_matrix_square_roots():
    rng = np.random.default_rng(10)
    var_a, var_b = rng.uniform(0.1, 2, (5, 3)), rng.uniform(0.1, 2, (5, 3))
    q = ortho_group.rvs(3, random_state=11)
    got = kernels.bures_squared(var_a, var_b, q)
    for i in range(5):
        assert got[i] == pytest.approx(bures_reference(np.diag(var_a[i]), q @ np.diag(var_b[i]) @ q.T), abs=1e-10)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 1.5, 2.0])
def test_shape_distance_against_a_search_over_every_alignment(alpha):
    rng = np.random.default_rng(12)
    mu_a, mu_b = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    var_a, var_b = rng.uniform(0.2, 1.5, (6, 2)), rng.uniform(0.2, 1.5, (6, 2))
    got = kernels.stochastic_shape_distance(mu_a, var_a, mu_b, var_b, alpha=alpha, n_restarts=6)
    brute = shape_brute_force(mu_a, var_a, mu_b, var_b, alpha, steps=720)
    assert got <= brute + 1e-9 and got == pytest.approx(brute, abs=2e-3)
    # one dimension: Q = +-1, and Bures^2 of two variances is (sqrt(v_a) - sqrt(v_b))^2
    a1, b1 = mu_a[:, :1], mu_b[:, :1]
    exact = min(np.sqrt(np.mean(alpha * (a1 - a1.mean() - s * (b1 - b1.mean())) ** 2 + (2 - alpha) * (
        np.sqrt(var_a[:, :1]) - np.sqrt(var_b[:, :1])) ** 2)) for s in (1, -1))
    assert kernels.stochastic_shape_distance(a1, var_a[:, :1], b1, var_b[:, :1], alpha=alpha) == pytest.approx(exact)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 1.5])
def test_shape_alpha_weights_the_means_as_duong_et_al(alpha):
    """alpha on the means, 2 - alpha on the covariances (netrep's GaussianStochasticMetric): at the
    alignment where the means-only (alpha 2) and covariances-only (alpha 0) terms are known, the
    distance is the written-out objective, and moving the means apart moves it by alpha times as much."""
    rng = np.random.default_rng(14)
    mu_a, var_a, var_b = rng.normal(size=(7, 2)), rng.uniform(0.2, 1.5, (7, 2)), rng.uniform(0.2, 1.5, (7, 2))
    q = rotation(0.7)
    mu_b = mu_a @ q  # Q mu_b = mu_a: the means align exactly at Q, so the minimum is the covariance term's
    var_b_iso = np.repeat(var_b[:, :1], 2, axis=1)  # isotropic: Bures^2 is the same at every Q
    got = kernels.stochastic_shape_distance(mu_a, var_a, mu_b, var_b_iso, alpha=alpha, n_restarts=2)
    assert got == pytest.approx(np.sqrt(shape_objective_written_out(mu_a, var_a, mu_b, var_b_iso, q, alpha)),
                                rel=1e-7)
    bures_only = np.mean([bures_reference(np.diag(var_a[i]), np.diag(var_b_iso[i])) for i in range(7)])
    assert got**2 == pytest.approx((2 - alpha) * bures_only, rel=1e-7)
    # equal isotropic covariances: Bures^2 = 0 at every Q, and d^2 is alpha / 2 times the means-only one
    shifted = mu_b + rng.normal(scale=0.3, size=mu_b.shape)
    iso = np.full((7, 2), 0.5)
    both = kernels.stochastic_shape_distance(mu_a, iso, shifted, iso, alpha=alpha, n_restarts=2)
    means_only = kernels.stochastic_shape_distance(mu_a, iso, shifted, iso, alpha=2.0, n_restarts=2)
    assert both > 0 and both**2 == pytest.approx(alpha / 2 * means_only**2, rel=1e-7)


def test_shape_alpha_limits_procrustes_on_the_means_and_covariances_only():
    from scipy.linalg import orthogonal_procrustes

    rng = np.random.default_rng(15)
    x, y = rng.normal(size=(20, 3)) + 5.0, rng.normal(size=(20, 3)) - 2.0  # off centre: the means are centred
    var_x, var_y = rng.uniform(0.1, 3.0, (20, 3)), rng.uniform(0.1, 3.0, (20, 3))
    xc, yc = x - x.mean(0), y - y.mean(0)
    r, _ = orthogonal_procrustes(yc, xc)  # R minimising |yc R - xc|_F
    procrustes = np.sqrt(2 * np.mean(np.sum((xc - yc @ r) ** 2, axis=1)))
    # alpha 2: the deterministic shape metric on the means; the variances do not count
    got = kernels.stochastic_shape_distance(x, var_x, y, var_y, alpha=2.0, n_restarts=0)
    assert got == pytest.approx(procrustes, rel=1e-6)
    # alpha 0: the covariances only; with isotropic ones Bures^2 = d (sqrt(v_a) - sqrt(v_b))^2 at every Q
    iso_x, iso_y = np.repeat(var_x[:, :1], 3, axis=1), np.repeat(var_y[:, :1], 3, axis=1)
    covariances = np.sqrt(2 * np.mean(3 * (np.sqrt(iso_x[:, 0]) - np.sqrt(iso_y[:, 0])) ** 2))
    got = kernels.stochastic_shape_distance(x, iso_x, y, iso_y, alpha=0.0, n_restarts=1)
    assert got == pytest.approx(covariances, rel=1e-7)
    assert kernels.stochastic_shape_distance(rng.normal(size=(20, 3)), iso_x, y, iso_y, alpha=0.0,
                                             n_restarts=1) == pytest.approx(covariances, rel=1e-7)


def test_shape_distance_is_a_metric_on_shapes():
    rng = np.random.default_rng(13)
    mu, var = rng.normal(size=(8, 2)), rng.uniform(0.2, 1.0, (8, 2))
    swap = np.array([[0.0, -1.0], [1.0, 0.0]])  # a quarter turn keeps diagonal covariances diagonal
    assert kernels.stochastic_shape_distance(mu, var, mu @ swap.T + 3.0, var[:, ::-1]) == pytest.approx(0, abs=1e-7)
    spaces = [(rng.normal(size=(8, 2)), rng.uniform(0.2, 1.0, (8, 2))) for _ in range(3)]
    d = lambda x, y: kernels.stochastic_shape_distance(*x, *y, n_restarts=6)  # noqa: E731
    assert d(spaces[0], spaces[1]) == pytest.approx(d(spaces[1], spaces[0]), abs=1e-6)
    for x, y, z in itertools.permutations(spaces):
        assert d(x, z) <= d(x, y) + d(y, z) + 1e-6


def test_compare_spaces_shape_only_between_spaces_of_one_dimension():
    mus, lvs = spaces(14)
    ds = compare_spaces(mus, lvs, ["stochastic_shape", "cka_linear"], shape_restarts=3)
    assert np.isnan(ds.stochastic_shape.values[0, 1]) and np.isnan(ds.stochastic_shape.values[1, 2])  # 2-d vs 1-d, 1-d vs 3-d
    np.testing.assert_allclose(np.diag(ds.stochastic_shape.values), 0.0, atol=1e-6)
    assert float(ds.stochastic_shape[0, 0]) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-4)])
@pytest.mark.parametrize("unit_block,row_block", [(3, 4), (512, None)])
def test_all_pairs_cka_bc_equals_the_per_pair_formula(dtype, tol, unit_block, row_block):
    rng = np.random.default_rng(15)
    mu = rng.normal(size=(7, 30)).astype(dtype)
    lv = rng.normal(-1.5, 0.4, size=(7, 30)).astype(dtype)
    opts = kernels.BlockOptions(unit_block=unit_block, row_block=row_block, threads=2)
    res = kernels.pairwise_information(kernels.PosteriorRows(mu, lv), options=opts, cka=True)
    bc = repspace.bhattacharyya(mu.astype(np.float64)[..., None], lv.astype(np.float64)[..., None])
    want = np.array([[kernels.cka(bc[a], bc[b]) for b in range(7)] for a in range(7)])
    np.testing.assert_allclose(res.cka_bc, want, atol=tol)
    np.testing.assert_array_equal(res.cka_bc, res.cka_bc.T)
    # against a second set, and against ground-truth factors (label kernels)
    labels = rng.integers(0, 3, size=(30, 2))
    cross = kernels.pairwise_information(kernels.PosteriorRows(mu[:3], lv[:3]), kernels.LabelRows(labels, mu.dtype),
                                         options=opts, cka=True)
    lab = repspace.label_coefficients(labels)
    want = np.array([[kernels.cka(bc[a], lab[f]) for f in range(2)] for a in range(3)])
    np.testing.assert_allclose(cross.cka_bc, want, atol=tol)
    plain = kernels.pairwise_information(kernels.PosteriorRows(mu, lv), options=opts)
    assert plain.cka_bc is None
    np.testing.assert_array_equal(plain.joint_information, res.joint_information)  # the information is unchanged


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cka_bc_of_a_channel_that_carries_nothing_is_undefined(dtype):
    """A collapsed channel (the prior everywhere) has a constant BC matrix: its centred kernel is zero, and
    what the sums leave of it is rounding error, so its CKA with anything is NaN, not a number in [-80, 80]."""
    rng = np.random.default_rng(4)
    mu = rng.normal(size=(4, 40)).astype(dtype)
    lv = rng.normal(-2.0, 0.3, size=(4, 40)).astype(dtype)
    mu[1], lv[1] = 0.0, 0.0
    mu[3] = 1e-3 * rng.normal(size=40)  # almost collapsed: BC within 1e-6 of 1
    lv[3] = 0.0
    for threads in (1, 2):
        res = kernels.pairwise_information(kernels.PosteriorRows(mu, lv), cka=True,
                                           options=kernels.BlockOptions(threads=threads))
        assert np.isnan(res.cka_bc[1]).all() and np.isnan(res.cka_bc[:, 1]).all()
        assert np.isnan(res.cka_bc[3]).all()
        informative = np.ix_([0, 2], [0, 2])
        assert np.isfinite(res.cka_bc[informative]).all() and (np.abs(res.cka_bc[informative]) <= 1 + 1e-6).all()


def jsd_reference(p, q):
    """Per row: (KL(p||m) + KL(q||m)) / 2 written out term by term, then the mean over rows."""
    total = 0.0
    for pi, qi in zip(p, q):
        row = 0.0
        for a, b in zip(pi, qi):
            m = (a + b) / 2
            row += (a * np.log(a / m) if a > 0 else 0.0) / 2 + (b * np.log(b / m) if b > 0 else 0.0) / 2
        total += row
    return total / len(p)


def test_jensen_shannon_against_the_written_out_sum_and_its_bounds():
    rng = np.random.default_rng(16)
    p, q = rng.dirichlet(np.ones(6), size=5), rng.dirichlet(np.ones(6) * 0.3, size=5)
    p[0, :3] = 0.0
    p[0] /= p[0].sum()
    assert kernels.jensen_shannon(p, q) == pytest.approx(jsd_reference(p, q), rel=1e-12)
    assert kernels.jensen_shannon(p, q) == pytest.approx(kernels.jensen_shannon(q, p), rel=1e-12)
    assert kernels.jensen_shannon(p, p) == 0.0
    disjoint = np.eye(4)
    assert kernels.jensen_shannon(disjoint, disjoint[::-1]) == pytest.approx(np.log(2), rel=1e-12)
    with pytest.raises(ValueError, match="one shape"):
        kernels.jensen_shannon(p, q[:3])


def test_classifier_measure_is_seeded_and_recovers_what_a_space_holds():
    rng = np.random.default_rng(17)
    n = 16
    apart = rng.permutation(n)[:, None] * 3.0  # 16 items far apart on a line: all 4 bits
    halves = np.repeat([[-20.0], [20.0]], n // 2, axis=0)  # two indistinguishable halves: 1 bit
    lv = np.full((n, 1), -2.0)
    mus = [apart, apart.copy(), halves]
    ds = compare_spaces(mus, [lv] * 3, ["jsd_classifier"], classifier=SMALL_CLASSIFIER, seed=3)
    jsd = ds.jsd_classifier.values
    np.testing.assert_array_equal(jsd, jsd.T)
    assert jsd[0, 1] == 0.0 and np.all(np.diag(jsd) == 0.0)  # identical spaces, one seed: one classifier
    # a perfect classifier of each: one-hot rows against rows uniform over 8 items, JSD 0.497 nats
    assert 0.4 < jsd[0, 2] < 0.5
    bits = ds.classifier_information.values
    assert bits[0] > 3.6 and bits[2] == pytest.approx(1.0, abs=0.05)  # at most log2 16 = 4 bits
    again = compare_spaces(mus, [lv] * 3, ["jsd_classifier"], classifier=SMALL_CLASSIFIER, seed=3)
    xr.testing.assert_equal(again, ds)
    other = compare_spaces(mus, [lv] * 3, ["jsd_classifier"], classifier=SMALL_CLASSIFIER, seed=4)
    assert not np.array_equal(other.jsd_classifier.values, jsd)
    # the matrix is the written-out JSD of the mean predicted distributions
    from repspace.measures import MeasureOptions, classifier_predictions

    opts = MeasureOptions(seed=3, classifier=SMALL_CLASSIFIER)
    preds = [classifier_predictions(m, lv, opts)[0] for m in mus]
    np.testing.assert_allclose(preds[0].sum(axis=1), 1.0, atol=1e-12)
    assert jsd[0, 2] == pytest.approx(jsd_reference(preds[0], preds[2]), rel=1e-9)
    with pytest.raises(ValueError, match="steps must be positive"):
        ClassifierOptions(steps=0)


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize("block", [2, 32])
def test_all_pairs_cka_of_kernels_equals_the_per_pair_formula(debiased, block):
    rng = np.random.default_rng(18)
    mus = [rng.normal(size=(11, d)) for d in (1, 2, 3, 1, 2)]
    grams = np.stack([kernels.rbf_kernel(m, 1.3) for m in mus])
    want = np.array([[cka_reference(grams[a], grams[b], hsic_unbiased_reference if debiased else
                                    hsic_biased_reference) for b in range(5)] for a in range(5)])
    np.testing.assert_allclose(kernels.cka_all_pairs(grams, debiased=debiased, block=block), want, atol=1e-10)
    lin = np.stack([m @ m.T for m in mus])
    want = np.array([[cka_reference(lin[a], lin[b], hsic_biased_reference) for b in range(5)] for a in range(5)])
    np.testing.assert_allclose(kernels.linear_cka_all_pairs(mus), want, atol=1e-10)
    np.testing.assert_allclose(kernels.cka_all_pairs(lin, block=block), want, atol=1e-10)
    # one-dimensional spaces: linear CKA is the squared correlation of the means
    x = rng.normal(size=(40, 4))
    np.testing.assert_allclose(kernels.linear_cka_all_pairs([x[:, [k]] for k in range(4)]),
                               np.corrcoef(x.T) ** 2, atol=1e-12)
    assert np.isnan(kernels.cka_all_pairs(np.stack([np.ones((6, 6)), grams[0, :6, :6]]))[0, 1])  # a constant kernel


def test_shape_gradient_and_the_procrustes_closed_form():
    from repspace.kernels.measures import _shape_value_grad

    rng = np.random.default_rng(19)
    mu_a, mu_b = rng.normal(size=(9, 3)), rng.normal(size=(9, 3))
    var_a, var_b = rng.uniform(0.2, 1.5, (9, 3)), rng.uniform(0.2, 1.5, (9, 3))
    q = ortho_group.rvs(3, random_state=20)
    value, grad = _shape_value_grad(q, mu_a, var_a, mu_b, var_b, 1.0)
    bures = [bures_reference(np.diag(var_a[i]), q @ np.diag(var_b[i]) @ q.T) for i in range(9)]
    assert value == pytest.approx(np.mean(np.sum((mu_a - mu_b @ q.T) ** 2, axis=1) + np.array(bures)), rel=1e-10)
    h = 1e-6
    numeric = np.empty((3, 3))
    for idx in np.ndindex(3, 3):
        up, down = q.copy(), q.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (_shape_value_grad(up, mu_a, var_a, mu_b, var_b, 1.0, grad=False)[0]
                        - _shape_value_grad(down, mu_a, var_a, mu_b, var_b, 1.0, grad=False)[0]) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)
    # alpha 2 (means only) is orthogonal Procrustes: a closed form through the SVD, in 5-D
    x, y = rng.normal(size=(20, 5)), rng.normal(size=(20, 5))
    x, y = x - x.mean(0), y - y.mean(0)
    sv = np.linalg.svd(x.T @ y, compute_uv=False)
    closed = np.sqrt(max(2 * (np.sum(x * x) + np.sum(y * y) - 2 * sv.sum()) / 20, 0.0))  # alpha = 2
    got = kernels.stochastic_shape_distance(x, np.ones((20, 5)), y, np.ones((20, 5)), alpha=2.0, n_restarts=0)
    assert got == pytest.approx(closed, rel=1e-6)


@pytest.mark.parametrize("d", [2, 3, 6])
def test_shape_distance_finds_a_half_turn_from_the_procrustes_start_alone(d):
    rng = np.random.default_rng(21)
    mu, var = rng.normal(size=(30, d)), rng.uniform(0.2, 1.0, (30, d))
    flip = np.ones(d)
    flip[:2] = -1.0  # two axes negated: a rotation by pi, where logm has no real principal branch
    got = kernels.stochastic_shape_distance(mu, var, mu * flip, var, n_restarts=0)
    assert got == pytest.approx(0.0, abs=1e-6)
