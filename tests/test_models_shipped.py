"""The offline default's models from the weights shipped with the package: written as a trained model is,
read back as the shipped weights compute, and reproduced by training the recipe (its structure, not bits)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from repspace.models import load_encoder
from repspace.models import trainer
from repspace.models.shipped import shipped_model
from repspace.models.training import TrainConfig, model_grid, train_model

pytestmark = pytest.mark.tf


def mlp_forward(weights: list[np.ndarray], images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The shipped encoder by hand: flatten, Dense+ReLU per hidden layer, then the mean and logvar heads."""
    x = images.reshape(len(images), -1).astype(np.float64)
    *hidden, wm, bm, wl, bl = weights
    for w, b in zip(hidden[0::2], hidden[1::2]):
        x = np.maximum(x @ w + b, 0.0)
    return x @ wm + bm, x @ wl + bl


def test_the_default_recipe_is_written_from_the_shipped_weights(tmp_path, monkeypatch):
    from repspace.data import load_dataset

    config = TrainConfig.offline_default()
    spec = model_grid(config)[3]
    shipped = shipped_model(trainer._model_config(config, spec))
    assert shipped is not None and shipped["record"]["model"]["seed"] == 3

    monkeypatch.setattr(trainer, "_load_dataset", lambda c: pytest.fail("a shipped model needs no training data"))
    model = train_model(spec, config, tmp_path)
    assert not model.skipped and model.results["shipped"] == "repspace/models/shipped/offline_default.npz"
    assert model.results["reconstruction_loss"] == shipped["record"]["results"]["reconstruction_loss"]
    saved = json.loads((model.path / "model" / "results" / "json" / "train_config.json").read_text())
    assert saved["model"] == json.loads(json.dumps(trainer._model_config(config, spec)))  # a rerun accepts it

    images = load_dataset("dsprites_procedural", image_size=32).images(np.arange(0, 737_280, 24_576))
    mean, logvar = load_encoder(model.path)(images)
    want_mean, want_logvar = mlp_forward(shipped["encoder"], images)
    # float32 TensorFlow against a float64 forward pass of the same float32 weights: rounding only
    np.testing.assert_allclose(mean, want_mean, rtol=0, atol=1e-4)
    np.testing.assert_allclose(logvar, want_logvar, rtol=0, atol=1e-4)
    spread = np.sort(np.std(mean, axis=0))
    assert spread[-3] > 10 * spread[-4]  # trained weights: three channels follow the images, the others hardly

    assert train_model(spec, config, tmp_path).skipped  # a rerun is as fast as before

    class Trained(Exception):
        pass

    def training(c):
        raise Trained

    monkeypatch.setattr(trainer, "_load_dataset", training)
    with pytest.raises(Trained):  # shipped = false, or any other recipe, trains
        train_model(spec, TrainConfig.offline_default(shipped=False), tmp_path / "own")
    other = TrainConfig.offline_default(steps=9_000)
    assert shipped_model(trainer._model_config(other, model_grid(other)[3])) is None
    with pytest.raises(Trained):
        train_model(model_grid(other)[3], other, tmp_path / "other")


def informative_factors(path, images: np.ndarray, factors: np.ndarray, names) -> list[str]:
    """The factor each channel carrying at least 0.01 bits reads best (by NMI), in channel order."""
    from repspace.api import compare_factors, information_dataset
    from repspace import kernels

    mean, logvar = load_encoder(path)(images)
    info = information_dataset(kernels.pairwise_information(kernels.PosteriorRows(mean.T, logvar.T)), same=True)
    nmi = compare_factors(mean.T, logvar.T, factors, factor_names=list(names)).nmi
    kept = np.flatnonzero(info.information.values >= 0.01)
    return [str(nmi.unit_b.values[int(np.argmax(nmi.values[c]))]) for c in kept]


@pytest.mark.slow
def test_training_the_recipe_reproduces_the_shipped_structure(tmp_path):
    """Model 0 trained afresh (10,000 steps, about a minute on one core) and written from the shipped weights
    read the same factors with their informative channels: posX, posY and scale (training on another
    machine or process differs in bits, not in this)."""
    from repspace.data import load_dataset

    config = TrainConfig.offline_default(seeds=(0,))
    spec = model_grid(config)[0]
    shipped = train_model(spec, config, tmp_path / "shipped")
    trained = train_model(spec, TrainConfig.offline_default(seeds=(0,), shipped=False), tmp_path / "trained")
    assert shipped.results.get("shipped") and not trained.results.get("shipped")
    ds = load_dataset("dsprites_procedural", image_size=32)
    index = np.random.default_rng(0).choice(len(ds), 300, replace=False)
    images, factors = ds.images(index), ds.factors(index)
    got = {p: informative_factors(m.path, images, factors, ds.factor_names) for p, m in
           (("shipped", shipped), ("trained", trained))}
    assert sorted(got["shipped"]) == sorted(got["trained"]) == ["posX", "posY", "scale"], got
