"""The sweep's stages on stored embeddings: values, resumption, growth, killed workers, bad input."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
import xarray as xr
import zarr

import repspace
from repspace import store
from repspace.pipeline.checks import ConfigurationRefused
from repspace.data import FingerprintConfig, build_fingerprint
from repspace.models import ModelEntry
from repspace.pipeline import RunConfig, load_config, run
from repspace.pipeline.config import DEFAULT_CONFIG
from repspace.store import write_posteriors
from repspace.store.verify import record_block

pytestmark = pytest.mark.distributed

N_IMAGES = 40
N_CHANNELS = 3


def synthetic_posteriors(n_models: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Models whose channel 0 follows posX, channel 1 posY, channel 2 carries ~nothing."""
    rng = np.random.default_rng(seed)
    fp = build_fingerprint(FingerprintConfig(dataset="dsprites_procedural", n=N_IMAGES, seed=0, image_size=32))
    factors = fp["factors"].values
    x, y = factors[:, 3].astype(float), factors[:, 4].astype(float)
    mu = np.empty((n_models, N_CHANNELS, N_IMAGES), np.float32)
    logvar = np.empty_like(mu)
    for m in range(n_models):
        mu[m, 0] = rng.choice([-1, 1]) * (x / 8 + rng.normal(0, 0.2, N_IMAGES))
        mu[m, 1] = rng.choice([-1, 1]) * (y / 8 + rng.normal(0, 0.2, N_IMAGES))
        mu[m, 2] = rng.normal(0, 1e-3, N_IMAGES)
        logvar[m, :2] = rng.normal(-3, 0.3, (2, N_IMAGES))
        logvar[m, 2] = 0.0
    return mu, logvar, factors


def entries(names):
    return [ModelEntry(name=str(n), path="", dataset="dsprites_procedural", family="synthetic", hyperparameter="beta",
                       hyperparameter_value=1.0, seed=int(n), source="test") for n in names]


def make_run(tmp_path, n_models: int, *, models_per_block: int = 1, mu=None, logvar=None, name="run") -> RunConfig:
    config = RunConfig(run_dir=str(tmp_path / name), n_images=N_IMAGES, image_size=32,
                         pair_block_units=models_per_block * N_CHANNELS, dashboard=False,
                         stages=("channels", "pairs", "structure"))
    build_fingerprint(FingerprintConfig(dataset="dsprites_procedural", n=N_IMAGES, seed=0, image_size=32, store=config.store))
    if mu is None:
        mu, logvar, _ = synthetic_posteriors(n_models)
    write_posteriors(config.store, mu[:n_models], logvar[:n_models], entries(range(n_models)))
    return config


def flat(ds: xr.Dataset, name: str) -> np.ndarray:
    v = ds[name].values
    m, c = v.shape[:2]
    return v.reshape(m * c, m * c)


