"""The full sweep end to end through a real LocalCluster, on SavedModels written here.

Each model is a linear Gaussian encoder on 32 x 32 procedural dSprites whose channel 0
reads the horizontal position of the shape, channel 1 the vertical one, and channel 2
almost nothing, with a linear decoder: the structure stage must find an x and a y cluster.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import xarray as xr

import repspace
from repspace.jobs import full_sweep
from repspace.pipeline import FailedModelsWarning, RunConfig, run

pytestmark = [pytest.mark.tf, pytest.mark.distributed]

SIZE, K, N_IMAGES = 32, 3, 150


def write_linear_model(path, seed: int, *, nan: bool = False) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    grid = (np.arange(SIZE) - (SIZE - 1) / 2) / SIZE
    xw = np.tile(grid[None, :], (SIZE, 1)).reshape(-1)  # weight of each pixel by its column
    yw = np.tile(grid[:, None], (1, SIZE)).reshape(-1)
    def reader(w):  # each model reads the position with its own sign, gain and pixel noise
        return rng.choice([-1, 1]) * rng.uniform(0.1, 0.3) * (w + rng.normal(0, 0.1, SIZE * SIZE))

    wm = np.stack([reader(xw), reader(yw), rng.normal(0, 1e-6, SIZE * SIZE)], 1)
    bv = np.array([-4.0, -4.0, 0.0])
    if nan:
        bv[1] = np.nan
    mod = tf.Module()
    mod.wm = tf.Variable(wm.astype(np.float32))
    mod.bv = tf.Variable(bv.astype(np.float32))
    mod.wd = tf.Variable(rng.normal(0, 1, (K, SIZE * SIZE)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 1], tf.float32)])
    def gaussian_encoder(images):
        flat = tf.reshape(images, [-1, SIZE * SIZE])
        mean = flat @ mod.wm
        return {"mean": mean, "logvar": tf.zeros_like(mean) + mod.bv}

    sign = np.sign(wm[:, :2].T @ np.concatenate([xw[None], yw[None]]).T).diagonal()  # +1: the channel grows with x (y)
    cols = np.arange(SIZE, dtype=np.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, K], tf.float32)])
    def decoder(latent_vectors):
        # a blob whose column follows channel 0 and whose row follows channel 1, each the way the encoder reads it
        cx = SIZE / 2 + SIZE / 3 * tf.tanh(sign[0] * latent_vectors[:, 0] / 4)
        cy = SIZE / 2 + SIZE / 3 * tf.tanh(sign[1] * latent_vectors[:, 1] / 4)
        dx = (cols[None, None, :] - cx[:, None, None]) ** 2
        dy = (cols[None, :, None] - cy[:, None, None]) ** 2
        return {"images": (12.0 * tf.exp(-(dx + dy) / 8.0) - 6.0)[..., None]}  # logits

    tf.saved_model.save(mod, str(path / "model" / "tfhub"), signatures={"gaussian_encoder": gaussian_encoder, "decoder": decoder})
    np.save(path / "reads.npy", sign)  # which way each of channels 0 and 1 reads its position


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    pytest.importorskip("tensorflow")
    d = tmp_path_factory.mktemp("models")
    for n in range(4):
        write_linear_model(d / str(n), n)
    return d


def config_for(tmp_path, model_dir, **kw) -> RunConfig:
    base = dict(run_dir=str(tmp_path / "run"), n_images=N_IMAGES, image_size=32, dashboard=False,
                models={"source": "directory", "dir": str(model_dir)}, models_per_encode_task=2)
    base.update(kw)
    return RunConfig(**base)


def kept_channels(config: RunConfig) -> np.ndarray:
    """(model, channel) bool: the channels the pairs stage computed pairs for."""
    info = xr.open_zarr(config.store, group="channels", consolidated=False)["information"].values
    return np.isfinite(info) & (info >= config.info_threshold)


def test_full_sweep_end_to_end(tmp_path, model_dir, client, monkeypatch):
    config = config_for(tmp_path, model_dir)
    result = run(config, client=client)
    assert [r.name for r in result.stages] == list(RunConfig().stages)
    assert not result.failed_models

    fp = xr.open_zarr(config.store, group="fingerprint", consolidated=False)
    emb = xr.open_zarr(config.store, group="embeddings", consolidated=False)
    assert emb["mu"].dims == ("model", "channel", "image") and emb["mu"].shape == (4, K, N_IMAGES)
    assert list(emb["model"].values) == ["0", "1", "2", "3"]
    # the zoo index names models by number: 0-3 are dsprites_full beta_vae beta 1, seeds 0-3
    assert list(emb["family"].values) == ["beta_vae"] * 4 and list(emb["seed"].values) == [0, 1, 2, 3]
    enc = repspace.models.load_encoder(model_dir / "2")
    mu, logvar = enc(fp["images"].values)
    np.testing.assert_allclose(emb["mu"].values[2], mu.T, rtol=1e-6, atol=1e-6)

    units_mu, units_lv = emb["mu"].values.reshape(-1, N_IMAGES), emb["logvar"].values.reshape(-1, N_IMAGES)
    direct = repspace.compare_channels(units_mu, units_lv)
    pairs = xr.open_zarr(config.store, group="pairs", consolidated=False)
    kept = direct["information"].values >= config.info_threshold  # pairs among the informative channels only
    both = kept[:, None] & kept[None, :]
    assert kept.sum() == 8
    vi = pairs["vi"].values.reshape(4 * K, 4 * K)
    np.testing.assert_allclose(vi[both], direct["vi"].values[both], atol=1e-4)
    assert np.isnan(vi[~both]).all()
    channels = xr.open_zarr(config.store, group="channels", consolidated=False)
    factors = repspace.compare_factors(units_mu, units_lv, fp["factors"].values)
    np.testing.assert_allclose(channels["vi_factor"].values.reshape(4 * K, -1), factors["vi"].values, atol=1e-5)

    structure = xr.open_zarr(config.store, group="structure", consolidated=False)
    assert set(structure["channel"].values.tolist()) == {0, 1}  # channel 2 carries < 0.01 bits
    st = structure.sel(measure="nmi")
    found = {str(st["cluster_best_factor"].values[k]) for k in range(st.sizes["cluster"]) if st["cluster_size"].values[k] > 0}
    assert found == {"posX", "posY"}
    assert {p.name for p in result.figures} == {"structure_vi.png", "structure_nmi.png", "members_vi.png", "members_nmi.png",
                                                "fingerprint_size.png"}
    assert all(p.stat().st_size > 10_000 for p in result.figures)
    assert "xr.open_zarr" in result.summary()

    # the traversals: the posX cluster's frames move the blob right as the swept channel grows, not down
    trav = xr.open_zarr(config.store, group="traversals", consolidated=False).load()
    for measure in ("vi", "nmi"):
        st = structure.sel(measure=measure)
        for k in range(st.sizes["cluster"]):
            if st["cluster_size"].values[k] == 0:
                continue
            t = trav.sel(measure=measure, cluster=k)
            assert bool(t.decoded) and (np.diff(t.value.values) > 0).all()
            imgs = t.images.values[..., 0]  # (step, row, column)
            mass = imgs.sum(axis=(1, 2))
            cx = (imgs.sum(axis=1) * np.arange(SIZE)).sum(axis=1) / mass
            cy = (imgs.sum(axis=2) * np.arange(SIZE)).sum(axis=1) / mass
            moving, still = (cx, cy) if str(st["cluster_best_factor"].values[k]) == "posX" else (cy, cx)
            way = np.load(model_dir / str(t.model.values) / "reads.npy")[int(t.channel)]
            assert (way * np.diff(moving) > 0.05).all(), (measure, k, moving)  # every frame differs, the right way
            assert np.ptp(still) < 0.5 * np.ptp(moving)

    # a rerun finds everything done; the traversals show the same channels of the same models: kept as they are
    again = run(config.replace(stages=("encode", "channels", "pairs", "structure", "traversals")), client=client)
    assert [(r.name, r.computed) for r in again.stages] == [("encode", 0), ("channels", 0), ("pairs", 0),
                                                            ("structure", 0), ("traversals", 0)]
    assert again.stage("traversals").note.endswith("cluster traversals, unchanged")
    kept_trav = xr.open_zarr(config.store, group="traversals", consolidated=False).load()
    np.testing.assert_array_equal(kept_trav["images"].values, trav["images"].values)
    # what they show changes (here the steps of a sweep): decoded again
    from repspace.pipeline.stages import traversals

    monkeypatch.setattr(traversals, "N_STEPS", traversals.N_STEPS + 1)
    again = run(config.replace(stages=("traversals",)), client=client)
    assert again.stage("traversals").computed == int((structure["cluster_size"].values > 0).sum())
    assert xr.open_zarr(config.store, group="traversals", consolidated=False).sizes["step"] == trav.sizes["step"] + 1


def test_a_model_with_nan_output_is_named_and_the_rest_go_on(tmp_path, model_dir, client):
    import shutil

    d = tmp_path / "models"
    shutil.copytree(model_dir, d)
    write_linear_model(d / "7", 7, nan=True)
    config = config_for(tmp_path, d, stages=("fingerprint", "models", "encode", "channels", "pairs"))
    with pytest.warns(FailedModelsWarning, match=r"7: NaN or infinite posteriors in channels \[1\]"):
        result = run(config, client=client)
    assert list(result.failed_models) == ["7"]
    pairs = xr.open_zarr(config.store, group="pairs", consolidated=False)
    vi = pairs["vi"].values
    assert np.isnan(vi[4]).all() and np.isnan(vi[:, :, 4]).all()
    kept = kept_channels(config)[:4]
    assert np.isfinite(vi[:4, :, :4][kept][:, kept]).all() and kept.sum() == 8


def test_a_run_in_which_no_model_is_usable_exits_non_zero(tmp_path, model_dir, capsys):
    """32-pixel models asked for 64-pixel images: every model is left out, so the run found nothing; it says so
    and exits 1 (a job array must not record it as a success)."""
    from repspace.pipeline import FailedModelsWarning

    with pytest.warns(FailedModelsWarning, match="refused images of 64x64x1"):
        code = full_sweep.main(["--run-dir", str(tmp_path / "run"), "--models-source", "directory", "--models-dir",
                                str(model_dir), "--image-size", "64", "--n-images", "20", "--no-dashboard", "--workers",
                                "1", "--stages", "fingerprint", "models", "encode", "channels", "--error-groups", "0"])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "error: none of the 4 models could be encoded (group embeddings); the first: 0:" in captured.err


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        full_sweep.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--config", "--run-dir", "--scheduler-address", "--gpu", "--models-source", "--stages", "--n-images"):
        assert flag in text


def test_zoo_source_downloads_then_compares(tmp_path, model_dir, client):
    import io
    import zipfile

    from .test_models_download import ZooServer

    def zipped(n: int) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for f in (model_dir / str(n)).rglob("*"):
                if f.is_file():
                    zf.write(f, f"{n}/{f.relative_to(model_dir / str(n))}")
        return buf.getvalue()

    with ZooServer() as server:
        for n in range(3):
            server.files[f"{n}.zip"] = zipped(n)
        server.forbidden.add("3.zip")
        config = config_for(tmp_path, tmp_path / "zoo", stages=("fingerprint", "models", "encode", "channels", "pairs"),
                            models={"source": "zoo", "dir": str(tmp_path / "zoo"), "numbers": ("0-3",),
                                                   "base_url": server.url})
        run(config, client=client)
    emb = xr.open_zarr(config.store, group="embeddings", consolidated=False)
    assert list(emb["model"].values) == ["0", "1", "2"]  # 3 was refused (403) and reported; the rest went on
    assert list(xr.open_zarr(config.store, group="models", consolidated=False)["model"].values) == ["0", "1", "2"]
    np.testing.assert_allclose(emb["mu"].values[1], repspace.models.load_encoder(model_dir / "1")(
        xr.open_zarr(config.store, group="fingerprint", consolidated=False)["images"].values)[0].T, atol=1e-6)


def test_latents_stage_from_the_sweep(tmp_path, model_dir, client):
    config = config_for(tmp_path, model_dir, stages=("fingerprint", "models", "encode_dataset", "latents", "figures"),
                        latents={"n_dataset_images": 200, "n_samples": 400})
    result = run(config, client=client)
    rep = result.stage("latents")
    assert rep.computed == 4 + 4 + 6  # I(U;X) and I(U,U';X) per model, I(U,V;X) per pair of the one group
    lat = xr.open_zarr(config.store, group="latents", consolidated=False)
    assert lat["nmi"].dims == ("model_a", "model_b")
    finite = lat["nmi"].values[np.isfinite(lat["nmi"].values)]
    assert finite.size == 12 and (finite > 0).all()
    assert [p.name for p in result.figures] == ["latents.png"]
    assert 'group="latents"' in result.summary()


@pytest.mark.parametrize("first", ["six_channels", "corrupt"])
def test_the_models_agree_on_the_channels_and_a_bad_first_model_is_left_out(tmp_path, model_dir, client, first):
    import shutil

    from .test_models_encoders import linear_weights, write_tf2_saved_model

    d = tmp_path / "models"
    for n in range(4):  # the four good models become 1-4; model 0, first in order, is the odd one
        shutil.copytree(model_dir / str(n), d / str(n + 1))
    if first == "six_channels":
        write_tf2_saved_model(d / "0" / "model" / "tfhub", linear_weights(0, h=SIZE, w=SIZE, c=1, k=6))
        why = "0: gives 6 channels; the run's models give 3 (4 of 5 models)"
    else:
        (d / "0" / "model" / "tfhub").mkdir(parents=True)
        (d / "0" / "model" / "tfhub" / "saved_model.pb").write_bytes(b"not a model")
        why = "0: cannot be read"
    config = config_for(tmp_path, d, stages=("fingerprint", "models", "encode", "channels", "pairs"))
    with pytest.warns(FailedModelsWarning, match=re.escape(why)):
        result = run(config, client=client)
    assert list(result.failed_models) == ["0"]
    emb = xr.open_zarr(config.store, group="embeddings", consolidated=False)
    assert emb["mu"].shape == (5, K, N_IMAGES) and list(emb["model"].values) == ["0", "1", "2", "3", "4"]
    vi = xr.open_zarr(config.store, group="pairs", consolidated=False)["vi"].values
    kept = kept_channels(config)[1:]
    assert np.isnan(vi[0]).all() and np.isfinite(vi[1:, :, 1:][kept][:, kept]).all() and kept.sum() == 8
