"""Damaged stores: deleted and truncated chunks in embeddings, channels and pairs are detected with
the array, chunk and models named, and repaired to the values of a clean run."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr

from repspace import store
from repspace.jobs import verify as verify_job
from repspace.pipeline import run
from repspace.store.verify import chunk_path, find_damage

from .test_hardening import prepared
from .test_sweep_e2e import config_for, model_dir  # noqa: F401  (the fixture of four linear TF models)

pytestmark = pytest.mark.distributed

GROUPS = ("embeddings", "channels", "pairs", "structure")


def values(path) -> dict:
    out = {}
    for g in GROUPS:
        ds = xr.open_zarr(path, group=g, consolidated=False).load()
        for name in ds.data_vars:
            if not name.startswith("done") and name not in ("encoded", "chunk_bytes"):
                out[f"{g}/{name}"] = ds[name].values
    return out


def truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_verify_names_each_damaged_chunk_and_repair_restores_a_clean_run(tmp_path, model_dir, client, capsys):  # noqa: F811
    config = config_for(tmp_path, model_dir, stages=("fingerprint", "models", "encode", "channels", "pairs",
                                                    "structure"), pair_block_units=6)
    run(config, client=client)
    clean = tmp_path / "clean.zarr"
    shutil.copytree(config.store, clean)
    damaged = [("embeddings", "mu", (1, 0, 0), "delete"), ("embeddings", "logvar", (0, 0, 0), "truncate"),
               ("channels", "information", (1, 0), "delete"), ("channels", "vi_factor", (0, 0, 0), "truncate"),
               ("pairs", "vi", (0, 0, 1, 0), "delete"), ("pairs", "nmi", (1, 0, 1, 0), "truncate")]
    for group, array, chunk, how in damaged:
        path = chunk_path(config.store, group, array, chunk)
        path.unlink() if how == "delete" else truncate(path)

    assert verify_job.main([config.run_dir]) == 1
    out = capsys.readouterr().out
    for group, array, chunk, how in damaged:
        line = next(line for line in out.splitlines() if f"{group}/{array} chunk {chunk}" in line)
        assert ("missing" in line) == (how == "delete"), line
        assert "models " in line
    assert "models 2, 3" in next(line for line in out.splitlines() if "embeddings/mu chunk (1, 0, 0)" in line)

    # the stages refuse damaged inputs with the chunk named, rather than reading NaN or failing in a codec
    with pytest.raises(store.StoreError, match=r"embeddings/mu chunk \(1, 0, 0\) \(models 2, 3\): missing"):
        run(config.replace(stages=("pairs",)), client=client, log=lambda m: None)

    assert verify_job.main([config.run_dir, "--repair"]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "repaired" in out
    rows = [line.split()[0] for line in out.splitlines() if line.startswith("  ") and len(line.split()) > 3]
    assert [s for s in ("models", "encode", "channels", "pairs", "structure") if s not in rows] == [], out  # each rerun
    assert not find_damage(config.store, deep=True)
    got, want = values(config.store), values(clean)
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def test_a_rerun_recomputes_only_the_blocks_whose_chunks_are_damaged(tmp_path, client):
    config = prepared(tmp_path, 6)  # blocks of two models: 3 channel blocks, 6 pair blocks
    run(config, client=client)
    before = {g: xr.open_zarr(config.store, group=g, consolidated=False).load() for g in ("channels", "pairs")}
    chunk_path(config.store, "pairs", "vi", (2, 0, 1, 0)).unlink()  # the transpose half of block (1, 2)
    truncate(chunk_path(config.store, "channels", "nmi_factor", (0, 0, 0)))
    said = []
    result = run(config, client=client, log=said.append)
    assert [(r.name, r.computed, r.skipped) for r in result.stages] == [("channels", 1, 2), ("pairs", 1, 5)]
    assert any("pairs/vi chunk (2, 0, 1, 0)" in s and "missing" in s and "recomputing" in s for s in said), said
    assert any("channels/nmi_factor chunk (0, 0, 0)" in s for s in said), said
    for g, ds in before.items():
        again = xr.open_zarr(config.store, group=g, consolidated=False).load()
        for name in ds.data_vars:  # per array first: a mismatch names the entries and their differences
            np.testing.assert_array_equal(again[name].values, ds[name].values, err_msg=f"{g}/{name}")
        xr.testing.assert_equal(again, ds)


def test_posteriors_written_from_elsewhere_cannot_be_repaired_and_say_so(tmp_path, client, capsys):
    config = prepared(tmp_path, 4)
    run(config, client=client)
    chunk_path(config.store, "embeddings", "mu", (0, 0, 0)).unlink()
    assert verify_job.main([str(config.store), "--repair"]) == 2
    assert "written from elsewhere" in capsys.readouterr().err
    with pytest.raises(store.StoreError, match=r"embeddings/mu chunk \(0, 0, 0\) \(models 0, 1, 2, 3\): missing"):
        run(config.replace(stages=("channels",)), client=client, log=lambda m: None)


def test_dropping_a_model_recomputes_exactly_the_blocks_that_involve_it(tmp_path, client, capsys):
    from repspace.jobs import full_sweep

    config = prepared(tmp_path, 6)  # blocks of two models
    run(config, client=client)
    before = {g: xr.open_zarr(config.store, group=g, consolidated=False).load() for g in ("channels", "pairs")}
    code = full_sweep.main(["--run-dir", config.run_dir, "--n-images", str(config.n_images), "--pair-block-units",
                            str(config.pair_block_units), "--stages", "channels", "pairs", "--drop-models", "3",
                            "--workers", "1", "--no-dashboard"])
    assert code == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip().startswith(("channels", "pairs"))}
    assert rows["channels"][2:4] == ["1", "2"] and rows["pairs"][2:4] == ["3", "3"]  # block 1, and its 3 pairs
    assert "3: dropped from the run" in out
    ch = xr.open_zarr(config.store, group="channels", consolidated=False).load()
    pr = xr.open_zarr(config.store, group="pairs", consolidated=False).load()
    assert np.isnan(ch["information"].values[3]).all() and np.isnan(pr["vi"].values[3]).all()
    keep = [0, 1, 2, 4, 5]
    np.testing.assert_array_equal(ch["information"].values[keep], before["channels"]["information"].values[keep])
    untouched = [0, 1, 4, 5]  # blocks without model 3 were not recomputed: bit for bit
    vi, vi_before = pr["vi"].values, before["pairs"]["vi"].values
    np.testing.assert_array_equal(vi[untouched][:, :, untouched], vi_before[untouched][:, :, untouched])
    # model 2 shares its block with model 3: its pairs were recomputed in matrix products of another shape
    # (model 3's channels left out), which BLAS may sum in another order: equal within float32 rounding
    np.testing.assert_allclose(vi[2][:, keep], vi_before[2][:, keep], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(vi[keep][:, :, 2], vi_before[keep][:, :, 2], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="the run has no models 99"):
        from repspace.pipeline.repair import drop_models

        drop_models(config.store, ["99"])


def test_a_stage_refuses_a_damaged_input_naming_the_chunk(tmp_path, client):
    config = prepared(tmp_path, 4)
    run(config, client=client)
    truncate(chunk_path(config.store, "pairs", "nmi", (0, 0, 1, 0)))
    with pytest.raises(store.StoreError, match=r"'structure' reads 'pairs', which is damaged: pairs/nmi chunk "
                                               r"\(0, 0, 1, 0\) \(models 0, 1, 2, 3\): \d+ bytes on disk"):
        run(config.replace(stages=("structure",)), client=client, log=lambda m: None)


def test_damaged_markers_and_coordinates_are_named_and_repaired(tmp_path, client, capsys):
    config = prepared(tmp_path, 6)
    run(config.replace(stages=("channels", "pairs", "structure")), client=client)
    clean = {g: xr.open_zarr(config.store, group=g, consolidated=False).load() for g in ("channels", "pairs")}
    truncate(chunk_path(config.store, "pairs", "done", (0, 1)))
    truncate(chunk_path(config.store, "channels", "model", (0,)))
    assert verify_job.main([config.run_dir]) == 1
    out = capsys.readouterr().out
    assert "pairs/done chunk (0, 1)" in out and "channels/model chunk (0,)" in out and "cannot be read" in out
    assert verify_job.main([config.run_dir, "--repair"]) == 0, capsys.readouterr()
    for g, ds in clean.items():
        got = xr.open_zarr(config.store, group=g, consolidated=False).load()
        xr.testing.assert_equal(got[list(ds.data_vars)].drop_vars(["done", "done_bytes"]),
                                ds.drop_vars(["done", "done_bytes"]))


def test_configurations_recorded_by_earlier_versions_rerun_as_they_were(tmp_path):
    """A store written before informative pairs and shared terms repairs with every pair and five estimates per pair."""
    import json

    from repspace.pipeline import RunConfig
    from repspace.pipeline.repair import recorded_config

    old = RunConfig(run_dir=str(tmp_path)).as_dict()
    del old["pair_channels"], old["latents"]["scheme"], old["errors"]
    old["latents"]["n_images"] = old["latents"].pop("n_dataset_images")  # the names of earlier versions
    old["measures"].update({f"classifier_{k}": v for k, v in old["measures"].pop("classifier").items()})
    old["so2"].update({f"learner_{k}": v for k, v in old["so2"].pop("learner").items()})
    old["measures"]["classifier_steps"] = 123
    root = store.open_run(tmp_path / "store.zarr")
    root.require_group("pairs").attrs["config"] = json.dumps(old)
    config = recorded_config(root, tmp_path / "store.zarr", "pairs")
    assert (config.pair_channels, config.latents.scheme) == ("all", "pairs")
    assert config.measures.classifier.steps == 123 and config.so2.learner == RunConfig().so2.learner
    assert config.errors.groups == 0  # written before standard errors: repaired as it was written


@pytest.mark.parametrize("group, marker, key", [("channels", "done", (3,)), ("pairs", "done", (1, 4)),
                                                ("pairs", "done", (2, 2)), ("latents", "information_done", (5,)),
                                                ("latents", "twice_done", (2,)), ("latents", "estimate_done", (1, 3, 4))])
def test_every_chunk_a_block_writes_leads_back_to_its_block(group, marker, key):
    """verify's chunks of a block and repair's block of a chunk come from one schema module and agree (the
    pairs' nested subsets too: their chunks carry the subset first)."""
    from repspace.store import verify

    present = {name: np.zeros(2) for name in store.pairs.CHECKED} if group == "pairs" else None  # two subsets
    chunks = verify.block_chunks(group, marker, key, present)
    assert chunks and len(chunks) <= verify._SCHEMAS[group].MAX_BLOCK_CHUNKS
    if group == "pairs":
        assert {a for a, _ in chunks} == set(store.pairs.CHECKED)
    for array, coords in chunks:
        assert verify.chunk_block(group, array, coords) == (marker, key), (array, coords)
    assert verify.chunk_block(group, "model", (0,)) is None and verify.chunk_block("structure", "nmi", (0,)) is None
