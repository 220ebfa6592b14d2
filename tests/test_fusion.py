"""Fusion: the objective and its gradient against a direct float64 computation and finite differences;
fusing copies of a known space recovers it; refusals; determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

import repspace
from repspace.fusion import SIMILARITIES, fuse, member_log_bc, objective


def bc_reference(mu, logvar):
    """BC between every two items, written out dimension by dimension (DESIGN §1)."""
    n, d = mu.shape
    out = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            dist = 0.0
            for k in range(d):
                vi, vj = math.exp(logvar[i, k]), math.exp(logvar[j, k])
                sb2 = (vi + vj) / 2
                dist += (mu[i, k] - mu[j, k]) ** 2 / sb2 / 8 + 0.5 * (math.log(sb2) - (logvar[i, k] + logvar[j, k]) / 2)
            out[i, j] = math.exp(-dist)
    return out


def info_reference(bc):
    return -np.mean(np.log(bc.mean(axis=1)))  # nats, as the objective


def objective_reference(mu, logvar, members_bc, similarity):
    u = bc_reference(mu, logvar)
    i_u, i_uu = info_reference(u), info_reference(u * u)
    values = []
    for v in members_bc:
        i_v, i_vv, i_uv = info_reference(v), info_reference(v * v), info_reference(u * v)
        if similarity == "information":
            values.append(i_u + i_v - i_uv)
        elif similarity == "vi":
            values.append(math.exp(-(2 * i_uv - i_uu - i_vv)))
        else:
            values.append((i_u + i_v - i_uv) / math.sqrt((2 * i_u - i_uu) * (2 * i_v - i_vv)))
    return float(np.mean(values))


@pytest.mark.parametrize("similarity", SIMILARITIES)
def test_objective_and_gradient_against_finite_differences(similarity):
    rng = np.random.default_rng(0)
    n, dim = 7, 2
    members_mu = rng.normal(size=(3, n, 1)) * 2
    members_lv = rng.normal(-1.0, 0.3, size=(3, n, 1))
    members_bc = np.stack([bc_reference(m, v) for m, v in zip(members_mu, members_lv)])
    mu, lv = rng.normal(size=(n, dim)), rng.normal(-0.5, 0.3, size=(n, dim))
    value, g_mu, g_lv = objective(mu, lv, member_log_bc(members_mu, members_lv), similarity)
    assert value == pytest.approx(objective_reference(mu, lv, members_bc, similarity), rel=1e-10)
    h = 1e-6
    for x, grad in ((mu, g_mu), (lv, g_lv)):
        numeric = np.empty_like(x)
        for idx in np.ndindex(x.shape):
            up, down = x.copy(), x.copy()
            up[idx] += h
            down[idx] -= h
            args = (up, lv) if x is mu else (mu, up)
            args_down = (down, lv) if x is mu else (mu, down)
            numeric[idx] = (objective_reference(*args, members_bc, similarity)
                            - objective_reference(*args_down, members_bc, similarity)) / (2 * h)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    # the members as BC matrices give the same objective
    assert objective(mu, lv, member_log_bc(bc=members_bc), similarity)[0] == pytest.approx(value, rel=1e-12)


def test_fusing_copies_of_a_space_recovers_it():
    n = 40
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    space = np.column_stack([np.cos(t), 0.6 * np.sin(t)]) * 3
    lv = np.full((n, 2), -2.0)
    ds = repspace.fuse(np.stack([space] * 3), np.stack([lv] * 3), dim=2, steps=2000, seed=1)
    assert ds.mu.dims == ("item", "dim") and ds.sizes["member"] == 3
    assert (ds.nmi.values >= 0.95).all() and (ds.vi.values < 0.1).all()
    assert ds.objective.values[-1] > ds.objective.values[0]
    # what the kernels compute for the fused space, from its stored parameters
    core = repspace.compare(repspace.bhattacharyya(ds.mu.values, ds.logvar.values)[None],
                            repspace.bhattacharyya(space, lv)[None])
    assert float(core.nmi[0, 0]) == pytest.approx(float(ds.nmi[0]), abs=1e-9)
    again = repspace.fuse(np.stack([space] * 3), np.stack([lv] * 3), dim=2, steps=2000, seed=1)
    xr.testing.assert_identical(again, ds)  # deterministic for a seed
    other = repspace.fuse(np.stack([space] * 3), np.stack([lv] * 3), dim=2, steps=50, seed=2)
    assert not np.array_equal(other.mu.values, ds.mu.values)
    double = repspace.fuse(np.stack([space] * 3), np.stack([lv] * 3), dim=2, steps=2000, seed=1, dtype="float64")
    assert (double.nmi.values >= 0.95).all()


def test_fusion_refuses_bad_ensembles():
    mu, lv = np.zeros((2, 5)), np.zeros((2, 5))
    with pytest.raises(ValueError, match="empty"):
        fuse(np.zeros((0, 5)), np.zeros((0, 5)), dim=2)
    with pytest.raises(ValueError, match="share a shape"):
        fuse(mu, lv[:, :4], dim=2)
    bad = mu.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"members \[1\] have NaN"):
        fuse(bad, lv, dim=2)
    with pytest.raises(ValueError, match="similarity must be one of"):
        fuse(mu, lv, dim=2, similarity="cka")
    with pytest.raises(ValueError, match="not both"):
        fuse(mu, lv, bc=np.ones((2, 5, 5)), dim=2)
    with pytest.raises(ValueError, match=r"\(unit, item, item\)"):
        fuse(bc=np.ones((2, 5, 4)), dim=2)
    with pytest.raises(ValueError, match="dim must be a positive integer"):
        fuse(mu, lv, dim=0)


def test_the_graph_evaluates_the_kernels_bhattacharyya_distance():
    """TensorFlow's ops in the kernels' formula: the same distances as numpy's, in float64 and float32."""
    from repspace._quiet import import_tensorflow
    from repspace.kernels import bhattacharyya_distance
    from repspace.models.fusion import _tf_ops

    tf = import_tensorflow()
    rng = np.random.default_rng(8)
    mu, lv = rng.normal(size=(9, 2)), rng.normal(-1, 0.5, size=(9, 2))
    want = bhattacharyya_distance(mu[:, None], lv[:, None], mu[None], lv[None])
    np.testing.assert_allclose(want, -np.log(bc_reference(mu, lv)), rtol=1e-12, atol=1e-14)
    for dtype, tol in ((tf.float64, 1e-14), (tf.float32, 2e-6)):
        m, v = tf.constant(mu, dtype), tf.constant(lv, dtype)
        got = bhattacharyya_distance(m[:, None], v[:, None], m[None], v[None], xp=_tf_ops(tf)).numpy()
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
        assert got.dtype == dtype.as_numpy_dtype


