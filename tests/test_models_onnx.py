"""ONNX encoders through ``load_encoder``: an MLP and a conv net, NCHW and NHWC, every scale
parametrisation, output form and value range, each against a numpy forward pass of its weights.

Tolerance: the model runs in float32 (onnxruntime) and the reference in float64; sums of at most
a few hundred float32 products of values of order 1 agree to about 1e-7, so 1e-6 (absolute and
relative) is the bound the loader must meet.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from repspace.models import EncoderOptions, load_encoder

from .onnx_models import build_decoder, build_encoder, numpy_encode, weights

pytest.importorskip("onnxruntime")

H, W, K = 8, 8, 3
TOL = dict(rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(5).random((23, H, W, 1)).astype(np.float32)


@pytest.mark.parametrize("conv", [False, True], ids=["mlp", "conv"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("scale", ["logvar", "log_sigma", "sigma", "softplus"])
def test_posteriors_equal_a_numpy_forward_pass(tmp_path, images, conv, layout, scale):
    p = weights(1, H, W, 1, K, conv=conv)
    path = build_encoder(tmp_path / "enc.onnx", p, H, W, 1, layout=layout, scale=scale, conv=conv)
    enc = load_encoder(path, batch_size=10, options={"scale": scale})  # layout: found from the input's shape
    assert enc.kind == "onnx" and enc.input_shape == (H, W, 1) and enc.n_latents == K
    mean, logvar = enc(images)
    assert mean.dtype == logvar.dtype == np.float32 and mean.shape == (23, K)
    ref_m, ref_lv = numpy_encode(p, images, layout=layout, scale=scale, conv=conv)
    np.testing.assert_allclose(mean, ref_m, **TOL)
    np.testing.assert_allclose(logvar, ref_lv, **TOL)
    assert enc.fixed_logvar is None and not enc.has_decoder


@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0), (0.0, 255.0)])
def test_value_range_and_three_colours(tmp_path, value_range):
    rgb = np.random.default_rng(6).random((9, H, W, 3)).astype(np.float32)
    p = weights(2, H, W, 3, K, conv=True)
    path = build_encoder(tmp_path / "rgb.onnx", p, H, W, 3, layout="NHWC", conv=True)
    enc = load_encoder(path, options=EncoderOptions(value_range=value_range))
    assert enc.input_shape == (H, W, 3)
    ref_m, ref_lv = numpy_encode(p, rgb, value_range=value_range, conv=True)
    mean, logvar = enc(rgb)
    scale = max(1.0, np.abs(ref_m).max())  # [0, 255] inputs make values of order 100: relative 1e-6
    np.testing.assert_allclose(mean, ref_m, rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(logvar, ref_lv, rtol=1e-6, atol=1e-6 * scale)


def test_one_output_holding_both_halves_named_outputs_and_fixed_batch(tmp_path, images):
    p = weights(3, H, W, 1, K, conv=False)
    ref_m, ref_lv = numpy_encode(p, images)
    one = load_encoder(build_encoder(tmp_path / "one.onnx", p, H, W, 1, outputs="one"))
    np.testing.assert_allclose(one(images)[0], ref_m, **TOL)
    np.testing.assert_allclose(one(images)[1], ref_lv, **TOL)
    # outputs in another order, found by the names given
    swapped = build_encoder(tmp_path / "swapped.onnx", p, H, W, 1, names=("lv", "m"))
    enc = load_encoder(swapped, options={"mean_output": "lv", "scale_output": "m"})
    np.testing.assert_allclose(enc(images)[0], ref_m, **TOL)
    with pytest.raises(ValueError, match=r"swapped.onnx has no output 'mean' \(its outputs: lv, m\)"):
        load_encoder(swapped, options={"mean_output": "mean"})
    # an export without a dynamic batch axis (torch.onnx.export's default) takes batches of its size, padded
    fixed = load_encoder(build_encoder(tmp_path / "fixed.onnx", p, H, W, 1, batch=4))
    np.testing.assert_allclose(fixed(images)[0], ref_m, **TOL)


def test_fixed_variance_encoder(tmp_path, images):
    p = weights(4, H, W, 1, K, conv=False)
    path = build_encoder(tmp_path / "q.onnx", p, H, W, 1, outputs="mean", names=("codes",))
    enc = load_encoder(path, options={"fixed_logvar": [-2.0, -3.0, -4.0]})
    mean, logvar = enc(images)
    np.testing.assert_allclose(mean, numpy_encode(p, images)[0], **TOL)
    np.testing.assert_array_equal(logvar, np.broadcast_to(np.float32([-2, -3, -4]), (23, K)))
    np.testing.assert_array_equal(enc.fixed_logvar, [-2.0, -3.0, -4.0])
    assert (load_encoder(path, options={"fixed_logvar": -1.0})(images)[1] == -1.0).all()
    with pytest.raises(ValueError, match=r"q.onnx has 3 channels; fixed_logvar gives 2 values"):
        load_encoder(path, options={"fixed_logvar": [0.0, 1.0]})
    with pytest.raises(ValueError, match=r"one output 'codes' has 3 values per image.*fixed_logvar"):
        load_encoder(path)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_decoder_beside_the_encoder(tmp_path, layout):
    p = weights(5, H, W, 1, K, conv=False)
    folder = tmp_path / "vae"
    build_encoder(folder / "encoder.onnx", p, H, W, 1, layout=layout)
    rng = np.random.default_rng(7)
    wd, bd = rng.normal(0, 0.5, (K, H * W)), rng.normal(0, 0.1, H * W)
    build_decoder(folder / "decoder.onnx", wd, bd, H, W, 1, layout=layout)
    enc = load_encoder(folder)
    assert enc.has_decoder
    z = rng.normal(size=(5, K)).astype(np.float32)
    ref = 1 / (1 + np.exp(-(z.astype(np.float64) @ wd + bd))).reshape(5, H, W, 1)
    np.testing.assert_allclose(enc.decode(z), ref, atol=1e-6)  # float32 logits through a sigmoid
    # a decoder that gives images in the model's value range
    (folder / "model.toml").write_text('[encoder]\ndecoder_output = "image"\nvalue_range = [-1, 1]\n')
    out = load_encoder(folder).decode(z)
    np.testing.assert_allclose(out, np.clip(((z @ wd + bd).reshape(5, H, W, 1) + 1) / 2, 0, 1), atol=1e-6)


def test_refusals_name_the_model_and_what_to_set(tmp_path, images):
    p = weights(6, H, W, 1, K, conv=False)
    enc = load_encoder(build_encoder(tmp_path / "a.onnx", p, H, W, 1))
    with pytest.raises(ValueError, match=r"a.onnx has no decoder \(give one as a_decoder.onnx beside it"):
        enc.decode(np.zeros((1, K)))
    with pytest.raises(ValueError, match=r"a.onnx takes images of 8x8x1.*refused images of 16x16x1"):
        enc(np.zeros((2, 16, 16, 1)))
    p2 = weights(6, 2, 2, 2, K, conv=False)  # 2 channels of 2x2: the layout cannot be told
    with pytest.raises(ValueError, match=r"cannot tell the layout of input 'x'.*set layout"):
        load_encoder(build_encoder(tmp_path / "b.onnx", p2, 2, 2, 2))
    assert load_encoder(tmp_path / "b.onnx", options={"layout": "NHWC"}).input_shape == (2, 2, 2)
    (tmp_path / "c.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match=r"c.onnx cannot be read as an ONNX model"):
        load_encoder(tmp_path / "c.onnx")
    with pytest.raises(ValueError, match=r"scale must be one of"):
        EncoderOptions(scale="variance")
    (tmp_path / "a.toml").write_text('[encoder]\nscael = "sigma"\n')
    with pytest.raises(ValueError, match=r"model .*a.onnx: unknown encoder options \['scael'\]"):
        load_encoder(tmp_path / "a.onnx")


def test_sidecar_options_and_coordinates(tmp_path, images):
    p = weights(7, H, W, 1, K, conv=False)
    path = build_encoder(tmp_path / "m.onnx", p, H, W, 1, scale="sigma")
    (tmp_path / "m.toml").write_text('[model]\nfamily = "infogan"\nhyperparameter = "lambda"\n'
                                     'hyperparameter_value = 0.5\nseed = 3\n\n[encoder]\nscale = "sigma"\n')
    enc = load_encoder(path, options={"scale": "logvar"})  # the sidecar wins over the run's table
    np.testing.assert_allclose(enc(images)[1], numpy_encode(p, images, scale="sigma")[1], **TOL)
    assert (enc.info.family, enc.info.hyperparameter_name, enc.info.hyperparameter_value, enc.info.seed) == \
        ("infogan", "lambda", 0.5, 3)


README = Path(__file__).resolve().parents[1] / "README.md"


def readme_recipe() -> str:
    """The README's torch.onnx.export call (a ```py block: shown, not run, as it needs PyTorch)."""
    blocks = re.findall(r"```py\n(.*?)```", README.read_text(), re.S)
    (recipe,) = [b for b in blocks if "torch.onnx.export" in b]
    return recipe


