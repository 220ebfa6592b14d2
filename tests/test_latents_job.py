"""The whole-latent-space job end to end: encoding with TF models, the CLI, the figure."""

from __future__ import annotations


import numpy as np
import pytest

import xarray as xr

from repspace.data import sample_indices
from repspace.jobs import compare_latents as job
from repspace.models import ModelEntry
from repspace.pipeline import LATENTS_STAGES, LatentsOptions, ModelsConfig, RunConfig, run
from repspace.pipeline.stages.encode import DATASET_IMAGES_STREAM
from repspace.store import write_posteriors


@pytest.fixture(scope="module")
def client(threads_client):
    return threads_client


def toy_store(path, families=("beta_vae", "factor_vae"), values=(1.0, 4.0), per_group=2, m=120, seed=0):
    rng = np.random.default_rng(seed)
    models, mus = [], []
    base = rng.normal(size=(m, 2))
    for f in families:
        for v in values:
            for s in range(per_group):
                models.append(ModelEntry(name=f"{f}-{v:g}-{s}", path="", dataset="toy", family=f,
                                         hyperparameter="beta", hyperparameter_value=v, seed=s))
                mus.append(base + rng.normal(scale=0.2 * v, size=(m, 2)))
    mu = np.asarray(mus, np.float32).transpose(0, 2, 1)  # (model, channel, image)
    write_posteriors(path, mu, np.full_like(mu, -1.0), models, group="dataset_embeddings")
    return models


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        job.parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in ("--run-dir", "--store", "--models-dir", "--model", "--dataset", "--data-dir", "--image-size",
                 "--n-dataset-images", "--n-samples", "--seed", "--sample-block", "--image-block",
                 "--images-per-encode-task", "--batch-size", "--float32", "--scheduler-address", "--workers",
                 "--threads-per-worker", "--no-dashboard", "--no-figures", "--config"):
        assert flag in text


def test_arguments_become_a_config(tmp_path):
    config = job.parse_args(["--run-dir", str(tmp_path), "--models-dir", "m", "--n-dataset-images", "500",
                             "--n-samples", "300", "--seed", "2", "--image-block", "64", "--float32", "--no-dashboard",
                             "--scheduler-address", "tcp://127.0.0.1:8786", "--model", "3", "--model", "4"])
    assert config == RunConfig(run_dir=str(tmp_path), image_size=None, seed=2, dashboard=False,
                               models=ModelsConfig(source="directory", dir="m", numbers=("3", "4")),
                               scheduler_address="tcp://127.0.0.1:8786", stages=LATENTS_STAGES,
                               latents=LatentsOptions(n_dataset_images=500, n_samples=300, image_block=64, dtype="float32"))
    assert config.store == tmp_path / "store.zarr" and config.figure_dir == tmp_path / "figures"
    config = job.parse_args(["--store", str(tmp_path / "x.zarr")])
    assert config.stages == ("latents",) and config.latents.n_dataset_images == 20_000
    assert config.store == tmp_path / "x.zarr" and config.latents.n_samples == 2_000
    assert job.parse_args(["--store", "y.zarr", "--n-dataset-images", "all"]).latents.n_dataset_images is None
    assert job.main(["--store", str(tmp_path / "y.zarr"), "--n-samples", "1"]) == 2


@pytest.mark.distributed
def test_figure_from_a_store(client, tmp_path):
    path = tmp_path / "s.zarr"
    toy_store(path)
    run(RunConfig(run_dir=str(tmp_path), store_path=str(path), stages=("latents",), latents={"n_samples": 300}),
        client=client)
    from repspace.plots.latents import draw_latents_figure

    out = draw_latents_figure(path, tmp_path / "fig" / "latents.png")
    assert out.stat().st_size > 10_000


@pytest.mark.distributed
def test_main_on_stored_posteriors(tmp_path, capsys):
    path = tmp_path / "store.zarr"
    toy_store(path, families=("beta_vae",), values=(1.0,), per_group=3, m=80)
    code = job.main(["--run-dir", str(tmp_path), "--n-samples", "200", "--workers", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "3 models, 80 images, 1 group" in out and (tmp_path / "figures" / "latents.png").is_file()


@pytest.mark.tf
@pytest.mark.distributed
def test_encode_then_compare_with_tf_models(client, tmp_path):
    pytest.importorskip("tensorflow")
    from repspace.data import load_dataset

    from .test_models_encoders import linear_weights, numpy_encode, write_tf2_saved_model

    params = [linear_weights(s) for s in (0, 1)]
    models_dir = tmp_path / "models"
    for n, p in enumerate(params):
        write_tf2_saved_model(models_dir / str(n), p, with_decoder=False)
    config = RunConfig(run_dir=str(tmp_path), dataset="digits", image_size=None, seed=5, dashboard=False,
                       models={"source": "directory", "dir": str(models_dir)}, stages=LATENTS_STAGES[:-1],
                       latents={"n_dataset_images": 150, "images_per_encode_task": 64, "n_samples": 400})
    result = run(config, client=client)
    ds = xr.open_zarr(config.store, group="latents", consolidated=False)
    assert (result.stage("encode_dataset").computed, ds.attrs["n_models"], ds.attrs["n_images"],
            result.stage("latents").computed) == (3, 2, 150, 2 + 2 + 1)  # shared terms: I(U), I(U,U') each, one joint
    emb = xr.open_zarr(config.store, group="dataset_embeddings", consolidated=False).load()
    index = sample_indices(1797, 150, 5, stream=DATASET_IMAGES_STREAM)
    np.testing.assert_array_equal(emb.dataset_index.values, index)
    np.testing.assert_array_equal(emb.image.values, np.arange(150))
    images = load_dataset("digits").images(index)
    for n, p in enumerate(params):
        mu, logvar = numpy_encode(p, images)
        np.testing.assert_allclose(emb.mu.values[n], mu.T, atol=1e-5)
        np.testing.assert_allclose(emb.logvar.values[n], logvar.T, atol=1e-5)
    assert (emb.encoded.values > 0).all()
    assert np.isfinite(float(ds.vi[0, 1])) and float(ds.vi_se[0, 1]) > 0 and np.isfinite(ds["information"].values).all()
    again = run(config, client=client)
    assert (again.stage("encode_dataset").computed, again.stage("latents").computed) == (0, 0)