def continuity_reference(mu, logvar):
    """max / 90th percentile of the distances between ring neighbours, each from the full BC matrix."""
    d = -np.log(bc_reference(mu, logvar))
    n = len(mu)
    ring = np.array([d[i, (i + 1) % n] for i in range(n)])
    return ring.max() / np.percentile(ring, 90)


def test_continuity_against_the_bc_matrix_and_its_closed_forms():
    from repspace.data.circle import circle_points, torn_learners
    from repspace.fusion import continuity as public
    from repspace.kernels import continuity

    assert public is continuity  # the public path of the README
    rng = np.random.default_rng(3)
    mu, lv = rng.normal(size=(12, 2)), rng.normal(-1, 0.2, size=(12, 2))
    assert continuity(mu, lv) == pytest.approx(continuity_reference(mu, lv), rel=1e-9)
    theta, points = circle_points(60)
    assert continuity(points, np.full((60, 2), -3.0)) == pytest.approx(1.0)  # an even ring
    torn_mu, torn_lv = torn_learners(theta, 1, seed=0)
    assert continuity(torn_mu[0], torn_lv[0]) > 1000  # one cut: its two sides far apart
    assert continuity(np.cos(theta)[:, None], np.full((60, 1), -3.0)) < 3  # a fold keeps neighbours together


def test_fusing_more_torn_learners_heals_the_circle():
    from repspace.data.circle import circle_points, torn_learners
    from repspace.kernels import continuity

    theta, _ = circle_points(100)  # with 60 points one of these fusions of 20 stays torn: a local optimum
    results = {}
    for seed in (0, 1):
        mu, lv = torn_learners(theta, 20, seed=seed)
        for k in (2, 20):
            ds = fuse(mu[:k], lv[:k], dim=2, steps=4000, record_every=1000, seed=seed)
            results[seed, k] = continuity(ds.mu.values, ds.logvar.values)
    small, large = np.mean([results[s, 2] for s in (0, 1)]), np.mean([results[s, 20] for s in (0, 1)])
    assert large < 4 and small > 3 * large, results  # two members leave tears, twenty heal them
    mu, lv = torn_learners(theta, 20, seed=0)
    again = fuse(mu[:2], lv[:2], dim=2, steps=4000, record_every=1000, seed=0)
    assert continuity(again.mu.values, again.logvar.values) == results[0, 2]  # seeded and repeatable
