"""Training our own ensembles: losses, export in the zoo's layout, determinism, reruns."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from repspace.models.training import (
    TRAINABLE_FAMILIES,
    ModelSpec,
    TrainConfig,
    is_trained,
    model_grid,
    train_ensemble,
    train_model,
)
from repspace.models.zoo import read_model_info


class SquaresDataset:
    """A 3x3 square at every position of a size x size canvas: factors (y, x)."""

    name = "squares"

    def __init__(self, size: int = 16):
        self.size = size
        self.image_shape = (size, size, 1)
        self.n_pos = size - 2

    def __len__(self) -> int:
        return self.n_pos**2

    def factors(self, indices) -> np.ndarray:
        idx = np.asarray(indices, np.int64)
        return np.stack([idx // self.n_pos, idx % self.n_pos], axis=1)

    def images(self, indices) -> np.ndarray:
        f = self.factors(indices)
        out = np.zeros((len(f), self.size, self.size, 1), np.float32)
        for i, (y, x) in enumerate(f):
            out[i, y:y + 3, x:x + 3] = 1.0
        return out


def tiny_config(**kw) -> TrainConfig:
    base = dict(
        dataset="squares", image_size=None, families=("beta_vae", "beta_tc_vae"),
        hyperparameters={"beta_vae": (2.0,), "beta_tc_vae": (4.0,)}, seeds=(0,), architecture="mlp",
        mlp_hidden=(32,), n_latents=3, batch_size=32, learning_rate=3e-3, steps=60, log_every=10,
        progress_every=30, pool_size=0, jit_compile=False,
    )
    base.update(kw)
    return TrainConfig(**base)


# --- without TensorFlow ---------------------------------------------------------


def test_config_validation_and_round_trip():
    cfg = tiny_config()
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.as_dict()))) == cfg
    with pytest.raises(ValueError, match="factor_vae models come from the zoo"):
        TrainConfig(families=("factor_vae",))
    with pytest.raises(ValueError, match="architecture"):
        TrainConfig(architecture="resnet")
    with pytest.raises(ValueError, match="steps must be positive"):
        TrainConfig(steps=0)
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"stepz": 3})
    assert TrainConfig(families=("annealed_vae",), hyperparameters={}).values("annealed_vae") == (
        5.0, 10.0, 25.0, 50.0, 75.0, 100.0)


def test_offline_default_is_the_recipe():
    cfg = TrainConfig.offline_default()
    assert (cfg.dataset, cfg.image_size, cfg.families, cfg.values("beta_vae")) == (
        "dsprites_procedural", 32, ("beta_vae",), (16.0,))
    assert (cfg.architecture, cfg.batch_size, cfg.learning_rate, cfg.steps, cfg.n_latents) == (
        "mlp", 128, 5e-4, 10_000, 10)
    assert (cfg.threads, cfg.workers, len(cfg.seeds)) == (1, 2, 10)
    assert TrainConfig.offline_default(steps=50).steps == 50


def test_model_grid_numbers_families_values_seeds():
    cfg = tiny_config(seeds=(3, 5), hyperparameters={"beta_vae": (1, 16), "beta_tc_vae": (6,)})
    grid = model_grid(cfg)
    assert [s.number for s in grid] == list(range(6))
    assert [(s.family, s.hyperparameter_value, s.seed) for s in grid] == [
        ("beta_vae", 1.0, 3), ("beta_vae", 1.0, 5), ("beta_vae", 16.0, 3), ("beta_vae", 16.0, 5),
        ("beta_tc_vae", 6.0, 3), ("beta_tc_vae", 6.0, 5)]
    info = grid[4].info("squares")
    assert (info.source, info.hyperparameter_name, info.number) == ("repspace", "beta", 4)


def test_cli_parses_into_a_config(tmp_path):
    from repspace.jobs import train_ensemble as job

    cfg, dest, address = job.parse_args(["--dest", str(tmp_path), "--steps", "50", "--seeds", "0-2"])
    assert cfg == TrainConfig.offline_default(steps=50, seeds=(0, 1, 2)) and dest == tmp_path and address is None
    cfg, _, address = job.parse_args([
        "--dest", str(tmp_path), "--families", "beta_vae,beta_tc_vae", "--values", "beta_vae=1,4",
        "--values", "beta_tc_vae=6", "--architecture", "conv", "--image-size", "64", "--scheduler", "tcp://127.0.0.1:8786"])
    assert cfg.families == ("beta_vae", "beta_tc_vae") and cfg.values("beta_vae") == (1.0, 4.0)
    assert cfg.values("beta_tc_vae") == (6.0,) and cfg.architecture == "conv" and cfg.image_size == 64
    assert address == "tcp://127.0.0.1:8786"


# --- with TensorFlow ------------------------------------------------------------


@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


def _gaussian_log_density(x, mu, logvar):
    return -0.5 * (np.log(2 * np.pi) + logvar + (x - mu) ** 2 / np.exp(logvar))


def slow_total_correlation(z, mean, logvar):
    """Minibatch-weighted sampling estimate of TC, by loops."""
    b, k = z.shape
    tc = 0.0
    for i in range(b):
        joint = [np.sum(_gaussian_log_density(z[i], mean[j], logvar[j])) for j in range(b)]
        marg = 0.0
        for d in range(k):
            marg += np.logaddexp.reduce([_gaussian_log_density(z[i, d], mean[j, d], logvar[j, d]) for j in range(b)])
        tc += np.logaddexp.reduce(joint) - marg
    return tc / b


@pytest.mark.tf
def test_regularizers_against_loops(tf):
    from repspace.models.training import _regularizer

    rng = np.random.default_rng(0)
    mean = rng.normal(size=(7, 3)).astype(np.float32)
    logvar = rng.normal(-1, 0.3, size=(7, 3)).astype(np.float32)
    z = (mean + np.exp(0.5 * logvar) * rng.normal(size=(7, 3))).astype(np.float32)
    kl = np.float32(2.5)
    cfg = tiny_config(steps=100, annealed_gamma=10.0)

    def reg(family, value, step=0):
        fn = _regularizer(tf, cfg, ModelSpec(0, family, value, 0))
        return float(fn(tf.constant(mean), tf.constant(logvar), tf.constant(z), tf.constant(kl), tf.constant(step)))

    assert reg("beta_vae", 4.0) == pytest.approx(4 * 2.5)
    tc = slow_total_correlation(z.astype(np.float64), mean.astype(np.float64), logvar.astype(np.float64))
    assert reg("beta_tc_vae", 6.0) == pytest.approx(2.5 + 5 * tc, rel=1e-4)
    assert reg("annealed_vae", 5.0, step=50) == pytest.approx(10 * abs(2.5 - 2.5))
    assert reg("annealed_vae", 5.0, step=200) == pytest.approx(10 * abs(2.5 - 5.0))
    cov = np.cov(mean.T, bias=True)
    off = np.sum((cov - np.diag(np.diag(cov))) ** 2)
    assert reg("dip_vae_i", 2.0) == pytest.approx(2.5 + 2 * off + 20 * np.sum((np.diag(cov) - 1) ** 2), rel=1e-4)
    cov2 = cov + np.diag(np.exp(logvar).mean(0))
    off2 = np.sum((cov2 - np.diag(np.diag(cov2))) ** 2)
    assert reg("dip_vae_ii", 2.0) == pytest.approx(2.5 + 2 * off2 + 2 * np.sum((np.diag(cov2) - 1) ** 2), rel=1e-4)


@pytest.mark.tf
def test_conv_architecture_shapes(tf):
    from repspace.models.training import build_decoder, build_encoder

    cfg = tiny_config(architecture="conv", n_latents=10)
    enc, dec = build_encoder(cfg, (64, 64, 1)), build_decoder(cfg, (64, 64, 1))
    assert [tuple(o.shape) for o in enc.outputs] == [(None, 10), (None, 10)]
    assert tuple(dec.output.shape) == (None, 64, 64, 1)
    convs = [layer for layer in enc.layers if "conv" in layer.name]
    assert [c.filters for c in convs] == [32, 32, 64, 64] and all(c.kernel_size == (4, 4) for c in convs)
    assert tuple(build_decoder(cfg, (32, 32, 3)).output.shape) == (None, 32, 32, 3)
    with pytest.raises(ValueError, match="divisible by 16"):
        build_encoder(cfg, (28, 28, 1))


@pytest.fixture(scope="module")
def trained(tf, tmp_path_factory):
    """A two-model ensemble (beta_vae, beta_tc_vae) trained in process, and its dataset."""
    ds = SquaresDataset()
    dest = tmp_path_factory.mktemp("ensemble")
    cfg = tiny_config()
    results = [train_model(spec, cfg, dest, dataset=ds) for spec in model_grid(cfg)]
    return cfg, dest, ds, results


@pytest.mark.tf
def test_export_is_in_the_zoo_layout_and_loads(trained):
    from repspace.models import load_encoder

    cfg, dest, ds, results = trained
    x = ds.images(np.arange(len(ds)))
    for r, fam in zip(results, ["beta_vae", "beta_tc_vae"]):
        assert not r.skipped and is_trained(r.path)
        res = r.path / "model" / "results"
        for f in ["gin/train.gin", "json/train_config.json", "json/train_results.json",
                  "loss_curve.csv", "loss_curve.png"]:
            assert (res / f).is_file(), f
        info = read_model_info(r.path)
        assert (info.family, info.dataset, info.seed, info.source) == (fam, "squares", 0, "repspace")
        enc = load_encoder(r.path)
        assert enc.kind == "saved_model" and enc.info == info
        assert enc.input_shape == (16, 16, 1) and enc.n_latents == 3
        assert set(enc.signatures) == {"gaussian_encoder", "decoder", "reconstructions"}
        mean, logvar = enc(x[..., 0])
        assert mean.shape == (len(ds), 3) and np.all(np.isfinite(logvar))
        imgs = enc.decode(mean[:5])
        assert imgs.shape == (5, 16, 16, 1) and imgs.min() >= 0 and imgs.max() <= 1
        # the reconstruction loss falls
        rows = np.genfromtxt(res / "loss_curve.csv", delimiter=",", names=True)
        assert rows["step"][-1] == cfg.steps and len(rows) == cfg.steps // cfg.log_every
        assert rows["reconstruction_loss"][-1] < 0.8 * rows["reconstruction_loss"][0]
        final = json.loads((res / "json" / "train_results.json").read_text())
        assert final["reconstruction_loss"] == pytest.approx(rows["reconstruction_loss"][-1])
        run = json.loads((res / "json" / "train_config.json").read_text())
        assert TrainConfig.from_dict(run["config"]) == cfg and run["run_id"]
    # the reconstructions signature decodes the posterior mean
    import tensorflow as tf

    sm = tf.saved_model.load(str(results[0].path / "model" / "tfhub"))
    rec = sm.signatures["reconstructions"](images=tf.constant(x[:4]))["images"].numpy()
    enc = load_encoder(results[0].path)
    np.testing.assert_allclose(1 / (1 + np.exp(-rec)), enc.decode(enc(x[:4])[0]), atol=1e-5)
    assert not list(dest.glob(".*tmp*"))


@pytest.mark.tf
def test_same_seed_same_weights(trained, tmp_path):
    from repspace.models import load_encoder

    cfg, dest, ds, results = trained
    again = train_model(model_grid(cfg)[1], cfg, tmp_path, dataset=ds)
    x = ds.images(np.arange(len(ds)))
    a, b = load_encoder(results[1].path), load_encoder(again.path)
    np.testing.assert_array_equal(a(x)[0], b(x)[0])
    np.testing.assert_array_equal(a(x)[1], b(x)[1])
    np.testing.assert_array_equal(a.decode(np.ones((2, 3))), b.decode(np.ones((2, 3))))
    assert again.results["loss"] == results[1].results["loss"]


@pytest.mark.tf
def test_finished_models_are_skipped_and_never_overwritten(trained, tmp_path):
    cfg, dest, ds, results = trained
    stamp = (results[0].path / "model" / "results" / "json" / "train_results.json").stat().st_mtime_ns
    r = train_model(model_grid(cfg)[0], cfg, dest, dataset=ds)
    assert r.skipped and r.results == results[0].results
    assert (r.path / "model" / "results" / "json" / "train_results.json").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="another config.*steps"):
        train_model(model_grid(cfg)[0], tiny_config(steps=61), dest, dataset=ds)
    # a half-written directory is refused, a leftover temporary directory is ignored
    (tmp_path / "0").mkdir()
    with pytest.raises(FileExistsError, match="no finished model"):
        train_model(model_grid(cfg)[0], cfg, tmp_path, dataset=ds)


@pytest.mark.tf
@pytest.mark.distributed
def test_train_ensemble_on_a_dask_client(trained, tmp_path):
    from distributed import Client, LocalCluster

    cfg, dest, ds, results = trained
    (tmp_path / ".0.tmp-deadbeef").mkdir()  # left by a killed task
    # model 0 is there already (copied from the first run); model 1 is trained as a task
    import shutil

    shutil.copytree(results[0].path, tmp_path / "0")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        paths = train_ensemble(cfg, tmp_path, client=client, dataset=ds)
    assert paths == [tmp_path / "0", tmp_path / "1"]
    assert all(is_trained(p) for p in paths)
    a = json.loads((paths[1] / "model" / "results" / "json" / "train_results.json").read_text())
    assert a["loss"] == results[1].results["loss"]  # the task ran the same deterministic training


@pytest.mark.tf
def test_on_the_real_dataset(tf, tmp_path):
    data = pytest.importorskip("repspace.data")
    ds = data.load_dataset("dsprites_procedural", image_size=32)
    cfg = TrainConfig.offline_default(steps=40, seeds=(0,), pool_size=256, log_every=10, progress_every=0,
                                      mlp_hidden=(64,))
    r = train_model(model_grid(cfg)[0], cfg, tmp_path)  # loads the dataset from the config
    from repspace.models import load_encoder

    enc = load_encoder(r.path)
    assert enc.info.dataset == "dsprites_procedural" and enc.info.hyperparameter_value == 16.0
    mean, logvar = enc(ds.images(np.arange(20)))
    assert mean.shape == (20, 10)
    rows = np.genfromtxt(r.path / "model" / "results" / "loss_curve.csv", delimiter=",", names=True)
    assert rows["reconstruction_loss"][-1] < rows["reconstruction_loss"][0]


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.distributed
def test_train_ensemble_default_cluster_processes(tmp_path):
    """The default path: a LocalCluster of worker processes, TF imported in each."""
    pytest.importorskip("tensorflow")
    cfg = tiny_config(workers=2)
    paths = train_ensemble(cfg, tmp_path, dataset=SquaresDataset())
    assert [p.name for p in paths] == ["0", "1"] and all(is_trained(p) for p in paths)
    before = {p: os.stat(p / "model" / "tfhub" / "saved_model.pb").st_mtime_ns for p in paths}
    assert train_ensemble(cfg, tmp_path, dataset=SquaresDataset()) == paths  # nothing to do
    assert before == {p: os.stat(p / "model" / "tfhub" / "saved_model.pb").st_mtime_ns for p in paths}


def test_cli_main_calls_train_ensemble_once(tmp_path, monkeypatch, capsys):
    from repspace.jobs import train_ensemble as job

    calls = []
    monkeypatch.setattr(job, "train_ensemble", lambda cfg, dest, client=None: calls.append((cfg, dest, client)) or [dest / "0"])
    (tmp_path / "cfg.json").write_text(json.dumps({"steps": 77, "seeds": [4], "mlp_hidden": [16]}))
    assert job.main(["--dest", str(tmp_path), "--config", str(tmp_path / "cfg.json"), "--lr", "0.001"]) == 0
    (cfg, dest, client), = calls
    assert (cfg.steps, cfg.seeds, cfg.mlp_hidden, cfg.learning_rate, client) == (77, (4,), (16,), 0.001, None)
    assert "1 models in" in capsys.readouterr().out


@pytest.mark.distributed
def test_a_failed_model_is_reported_by_number_after_the_others(tmp_path, monkeypatch):
    from distributed import Client, LocalCluster

    from repspace.models import training
    from repspace.models.training import TrainedModel

    def fake_train_model(spec, config, dest, *, dataset=None):
        if spec.number == 1:
            raise FloatingPointError("loss is nan")
        (dest / f"ran-{spec.number}").touch()
        return TrainedModel(dest / str(spec.number), spec, {"reconstruction_loss": 1.0, "kl_loss": 2.0}, False)

    monkeypatch.setattr(training, "train_model", fake_train_model)
    cfg = tiny_config(seeds=(0, 1))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0") as cluster, \
            Client(cluster) as client:
        with pytest.raises(RuntimeError, match=r"1 of 4 models failed.*model 1: FloatingPointError: loss is nan"):
            train_ensemble(cfg, tmp_path, client=client)
    assert sorted(p.name for p in tmp_path.glob("ran-*")) == ["ran-0", "ran-2", "ran-3"]
