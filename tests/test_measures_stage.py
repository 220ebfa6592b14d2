"""The measure comparison as stages: spaces and measures in a run store, against compare_spaces value by value;
resumption (only what changed is computed, counted); spaces from a run's models and channels; the job."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import xarray as xr

from repspace import store
from repspace.data.synthetic_spaces import nine_spaces
from repspace.measures import MEASURES, ClassifierOptions, compare_spaces, measure_agreement, \
    measure_agreement_interval
from repspace.models.classifier import ClassifierOptions
from repspace.pipeline import ComparisonOptions, RunConfig, run
from repspace.pipeline.stages.measures import AGREEMENT_STREAM

from .test_hardening import prepared
from .test_pipeline import N_CHANNELS, N_IMAGES

pytestmark = pytest.mark.distributed

SMALL = dict(n_items=16, mc_samples=300, shape_restarts=2,
             classifier=ClassifierOptions(hidden=(32, 32), steps=200, batch_size=256, eval_samples=100))


def measures_config(tmp_path, **changes) -> RunConfig:
    return RunConfig(run_dir=str(tmp_path / "measures"), dashboard=False, stages=("spaces", "measures"),
                     measures=ComparisonOptions(**{**SMALL, **changes}))


def opened(config: RunConfig) -> xr.Dataset:
    return xr.open_zarr(config.store, group="measures", consolidated=False).load()


def test_the_stage_equals_compare_spaces_and_computes_only_what_changed(tmp_path, client):
    config = measures_config(tmp_path)
    report = run(config, client=client)
    # three families whole, a task per row of pairs for Monte Carlo and shape, one classifier per space
    assert report.stage("measures").computed == 3 + 9 + 9 + 9
    ds = opened(config)
    spaces = nine_spaces(16)
    want = compare_spaces([s.mu for s in spaces], [s.logvar for s in spaces], mc_samples=300, shape_restarts=2,
                          classifier=ClassifierOptions(hidden=(32, 32), steps=200, batch_size=256, eval_samples=100))
    assert ds.space_a.values.tolist() == [s.name for s in spaces]
    for name in [*MEASURES, "nmi_mc_se", "vi_mc_se"]:
        tol = 1e-5 if name == "jsd_classifier" else 1e-12  # the classifiers ran on the workers' thread pools
        np.testing.assert_allclose(ds[name].values, want[name].values, atol=tol, err_msg=name)
    np.testing.assert_allclose(ds.classifier_information.values, want.classifier_information.values, atol=1e-5)
    np.testing.assert_allclose(ds.spearman.values, measure_agreement(ds[list(MEASURES)]).values, atol=1e-12)
    assert ds.spearman.attrs["pairs"] == 36 and ds.attrs["complete"] is True
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=AGREEMENT_STREAM))
    agree = measure_agreement_interval(ds[list(MEASURES)], rng)  # the interval, seeded by the run's seed
    for name in ("spearman_low", "spearman_high"):
        assert ds[name].dims == ("measure_a", "measure_b")
        assert ds[name].attrs["n_resamples"] == 1000 and ds[name].attrs["level"] == 0.95
        assert "bootstrap over the spaces" in ds[name].attrs["method"]
        np.testing.assert_allclose(ds[name].values, agree[name].values, atol=1e-12)
    assert (ds.spearman_low <= ds.spearman + 1e-12).all() and (ds.spearman <= ds.spearman_high + 1e-12).all()
    assert np.isnan(ds.stochastic_shape.sel(space_a="line", space_b="spiral"))  # 1-D against 2-D: undefined

    again = run(config, client=client)
    assert again.stage("measures").computed == 0 and again.stage("measures").skipped == 30
    xr.testing.assert_identical(opened(config).drop_attrs(), ds.drop_attrs())

    steps = run(measures_config(tmp_path, classifier=dataclasses.replace(SMALL['classifier'], steps=150)), client=client)
    assert steps.stage("measures").computed == 9  # the classifiers, nothing else
    changed = opened(config)
    assert not np.allclose(changed.jsd_classifier.values, ds.jsd_classifier.values)
    xr.testing.assert_equal(changed.cka_rbf, ds.cka_rbf)
    samples = run(measures_config(tmp_path, classifier=dataclasses.replace(SMALL['classifier'], steps=150), mc_samples=200), client=client)
    assert samples.stage("measures").computed == 9  # the Monte Carlo rows
    fewer = run(measures_config(tmp_path, measures=("nmi_bc", "vi_bc", "cka_linear"), classifier=dataclasses.replace(SMALL['classifier'], steps=150),
                                mc_samples=200), client=client)
    assert fewer.stage("measures").computed == 1  # bc now holds two measures, not three: another extent
    got = opened(config)
    assert got.measure_a.values.tolist() == ["nmi_bc", "vi_bc", "cka_linear"]
    assert json.loads(got.attrs["family_options"])["mc"]["mc_samples"] == 200  # what the kept values came from

    unbiased = run(measures_config(tmp_path, measures=("nmi_bc", "vi_bc", "cka_linear"), classifier=dataclasses.replace(SMALL['classifier'], steps=150),
                                   mc_samples=200, debiased=True), client=client)
    assert unbiased.stage("measures").computed == 1  # linear CKA's estimator; NMI and VI do not depend on it
    other_spaces = run(measures_config(tmp_path, n_items=36).replace(stages=("spaces",)), client=client)
    assert other_spaces.stage("spaces").note.startswith("9 spaces")
    assert opened(config).attrs["complete"] is False  # the measures of the old spaces are stale now
    grown = run(measures_config(tmp_path, n_items=36, measures=("nmi_bc", "cka_linear")), client=client)
    assert grown.stage("measures").computed == 2  # other spaces: every value computed again
    got = opened(config)
    assert got.sizes["space_a"] == 9 and "jsd_classifier" not in got  # stale values of the old spaces are gone
    want = compare_spaces([s.mu for s in nine_spaces(36)], [s.logvar for s in nine_spaces(36)], ["nmi_bc"])
    np.testing.assert_allclose(got.nmi_bc.values, want.nmi_bc.values, atol=1e-12)


def test_spaces_from_a_run_models_and_channels(tmp_path, client):
    config = prepared(tmp_path, 4)
    run(config.replace(stages=("channels",)), client=client)
    emb = xr.open_zarr(config.store, group="embeddings", consolidated=False).load()
    latents = config.replace(stages=("spaces", "measures"),
                             measures=ComparisonOptions(source="latents", measures=("nmi_bc", "vi_bc", "cka_linear")))
    run(latents, client=client)
    sp = xr.open_zarr(config.store, group="spaces", consolidated=False).load()
    assert sp.space.values.tolist() == ["0", "1", "2", "3"] and sp.sizes["item"] == N_IMAGES
    assert (sp.n_dims.values == N_CHANNELS).all()
    np.testing.assert_array_equal(sp.dataset_index.values, emb.dataset_index.values)
    want = compare_spaces([emb.mu.values[i].T for i in range(4)], [emb.logvar.values[i].T for i in range(4)],
                          ["nmi_bc", "vi_bc", "cka_linear"])
    ds = opened(config)
    for name in ("nmi_bc", "vi_bc", "cka_linear"):
        np.testing.assert_allclose(ds[name].values, want[name].values, atol=1e-12)

    channels = latents.replace(measures=dataclasses.replace(latents.measures, source="channels", max_spaces=6))
    run(channels, client=client)
    sp = xr.open_zarr(config.store, group="spaces", consolidated=False).load()
    information = xr.open_zarr(config.store, group="channels", consolidated=False).information.values
    kept = [f"{m}/{c}" for m, c in zip(*np.nonzero(information >= config.info_threshold))]
    assert len(kept) > 6 and sp.space.values.tolist() == kept[:6]
    assert json.loads(sp.attrs["left_out"]) == kept[6:]
    assert (sp.n_dims.values == 1).all() and opened(config).sizes["space_a"] == 6


def test_refusals_name_what_is_wrong(tmp_path, client):
    with pytest.raises(ValueError, match="unknown measures"):
        ComparisonOptions(measures=("cka",))
    with pytest.raises(ValueError, match="source must be one of"):
        ComparisonOptions(source="zoo")
    with pytest.raises(ValueError, match="steps must be positive"):
        ComparisonOptions(classifier={"steps": 0})
    bare = measures_config(tmp_path, source="latents")
    store.open_run(bare.store)
    with pytest.raises(RuntimeError, match="'spaces' needs the 'embeddings' group"):
        run(bare, client=client)
    with pytest.raises(RuntimeError, match="'measures' needs the 'spaces' group"):
        run(bare.replace(stages=("measures",)), client=client)


def test_the_job_writes_figures_and_a_report(tmp_path):
    from repspace.jobs import compare_measures

    run_dir = tmp_path / "job"
    code = compare_measures.main(["--run-dir", str(run_dir), "--n-items", "16", "--measures", "nmi_bc", "vi_bc",
                                  "cka_linear", "cka_rbf", "--workers", "1", "--no-dashboard"])
    assert code == 0
    for name in ("spaces", "measures_matrices", "measures_agreement", "measures_scatter"):
        assert (run_dir / "figures" / f"{name}.png").stat().st_size > 10_000, name
    page = (run_dir / "report.html").read_text()
    assert "Measures side by side" in page and "bloated square spiral" in page
    assert "95% percentile bootstrap interval [low, high] from 1000 resamples of the spaces" in page
    assert compare_measures.main(["--store", str(tmp_path / "nothing" / "store.zarr")]) == 2