def test_the_readme_pytorch_recipe_makes_what_the_loader_reads(tmp_path):
    recipe = readme_recipe()
    (inputs,) = re.findall(r"input_names=\[([^\]]*)\]", recipe)
    (outputs,) = re.findall(r"output_names=\[([^\]]*)\]", recipe)
    (example,) = re.findall(r"torch\.rand\(([\d, ]+)\)", recipe)
    input_name = inputs.strip().strip('"')
    names = tuple(o.strip().strip('"') for o in outputs.split(","))
    _, c, h, w = (int(d) for d in example.split(","))
    assert 'dynamic_axes={"x": {0: "batch"}}' in recipe and input_name == "x" and names == ("mu", "logvar")
    # what torch.onnx.export writes for it: input x [batch, C, H, W] float32, outputs mu and logvar [batch, K]
    p = weights(8, h, w, c, K, conv=True)
    path = build_encoder(tmp_path / "vae0.onnx", p, h, w, c, layout="NCHW", conv=True, names=names,
                         input_name=input_name)
    enc = load_encoder(path)  # the defaults, nothing configured
    assert enc.input_shape == (h, w, c) and enc.n_latents == K
    x = np.random.default_rng(9).random((5, h, w, c)).astype(np.float32)
    mean, logvar = enc(x)
    ref_m, ref_lv = numpy_encode(p, x, conv=True)
    np.testing.assert_allclose(mean, ref_m, **TOL)
    np.testing.assert_allclose(logvar, ref_lv, **TOL)


