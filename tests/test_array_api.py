"""The kernels on array-api-strict arrays: nothing numpy-only may hide in the path cupy takes."""

from __future__ import annotations

import numpy as np
import pytest

from repspace import kernels
from repspace.kernels import BlockOptions, LabelRows, MatrixRows, PosteriorRows, pairwise_information
from repspace.kernels._array import to_numpy

xps = pytest.importorskip("array_api_strict")


def strict(a):
    return xps.asarray(np.ascontiguousarray(a))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_pairs_on_strict_arrays_match_numpy(dtype):
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(7, 20)).astype(dtype)
    logvar = rng.normal(size=(7, 20)).astype(dtype)
    labels = rng.integers(0, 3, size=(20, 2))
    opts = BlockOptions(unit_block=3, row_block=6)
    # the array-module path on numpy (as cupy takes it), not the fused CPU kernel
    expected = pairwise_information(PosteriorRows(mu, logvar, fused_kernel=False), options=opts)
    got = pairwise_information(PosteriorRows(strict(mu), strict(logvar)), options=opts)
    assert got.joint_information.__array_namespace__() is xps
    for name in ("information_a", "information_twice_a", "joint_information"):
        np.testing.assert_allclose(to_numpy(getattr(got, name)), getattr(expected, name), rtol=1e-6, atol=1e-9)
    nmi, vi = got.nmi_vi()
    np.testing.assert_allclose(to_numpy(nmi), expected.nmi_vi()[0], atol=1e-6)
    cross = pairwise_information(PosteriorRows(strict(mu), strict(logvar)), LabelRows(strict(labels), xps.float64), options=opts)
    expected = pairwise_information(PosteriorRows(mu, logvar, fused_kernel=False), LabelRows(labels, np.float64),
                                    options=opts)
    np.testing.assert_allclose(to_numpy(cross.joint_information), expected.joint_information, atol=1e-6)


def test_bhattacharyya_and_matrix_rows_on_strict_arrays():
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(3, 9, 2))
    logvar = rng.normal(size=(3, 9, 2))
    bc = kernels.bhattacharyya_coefficients(strict(mu), strict(logvar))
    np.testing.assert_allclose(to_numpy(bc), kernels.bhattacharyya_coefficients(mu, logvar), rtol=1e-13)
    got = pairwise_information(MatrixRows(bc))
    np.testing.assert_allclose(to_numpy(got.joint_information), pairwise_information(MatrixRows(to_numpy(bc))).joint_information, atol=1e-12)
    with pytest.raises(ValueError, match="unit 1"):
        bad = mu.copy()
        bad[1, 2, 0] = np.nan
        PosteriorRows(strict(bad), strict(logvar))


def test_monte_carlo_on_strict_arrays_matches_numpy():
    rng = np.random.default_rng(2)
    mu = rng.normal(size=(50, 3))
    logvar = rng.normal(size=(50, 3)) - 1
    opts = kernels.MCOptions(sample_block=64, image_block=16)
    a = kernels.mc_information(mu, logvar, n_samples=200, rng=np.random.default_rng(5), options=opts)
    b = kernels.mc_information(strict(mu), strict(logvar), n_samples=200, rng=np.random.default_rng(5), options=opts)
    assert a.bits == pytest.approx(b.bits, abs=1e-12)
    assert a.se == pytest.approx(b.se, abs=1e-12)
