"""The information kernels against the slow reference, closed forms and metric axioms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import normalized_mutual_info_score

import repspace
from repspace import kernels
from repspace.kernels import BlockOptions, LabelRows, MatrixRows, PosteriorRows, pairwise_information

from . import reference as ref


def random_posteriors(rng, units, images, dim=None, dtype=np.float64):
    shape = (units, images) if dim is None else (units, images, dim)
    mu = rng.normal(scale=1.5, size=shape)
    logvar = rng.normal(loc=-1.0, scale=1.0, size=shape)
    return mu.astype(dtype), logvar.astype(dtype)


def reference_bcs(mu, logvar):
    if mu.ndim == 2:
        mu, logvar = mu[..., None], logvar[..., None]
    return np.stack([ref.bc_matrix(m, lv) for m, lv in zip(mu, logvar)])


# --- Bhattacharyya coefficients -------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 3])
def test_bhattacharyya_matches_textbook_formula(dim):
    rng = np.random.default_rng(1)
    mu, logvar = random_posteriors(rng, 1, 12, dim)
    fast = repspace.bhattacharyya(mu[0], logvar[0])
    np.testing.assert_allclose(fast, ref.bc_matrix(mu[0], logvar[0]), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(np.diag(fast), 1.0, rtol=0, atol=1e-15)
    assert np.all((fast > 0) & (fast <= 1))


def test_bhattacharyya_rows_against_columns_and_batches():
    rng = np.random.default_rng(2)
    mu, logvar = random_posteriors(rng, 4, 15, 2)
    full = repspace.bhattacharyya(mu, logvar)  # (4, 15, 15)
    block = kernels.bhattacharyya_coefficients(mu[:, 3:7], logvar[:, 3:7], mu, logvar)
    np.testing.assert_allclose(block, full[:, 3:7, :], rtol=1e-13)
    for u in range(4):
        np.testing.assert_allclose(full[u], ref.bc_matrix(mu[u], logvar[u]), rtol=1e-12, atol=1e-14)


def test_bhattacharyya_survives_extreme_log_variances():
    mu = np.zeros((3, 1))
    logvar = np.array([[-200.0], [-200.0], [150.0]])
    bc = repspace.bhattacharyya(mu, logvar)
    assert np.all(np.isfinite(bc))
    assert bc[0, 1] == pytest.approx(1.0)
    # closed form for equal means: BC = sqrt(2 s_i s_j / (s_i^2 + s_j^2)) -> exp(-175)*sqrt(2) here
    assert bc[0, 2] == pytest.approx(math.exp(-0.5 * math.log(math.cosh(175.0)) * 1.0), rel=1e-9)


@pytest.mark.parametrize("dim", [1, 3])
def test_bhattacharyya_distance_is_minus_log_bc(dim):
    """The distance as written (for autodiff and continuity) against the scaled product, and past underflow."""
    rng = np.random.default_rng(4)
    mu, logvar = random_posteriors(rng, 1, 12, dim)
    d = kernels.bhattacharyya_distance(mu[0][:, None], logvar[0][:, None], mu[0][None], logvar[0][None])
    assert d.shape == (12, 12)
    np.testing.assert_allclose(np.exp(-d), kernels.bhattacharyya_coefficients(mu[0], logvar[0]), rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(np.exp(-d), ref.bc_matrix(mu[0], logvar[0]), rtol=1e-12, atol=1e-15)
    rows = kernels.bhattacharyya_distance(mu[0][:-1], logvar[0][:-1], mu[0][1:], logvar[0][1:])  # pairs row by row
    np.testing.assert_array_equal(rows, np.diagonal(d, 1))
    far = kernels.bhattacharyya_distance(np.array([0.0]), np.array([-10.0]), np.array([1.0]), np.array([-10.0]))
    assert far == pytest.approx(math.exp(10.0) / 8) and np.isfinite(far)  # BC = exp(-2753) underflows; D does not


def test_jensen_shannon_matrix_equals_every_pair():
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(9), size=(4, 9))
    p[1, 2] = np.eye(9)[3]  # zeros: 0 log 0 = 0
    got = kernels.jensen_shannon_matrix(list(p))
    for a in range(4):
        for b in range(4):
            assert got[a, b] == kernels.jensen_shannon(p[a], p[b])  # the same sums, bit for bit
    assert np.all(np.diag(got) == 0.0) and np.array_equal(got, got.T)


def test_classifier_information_is_log2_n_minus_the_cross_entropy():
    rng = np.random.default_rng(6)
    pred = rng.dirichlet(np.ones(8), size=8)
    expected = math.log2(8) + np.mean([math.log2(pred[i, i]) for i in range(8)])
    assert kernels.classifier_information(pred) == pytest.approx(expected, rel=1e-12)
    assert kernels.classifier_information(np.eye(8)) == pytest.approx(3.0)


def test_float32_bhattacharyya_stays_float32():
    rng = np.random.default_rng(3)
    mu, logvar = random_posteriors(rng, 1, 20, 1, np.float32)
    bc = repspace.bhattacharyya(mu[0], logvar[0])
    assert bc.dtype == np.float32
    np.testing.assert_allclose(bc, ref.bc_matrix(mu[0], logvar[0]), atol=2e-6)


@pytest.mark.parametrize("dim", [1, 3])
@pytest.mark.parametrize("dtype,rtol,atol", [(np.float64, 1e-13, 1e-15), (np.float32, 2e-6, 1e-8)])
def test_fused_rows_match_the_array_path(dim, dtype, rtol, atol):
    if not kernels.fused.available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(4)
    mu, logvar = random_posteriors(rng, 6, 37, dim, dtype)
    mu[0, :3], logvar[1, :3], logvar[2, 5:8] = 40.0, -200.0, 150.0  # BC underflows; variances far apart
    fast, slow = PosteriorRows(mu, logvar, fused_kernel=True), PosteriorRows(mu, logvar, fused_kernel=False)
    buffers = kernels.fused.scratch()
    for r0, r1 in [(0, 5), (5, 6), (6, 37), (0, 37)]:
        rows, sums, squares = kernels.rows_and_sums(fast, r0, r1, fast.dtype, buffers)
        expected = slow.rows(r0, r1)
        assert rows.dtype == dtype and rows.shape == (r1 - r0, 6, 37)
        np.testing.assert_allclose(rows, expected, rtol=rtol, atol=atol)  # relative, except on the tiniest entries
        np.testing.assert_allclose(sums, expected.sum(axis=-1), rtol=10 * rtol)
        np.testing.assert_allclose(squares, (expected * expected).sum(axis=-1), rtol=10 * rtol)
    mu, logvar = random_posteriors(rng, 6, 37, dim, dtype)  # the textbook formula, where it holds
    bc = np.stack([ref.bc_matrix(m, lv) for m, lv in zip(*(x.reshape(6, 37, dim) for x in (mu, logvar)))])
    fast = PosteriorRows(mu, logvar, fused_kernel=True)
    np.testing.assert_allclose(fast.rows(0, 37), bc.transpose(1, 0, 2), rtol=0, atol=100 * np.finfo(dtype).eps)


class _PackedScratch(kernels.fused._Scratch):
    """A heap that puts every buffer right next to the one before, in the order ``order`` picks."""

    def __init__(self, order: str):
        super().__init__()
        self.pool, self.order, self.at = np.empty(1 << 24, dtype=np.uint8), order, 0

    def get(self, name, shape, dtype):
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if self.order == "backwards":  # each buffer ends where the previous one starts
            self.at = (self.at or self.pool.size) - nbytes
            start = self.at
        else:
            start, self.at = self.at, self.at + nbytes
        return self.pool[start:start + nbytes].view(dtype).reshape(shape)


@pytest.mark.parametrize("order", ["forwards", "backwards"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [8, 40, 300])
def test_fused_rows_do_not_depend_on_where_the_buffers_lie(order, dtype, n):
    # the compiled loops take another path (other roundings) where an array they store into lies
    # within a vector's reach of one they read: the same block gave other sums in another process.
    # Packed buffers failed so before the kernel's buffers came from one allocation with space between.
    if not kernels.fused.available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(6)
    mu, logvar = random_posteriors(rng, 5, n, 2, dtype)
    rows = PosteriorRows(mu, logvar, fused_kernel=True)
    want = [x.copy() for x in kernels.rows_and_sums(rows, 0, n, rows.dtype, kernels.fused.scratch())]
    buffers = _PackedScratch(order)
    for r0, r1 in [(0, n), (n // 2, n)]:  # each call's buffers packed against the last call's
        got = kernels.rows_and_sums(rows, r0, r1, rows.dtype, buffers)
        for g, w, what in zip(got, want, ("rows", "row sums", "row squares")):
            np.testing.assert_array_equal(g, w[r0:r1], err_msg=f"{what} {r0}:{r1}")


def test_fused_kernel_is_refused_where_it_cannot_run():
    xps = pytest.importorskip("array_api_strict")
    with pytest.raises(ValueError, match="fused_kernel=True needs numpy"):
        PosteriorRows(xps.asarray(np.zeros((2, 3))), xps.asarray(np.zeros((2, 3))), fused_kernel=True)


# --- all pairs against the per-pair loop ------------------------------------------------

SHAPES = [
    # units, images, dim, unit_block, row_block
    (3, 10, None, 256, None),
    (7, 23, None, 3, 5),
    (9, 31, 2, 4, 8),
    (5, 16, None, 1, 1),
    (12, 40, None, 5, 40),
]


@pytest.mark.parametrize("units,images,dim,unit_block,row_block", SHAPES)
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_all_pairs_match_reference(units, images, dim, unit_block, row_block, dtype, tol):
    rng = np.random.default_rng(units * 1000 + images)
    mu, logvar = random_posteriors(rng, units, images, dim, dtype)
    expected = ref.all_pairs(reference_bcs(mu, logvar))
    ds = repspace.compare_channels(mu, logvar, options=BlockOptions(unit_block=unit_block, row_block=row_block))
    np.testing.assert_allclose(ds["information"], expected["information_a"], rtol=0, atol=tol)
    np.testing.assert_allclose(ds["information_twice"], expected["self_a"], rtol=0, atol=tol)
    np.testing.assert_allclose(ds["joint_information"], expected["joint_information"], rtol=0, atol=tol)
    np.testing.assert_allclose(ds["vi"], expected["vi"], rtol=0, atol=4 * tol)
    np.testing.assert_allclose(ds["nmi"], expected["nmi"], rtol=0, atol=50 * tol)
    np.testing.assert_array_equal(ds["joint_information"], ds["joint_information"].T)  # exactly symmetric


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-9), (np.float32, 1e-4)])
def test_cross_pairs_match_reference(dtype, tol):
    rng = np.random.default_rng(11)
    mu_a, lv_a = random_posteriors(rng, 4, 19, None, dtype)
    mu_b, lv_b = random_posteriors(rng, 6, 19, None, dtype)
    expected = ref.all_pairs(reference_bcs(mu_a, lv_a), reference_bcs(mu_b, lv_b))
    ds = repspace.compare_channels(mu_a, lv_a, mu_b, lv_b, options=BlockOptions(unit_block=4, row_block=6))
    for key, name in [("information_a", "information_a"), ("information_b", "information_b"), ("self_a", "information_twice_a"), ("self_b", "information_twice_b"), ("joint_information", "joint_information"), ("vi", "vi")]:
        np.testing.assert_allclose(ds[name], expected[key], rtol=0, atol=4 * tol)
    np.testing.assert_allclose(ds["nmi"], expected["nmi"], rtol=0, atol=50 * tol)


def test_compare_from_bc_matrices_equals_compare_from_posteriors():
    rng = np.random.default_rng(12)
    mu, logvar = random_posteriors(rng, 6, 25)
    bc = repspace.bhattacharyya(mu[..., None], logvar[..., None])
    from_bc = repspace.compare(bc, options=BlockOptions(unit_block=2, row_block=4))
    from_post = repspace.compare_channels(mu, logvar)
    for name in ("information", "information_twice", "joint_information", "nmi", "vi"):
        np.testing.assert_allclose(from_bc[name], from_post[name], rtol=0, atol=1e-12)
    two = repspace.compare(bc[:2], bc[2:])
    np.testing.assert_allclose(two["joint_information"], from_post["joint_information"][:2, 2:], atol=1e-12)


def test_memory_budget_picks_row_blocks_and_keeps_results():
    rng = np.random.default_rng(13)
    mu, logvar = random_posteriors(rng, 10, 30)
    small = BlockOptions(unit_block=3, memory_bytes=2 * (10 * 30 * 8 + 3 * 3 * 16))
    assert small.rows_for(10, 30, 8) == 2  # under the balance limit of ceil(30 / 8) = 4
    a = repspace.compare_channels(mu, logvar, options=small)
    b = repspace.compare_channels(mu, logvar)
    np.testing.assert_allclose(a["joint_information"], b["joint_information"], rtol=0, atol=1e-12)


def test_progress_reports_every_row_block():
    rng = np.random.default_rng(14)
    mu, logvar = random_posteriors(rng, 3, 10)
    seen = []
    pairwise_information(PosteriorRows(mu, logvar), options=BlockOptions(row_block=4, threads=1),
                         progress=lambda d, t: seen.append((d, t)))
    assert seen == [(4, 10), (8, 10), (10, 10)]
    seen.clear()
    pairwise_information(PosteriorRows(mu, logvar), options=BlockOptions(row_block=4, threads=2),
                         progress=lambda d, t: seen.append((d, t)))
    assert [d for d, _ in seen][-1] == 10 and len(seen) == 3


@pytest.mark.parametrize("threads", [2, 3])
def test_threads_share_rows_and_agree_with_one_thread(threads):
    rng = np.random.default_rng(15)
    mu, logvar = random_posteriors(rng, 9, 37, None, np.float32)
    one = pairwise_information(PosteriorRows(mu, logvar), options=BlockOptions(unit_block=4, row_block=5, threads=1))
    opts = BlockOptions(unit_block=4, row_block=5, threads=threads)
    many = pairwise_information(PosteriorRows(mu, logvar), options=opts)
    again = pairwise_information(PosteriorRows(mu, logvar), options=opts)
    np.testing.assert_allclose(many.joint_information, one.joint_information, rtol=0, atol=1e-12)
    np.testing.assert_allclose(many.information_a, one.information_a, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(many.joint_information, again.joint_information)  # the same partial sums, in the same order


# --- closed forms: ground-truth factors ----------------------------------------------


def test_factor_units_give_entropies_and_sklearn_nmi():
    rng = np.random.default_rng(4)
    labels = np.stack([rng.integers(0, 3, 60), rng.integers(0, 5, 60), rng.integers(0, 2, 60)], axis=1)
    labels[:, 2] = (labels[:, 0] + labels[:, 2]) % 3  # correlated with the first factor
    ds = repspace.compare(repspace.label_coefficients(labels))
    for f in range(3):
        h = ref.entropy_bits(labels[:, f])
        assert float(ds["information"][f]) == pytest.approx(h, abs=1e-12)
        assert float(ds["information_twice"][f]) == pytest.approx(h, abs=1e-12)
    for f in range(3):
        for g in range(3):
            h_fg = ref.entropy_bits(labels[:, [f, g]])
            assert float(ds["joint_information"][f, g]) == pytest.approx(h_fg, abs=1e-12)
            sk = normalized_mutual_info_score(labels[:, f], labels[:, g], average_method="geometric")
            assert float(ds["nmi"][f, g]) == pytest.approx(sk, abs=1e-12)
            vi = 2 * h_fg - ref.entropy_bits(labels[:, f]) - ref.entropy_bits(labels[:, g])
            assert float(ds["vi"][f, g]) == pytest.approx(vi, abs=1e-12)


def test_units_against_factors_match_the_matrix_route():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, size=(35, 2))
    mu = labels.T.astype(np.float64)[:, :] * 2.0 + rng.normal(scale=0.3, size=(2, 35))
    logvar = np.full_like(mu, -2.0)
    ds = repspace.compare_factors(mu, logvar, labels, factor_names=["a", "b"], options=BlockOptions(row_block=4))
    bc_units = repspace.bhattacharyya(mu[..., None], logvar[..., None])
    expected = ref.all_pairs(bc_units, repspace.label_coefficients(labels))
    np.testing.assert_allclose(ds["nmi"], expected["nmi"], atol=1e-9)
    np.testing.assert_allclose(ds["vi"], expected["vi"], atol=1e-9)
    assert list(ds["unit_b"].values) == ["a", "b"]
    assert float(ds["nmi"][0, 0]) > float(ds["nmi"][0, 1])  # each unit follows its own factor


def test_label_rows_equal_label_coefficients():
    labels = np.array([[0, 1], [0, 0], [1, 1]])
    bc = repspace.label_coefficients(labels)
    assert bc.shape == (2, 3, 3)
    np.testing.assert_array_equal(bc[0], [[1, 1, 0], [1, 1, 0], [0, 0, 1]])
    np.testing.assert_array_equal(LabelRows(labels).rows(1, 3), np.transpose(bc, (1, 0, 2))[1:3])


# --- metric axioms, with hypothesis ----------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(
    units=st.integers(1, 6),
    images=st.integers(2, 24),
    unit_block=st.integers(1, 7),
    row_block=st.integers(1, 25),
    seed=st.integers(0, 2**32 - 1),
)
def test_axioms_hold_for_any_blocking(units, images, unit_block, row_block, seed):
    rng = np.random.default_rng(seed)
    mu, logvar = random_posteriors(rng, units, images)
    ds = repspace.compare_channels(mu, logvar, options=BlockOptions(unit_block=unit_block, row_block=row_block))
    info = ds["information"].values
    assert np.all(info >= -1e-12) and np.all(info <= math.log2(images) + 1e-12)
    np.testing.assert_allclose(ds["vi"], ds["vi"].T, atol=1e-12)
    np.testing.assert_allclose(np.diag(ds["vi"]), 0.0, atol=1e-9)
    informative = (2 * info - ds["information_twice"].values) > 1e-6
    np.testing.assert_allclose(np.diag(ds["nmi"])[informative], 1.0, atol=1e-6)
    assert np.all(ds["vi"].values >= -1e-9)
    reference = repspace.compare_channels(mu, logvar, options=BlockOptions(unit_block=units, row_block=images))
    np.testing.assert_allclose(ds["joint_information"], reference["joint_information"], atol=1e-10)


def test_permuting_units_permutes_results():
    rng = np.random.default_rng(6)
    mu, logvar = random_posteriors(rng, 6, 20)
    perm = rng.permutation(6)
    a = repspace.compare_channels(mu, logvar)
    b = repspace.compare_channels(mu[perm], logvar[perm])
    np.testing.assert_allclose(b["nmi"], a["nmi"].values[np.ix_(perm, perm)], atol=1e-12)


def test_flipping_and_shifting_a_channel_changes_nothing():
    rng = np.random.default_rng(7)
    mu, logvar = random_posteriors(rng, 3, 20)
    flipped = mu.copy()
    flipped[1] = -flipped[1] + 5.0
    a = repspace.compare_channels(mu, logvar)
    b = repspace.compare_channels(flipped, logvar)
    np.testing.assert_allclose(b["joint_information"], a["joint_information"], atol=1e-12)


def test_duplicated_and_constant_channels():
    rng = np.random.default_rng(8)
    mu, logvar = random_posteriors(rng, 2, 30)
    mu = np.concatenate([mu, mu[:1], np.zeros((1, 30))])
    logvar = np.concatenate([logvar, logvar[:1], np.zeros((1, 30))])
    ds = repspace.compare_channels(mu, logvar)
    assert float(ds["nmi"][0, 2]) == pytest.approx(1.0, abs=1e-12)
    assert float(ds["vi"][0, 2]) == pytest.approx(0.0, abs=1e-12)
    assert float(ds["information"][3]) == pytest.approx(0.0, abs=1e-15)  # a constant channel carries nothing
    assert np.isnan(float(ds["nmi"][3, 0]))  # and its NMI is undefined


def test_identity_encoder_of_distinct_images_carries_log2_n():
    n = 16
    mu = np.arange(n, dtype=np.float64)[None, :] * 100.0
    ds = repspace.compare_channels(mu, np.zeros_like(mu))
    assert float(ds["information"][0]) == pytest.approx(math.log2(n), abs=1e-12)


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_posteriors_name_the_unit(bad):
    mu = np.zeros((5, 10))
    logvar = np.zeros((5, 10))
    logvar[3, 7] = bad
    with pytest.raises(ValueError, match=r"logvar .* unit 3"):
        repspace.compare_channels(mu, logvar)
    mu[1, 0] = bad
    with pytest.raises(ValueError, match=r"mu .* unit 1"):
        repspace.compare_channels(mu, np.zeros((5, 10)))


def test_bad_shapes_and_sizes():
    with pytest.raises(ValueError, match="shapes differ"):
        repspace.compare_channels(np.zeros((2, 10)), np.zeros((2, 11)))
    with pytest.raises(ValueError, match="at least 2 images"):
        repspace.compare_channels(np.zeros((2, 1)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="different numbers of images"):
        repspace.compare_channels(np.zeros((2, 10)), np.zeros((2, 10)), np.zeros((2, 9)), np.zeros((2, 9)))
    with pytest.raises(ValueError, match=r"\(unit, image, image\)"):
        repspace.compare(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="shape"):
        repspace.compare_channels(np.zeros((2, 3, 4, 5)), np.zeros((2, 3, 4, 5)))
    with pytest.raises(TypeError, match="float32 or float64"):
        repspace.compare_channels(np.zeros((2, 10), dtype=np.int64), np.zeros((2, 10), dtype=np.int64))


def test_matrix_rows_reject_non_finite_matrices():
    bc = np.ones((3, 4, 4))
    bc[2, 1, 1] = np.nan
    with pytest.raises(ValueError, match="unit 2"):
        MatrixRows(bc)


def test_grouped_logs_stay_exact_for_tiny_explicit_sums():
    """Explicit BC matrices need not hold a diagonal of 1: products of small sums must not underflow."""
    rng = np.random.default_rng(21)
    bc = rng.uniform(0, 1e-7, size=(3, 40, 40)).astype(np.float32)  # sums near 4e-6: 8 of them underflow float32
    got = pairwise_information(MatrixRows(bc), options=BlockOptions(row_block=16))
    expected = pairwise_information(MatrixRows(bc.astype(np.float64)), options=BlockOptions(row_block=16))
    assert np.isfinite(got.joint_information).all()
    np.testing.assert_allclose(got.joint_information, expected.joint_information, rtol=1e-5)
    np.testing.assert_allclose(got.information_a, expected.information_a, rtol=1e-5)
