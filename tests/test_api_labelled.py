"""Labelled input: the public functions take DataArrays with dims by name, in any order, and give
the values the plain-array calls give, with the units' labels as coordinates."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import repspace


def posteriors(seed=0, models=2, channels=3, images=40):
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(models, channels, images))
    lv = rng.normal(-2, 0.3, size=mu.shape)
    coords = {"model": [f"m{i}" for i in range(models)], "channel": np.arange(channels)}
    dims = ("model", "channel", "image")
    return mu, lv, xr.DataArray(mu, dims=dims, coords=coords), xr.DataArray(lv, dims=dims, coords=coords)


def test_compare_channels_by_dim_name_in_any_order():
    mu, lv, da_mu, da_lv = posteriors()
    plain = repspace.compare_channels(mu.reshape(6, 40), lv.reshape(6, 40))
    for order in (("model", "channel", "image"), ("image", "channel", "model")):
        ds = repspace.compare_channels(da_mu.transpose(*order), da_lv.transpose(*order))
        if order[0] == "image":  # units enumerate channel-major now
            perm = np.arange(6).reshape(2, 3).T.ravel()
            np.testing.assert_allclose(ds["vi"].values, plain["vi"].values[np.ix_(perm, perm)], atol=1e-12)
            assert ds["model_a"].values.tolist() == ["m0", "m1"] * 3
        else:
            np.testing.assert_allclose(ds["vi"].values, plain["vi"].values, atol=1e-12)
            np.testing.assert_allclose(ds["information"].values, plain["information"].values, atol=1e-12)
            assert ds["model_a"].values.tolist() == ["m0"] * 3 + ["m1"] * 3
            assert ds["channel_b"].values.tolist() == [0, 1, 2, 0, 1, 2]
            assert ds["model"].values.tolist() == ds["model_a"].values.tolist()


def test_two_sets_and_factors_by_name():
    mu, lv, da_mu, da_lv = posteriors(1)
    cross = repspace.compare_channels(da_mu.isel(model=[0]), da_lv.isel(model=[0]), da_mu.isel(model=[1]),
                                      da_lv.isel(model=[1]))
    plain = repspace.compare_channels(mu[0], lv[0], mu[1], lv[1])
    np.testing.assert_allclose(cross["nmi"].values, plain["nmi"].values, atol=1e-12)
    assert cross["model_b"].values.tolist() == ["m1"] * 3
    labels = np.random.default_rng(2).integers(0, 3, size=(40, 2))
    da_labels = xr.DataArray(labels.T, dims=("factor", "image"), coords={"factor": ["shape", "scale"]})
    ds = repspace.compare_factors(da_mu, da_lv, da_labels)
    np.testing.assert_allclose(ds["vi"].values, repspace.compare_factors(mu.reshape(6, 40), lv.reshape(6, 40),
                                                                         labels)["vi"].values, atol=1e-12)
    assert ds["unit_b"].values.tolist() == ["shape", "scale"]


def test_bhattacharyya_of_channels_or_of_whole_spaces():
    mu, lv, da_mu, da_lv = posteriors(3)
    per_channel = repspace.bhattacharyya(da_mu, da_lv)
    assert per_channel.dims == ("model", "channel", "image_a", "image_b")
    np.testing.assert_allclose(per_channel.values[1, 2], repspace.bhattacharyya(mu[1, 2][:, None], lv[1, 2][:, None]))
    whole = repspace.bhattacharyya(da_mu, da_lv, dim="channel")
    assert whole.dims == ("model", "image_a", "image_b")
    np.testing.assert_allclose(whole.values[0], repspace.bhattacharyya(mu[0].T, lv[0].T), atol=1e-12)


def test_a_whole_space_by_name():
    mu, lv, da_mu, da_lv = posteriors(4, models=1)
    space = da_mu.isel(model=0)  # (channel, image)
    got = repspace.mc_information(space, da_lv.isel(model=0), n_samples=300, seed=5)
    assert got == repspace.mc_information(mu[0].T, lv[0].T, n_samples=300, seed=5)
    res = repspace.mc_compare(space, da_lv.isel(model=0), space.transpose(), da_lv.isel(model=0).transpose(),
                              n_samples=200, seed=1)
    assert res.vi == repspace.mc_compare(mu[0].T, lv[0].T, mu[0].T, lv[0].T, n_samples=200, seed=1).vi


def test_labelled_input_errors_name_the_dims():
    _, _, da_mu, da_lv = posteriors()
    with pytest.raises(ValueError, match="expected a 'image' dim"):
        repspace.compare_channels(da_mu.rename(image="item"), da_lv.rename(image="item"))
    with pytest.raises(ValueError, match="logvar must be a DataArray"):
        repspace.compare_channels(da_mu, da_lv.values)
    with pytest.raises(ValueError, match="a latent space needs dims"):
        repspace.mc_information(da_mu, da_lv, n_samples=10, seed=0)
    ds = repspace.compare_channels(da_mu.rename(image="item"), da_lv.rename(image="item"), image_dim="item")
    assert ds.sizes["unit"] == 6
