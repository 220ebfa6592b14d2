"""The fusion stage on a small run: against fuse() on the same channels, what the fused space holds
about the factors, resumption, the ways of choosing members, and refusals."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from repspace.fusion import fuse
from repspace.pipeline import FusionOptions, run

from .test_hardening import prepared

pytestmark = pytest.mark.distributed


def test_fusing_a_run_channels(tmp_path, client):
    config = prepared(tmp_path, 4)
    run(config.replace(stages=("channels", "pairs", "structure")), client=client)
    fusion = config.replace(stages=("fusion",), fusion=FusionOptions(steps=1500))
    report = run(fusion, client=client)
    assert report.stage("fusion").computed == 1
    fu = xr.open_zarr(config.store, group="fusion", consolidated=False).load()
    channels = xr.open_zarr(config.store, group="channels", consolidated=False).load()
    kept = [(m, c) for m, c in zip(*np.nonzero(channels.information.values >= config.info_threshold))]
    assert fu.member.values.tolist() == [f"{m}/{c}" for m, c in kept] and len(kept) == 8  # posX, posY of each
    emb = xr.open_zarr(config.store, group="embeddings", consolidated=False).load()
    mu = np.stack([emb.mu.values[m, c] for m, c in kept]).astype(np.float64)
    lv = np.stack([emb.logvar.values[m, c] for m, c in kept]).astype(np.float64)
    want = fuse(mu, lv, dim=2, steps=1500, record_every=15, seed=0)
    np.testing.assert_allclose(fu.mu.values, want.mu.values, atol=1e-4)
    np.testing.assert_allclose(fu.nmi.values, want.nmi.values, atol=1e-4)
    # the members each follow posX or posY; the fused plane holds both
    factors = fu.factor.values.tolist()
    for name in ("posX", "posY"):
        k = factors.index(name)
        assert float(fu.nmi_factor[k]) > 0.5, (name, fu.nmi_factor.values)
        np.testing.assert_allclose(fu.member_nmi_factor.values[:, k], channels.nmi_factor.values[
            [m for m, _ in kept], [c for _, c in kept], k])
    assert run(fusion, client=client).stage("fusion").computed == 0  # unchanged: nothing to do

    listed = run(config.replace(stages=("fusion",), fusion=FusionOptions(members="list", channels=("0/0", "1/0"),
                                                                          steps=300)), client=client)
    assert listed.stage("fusion").computed == 1
    assert xr.open_zarr(config.store, group="fusion", consolidated=False).member.values.tolist() == ["0/0", "1/0"]
    st = xr.open_zarr(config.store, group="structure", consolidated=False).load()
    labels = st.label.sel(measure="vi").values
    cluster = int(labels[labels >= 0][0])
    run(config.replace(stages=("fusion",), fusion=FusionOptions(members="cluster", cluster=cluster, steps=300)),
        client=client)
    got = xr.open_zarr(config.store, group="fusion", consolidated=False)
    assert got.sizes["member"] == int((labels == cluster).sum())

    with pytest.raises(ValueError, match="no channel '0/9' in this run"):
        run(config.replace(stages=("fusion",), fusion=FusionOptions(members="list", channels=("0/9",))),
            client=client)
    with pytest.raises(ValueError, match="fusion.cluster 99"):
        run(config.replace(stages=("fusion",), fusion=FusionOptions(members="cluster", cluster=99)), client=client)
    with pytest.raises(ValueError, match="needs fusion.channels"):
        FusionOptions(members="list")
