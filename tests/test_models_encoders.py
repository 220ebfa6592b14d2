"""The encoder loader on a TF1 Hub-format module, a TF2 SavedModel and a Keras model,
each compared with a numpy forward pass of the same weights."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from repspace.models.zoo import ModelInfoWarning, format_train_gin, zoo_model_info

pytestmark = pytest.mark.tf

H, W, C, K = 8, 8, 1, 3


def linear_weights(seed: int = 0, h: int = H, w: int = W, c: int = C, k: int = K) -> dict[str, np.ndarray]:
    """Weights of a linear Gaussian encoder and decoder: the numpy reference model."""
    rng = np.random.default_rng(seed)
    d = h * w * c
    return {
        "Wm": rng.normal(0, 0.1, (d, k)).astype(np.float32),
        "bm": rng.normal(0, 0.1, k).astype(np.float32),
        "Wv": rng.normal(0, 0.1, (d, k)).astype(np.float32),
        "bv": rng.normal(-1, 0.1, k).astype(np.float32),
        "Wd": rng.normal(0, 0.5, (k, d)).astype(np.float32),
        "bd": rng.normal(0, 0.1, d).astype(np.float32),
        "shape": np.array([h, w, c]),
    }


def numpy_encode(p, x):
    flat = np.asarray(x, np.float64).reshape(len(x), -1)
    return flat @ p["Wm"] + p["bm"], flat @ p["Wv"] + p["bv"]


def numpy_decode_logits(p, z):
    return (np.asarray(z, np.float64) @ p["Wd"] + p["bd"]).reshape(len(z), *p["shape"])


def write_tf1_hub_module(path, p) -> None:
    """A TF1 Hub-format module as the zoo ships them: tf.compat.v1 SavedModel Builder,
    MetaGraphs tagged [] and ["train"], signatures gaussian_encoder / decoder /
    reconstructions, and a tfhub_module.pb."""
    import tensorflow as tf

    v1 = tf.compat.v1
    h, w, c = (int(s) for s in p["shape"])
    k = p["Wm"].shape[1]
    g = tf.Graph()
    with g.as_default():
        images = v1.placeholder(tf.float32, [None, h, w, c], name="images")
        latents = v1.placeholder(tf.float32, [None, k], name="latent_vectors")
        var = {name: v1.get_variable(name, initializer=p[name]) for name in ("Wm", "bm", "Wv", "bv", "Wd", "bd")}
        flat = tf.reshape(images, [-1, h * w * c])
        mean = tf.add(tf.matmul(flat, var["Wm"]), var["bm"], name="mean")
        logvar = tf.add(tf.matmul(flat, var["Wv"]), var["bv"], name="logvar")
        logits = tf.reshape(tf.matmul(latents, var["Wd"]) + var["bd"], [-1, h, w, c])
        recon = tf.reshape(tf.matmul(mean, var["Wd"]) + var["bd"], [-1, h, w, c])
        info = v1.saved_model.utils.build_tensor_info
        sig = v1.saved_model.signature_def_utils.build_signature_def
        sigs = {
            "gaussian_encoder": sig({"images": info(images)}, {"mean": info(mean), "logvar": info(logvar)}),
            "decoder": sig({"latent_vectors": info(latents)}, {"images": info(logits)}),
            "reconstructions": sig({"images": info(images)}, {"images": info(recon)}),
        }
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            builder = v1.saved_model.Builder(str(path))
            builder.add_meta_graph_and_variables(sess, tags=[], signature_def_map=sigs)
            builder.add_meta_graph(tags=["train"], signature_def_map=sigs)
            builder.save()
    with open(os.path.join(path, "tfhub_module.pb"), "wb") as f:
        f.write(bytes([0x08, 0x03]))


def write_tf2_saved_model(path, p, *, with_decoder: bool = True) -> None:
    import tensorflow as tf

    h, w, c = (int(s) for s in p["shape"])
    k = p["Wm"].shape[1]
    mod = tf.Module()
    for name in ("Wm", "bm", "Wv", "bv", "Wd", "bd"):
        setattr(mod, name, tf.Variable(p[name]))

    @tf.function(input_signature=[tf.TensorSpec([None, h, w, c], tf.float32)])
    def gaussian_encoder(images):
        flat = tf.reshape(images, [-1, h * w * c])
        return {"mean": flat @ mod.Wm + mod.bm, "logvar": flat @ mod.Wv + mod.bv}

    @tf.function(input_signature=[tf.TensorSpec([None, k], tf.float32)])
    def decoder(latent_vectors):
        return {"images": tf.reshape(latent_vectors @ mod.Wd + mod.bd, [-1, h, w, c])}

    sigs = {"gaussian_encoder": gaussian_encoder}
    if with_decoder:
        sigs["decoder"] = decoder
    tf.saved_model.save(mod, str(path), signatures=sigs)


def write_keras_model(path, p, *, as_dict: bool = False) -> None:
    import keras

    h, w, c = (int(s) for s in p["shape"])
    k = p["Wm"].shape[1]
    x = keras.Input((h, w, c))
    flat = keras.layers.Flatten()(x)
    dm, dv = keras.layers.Dense(k, name="mean"), keras.layers.Dense(k, name="logvar")
    outs = [dm(flat), dv(flat)]
    model = keras.Model(x, {"mean": outs[0], "logvar": outs[1]} if as_dict else outs)
    with warnings.catch_warnings():  # keras' own numpy 2 copy-keyword notice
        warnings.simplefilter("ignore", DeprecationWarning)
        dm.set_weights([p["Wm"], p["bm"]])
        dv.set_weights([p["Wv"], p["bv"]])
        model.save(str(path))


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def params():
    return linear_weights(0)


@pytest.fixture(scope="module")
def hub_dir(tf, tmp_path_factory, params):
    """A zoo-style model directory 7750/model/tfhub holding a TF1 Hub-format module."""
    root = tmp_path_factory.mktemp("zoo") / "7750"
    write_tf1_hub_module(root / "model" / "tfhub", params)
    return root


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).random((37, H, W)).astype(np.float64)


def test_tf1_hub_module(hub_dir, params, images):
    from repspace.models import load_encoder

    enc = load_encoder(hub_dir, batch_size=10)
    assert enc.kind == "hub"
    assert enc.input_shape == (H, W, C) and enc.n_latents == K
    assert enc.info == zoo_model_info(7750)
    assert set(enc.signatures) == {"gaussian_encoder", "decoder", "reconstructions"}
    mean, logvar = enc(images)  # 3-D float64: gets its channel axis and float32
    assert mean.dtype == logvar.dtype == np.float32 and mean.shape == (37, K)
    ref_m, ref_v = numpy_encode(params, images)
    np.testing.assert_allclose(mean, ref_m, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logvar, ref_v, rtol=1e-5, atol=1e-5)
    # batching does not change the answer; 4-D input is the same as 3-D
    m2, _ = enc(images[..., None], batch_size=100)
    np.testing.assert_array_equal(mean, m2)
    z = np.random.default_rng(2).normal(size=(5, K))
    out = enc.decode(z)
    assert out.shape == (5, H, W, C) and out.dtype == np.float32
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-numpy_decode_logits(params, z))), atol=1e-5)
    assert out.min() >= 0 and out.max() <= 1
    # the module directory itself loads too
    enc2 = load_encoder(hub_dir / "model" / "tfhub")
    np.testing.assert_array_equal(enc2(images)[0], mean)
    assert enc2.info == zoo_model_info(7750)


def test_refusals_name_the_model(hub_dir, images):
    from repspace.models import load_encoder

    enc = load_encoder(hub_dir)
    with pytest.raises(ValueError, match=r"7750.*takes images of 8x8x1.*refused images of 16x16x1"):
        enc(np.zeros((2, 16, 16), np.float32))
    with pytest.raises(ValueError, match=r"7750.*refused images of 8x8x3"):
        enc(np.zeros((2, H, W, 3), np.float32))
    with pytest.raises(ValueError, match=r"7750.*refused images of shape \(8, 8\)"):
        enc(np.zeros((H, W), np.float32))
    with pytest.raises(ValueError, match="dtype"):
        enc(np.array([["a"]]))
    with pytest.raises(ValueError, match=r"decodes \(n, 3\) latents"):
        enc.decode(np.zeros((2, 4)))
    m, v = enc(np.zeros((0, H, W)))
    assert m.shape == v.shape == (0, K)
    # uint8 and bool batches are cast, not refused
    np.testing.assert_allclose(enc(images > 0.5)[0], enc((images > 0.5).astype(np.uint8))[0])


def test_train_gin_wins(tf, tmp_path, params):
    from repspace.models import load_encoder

    d = tmp_path / "1800"
    write_tf1_hub_module(d / "model" / "tfhub", params)
    gin = d / "model" / "results" / "gin"
    gin.mkdir(parents=True)
    (gin / "train.gin").write_text(format_train_gin(zoo_model_info(3600)))
    with pytest.warns(ModelInfoWarning):
        enc = load_encoder(d)
    assert enc.info.dataset == "noisy_dsprites"


def test_tf2_saved_model(tf, tmp_path, params, images):
    from repspace.models import load_encoder

    write_tf2_saved_model(tmp_path / "sm", params)
    enc = load_encoder(tmp_path / "sm")
    assert enc.kind == "saved_model" and enc.info is None
    assert enc.input_shape == (H, W, C) and enc.n_latents == K
    ref_m, ref_v = numpy_encode(params, images)
    mean, logvar = enc(images)
    np.testing.assert_allclose(mean, ref_m, atol=1e-5)
    np.testing.assert_allclose(logvar, ref_v, atol=1e-5)
    z = np.random.default_rng(3).normal(size=(4, K))
    np.testing.assert_allclose(enc.decode(z), 1 / (1 + np.exp(-numpy_decode_logits(params, z))), atol=1e-5)

    write_tf2_saved_model(tmp_path / "nodec", params, with_decoder=False)
    enc = load_encoder(tmp_path / "nodec")
    assert not enc.has_decoder
    with pytest.raises(ValueError, match=r"nodec has no 'decoder' signature"):
        enc.decode(np.zeros((1, K)))


@pytest.mark.parametrize("as_dict", [False, True])
def test_keras_model(tf, tmp_path, params, images, as_dict):
    from repspace.models import load_encoder

    path = tmp_path / "enc.keras"
    write_keras_model(path, params, as_dict=as_dict)
    enc = load_encoder(path, batch_size=16)
    assert enc.kind == "keras" and enc.input_shape == (H, W, C) and enc.n_latents == K
    ref_m, ref_v = numpy_encode(params, images)
    mean, logvar = enc(images)
    assert mean.dtype == np.float32
    np.testing.assert_allclose(mean, ref_m, atol=1e-5)
    np.testing.assert_allclose(logvar, ref_v, atol=1e-5)
    with pytest.raises(ValueError, match="enc.keras takes images of 8x8x1"):
        enc(np.zeros((1, 4, 4, 1)))
    with pytest.raises(ValueError, match="no 'decoder'"):
        enc.decode(np.zeros((1, K)))


def test_not_a_model(tf, tmp_path):
    from repspace.models import load_encoder

    with pytest.raises(FileNotFoundError):
        load_encoder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither a model directory"):
        load_encoder(tmp_path / "empty")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ValueError, match="not a SavedModel"):
        load_encoder(tmp_path / "x.txt")


def test_saved_model_without_gaussian_encoder(tf, tmp_path):
    from repspace.models import load_encoder

    mod = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def f(x):
        return {"y": x}

    tf.saved_model.save(mod, str(tmp_path / "other"), signatures={"serving_default": f})
    with pytest.raises(ValueError, match="no 'gaussian_encoder' signature.*serving_default"):
        load_encoder(tmp_path / "other")
