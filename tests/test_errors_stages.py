"""Standard errors through the channels and pairs stages: ``<name>_se`` beside every value, equal to the
kernel's jackknife on the same image groups; the values themselves as without errors (within float32
rounding: the products are summed group by group); ``[errors] groups = 0`` writes none, and switching
recomputes; verify and repair cover the new variables."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from repspace import kernels, store
from repspace.pipeline import RunConfig, load_config, run
from repspace.pipeline.stages._units import ERROR_GROUPS_STREAM, ErrorOptions
from repspace.store.verify import chunk_path, find_damage

from .test_pipeline import N_IMAGES, flat, make_run, synthetic_posteriors

pytestmark = pytest.mark.distributed


def opened(config: RunConfig, group: str) -> xr.Dataset:
    return xr.open_zarr(config.store, group=group, consolidated=False).load()


def test_errors_sit_beside_the_values_and_equal_the_kernels_jackknife(tmp_path, client):
    mu, logvar, factors = synthetic_posteriors(4)
    plain = make_run(tmp_path, 4, models_per_block=2, mu=mu, logvar=logvar, name="plain").replace(
        stages=("channels", "pairs"), pair_channels="all", errors={"groups": 0})
    errors = make_run(tmp_path, 4, models_per_block=2, mu=mu, logvar=logvar, name="errors").replace(
        stages=("channels", "pairs"), pair_channels="all")
    assert errors.errors.groups == 10  # on by default
    run(plain, client=client)
    run(errors, client=client)
    ch0, ch = opened(plain, "channels"), opened(errors, "channels")
    pr0, pr = opened(plain, "pairs"), opened(errors, "pairs")
    assert not [v for v in (*ch0.data_vars, *pr0.data_vars) if v.endswith("_se")]
    for name in ("information", "information_twice", "nmi_factor", "vi_factor"):
        assert ch[f"{name}_se"].dims == ch[name].dims and ch[f"{name}_se"].attrs["units"] == ch[name].attrs["units"]
        np.testing.assert_allclose(ch[name].values, ch0[name].values, rtol=1e-6, atol=1e-6, err_msg=name)
    for name in ("nmi", "vi"):
        assert pr[f"{name}_se"].dims == pr[name].dims
        np.testing.assert_allclose(pr[name].values, pr0[name].values, rtol=1e-5, atol=1e-5, err_msg=name)

    units = (mu.reshape(-1, N_IMAGES), logvar.reshape(-1, N_IMAGES))
    groups = kernels.jackknife_groups(N_IMAGES, 10, np.random.default_rng(np.random.SeedSequence(
        errors.seed, spawn_key=ERROR_GROUPS_STREAM)))
    direct = kernels.pairwise_information(kernels.PosteriorRows(*units), groups=groups)
    nmi, vi, nmi_se, vi_se = direct.nmi_vi_se()
    informative = np.isfinite(nmi_se)
    assert informative.sum() >= 64  # the posX and posY channels of the four models
    np.testing.assert_allclose(flat(pr, "nmi_se")[informative], nmi_se[informative], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(flat(pr, "vi_se"), vi_se, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ch["information_se"].values.ravel(), direct.information_se_a, rtol=1e-4, atol=1e-7)
    # nested random subsets of the images (the first k groups), from the same products: as if computed on them alone
    assert pr["nmi_subset"].dims[0] == "fingerprint_size"
    for s, k in enumerate((2, 5)):
        images = np.flatnonzero(groups < k)
        assert int(pr["fingerprint_size"].values[s]) == images.size
        alone = kernels.pairwise_information(kernels.PosteriorRows(units[0][:, images], units[1][:, images]))
        want_nmi, want_vi = alone.nmi_vi()
        got = pr["nmi_subset"].values[s].reshape(want_nmi.shape)
        np.testing.assert_allclose(got[informative], want_nmi[informative], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(pr["vi_subset"].values[s].reshape(want_vi.shape), want_vi, rtol=1e-4, atol=1e-4)
    strong = ch["information"].values > 0.5
    assert (ch["information_se"].values[strong] > 0).all()  # a real spread, not a placeholder
    assert (ch["information_se"].values[strong] < 0.2 * ch["information"].values[strong]).all()
    assert np.nanmax(ch["nmi_factor_se"].values) > 0


def test_switching_errors_recomputes_and_verify_and_repair_cover_them(tmp_path, client):
    config = make_run(tmp_path, 4, models_per_block=2).replace(stages=("channels", "pairs"), errors={"groups": 0})
    run(config, client=client)
    on = run(config.replace(errors={"groups": 5}), client=client)
    assert on.stage("channels").computed == 2 and on.stage("pairs").computed == 3  # every block, with its errors
    assert opened(config, "pairs").attrs["error_groups"] == 5
    again = run(config.replace(errors={"groups": 5}), client=client)
    assert again.stage("pairs").computed == 0 and again.stage("channels").computed == 0

    before = opened(config, "pairs")
    path = chunk_path(config.store, "pairs", "vi_se", (0, 0, 1, 0))
    path.write_bytes(path.read_bytes()[:-7])  # truncated
    damage = find_damage(config.store)
    assert [(d.group, d.array) for d in damage] == [("pairs", "vi_se")], damage
    from repspace.pipeline.repair import repair

    repair(config.store, damage, client=client, log=lambda msg: None)
    assert find_damage(config.store) == []
    xr.testing.assert_equal(opened(config, "pairs")[["nmi", "vi", "nmi_se", "vi_se"]],
                            before[["nmi", "vi", "nmi_se", "vi_se"]])


def test_error_options_refuse_what_cannot_work(tmp_path):
    with pytest.raises(ValueError, match="groups must be 0 .no errors. or at least 2, got 1"):
        ErrorOptions(groups=1)
    path = tmp_path / "run.toml"
    path.write_text("[errors]\ngroups = -3\n")
    with pytest.raises(ValueError, match=r"\[errors\] groups must be 0"):
        load_config(path)
    with pytest.raises(ValueError, match="more than the 40 fingerprint images"):
        ErrorOptions(groups=41).labels(40, seed=0)
    assert store.channels.ERRORS.keys() == {f"{v}_se" for v in store.channels.VARIABLES if not v.endswith("_se")}