def test_stages_match_the_core_functions(tmp_path, client):
    mu, logvar, factors = synthetic_posteriors(5)
    config = make_run(tmp_path, 5, models_per_block=2, mu=mu, logvar=logvar)
    result = run(config, client=client)
    assert [r.name for r in result.stages] == ["channels", "pairs", "structure"]

    units_mu, units_lv = mu.reshape(-1, N_IMAGES), logvar.reshape(-1, N_IMAGES)
    expected = repspace.compare_channels(units_mu, units_lv)
    pairs = xr.open_zarr(config.store, group="pairs", consolidated=False)
    assert pairs["nmi"].dims == ("model_a", "channel_a", "model_b", "channel_b")
    assert pairs["vi"].attrs["units"] == "bits"
    assert list(pairs["model_a"].values) == ["0", "1", "2", "3", "4"]
    # pairs among the informative channels only (channel 2 carries ~nothing): the rest stay NaN
    kept = expected["information"].values >= config.info_threshold
    assert kept.reshape(5, N_CHANNELS)[:, :2].all() and not kept.reshape(5, N_CHANNELS)[:, 2].any()
    both = kept[:, None] & kept[None, :]
    assert np.isnan(flat(pairs, "vi")[~both]).all() and np.isnan(flat(pairs, "nmi")[~both]).all()
    np.testing.assert_allclose(flat(pairs, "vi")[both], expected["vi"].values[both], atol=1e-4)
    np.testing.assert_allclose(flat(pairs, "nmi")[both], expected["nmi"].values[both], atol=1e-4)
    assert pairs.attrs["pair_channels"] == "informative" and pairs.attrs["info_threshold_bits"] == config.info_threshold

    channels = xr.open_zarr(config.store, group="channels", consolidated=False)
    direct = repspace.compare_factors(units_mu, units_lv, factors, factor_names=list(channels["factor"].values))
    np.testing.assert_allclose(channels["information"].values.ravel(), expected["information"].values, atol=1e-5)
    np.testing.assert_allclose(channels["nmi_factor"].values.reshape(-1, factors.shape[1]), direct["nmi"].values, atol=1e-5)
    assert channels["information"].attrs["units"] == "bits"
    assert list(channels["factor"].values) == ["shape", "scale", "orientation", "posX", "posY"]

    structure = xr.open_zarr(config.store, group="structure", consolidated=False)
    # channel 2 of every model carries ~nothing and is left out; x and y channels recur
    assert set(structure["channel"].values.tolist()) == {0, 1}
    for measure in ("vi", "nmi"):
        st = structure.sel(measure=measure)
        labels, channel = st["label"].values, st["channel"].values
        clusters = [k for k in range(st.sizes["cluster"]) if st["cluster_size"].values[k] > 0]
        assert clusters, measure
        best = {k: str(st["cluster_best_factor"].values[k]) for k in clusters}
        assert set(best.values()) == {"posX", "posY"}, (measure, best)
        for k in clusters:  # every cluster holds x channels only or y channels only, named by its factor
            members = set(channel[labels == k].tolist())
            assert members == ({0} if best[k] == "posX" else {1}), (measure, k, members)
        assert st["cluster_models"].values[clusters].max() == 5
    for group in ("channels", "pairs", "structure"):
        attrs = zarr.open_group(str(config.store), path=group, mode="r").attrs
        assert attrs["complete"] is True and "config" in attrs and "elapsed_s" in attrs


def _reference(tmp_path, n_models):
    config = make_run(tmp_path, n_models, name=f"reference{n_models}")
    return config


def test_interrupted_pairs_rerun_only_missing_blocks(tmp_path, client):
    config = make_run(tmp_path, 4)
    run(config.replace(stages=("channels", "pairs")), client=client)
    before = xr.open_zarr(config.store, group="pairs", consolidated=False).load()
    # an interruption: three blocks lost their markers, their values half written
    grp = zarr.open_group(str(config.store), path="pairs", mode="r+")
    lost = [(0, 1), (2, 3), (3, 3)]
    for a, b in lost:
        grp["done"][a, b] = 0
        grp["nmi"][a, :, b, :] = 7.0
    grp.attrs["complete"] = False
    result = run(config.replace(stages=("pairs",)), client=client)
    rep = result.stages[0]
    assert (rep.computed, rep.skipped) == (3, 7)
    after = xr.open_zarr(config.store, group="pairs", consolidated=False).load()
    xr.testing.assert_equal(after[["nmi", "vi"]], before[["nmi", "vi"]])
    assert run(config.replace(stages=("pairs",)), client=client).stages[0].computed == 0


