"""The structure stage's pieces at scale: OPTICS against scikit-learn's, distances without copies."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import OPTICS

from repspace.kernels import distance_matrix, optics_ordering
from repspace.pipeline.stages.structure import optics


def clustered_distances(rng, n, clusters, ties=False):
    """A symmetric distance matrix of ``n`` points around ``clusters`` centres (rounded: many ties)."""
    centres = rng.normal(scale=4.0, size=(clusters, 3))
    points = centres[rng.integers(0, clusters, n)] + rng.normal(size=(n, 3))
    d = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))
    return np.round(d, 1) if ties else d


@pytest.mark.parametrize("n,clusters,min_samples,ties", [(2, 1, 2, False), (3, 1, 5, False), (40, 3, 4, False),
                                                          (57, 4, 5, True), (300, 5, 20, False), (250, 6, 3, True)])
def test_optics_equals_scikit_learn(n, clusters, min_samples, ties):
    rng = np.random.default_rng(n)
    d = clustered_distances(rng, n, clusters, ties)
    fit = OPTICS(min_samples=max(2, min(min_samples, n)), metric="precomputed").fit(d)
    ordering = optics_ordering(d, min_samples)  # the kernel
    np.testing.assert_array_equal(ordering.ordering, fit.ordering_)
    np.testing.assert_array_equal(ordering.reachability, fit.reachability_)
    np.testing.assert_array_equal(ordering.predecessor, fit.predecessor_)
    assert ordering.min_samples == max(2, min(min_samples, n))
    order, reach, labels = optics(d, min_samples)  # the stage's: the kernel's ordering, scikit-learn's clusters
    np.testing.assert_array_equal(order, fit.ordering_)
    np.testing.assert_array_equal(reach, fit.reachability_)
    np.testing.assert_array_equal(labels, fit.labels_)
    if n >= 40:
        assert labels.max() >= 1  # clusters were found, so the labels compared mean something


def test_optics_of_one_point():
    order, reach, labels = optics(np.zeros((1, 1)), 5)
    assert order.tolist() == [0] and np.isinf(reach).all() and labels.tolist() == [-1]
    assert optics_ordering(np.zeros((1, 1)), 5).predecessor.tolist() == [-1]


def test_informative_channels_one_rule_for_every_reader():
    """The stages keep the channels of store.channels.informative: I(U) >= threshold, failed models never."""
    import xarray as xr
    import zarr

    from repspace.store.channels import informative

    information = np.array([[0.2, 1.0, 3.0], [np.nan, np.nan, np.nan], [0.99, 1.01, np.inf]])
    expected = [[False, True, True], [False, False, False], [False, True, False]]
    group = zarr.open_group(zarr.storage.MemoryStore(), mode="w")
    group.create_array("information", data=information)
    dataset = xr.Dataset({"information": (("model", "channel"), information)})
    for channels in (group, dataset, {"information": information}):
        assert informative(channels, 1.0).tolist() == expected


def textbook_distances(values, measure):
    """The distances written out whole: clip (or -log), the largest finite value for the undefined,
    the mean with the transpose, a zero diagonal."""
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.clip(v, 0.0, None) if measure == "vi" else -np.log(np.clip(v, 1e-12, 1.0))
    d = np.where(np.isfinite(d), d, d[np.isfinite(d)].max())
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, 0.0)
    return d


@pytest.mark.parametrize("measure", ["vi", "nmi"])
def test_distances_in_place_equal_the_textbook_route(measure):
    """Blocks of 1,024: an asymmetric matrix of 2,500 crosses every kind of block pair."""
    rng = np.random.default_rng(3)
    v = rng.uniform(-0.01, 1.2, size=(2500, 2500))
    v[rng.random(v.shape) < 0.01] = np.nan
    for values in (v, v.astype(np.float32)):
        d = distance_matrix(values, measure)
        assert d.dtype == np.float64
        np.testing.assert_array_equal(d, textbook_distances(values, measure))
        np.testing.assert_array_equal(d, d.T)


def test_the_figure_matrix_is_the_block_averaged_similarity(tmp_path):
    """Past MATRIX_PIXELS channels the figure averages blocks of the kept submatrix, read band by band."""
    from repspace.kernels import similarity
    from repspace.plots.structure import ordered_similarity
    from repspace.store import open_run
    from repspace.store import pairs as schema

    rng = np.random.default_rng(5)
    m, c = 130, 10  # about 1,000 kept channels: several bands of rows are read
    root = open_run(tmp_path / "store.zarr")
    group = root.require_group(schema.GROUP)
    models = [dict(name=str(i), dataset="d", family="f", hyperparameter="h", hyperparameter_value=1.0, seed=i,
                   source="test", path="") for i in range(m)]
    schema.layout(group, models, c, 2)
    vi = rng.uniform(0, 3, size=(m * c, m * c)).astype(np.float32)
    vi = (vi + vi.T) / 2
    group["vi"][:] = vi.reshape(m, c, m, c)
    model_idx, channel_idx = np.nonzero(rng.random((m, c)) < 0.8)
    order = rng.permutation(model_idx.size)
    mi, ci = model_idx[order], channel_idx[order]
    full = similarity(vi[mi * c + ci][:, mi * c + ci], "vi")
    exact = ordered_similarity(str(tmp_path / "store.zarr"), "vi", mi, ci, pixels=10_000)
    np.testing.assert_allclose(exact, full, rtol=1e-6)
    step, n = 3, mi.size
    coarse = ordered_similarity(str(tmp_path / "store.zarr"), "vi", mi, ci, pixels=-(-n // step))
    size = -(-n // step)
    expected = np.array([[full[r * step:(r + 1) * step, q * step:(q + 1) * step].mean() for q in range(size)]
                         for r in range(size)])
    assert coarse.shape == (size, size)
    np.testing.assert_allclose(coarse, expected, rtol=1e-6)
