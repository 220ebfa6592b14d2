"""The zoo index against DESIGN.md §4 and against train.gin files."""

import warnings

import pytest

from repspace.models.zoo import (
    DATASETS,
    FAMILIES,
    HYPERPARAMETERS,
    N_ZOO_MODELS,
    ModelInfo,
    ModelInfoWarning,
    format_train_gin,
    model_info_from_gin,
    parse_gin,
    parse_model_numbers,
    read_model_info,
    zoo_model_info,
    zoo_model_number,
)

# A train.gin as disentanglement_lib writes it (operative config, abridged).
ZOO_GIN = """\
# Parameters for AdamOptimizer:
# ==============================================================================
AdamOptimizer.beta1 = 0.9
AdamOptimizer.epsilon = 1e-08
AdamOptimizer.learning_rate = 0.0001
AdamOptimizer.name = 'Adam'

# Parameters for dataset:
# ==============================================================================
dataset.name = 'smallnorb'

# Parameters for discriminator:
# ==============================================================================
discriminator.discriminator_fn = @fc_discriminator

# Parameters for factor_vae:
# ==============================================================================
factor_vae.gamma = 100.0

# Parameters for model:
# ==============================================================================
model.batch_size = 64
model.model = @factor_vae()
model.name = 'factor_vae'
model.num_latent = 10
model.random_seed = 0
model.training_steps = 300000

# Parameters for reconstruction_loss:
# ==============================================================================
reconstruction_loss.activation = 'logits'
reconstruction_loss.loss_fn = @bernoulli_loss
"""


@pytest.mark.parametrize(
    "n, expected",
    [
        (0, ("dsprites_full", "beta_vae", "beta", 1.0, 0)),
        (7750, ("smallnorb", "factor_vae", "gamma", 100.0, 0)),
        (1800, ("color_dsprites", "beta_vae", "beta", 1.0, 0)),
        (3600, ("noisy_dsprites", "beta_vae", "beta", 1.0, 0)),
        (5400, ("scream_dsprites", "beta_vae", "beta", 1.0, 0)),
        (9000, ("cars3d", "beta_vae", "beta", 1.0, 0)),
        (299, ("dsprites_full", "beta_vae", "beta", 16.0, 49)),
        (300 + 50 * 2 + 7, ("dsprites_full", "factor_vae", "gamma", 30.0, 7)),
        (600 + 50 * 5, ("dsprites_full", "dip_vae_i", "lambda_od", 50.0, 0)),
        (900 + 50 * 3, ("dsprites_full", "dip_vae_ii", "lambda_od", 10.0, 0)),
        (1200 + 50 * 5 + 1, ("dsprites_full", "beta_tc_vae", "beta", 10.0, 1)),
        (1500 + 50 * 2, ("dsprites_full", "annealed_vae", "c_max", 25.0, 0)),
        (N_ZOO_MODELS - 1, ("cars3d", "annealed_vae", "c_max", 100.0, 49)),
    ],
)
def test_zoo_index_matches_design(n, expected):
    info = zoo_model_info(n)
    assert (info.dataset, info.family, info.hyperparameter_name, info.hyperparameter_value, info.seed) == expected
    assert info.number == n and info.source == "disentanglement_lib"


def test_zoo_index_is_a_bijection():
    seen = set()
    for n in range(N_ZOO_MODELS):
        info = zoo_model_info(n)
        key = (info.dataset, info.family, info.hyperparameter_value, info.seed)
        seen.add(key)
        assert zoo_model_number(info.dataset, info.family, info.hyperparameter_value, info.seed) == n
    assert len(seen) == N_ZOO_MODELS == 6 * 6 * 6 * 50
    assert len(DATASETS) == len(FAMILIES) == len(HYPERPARAMETERS) == 6


@pytest.mark.parametrize("n", [-1, N_ZOO_MODELS])
def test_zoo_index_out_of_range(n):
    with pytest.raises(ValueError, match="zoo model numbers"):
        zoo_model_info(n)


def test_parse_model_numbers():
    assert parse_model_numbers("0-3, 7,2") == [0, 1, 2, 3, 7]
    assert parse_model_numbers(["7750", "1-2"]) == [1, 2, 7750]
    assert parse_model_numbers(5) == [5]
    for bad in ["a", "5-3", "1--2"]:
        with pytest.raises(ValueError):
            parse_model_numbers(bad)


def test_parse_zoo_gin():
    b = parse_gin(ZOO_GIN)
    assert b["dataset.name"] == "smallnorb"
    assert b["model.model"] == "@factor_vae()"
    assert b["factor_vae.gamma"] == 100.0
    assert b["reconstruction_loss.loss_fn"] == "@bernoulli_loss"
    assert b["AdamOptimizer.epsilon"] == 1e-08
    info = model_info_from_gin(b, number=7750)
    assert info == zoo_model_info(7750)


def test_parse_gin_multiline_and_family_from_model_model():
    b = parse_gin("model.model = @dip_vae()\ndip_vae.dip_type = 'ii'\nx.y = [1,\n  2,\n  3]\n"
                  "dip_vae.lambda_od = 10.0\ndataset.name = 'cars3d'\nmodel.random_seed = 4\n")
    assert b["x.y"] == [1, 2, 3]
    info = model_info_from_gin(b)
    assert (info.family, info.hyperparameter_name, info.hyperparameter_value, info.seed) == ("dip_vae_ii", "lambda_od", 10.0, 4)


@pytest.mark.parametrize("n", [0, 777, 1234, 1500, 4321, 7750, 10799])
def test_format_train_gin_round_trips(n):
    info = zoo_model_info(n)
    assert model_info_from_gin(parse_gin(format_train_gin(info)), number=n) == info


def _write_gin(model_dir, text):
    gin = model_dir / "model" / "results" / "gin"
    gin.mkdir(parents=True)
    (gin / "train.gin").write_text(text)


def test_read_model_info_from_index_and_gin(tmp_path):
    assert read_model_info(tmp_path / "42") == zoo_model_info(42)
    assert read_model_info(tmp_path / "not_a_number") is None
    d = tmp_path / "7750"
    _write_gin(d, ZOO_GIN)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_model_info(d) == zoo_model_info(7750)


def test_read_model_info_gin_wins_with_warning(tmp_path):
    d = tmp_path / "1800"  # the index says color_dsprites; this file says noisy_dsprites
    _write_gin(d, format_train_gin(zoo_model_info(3600)))
    with pytest.warns(ModelInfoWarning, match=r"dataset 'color_dsprites' -> 'noisy_dsprites'"):
        info = read_model_info(d)
    assert info.dataset == "noisy_dsprites" and info.number == 1800


def test_read_model_info_own_models_are_not_compared(tmp_path):
    d = tmp_path / "3"
    own = ModelInfo(3, "dsprites_procedural", "beta_tc_vae", "beta", 6.0, 1, source="repspace")
    _write_gin(d, format_train_gin(own, extra={"model.training_steps": 50}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_model_info(d) == own


def test_importing_the_package_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, repspace.models, repspace.jobs.download_models, repspace.jobs.train_ensemble; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