def test_adding_models_computes_only_new_pairs(tmp_path, client):
    mu, logvar, _ = synthetic_posteriors(6)
    config = make_run(tmp_path, 4, mu=mu, logvar=logvar)
    run(config.replace(stages=("channels", "pairs")), client=client)
    write_posteriors(config.store, mu[4:], logvar[4:], entries([4, 5]))
    result = run(config.replace(stages=("channels", "pairs")), client=client)
    channels_rep, pairs_rep = result.stages
    assert (channels_rep.computed, channels_rep.skipped) == (2, 4)
    assert (pairs_rep.computed, pairs_rep.skipped) == (21 - 10, 10)
    fresh = make_run(tmp_path, 6, mu=mu, logvar=logvar, name="fresh")
    run(fresh.replace(stages=("channels", "pairs")), client=client)
    grown = xr.open_zarr(config.store, group="pairs", consolidated=False)
    whole = xr.open_zarr(fresh.store, group="pairs", consolidated=False)
    np.testing.assert_array_equal(grown["vi"].values, whole["vi"].values)
    np.testing.assert_array_equal(grown["nmi"].values, whole["nmi"].values)


def test_a_killed_worker_does_not_change_the_result(tmp_path):
    from distributed import Client, LocalCluster

    mu, logvar, _ = synthetic_posteriors(12)
    config = make_run(tmp_path, 12, mu=mu, logvar=logvar)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                           worker_dashboard_address="127.0.0.1:0")
    cl = Client(cluster)
    try:
        pids = list(cl.run(os.getpid).values())
        marker = zarr.open_group(str(config.store), mode="r")

        def kill_when_started():
            deadline = time.time() + 60
            while time.time() < deadline:
                if "pairs" in marker and "done" in marker["pairs"] and (np.asarray(marker["pairs"]["done"][:]) > 0).sum() >= 3:
                    os.kill(pids[0], signal.SIGKILL)
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_when_started)
        killer.start()
        run(config.replace(stages=("pairs",), pair_channels="all"), client=cl)
        killer.join()
        assert pids[0] not in cl.run(os.getpid).values()  # the worker really died and was replaced
    finally:
        cl.close()
        cluster.close()
    got = xr.open_zarr(config.store, group="pairs", consolidated=False)
    expected = repspace.compare_channels(mu.reshape(-1, N_IMAGES), logvar.reshape(-1, N_IMAGES))
    np.testing.assert_allclose(flat(got, "vi"), expected["vi"].values, atol=1e-4)
    assert int((np.asarray(zarr.open_group(str(config.store), path="pairs")["done"][:]) > 0).sum()) == 12 * 13 // 2


def test_a_store_from_another_fingerprint_set_is_refused(tmp_path, client):
    config = make_run(tmp_path, 2)
    other = config.replace(seed=1, stages=("fingerprint",))
    with pytest.raises(ConfigurationRefused, match=r"holds a fingerprint set drawn with seed = 0 \(this run: 1\)"):
        run(other, client=client)  # before any work (the store's fingerprint group refuses it too, when written)
    # channels computed on another set (its id recorded) are refused too
    zarr.open_group(str(config.store), path="embeddings", mode="r+").attrs["images_id"] = "0123456789abcdef"
    with pytest.raises(store.StoreError, match="another fingerprint set"):
        run(config, client=client)


def test_foreign_and_half_written_stores(tmp_path, client):
    foreign = tmp_path / "foreign.zarr"
    zarr.open_group(str(foreign), mode="w", zarr_format=3).attrs["format"] = "something-else"
    with pytest.raises(store.StoreError, match="another kind"):
        store.open_run(foreign)
    not_zarr = tmp_path / "notzarr"
    not_zarr.mkdir()
    (not_zarr / "file.txt").write_text("hello")
    with pytest.raises(store.StoreError, match="not a zarr format 3 store"):
        store.open_run(not_zarr)
    # a pairs stage whose task never ran: structure refuses to read it
    config = make_run(tmp_path, 2)
    run(config.replace(stages=("channels",)), client=client)
    with pytest.raises(RuntimeError, match="'structure' needs the 'pairs' group"):
        run(config.replace(stages=("structure",)), client=client)
    # a model whose encoding never finished is not taken for done
    zarr.open_group(str(config.store), path="embeddings", mode="r+")["encoded"][1] = 0
    with pytest.raises(RuntimeError, match="models 1 have no posteriors in 'embeddings' yet"):
        run(config.replace(stages=("pairs",)), client=client)


