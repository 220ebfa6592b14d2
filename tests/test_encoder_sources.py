"""Encoders of any framework through the encode stage: four ONNX models (an MLP and a conv net, NCHW and
NHWC, three scale parametrisations and a fixed-variance InfoGAN-style encoder, coordinates from the folder
layout and sidecars) on an in-process LocalCluster, and the same posteriors as posterior files.

Tolerances: onnxruntime (float32) and the numpy reference (float64) agree to 1e-6 on the posteriors (see
test_models_onnx.py). Pairs are compared exactly where both sides hold the same float32 posteriors.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from repspace.models import load_encoder, write_posterior_file
from repspace.pipeline import FailedModelsWarning, RunConfig, run
from repspace.store import write_posteriors

from .onnx_models import build_decoder, build_encoder, numpy_encode, weights

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.distributed

SIZE, K, N = 32, 4, 64
STAGES = ("fingerprint", "models", "encode", "channels", "pairs")
# (relative path, layout, scale, conv, outputs, sidecar)
SPECS = [
    ("family=beta_vae/beta=4/seed=0.onnx", "NCHW", "logvar", False, "two", None),
    ("family=beta_vae/beta=4/seed=1.onnx", "NHWC", "sigma", True, "two", '[encoder]\nscale = "sigma"\n'),
    ("vae_c/encoder.onnx", "NCHW", "softplus", False, "one",
     '[model]\nfamily = "beta_tc_vae"\nhyperparameter = "beta"\nhyperparameter_value = 6\nseed = 2\n\n'
     '[encoder]\nscale = "softplus"\n'),
    ("infogan.onnx", "NHWC", None, True, "mean",
     '[model]\nfamily = "infogan"\nhyperparameter = "lambda"\nhyperparameter_value = 1\nseed = 0\n\n'
     '[encoder]\nfixed_logvar = [-2.0, -2.0, -3.0, -3.0]\n'),
]
NAMES = ["family=beta_vae/beta=4/seed=0", "family=beta_vae/beta=4/seed=1", "infogan", "vae_c"]  # the run's order
FIXED = [-2.0, -2.0, -3.0, -3.0]


def write_onnx_models(folder):
    """The four models of SPECS in ``folder``; {name: reference function images -> (mean, logvar)}."""
    refs = {}
    for seed, (rel, layout, scale, conv, outputs, sidecar) in enumerate(SPECS):
        p = weights(seed, SIZE, SIZE, 1, K, conv=conv)
        path = build_encoder(folder / rel, p, SIZE, SIZE, 1, layout=layout, scale=scale or "logvar", conv=conv,
                             outputs=outputs)
        if sidecar:
            (path.parent / "model.toml" if path.name == "encoder.onnx" else path.with_suffix(".toml")).write_text(sidecar)
        name = rel.removesuffix(".onnx").removesuffix("/encoder")

        def ref(x, p=p, layout=layout, scale=scale, conv=conv):
            m, lv = numpy_encode(p, x, layout=layout, scale=scale or "logvar", conv=conv)
            return m, (np.broadcast_to(FIXED, m.shape) if scale is None else lv)

        refs[name] = ref
    rng = np.random.default_rng(9)
    build_decoder(folder / "vae_c" / "decoder.onnx", rng.normal(0, 0.5, (K, SIZE * SIZE)),
                  np.zeros(SIZE * SIZE), SIZE, SIZE, 1)
    return refs


def config(tmp_path, name, model_dir, source="directory", **kw):
    return RunConfig(run_dir=str(tmp_path / name), n_images=N, image_size=SIZE, dashboard=False, pair_channels="all",
                     models={"source": source, "dir": str(model_dir)}, models_per_encode_task=2, stages=STAGES, **kw)


@pytest.fixture(scope="module")
def onnx_run(tmp_path_factory, threads_client):
    tmp = tmp_path_factory.mktemp("onnx")
    refs = write_onnx_models(tmp / "models")
    cfg = config(tmp, "run", tmp / "models")
    result = run(cfg, client=threads_client)
    return cfg, refs, result


def test_onnx_sweep_end_to_end_resumes_and_equals_write_posteriors(onnx_run, tmp_path, threads_client):
    cfg, refs, result = onnx_run
    assert not result.failed_models
    emb = xr.open_zarr(cfg.store, group="embeddings", consolidated=False)
    images = xr.open_zarr(cfg.store, group="fingerprint", consolidated=False)["images"].values
    assert list(emb["model"].values) == NAMES
    assert list(emb["family"].values) == ["beta_vae", "beta_vae", "infogan", "beta_tc_vae"]
    assert list(emb["hyperparameter"].values) == ["beta", "beta", "lambda", "beta"]
    assert emb["hyperparameter_value"].values.tolist() == [4.0, 4.0, 1.0, 6.0]
    assert emb["seed"].values.tolist() == [0, 1, 0, 2] and set(emb["source"].values) == {"onnx"}
    assert json.loads(emb.attrs["fixed_logvar"]) == {"infogan": FIXED}
    ref_mu = np.stack([refs[n](images)[0].T for n in NAMES]).astype(np.float32)
    ref_lv = np.stack([refs[n](images)[1].T for n in NAMES]).astype(np.float32)
    np.testing.assert_allclose(emb["mu"].values, ref_mu, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(emb["logvar"].values, ref_lv, rtol=1e-6, atol=1e-6)

    again = run(cfg.replace(stages=("encode", "channels", "pairs")), client=threads_client)
    assert [(r.name, r.computed) for r in again.stages] == [("encode", 0), ("channels", 0), ("pairs", 0)]

    # the same posteriors, computed here outside the cluster and put in with write_posteriors: the same pairs
    other = config(tmp_path, "written", cfg.models.dir)
    run(other.replace(stages=("fingerprint",)), client=threads_client)
    paths = {str(m): str(p) for m, p in zip(emb["model"].values, emb["path"].values)}
    direct = [load_encoder(paths[n])(images) for n in NAMES]
    write_posteriors(other.store, np.stack([m.T for m, _ in direct]), np.stack([lv.T for _, lv in direct]),
                     [{"name": n} for n in NAMES])
    run(other.replace(stages=("channels", "pairs")), client=threads_client)
    a = xr.open_zarr(cfg.store, group="pairs", consolidated=False)
    b = xr.open_zarr(other.store, group="pairs", consolidated=False)
    for measure in ("nmi", "vi"):
        assert np.isfinite(a[measure].values).all()
        np.testing.assert_array_equal(a[measure].values, b[measure].values)


def test_traversals_of_an_onnx_model_with_and_without_a_decoder(onnx_run):
    from repspace.pipeline.stages import traversals

    cfg, _, _ = onnx_run
    options = {"fixed_logvar": None}
    with_decoder = traversals.task(str(cfg.store), NAMES.index("vae_c"), 0, 5, options)
    assert with_decoder["why"] == "" and with_decoder["images"].shape == (5, SIZE, SIZE, 1)
    without = traversals.task(str(cfg.store), 0, 0, 5, options)
    assert without["images"] is None and "seed=0.onnx has no decoder (give one as seed=0_decoder.onnx" in without["why"]


def test_posterior_files_equal_the_models_that_wrote_them(onnx_run, tmp_path, threads_client):
    cfg, _, _ = onnx_run
    images = xr.open_zarr(cfg.store, group="fingerprint", consolidated=False)["images"].values
    folder = tmp_path / "posteriors"
    for name, suffix in zip(NAMES, [".npz", ".npz", ".zarr", ".npz"]):
        enc = load_encoder(cfg.models.dir + "/" + name + (".onnx" if name != "vae_c" else ""))
        mean, logvar = enc(images)
        write_posterior_file((folder / name).with_name((folder / name).name + suffix), mean, logvar, store=cfg.store)
        sidecar = cfg.models.dir + "/" + (name + ".toml" if name != "vae_c" else "vae_c/model.toml")
        if name in ("infogan", "vae_c"):  # their coordinates, as their sidecars give them
            (folder / f"{name}.toml").write_text(open(sidecar).read().split("[encoder]")[0])
    files = config(tmp_path, "files", folder, source="posteriors")
    result = run(files, client=threads_client)
    assert not result.failed_models
    a = xr.open_zarr(cfg.store, group="embeddings", consolidated=False)
    b = xr.open_zarr(files.store, group="embeddings", consolidated=False)
    assert list(b["model"].values) == NAMES and set(b["source"].values) == {"posteriors"}
    for coord in ("family", "hyperparameter", "hyperparameter_value", "seed"):
        assert b[coord].values.tolist() == a[coord].values.tolist()
    np.testing.assert_array_equal(a["mu"].values, b["mu"].values)
    np.testing.assert_array_equal(a["logvar"].values, b["logvar"].values)
    pa = xr.open_zarr(cfg.store, group="pairs", consolidated=False)
    pb = xr.open_zarr(files.store, group="pairs", consolidated=False)
    np.testing.assert_array_equal(pa["vi"].values, pb["vi"].values)
    np.testing.assert_array_equal(pa["nmi"].values, pb["nmi"].values)


def test_bad_posterior_files_are_named_and_left_out(onnx_run, tmp_path, threads_client):
    cfg, _, _ = onnx_run
    emb = xr.open_zarr(cfg.store, group="embeddings", consolidated=False)
    mu, lv = emb["mu"].values[0].T, emb["logvar"].values[0].T  # (image, channel)
    folder = tmp_path / "files"
    for name in ("good", "good2"):
        write_posterior_file(folder / f"{name}.npz", mu, lv, store=cfg.store)
    elsewhere = config(tmp_path, "elsewhere", cfg.models.dir, seed=1)
    run(elsewhere.replace(stages=("fingerprint",)), client=threads_client)
    write_posterior_file(folder / "other.npz", mu, lv, store=elsewhere.store)
    nan = mu.copy()
    nan[3, 2] = np.nan
    write_posterior_file(folder / "nan.zarr", nan, lv, store=cfg.store)
    index = xr.open_zarr(cfg.store, group="fingerprint", consolidated=False)["index"].values
    write_posterior_file(folder / "short.npz", mu[:60], lv[:60], dataset_index=index[:60],
                         images={"fingerprint": "a subset"}, images_id=emb.attrs["images_id"])
    np.savez(folder / "shape.npz", mean=mu, logvar=lv[:, :3], dataset_index=index, images_id=np.str_("x"))
    files = config(tmp_path, "bad", folder, source="posteriors")
    with pytest.warns(FailedModelsWarning) as caught:
        result = run(files, client=threads_client)
    failed = result.failed_models
    assert sorted(failed) == ["nan", "other", "shape", "short"]
    assert "other.npz was computed on images" in failed["other"] and "this run's are" in failed["other"]
    assert '"seed": 1' in failed["other"] and '"seed": 0' in failed["other"]  # both fingerprint sets named
    assert "nan.zarr: NaN or infinite values in channels [2] (1 values)" in failed["nan"]
    assert "short.npz lacks 4 of the 64 images" in failed["short"]
    assert "shape.npz: mean has shape (64, 4) and logvar (64, 3)" in failed["shape"]
    assert "models left out of the run" in str(caught[0].message)
    out = xr.open_zarr(files.store, group="embeddings", consolidated=False)
    names = list(out["model"].values)
    for bad in ("nan", "other", "short"):  # nothing of a refused file is written
        assert np.isnan(out["mu"].values[names.index(bad)]).all()
        assert (out["encoded"].values[names.index(bad)] == -1).all()
    np.testing.assert_array_equal(out["mu"].values[names.index("good")], mu.T)


def test_a_model_for_other_images_is_named_with_the_shape_it_wants(tmp_path, threads_client):
    folder = tmp_path / "models"
    build_encoder(folder / "fits.onnx", weights(0, SIZE, SIZE, 1, K, conv=False), SIZE, SIZE, 1)
    build_encoder(folder / "small.onnx", weights(1, 16, 16, 1, K, conv=False), 16, 16, 1)
    cfg = config(tmp_path, "run", folder).replace(stages=("fingerprint", "models", "encode"))
    with pytest.warns(FailedModelsWarning):
        result = run(cfg, client=threads_client)
    assert result.failed_models == {
        "small": "takes images of 16x16x1 (H x W x C), refused images of 32x32x1 (the fingerprint's)"}


def write_tf_twin(path, p) -> None:
    """The NHWC MLP of ``p`` as a TF2 SavedModel with a gaussian_encoder signature: the same function."""
    import tensorflow as tf

    mod = tf.Module()
    for name in ("W1", "b1", "Wm", "bm", "Ws", "bs"):
        setattr(mod, name, tf.Variable(p[name]))

    @tf.function(input_signature=[tf.TensorSpec([None, SIZE, SIZE, 1], tf.float32)])
    def gaussian_encoder(images):
        h = tf.nn.relu(tf.reshape(images, [-1, SIZE * SIZE]) @ mod.W1 + mod.b1)
        return {"mean": h @ mod.Wm + mod.bm, "logvar": h @ mod.Ws + mod.bs}

    tf.saved_model.save(mod, str(path), signatures={"gaussian_encoder": gaussian_encoder})


@pytest.mark.tf
def test_an_onnx_and_a_tensorflow_encoder_of_one_function_give_the_same_pairs(tmp_path, threads_client):
    pytest.importorskip("tensorflow")
    for n in range(2):
        p = weights(10 + n, SIZE, SIZE, 1, K, conv=False)
        p["Wm"] *= 4
        p["bs"][:] = -6.0  # narrow posteriors: every channel informative, so NMI is well conditioned
        build_encoder(tmp_path / "onnx" / f"m{n}.onnx", p, SIZE, SIZE, 1, layout="NHWC")
        write_tf_twin(tmp_path / "tf" / f"m{n}", p)
    stores = []
    for name in ("onnx", "tf"):
        cfg = config(tmp_path, f"run_{name}", tmp_path / name)
        run(cfg, client=threads_client)
        stores.append(cfg.store)
    info = xr.open_zarr(stores[0], group="channels", consolidated=False)["information"].values
    assert info.min() > 0.5
    ea, eb = (xr.open_zarr(s, group="embeddings", consolidated=False) for s in stores)
    np.testing.assert_allclose(ea["mu"].values, eb["mu"].values, rtol=1e-6, atol=1e-6)
    # onnxruntime and TensorFlow sum in other orders: float32 rounding, measured at 1e-7 (NMI) and 7e-7 bits (VI)
    a, b = (xr.open_zarr(s, group="pairs", consolidated=False) for s in stores)
    for measure in ("nmi", "vi"):
        assert np.isfinite(a[measure].values).all()
        np.testing.assert_allclose(a[measure].values, b[measure].values, atol=1e-5)


def test_posterior_files_over_a_dataset_feed_the_monte_carlo_encode(tmp_path, threads_client):
    """Files over all 1,797 digits images serve the seeded subset that encode_dataset draws; a file over
    another dataset is refused, naming both."""
    from repspace.data import load_dataset

    everything = load_dataset("digits").images(np.arange(1797))
    for n in range(2):
        path = build_encoder(tmp_path / "onnx" / f"m{n}.onnx", weights(20 + n, 8, 8, 1, K, conv=False), 8, 8, 1)
        mean, logvar = load_encoder(path)(everything)
        order = np.random.default_rng(n).permutation(1797)  # any order of rows
        write_posterior_file(tmp_path / "files" / f"m{n}.npz", mean[order], logvar[order], dataset_index=order,
                             images={"dataset": "digits", "image_size": 8})
    write_posterior_file(tmp_path / "files" / "other.npz", mean, logvar, dataset_index=np.arange(1797),
                         images={"dataset": "mnist", "image_size": 8})
    stores = []
    for name, source in (("onnx", "directory"), ("files", "posteriors")):
        cfg = RunConfig(run_dir=str(tmp_path / f"run_{name}"), dataset="digits", image_size=8, dashboard=False,
                        models={"source": source, "dir": str(tmp_path / name)}, stages=("models", "encode_dataset"),
                        latents={"n_dataset_images": 150, "images_per_encode_task": 64})
        if source == "posteriors":
            with pytest.warns(FailedModelsWarning):
                result = run(cfg, client=threads_client)
            assert list(result.failed_models) == ["other"]
            assert "other.npz was computed on images" in result.failed_models["other"]
            assert '"dataset": "mnist"' in result.failed_models["other"]
            assert '"dataset": "digits"' in result.failed_models["other"]
        else:
            run(cfg, client=threads_client)
        stores.append(cfg.store)
    a, b = (xr.open_zarr(s, group="dataset_embeddings", consolidated=False) for s in stores)
    np.testing.assert_array_equal(a["dataset_index"].values, b["dataset_index"].values)
    for var in ("mu", "logvar"):  # onnxruntime on 1,797 images at once or 64 at a time: float32 rounding at most
        np.testing.assert_allclose(a[var].values, b[var].values[:2], rtol=1e-6, atol=1e-6)
