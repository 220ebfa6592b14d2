"""The pipeline reproduces values stored from an earlier version, value by value.

``tests/data/reference_run.npz`` was written by the wave-1 pipeline (two pipelines, commit
17dfdb5, its script ``tests/data/make_reference_wave1.py`` at that commit) on a synthetic
sweep (7 models x 4 channels over 40 fingerprint images, blocks of 2 models) and a synthetic
latents run (two groups of three 3-d spaces over 50 images, 300 samples, seed 3). The same
posteriors go through today's driver and stages here, with every pair computed as then
(``pair_channels = "all"``); every stored number must come out the same (the renames of that
version's variables are mapped below). The floats of the sweep (channels, pairs and what the
structure derives from them) are compared within float32 rounding: since wave 2 their BC rows
come from a fused kernel (:mod:`repspace.kernels.fused`) and groups of rows are multiplied before
one log, which reorders float32 arithmetic (differences up to 2.5e-7 bits measured, on values
of order 1 computed in float32). Everything else, the structure's orderings, labels and
clusters and the whole latents run, must be equal bit for bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from repspace.data import FingerprintConfig, build_fingerprint
from repspace.models import ModelEntry
from repspace.pipeline import RunConfig, run
from repspace.store import write_posteriors

pytestmark = pytest.mark.distributed

REFERENCE = Path(__file__).parent / "data" / "reference_run.npz"
RENAMED = {"info": "information", "self_info": "information_twice", "info_se": "information_se",
           "info_fraction": "information_fraction", "info_mean": "information_mean",
           "info_mean_se": "information_mean_se"}


def entries(names, family="synthetic", value=1.0):
    return [ModelEntry(name=str(n), path="", dataset="dsprites_procedural", family=family, hyperparameter="beta",
                       hyperparameter_value=value, seed=int(n), source="test") for n in names]


FLOAT32_ROUNDING = {"channels", "pairs", "structure"}  # from float32 BC rows: floats within float32 rounding


def compare_group(ref, group: str, ds: xr.Dataset) -> int:
    checked = 0
    for key in ref.files:
        prefix, _, name = key.partition("/")
        if prefix != group:
            continue
        got = ds[RENAMED.get(name, name)].values
        want = ref[key]
        assert got.shape == want.shape, key
        if group in FLOAT32_ROUNDING and np.issubdtype(want.dtype, np.floating):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=key)
        else:
            np.testing.assert_array_equal(got, want, err_msg=key)
        checked += 1
    return checked


def test_sweep_and_latents_reproduce_the_stored_values(tmp_path, client):
    ref = np.load(REFERENCE)
    config = RunConfig(run_dir=str(tmp_path / "run"), n_images=40, image_size=32, pair_block_units=8, dashboard=False,
                       stages=("channels", "pairs", "structure"), pair_channels="all")
    build_fingerprint(FingerprintConfig(dataset="dsprites_procedural", n=40, seed=0, image_size=32, store=config.store))
    write_posteriors(config.store, ref["sweep_mu"], ref["sweep_logvar"], entries(range(7)))
    run(config, client=client)
    checked = sum(compare_group(ref, g, xr.open_zarr(config.store, group=g, consolidated=False).load())
                  for g in ("channels", "pairs", "structure"))
    assert checked == 2 + 4 + 10

    lstore = tmp_path / "latents" / "store.zarr"
    models = entries(range(3), "fam_a", 1.0) + entries(range(3, 6), "fam_b", 2.0)
    write_posteriors(lstore, ref["latents_mu"].transpose(0, 2, 1), ref["latents_logvar"].transpose(0, 2, 1), models,
                     group="dataset_embeddings")
    lconfig = RunConfig(run_dir=str(tmp_path / "latents"), seed=3, stages=("latents",), latents={"n_samples": 300, "scheme": "pairs"},
                        dashboard=False)
    run(lconfig, client=client)
    latents = xr.open_zarr(lstore, group="latents", consolidated=False).load()
    assert compare_group(ref, "latents", latents) == 16