def test_write_embeddings_rejects_bad_input(tmp_path):
    config = RunConfig(run_dir=str(tmp_path / "bad"), n_images=N_IMAGES, image_size=32)
    build_fingerprint(FingerprintConfig(dataset="dsprites_procedural", n=N_IMAGES, seed=0, image_size=32, store=config.store))
    mu = np.zeros((2, N_CHANNELS, N_IMAGES), np.float32)
    lv = np.zeros_like(mu)
    mu[1, 2, 5] = np.nan
    with pytest.raises(ValueError, match="model 1: NaN or infinite posteriors in channels \\[2\\]"):
        write_posteriors(config.store, mu, lv, entries([0, 1]))
    with pytest.raises(ValueError, match="fingerprint set has 40"):
        write_posteriors(config.store, mu[:, :, :10], lv[:, :, :10], entries([0, 1]))


def test_the_default_config_file_is_the_built_in_default():
    from_file = load_config(DEFAULT_CONFIG)
    built_in = RunConfig()
    for field in ("run_dir", "dataset", "image_size", "n_images", "seed", "models_per_encode_task", "pair_block_units", "info_threshold"):
        assert getattr(from_file, field) == getattr(built_in, field)
    assert from_file.models.source == "trained"
    assert from_file.models.train_config() == built_in.models.train_config()
    over = load_config(DEFAULT_CONFIG, n_images=50, models={"dir": "x"}, train_overrides={"steps": 5})
    assert (over.n_images, over.models.dir, over.models.train_config().steps) == (50, "x", 5)
    with pytest.raises(ValueError, match="unknown keys"):
        load_config(DEFAULT_CONFIG, n_imgs=3)


@pytest.mark.parametrize("path", sorted(DEFAULT_CONFIG.parent.glob("*.toml")), ids=lambda p: p.name)
def test_every_job_configuration_loads(path):
    config = load_config(path)
    assert config.models.source in ("trained", "directory", "zoo")
    if config.models.source == "trained":
        assert config.models.train_config().dataset == config.dataset
    if config.models.source == "zoo":
        from repspace.models import parse_model_numbers

        assert parse_model_numbers(",".join(config.models.numbers))


BAD_KEYS = {  # a value in each job's file made wrong, and how the error names its key as the file writes it
    "offline_default.toml": ("steps = 10000", "steps = 0", r"\[models.train\] steps must be positive"),
    "compare_latents.toml": ("n_samples = 2000", "n_samples = 1", r"\[latents\] n_samples must be at least 2"),
    "compare_measures.toml": ("steps = 2000", "steps = 0", r"\[measures.classifier\] steps must be positive"),
    "fusion_so2.toml": ("batch_size = 512", "batch_size = 0", r"\[so2.learner\] batch_size must be positive"),
    "fusion_so2_paper.toml": ("repeats = 5", "repeats = 0", r"\[so2\] repeats is too small"),
    "measures_paper.toml": ("shape_alpha = 1.0", "shape_alpha = 3.0", r"\[measures\] shape_alpha must be in"),
    "trained_ensemble.toml": ("n_images = 1000", "n_images = 0", r"n_images must be positive"),
    "zoo_dsprites_beta_vae.toml": ("[models]", "[models]\nnumbrs = [1]", r"\[models\]: unknown keys \['numbrs'\]"),
}


@pytest.mark.parametrize("name", sorted(BAD_KEYS))
def test_a_bad_value_in_each_job_file_is_named_as_the_file_writes_it(tmp_path, name):
    old, new, message = BAD_KEYS[name]
    text = (DEFAULT_CONFIG.parent / name).read_text()
    assert old in text, f"{name} has no {old!r}"
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ValueError, match=message):
        load_config(path)


