"""The pipeline reproduces values stored from an earlier version, value by value.

``tests/data/reference_run.npz`` was written by the first pipeline (two pipelines, commit
17dfdb5, its script ``tests/data/make_reference_wave1.py`` at that commit) on a synthetic
sweep (7 models x 4 channels over 40 fingerprint images, blocks of 2 models) and a synthetic
latents run (two groups of three 3-d spaces over 50 images, 300 samples, seed 3). The same
posteriors go through today's driver and stages here, with every pair computed as then
(``pair_channels = "all"``); every stored number must come out the same (the renames of that
version's variables are mapped below). The floats of the sweep (channels, pairs and what the
structure derives from them) are compared within float32 rounding: since then their BC rows
come from a fused kernel (:mod:`repspace.kernels.fused`) and groups of rows are multiplied before
one log, which reorders float32 arithmetic (differences up to 2.5e-7 bits measured, on values
of order 1 computed in float32): rtol = atol = 1e-6, about eight float32 ulps.

The latents run is float64 Monte Carlo. Its values pass through numpy's exp and log and through
BLAS, whose code paths (and so their last bits) differ between processors: the stored
``latents/info`` came out 1 ulp apart on two processors of one machine kind (3.33536566883394
against 3.3353656688339397). The subtractions in NMI, VI and the standard errors can amplify an
ulp of the inputs a few hundred fold, so the latents floats are compared at rtol = 1e-12 (atol
1e-12 bits for values near 0): far above a processor's rounding, far below what any change to a
formula, a seed or a sample count moves (1e-4 and more). Integers (counts, orderings, labels,
cluster sizes) must be equal exactly: they are what a refactor must not change, and a difference
in the last bits of a float does not reach them here (the stored distinct
reachabilities lie at least 1e-3 apart; equal ones are equal by symmetry).
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
FLOAT32_TOLERANCE = dict(rtol=1e-6, atol=1e-6)  # about 8 float32 ulps on values of order 1 (see the docstring)
FLOAT64_TOLERANCE = dict(rtol=1e-12, atol=1e-12)  # processors' ulps amplified by NMI, VI, SE; not a formula change


def compare_group(ref, group: str, ds: xr.Dataset) -> int:
    checked = 0
    for key in ref.files:
        prefix, _, name = key.partition("/")
        if prefix != group:
            continue
        got = ds[RENAMED.get(name, name)].values
        want = ref[key]
        assert got.shape == want.shape, key
        if np.issubdtype(want.dtype, np.floating):
            tolerance = FLOAT32_TOLERANCE if group in FLOAT32_ROUNDING else FLOAT64_TOLERANCE
            np.testing.assert_allclose(got, want, **tolerance, err_msg=key)
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