def test_the_readme_pytorch_recipe_with_pytorch(tmp_path):
    torch = pytest.importorskip("torch")

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64 * 64, 16), torch.nn.ReLU())
            self.mu, self.logvar = torch.nn.Linear(16, K), torch.nn.Linear(16, K)

        def forward(self, x):
            h = self.body(x)
            return self.mu(h), self.logvar(h)

    encoder = Encoder()
    (tmp_path / "models").mkdir()
    recipe = readme_recipe().replace('"models/vae0.onnx"', repr(str(tmp_path / "models" / "vae0.onnx")))
    exec(compile(recipe, "README.md", "exec"), {"torch": torch, "encoder": encoder})
    x = np.random.default_rng(10).random((3, 64, 64, 1)).astype(np.float32)
    mean, logvar = load_encoder(tmp_path / "models" / "vae0.onnx")(x)
    with torch.no_grad():
        ref_m, ref_lv = encoder(torch.from_numpy(np.transpose(x, (0, 3, 1, 2)).copy()))
    np.testing.assert_allclose(mean, ref_m.numpy(), **TOL)
    np.testing.assert_allclose(logvar, ref_lv.numpy(), **TOL)


def test_discovery_of_onnx_models_and_posterior_files(tmp_path):
    from repspace.models import find_models, write_posterior_file

    p = weights(0, H, W, 1, K, conv=False)
    build_encoder(tmp_path / "7.onnx", p, H, W, 1)
    build_encoder(tmp_path / "7_decoder.onnx", p, H, W, 1)  # a decoder is not a model of its own
    build_encoder(tmp_path / "vae" / "encoder.onnx", p, H, W, 1)
    build_encoder(tmp_path / "family=beta_vae" / "beta=16" / "seed=2.onnx", p, H, W, 1)
    (tmp_path / "notes").mkdir()  # a folder of another kind is not searched
    build_encoder(tmp_path / "notes" / "x.onnx", p, H, W, 1)
    (tmp_path / "vae" / "model.toml").write_text('[model]\nfamily = "infogan"\nseed = 1\n')
    found = find_models(tmp_path)
    assert [e.name for e in found] == ["7", "family=beta_vae/beta=16/seed=2", "vae"]
    assert [(e.family, e.hyperparameter, e.seed, e.source) for e in found[1:]] == [
        ("beta_vae", "beta", 2, "onnx"), ("infogan", "", 1, "onnx")]  # the sidecar wins over the layout
    assert found[1].hyperparameter_value == 16.0 and np.isnan(found[2].hyperparameter_value)
    assert [e.name for e in find_models(tmp_path, ["vae", 7])] == ["vae", "7"]
    with pytest.raises(FileNotFoundError, match=r"lacks models 8 \(expected .*ONNX models"):
        find_models(tmp_path, [8])
    with pytest.raises(FileNotFoundError, match=r"no models in .*posterior files <name>.npz"):
        find_models(tmp_path, kind="posteriors")
    write_posterior_file(tmp_path / "post" / "a.npz", np.zeros((3, K)), np.zeros((3, K)), dataset_index=[0, 1, 2],
                         images={"dataset": "digits", "image_size": 8})
    (tmp_path / "post" / "a.toml").write_text('[model]\nseed = "x"\n')
    with pytest.raises(ValueError, match=r"a.toml: \[model\] invalid literal"):
        find_models(tmp_path / "post", kind="posteriors")
    (tmp_path / "post" / "a.toml").write_text('[model]\nseed = 4\n[trainer]\nx = 1\n')
    with pytest.raises(ValueError, match=r"a.toml: unknown tables \['trainer'\]"):
        find_models(tmp_path / "post", kind="posteriors")
    (tmp_path / "post" / "a.toml").write_text('[model]\nseed = 4\n')
    (entry,) = find_models(tmp_path / "post", kind="posteriors")
    assert (entry.name, entry.seed, entry.source) == ("a", 4, "posteriors")


def test_importing_the_package_does_not_import_onnxruntime():
    import subprocess
    import sys

    code = "import sys, repspace.models, repspace.pipeline; print('onnxruntime' in sys.modules, 'onnx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]  # only loading an ONNX model imports them (an optional extra)