def test_every_job_file_has_a_bad_value_case():
    assert set(BAD_KEYS) == {p.name for p in DEFAULT_CONFIG.parent.glob("*.toml")}


def test_one_meaning_per_name():
    with pytest.raises(ValueError, match=r"\[latents\]: unknown keys \['n_images'\]"):
        load_config(DEFAULT_CONFIG, latents={"n_images": 5})  # M is n_dataset_images; N is the run's n_images


def test_changed_posteriors_recompute_exactly_the_blocks_that_read_them(tmp_path, client):
    mu, logvar, _ = synthetic_posteriors(6)
    config = make_run(tmp_path, 6, models_per_block=2, mu=mu, logvar=logvar)
    run(config.replace(stages=("channels", "pairs")), client=client)
    new_mu = mu.copy()
    new_mu[2] = np.random.default_rng(9).normal(size=new_mu[2].shape)  # model 2 (in block 1) is encoded anew
    write_posteriors(config.store, new_mu[2:3], logvar[2:3], entries([2]))
    result = run(config.replace(stages=("channels", "pairs")), client=client)
    assert [(r.name, r.computed, r.skipped) for r in result.stages] == [("channels", 1, 2), ("pairs", 3, 3)]
    fresh = make_run(tmp_path, 6, models_per_block=2, mu=new_mu, logvar=logvar, name="fresh")
    run(fresh.replace(stages=("channels", "pairs")), client=client)
    for group in ("channels", "pairs"):
        xr.testing.assert_equal(xr.open_zarr(config.store, group=group, consolidated=False).load().drop_vars(
            ["done", "done_bytes"]), xr.open_zarr(fresh.store, group=group, consolidated=False).load().drop_vars(
            ["done", "done_bytes"]))


def test_the_pairs_stage_stores_cka_bc_on_request(tmp_path, client):
    mu, logvar, _ = synthetic_posteriors(4)
    config = make_run(tmp_path, 4, models_per_block=2, mu=mu, logvar=logvar).replace(
        stages=("pairs",), pair_measures=("nmi", "vi", "cka_bc"), pair_channels="all")
    run(config, client=client)
    pairs = xr.open_zarr(config.store, group="pairs", consolidated=False)
    expected = repspace.kernels.pairwise_information(repspace.kernels.PosteriorRows(
        mu.reshape(-1, N_IMAGES), logvar.reshape(-1, N_IMAGES)), cka=True).cka_bc
    got = flat(pairs, "cka_bc")
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], atol=1e-5)
    np.testing.assert_allclose(flat(pairs, "vi"), repspace.compare_channels(mu.reshape(-1, N_IMAGES),
                               logvar.reshape(-1, N_IMAGES))["vi"].values, atol=1e-4)
    with pytest.raises(repspace.store.StoreError, match="holds the measures"):
        run(config.replace(pair_measures=("nmi", "vi")), client=client)


def test_informative_pairs_equal_all_pairs_on_the_kept_channels(tmp_path, client):
    mu, logvar, _ = synthetic_posteriors(5)
    mu[3], logvar[3] = 0.0, 0.0  # model 3 carries nothing in any channel: its block writes no chunk
    informative = make_run(tmp_path, 5, mu=mu, logvar=logvar, name="informative").replace(stages=("channels", "pairs"))
    every = make_run(tmp_path, 5, mu=mu, logvar=logvar, name="all").replace(stages=("channels", "pairs"),
                                                                            pair_channels="all")
    run(informative, client=client)
    run(every, client=client)
    info = xr.open_zarr(informative.store, group="channels", consolidated=False)["information"].values.ravel()
    kept = info >= informative.info_threshold
    assert kept.sum() == 8 and not kept[9:12].any()
    both = kept[:, None] & kept[None, :]
    few = xr.open_zarr(informative.store, group="pairs", consolidated=False).load()
    many = xr.open_zarr(every.store, group="pairs", consolidated=False).load()
    for name in ("nmi", "vi"):
        np.testing.assert_allclose(flat(few, name)[both], flat(many, name)[both], rtol=1e-6, atol=1e-6)
        assert np.isnan(flat(few, name)[~both]).all()
    assert np.isfinite(flat(many, "vi")).all()
    chunks = {p.parent.parent.parent.name for p in (informative.store / "pairs" / "vi" / "c").glob("*/*/*/*")}
    assert "3" not in chunks and {"0", "1", "2", "4"} <= chunks  # no chunk of model 3's row of blocks
    assert (3, 3) not in {tuple(int(x) for x in p.relative_to(informative.store / "pairs" / "vi" / "c").parts[::2])
                          for p in (informative.store / "pairs" / "vi" / "c").glob("*/*/*/*")}


def test_a_changed_threshold_recomputes_only_the_blocks_whose_channels_change(tmp_path, client):
    mu, logvar, _ = synthetic_posteriors(6)
    config = make_run(tmp_path, 6, models_per_block=2, mu=mu, logvar=logvar).replace(stages=("channels", "pairs"))
    run(config, client=client)
    info = xr.open_zarr(config.store, group="channels", consolidated=False)["information"].values
    values = np.sort(info[info >= config.info_threshold])
    higher = float(values[:2].mean())  # leaves out exactly the least informative kept channel
    model = int(np.argwhere(info == values[0])[0, 0])
    result = run(config.replace(stages=("pairs",), info_threshold=higher), client=client)
    assert (result.stages[0].computed, result.stages[0].skipped) == (3, 3)  # the blocks of model's block only
    fresh = make_run(tmp_path, 6, models_per_block=2, mu=mu, logvar=logvar, name="fresh").replace(
        stages=("channels", "pairs"), info_threshold=higher)
    run(fresh, client=client)
    changed = xr.open_zarr(config.store, group="pairs", consolidated=False).load()
    whole = xr.open_zarr(fresh.store, group="pairs", consolidated=False).load()
    xr.testing.assert_equal(changed[["nmi", "vi"]], whole[["nmi", "vi"]])
    assert np.isnan(changed["vi"].values[model, int(np.argwhere(info == values[0])[0, 1])]).all()
    assert run(config.replace(stages=("pairs",), info_threshold=higher), client=client).stages[0].computed == 0
    # the structure refuses to keep channels the pairs were not computed for, and runs at the pairs' threshold
    with pytest.raises(store.StoreError, match=f"computed only among channels with I\\(U\\) >= {higher} bits"):
        run(config.replace(stages=("structure",)), client=client)
    assert run(config.replace(stages=("structure",), info_threshold=higher), client=client).stages[0].name == "structure"


def test_the_structure_refuses_channels_that_changed_after_the_pairs(tmp_path, client):
    config = make_run(tmp_path, 4, models_per_block=2)
    run(config, client=client)
    before = xr.open_zarr(config.store, group="structure", consolidated=False).load()
    root = zarr.open_group(config.store, mode="r+")
    information = root["channels"]["information"]
    info = information[:]
    model, channel = (int(x) for x in np.argwhere(info < config.info_threshold)[0])
    name = str(root["channels"]["model"][model])
    info[model, channel] = 1.0  # as if the channels had been recomputed on other posteriors after the pairs
    information[:] = info
    channels = root["channels"]  # recorded as the channels stage records a block it finished
    record_block(config.store, channels, "done", (model // int(channels.attrs["models_per_block"]),))
    with pytest.raises(store.StoreError, match=rf"pairs stage left out 1 of the \d+ channels the structure keeps "
                                               rf"\(model {name} channel {channel}\).*rerun the pairs stage"):
        run(config.replace(stages=("structure",)), client=client)
    # the structure written before is kept as it was
    assert store.is_complete(zarr.open_group(config.store, mode="r"), "structure")
    xr.testing.assert_identical(xr.open_zarr(config.store, group="structure", consolidated=False).load(), before)
