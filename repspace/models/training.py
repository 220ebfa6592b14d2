"""Train ensembles of VAEs of our own and export them in the zoo's layout.

An ensemble is a grid of families x hyperparameter values x seeds on one dataset of
:mod:`repspace.data`. Each model is one Dask task: it trains in a temporary directory and
renames it to ``dest/<n>`` when complete, so a killed task reruns from scratch and a
finished model is skipped on rerun. Each model directory looks like a zoo download::

    dest/<n>/model/tfhub/                  TF2 SavedModel: gaussian_encoder, decoder, reconstructions
    dest/<n>/model/results/gin/train.gin   the zoo's keys (dataset.name, model.model, vae.beta, ...)
    dest/<n>/model/results/json/train_config.json   the full TrainConfig, ModelInfo, run id
    dest/<n>/model/results/json/train_results.json  final losses, elapsed time, steps per second
    dest/<n>/model/results/loss_curve.csv, loss_curve.png

Losses, per image (``x`` the image, ``q(z|x) = N(mean, exp(logvar))``, ``p(x|z)`` Bernoulli
with logits from the decoder):

.. math::

    \\text{recon} = -\\log p(x|z) = \\sum_{\\text{pixels}} \\mathrm{BCE}(x, \\text{logits}),\\qquad
    \\text{KL} = \\tfrac12 \\sum_k (\\mu_k^2 + \\sigma_k^2 - \\log \\sigma_k^2 - 1)

- beta_vae: recon + beta KL
- beta_tc_vae: recon + KL + (beta - 1) TC, TC by minibatch-weighted sampling
- annealed_vae: recon + gamma |KL - C(t)|, C rising linearly from 0 to c_max
- dip_vae_i / dip_vae_ii: recon + KL + lambda_od sum_{k != l} Cov_kl^2
  + lambda_d sum_k (Cov_kk - 1)^2, over Cov[mean] (i) or Cov[mean] + E[diag sigma^2] (ii),
  lambda_d = 10 lambda_od (i) or lambda_od (ii)

TensorFlow is imported only when a model is trained.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from repspace.models.zoo import HYPERPARAMETERS, ModelInfo, format_train_gin

__all__ = [
    "ARCHITECTURES",
    "TRAINABLE_FAMILIES",
    "ModelSpec",
    "TrainConfig",
    "TrainedModel",
    "model_grid",
    "train_ensemble",
    "train_model",
]

SOURCE = "repspace"

#: Families :func:`train_model` can train, with their hyperparameter's name.
TRAINABLE_FAMILIES: dict[str, str] = {
    "beta_vae": "beta",
    "beta_tc_vae": "beta",
    "annealed_vae": "c_max",
    "dip_vae_i": "lambda_od",
    "dip_vae_ii": "lambda_od",
}

#: ``"conv"``: the disentanglement_lib conv encoder/decoder; ``"mlp"``: a small MLP for CPUs.
ARCHITECTURES = ("conv", "mlp")


class ImageDataset(Protocol):
    """What training needs of a dataset (see :class:`repspace.data.Dataset`)."""

    name: str
    image_shape: tuple[int, int, int]

    def __len__(self) -> int: ...

    def images(self, indices: Any) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines an ensemble; one options object for all tunables.

    Attributes
    ----------
    dataset, data_dir, image_size
        Passed to :func:`repspace.data.load_dataset`.
    families : tuple of str
        Families to train, from :data:`TRAINABLE_FAMILIES`.
    hyperparameters : mapping family -> tuple of float
        Values per family; a family absent here uses the zoo's six values.
    seeds : tuple of int
    architecture : ``"mlp"`` or ``"conv"``
    mlp_hidden : tuple of int
        Hidden layer widths of the MLP encoder (the decoder mirrors them).
    n_latents, batch_size, learning_rate, steps
        Adam with default betas; ``steps`` optimiser steps of ``batch_size`` images.
    pool_size : int
        Images drawn once (without replacement, from the model's seed) and sampled from
        during training, kept as float16; 0 draws every batch afresh from the dataset.
        Rendering datasets such as dsprites_procedural cost more per image than a
        training step.
    log_every : int
        Steps per point of the loss curve (losses averaged over those steps).
    progress_every : int
        Steps between progress lines; 0 for none.
    threads : int
        TensorFlow intra- and inter-op threads per training.
    workers : int
        Trainings at once on the LocalCluster started when no client is given.
    deterministic : bool
        Enable TensorFlow's op determinism (same seed, same weights on CPU).
    jit_compile : bool
        Compile the training steps with XLA (about 1.3x faster for the MLP on CPU).
    steps_per_call : int
        Optimiser steps per call into TensorFlow (a loop inside one compiled function);
        saves the per-call overhead, which dominates for the small MLP.
    annealed_gamma, annealed_steps
        annealed_vae's gamma and the steps over which its capacity rises (default: steps).
    """

    dataset: str = "dsprites_procedural"
    data_dir: str | None = None
    image_size: int | None = 32
    families: tuple[str, ...] = ("beta_vae",)
    hyperparameters: Mapping[str, tuple[float, ...]] = dataclasses.field(
        default_factory=lambda: {"beta_vae": (16.0,)}
    )
    seeds: tuple[int, ...] = tuple(range(10))
    architecture: str = "mlp"
    mlp_hidden: tuple[int, ...] = (128, 128)
    n_latents: int = 10
    batch_size: int = 128
    learning_rate: float = 5e-4
    steps: int = 10_000
    pool_size: int = 20_000
    log_every: int = 100
    progress_every: int = 1000
    threads: int = 1
    workers: int = 2
    deterministic: bool = True
    jit_compile: bool = True
    steps_per_call: int = 50
    annealed_gamma: float = 1000.0
    annealed_steps: int | None = None

    def __post_init__(self):
        for fam in self.families:
            if fam not in TRAINABLE_FAMILIES:
                raise ValueError(
                    f"cannot train family {fam!r}; trainable: {', '.join(TRAINABLE_FAMILIES)}"
                    + (" (factor_vae models come from the zoo)" if fam == "factor_vae" else "")
                )
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        for name in ("n_latents", "batch_size", "steps", "log_every", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.seeds:
            raise ValueError("no seeds")
        object.__setattr__(self, "families", tuple(self.families))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "mlp_hidden", tuple(int(h) for h in self.mlp_hidden))
        object.__setattr__(
            self, "hyperparameters", {k: tuple(float(v) for v in vs) for k, vs in self.hyperparameters.items()}
        )

    @classmethod
    def offline_default(cls, **overrides: Any) -> TrainConfig:
        """The recipe that gave recurring channels on CPU (DESIGN §4).

        beta-VAE with beta 16, the MLP at 32x32 on dsprites_procedural, batch 128, Adam
        lr 5e-4, 10,000 steps, 10 latents, Bernoulli loss, 10 seeds, two trainings at once
        with one thread each (about 70 s a model).

        >>> cfg = TrainConfig.offline_default(steps=50)
        >>> cfg.families, cfg.values("beta_vae"), cfg.steps, cfg.image_size
        (('beta_vae',), (16.0,), 50, 32)
        """
        base = dict(
            dataset="dsprites_procedural", image_size=32, families=("beta_vae",),
            hyperparameters={"beta_vae": (16.0,)}, seeds=tuple(range(10)), architecture="mlp",
            n_latents=10, batch_size=128, learning_rate=5e-4, steps=10_000, threads=1, workers=2,
        )
        base.update(overrides)
        return cls(**base)

    def values(self, family: str) -> tuple[float, ...]:
        """Hyperparameter values of ``family`` in this grid."""
        if family in self.hyperparameters:
            return self.hyperparameters[family]
        return HYPERPARAMETERS[family][1]

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hyperparameters"] = {k: list(v) for k, v in self.hyperparameters.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        kw = dict(d)
        for key in ("families", "seeds", "mlp_hidden"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One model of the grid: its number (directory name) and what it is."""

    number: int
    family: str
    hyperparameter_value: float
    seed: int

    def info(self, dataset: str) -> ModelInfo:
        return ModelInfo(
            self.number, dataset, self.family, TRAINABLE_FAMILIES[self.family],
            float(self.hyperparameter_value), int(self.seed), source=SOURCE,
        )

    def label(self) -> str:
        return f"model {self.number} ({self.family} {TRAINABLE_FAMILIES[self.family]}={self.hyperparameter_value:g} seed {self.seed})"


def model_grid(config: TrainConfig) -> list[ModelSpec]:
    """The ensemble's models, numbered 0.. in the order families x values x seeds.

    >>> [(s.number, s.family, s.hyperparameter_value, s.seed) for s in model_grid(
    ...     TrainConfig(families=("beta_vae", "beta_tc_vae"),
    ...                 hyperparameters={"beta_vae": (1, 4), "beta_tc_vae": (6,)}, seeds=(0, 1)))]
    ... # doctest: +NORMALIZE_WHITESPACE
    [(0, 'beta_vae', 1.0, 0), (1, 'beta_vae', 1.0, 1), (2, 'beta_vae', 4.0, 0), (3, 'beta_vae', 4.0, 1),
     (4, 'beta_tc_vae', 6.0, 0), (5, 'beta_tc_vae', 6.0, 1)]
    """
    specs = []
    for fam in config.families:
        for value in config.values(fam):
            for seed in config.seeds:
                specs.append(ModelSpec(len(specs), fam, float(value), int(seed)))
    return specs


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """What :func:`train_model` returns: where the model is and its final losses."""

    path: Path
    spec: ModelSpec
    results: dict[str, Any]
    skipped: bool


# --- what a model directory records -------------------------------------------------

_MODEL_KEYS = ("dataset", "data_dir", "image_size", "architecture", "mlp_hidden", "n_latents", "batch_size",
               "learning_rate", "steps", "pool_size", "jit_compile", "steps_per_call", "annealed_gamma",
               "annealed_steps")


def _model_config(config: TrainConfig, spec: ModelSpec) -> dict[str, Any]:
    """The parts of the config that change one model's weights."""
    d = {k: v for k, v in config.as_dict().items() if k in _MODEL_KEYS}
    d.update(family=spec.family, hyperparameter_value=spec.hyperparameter_value, seed=spec.seed)
    return d


def _results_dir(model_dir: Path) -> Path:
    return model_dir / "model" / "results"


def is_trained(model_dir: Path) -> bool:
    """True when ``model_dir`` holds a finished model (the rename happens last)."""
    return (_results_dir(model_dir) / "json" / "train_results.json").is_file() and (
        model_dir / "model" / "tfhub" / "saved_model.pb"
    ).is_file()


def _check_existing(model_dir: Path, config: TrainConfig, spec: ModelSpec) -> dict[str, Any]:
    saved = json.loads((_results_dir(model_dir) / "json" / "train_config.json").read_text())
    want = json.loads(json.dumps(_model_config(config, spec)))
    if saved.get("model") != want:
        diff = sorted(k for k in set(want) | set(saved.get("model", {}))
                      if want.get(k) != saved.get("model", {}).get(k))
        raise FileExistsError(
            f"{model_dir} holds a model trained with another config (differs in {', '.join(diff)}); "
            "train into another directory or move it away"
        )
    return json.loads((_results_dir(model_dir) / "json" / "train_results.json").read_text())


# --- TensorFlow parts ---------------------------------------------------------------


def _configure_tf(config: TrainConfig, seed: int):
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(config.threads)
        tf.config.threading.set_inter_op_parallelism_threads(config.threads)
    except RuntimeError:
        pass  # the runtime is already initialised in this process: keep its thread pools
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    tf.keras.utils.set_random_seed(seed)
    return tf


def build_encoder(config: TrainConfig, image_shape: tuple[int, int, int]):
    """Keras encoder: images (n, H, W, C) -> [mean, logvar], each (n, n_latents)."""
    import keras

    h, w, c = image_shape
    x = keras.Input((h, w, c), name="images")
    if config.architecture == "conv":
        if h % 16 or w % 16:
            raise ValueError(f"the conv architecture needs image sides divisible by 16, got {h}x{w}")
        y = x
        for filters in (32, 32, 64, 64):
            y = keras.layers.Conv2D(filters, 4, strides=2, padding="same", activation="relu")(y)
        y = keras.layers.Flatten()(y)
        y = keras.layers.Dense(256, activation="relu")(y)
    else:
        y = keras.layers.Flatten()(x)
        for width in config.mlp_hidden:
            y = keras.layers.Dense(width, activation="relu")(y)
    mean = keras.layers.Dense(config.n_latents, name="mean")(y)
    logvar = keras.layers.Dense(config.n_latents, name="logvar")(y)
    return keras.Model(x, [mean, logvar], name="encoder")


def build_decoder(config: TrainConfig, image_shape: tuple[int, int, int]):
    """Keras decoder: latents (n, n_latents) -> image logits (n, H, W, C)."""
    import keras

    h, w, c = image_shape
    z = keras.Input((config.n_latents,), name="latent_vectors")
    if config.architecture == "conv":
        y = keras.layers.Dense(256, activation="relu")(z)
        y = keras.layers.Dense((h // 16) * (w // 16) * 64, activation="relu")(y)
        y = keras.layers.Reshape((h // 16, w // 16, 64))(y)
        for filters in (64, 32, 32):
            y = keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", activation="relu")(y)
        y = keras.layers.Conv2DTranspose(c, 4, strides=2, padding="same")(y)
    else:
        y = z
        for width in reversed(config.mlp_hidden):
            y = keras.layers.Dense(width, activation="relu")(y)
        y = keras.layers.Dense(h * w * c)(y)
        y = keras.layers.Reshape((h, w, c))(y)
    return keras.Model(z, y, name="decoder")


def _regularizer(tf, config: TrainConfig, spec: ModelSpec):
    """The family's term added to the reconstruction loss: f(mean, logvar, z, kl, step)."""
    value = float(spec.hyperparameter_value)
    log2pi = float(np.log(2 * np.pi))

    def gaussian_log_density(x, mu, logvar):
        return -0.5 * (log2pi + logvar + tf.square(x - mu) * tf.exp(-logvar))

    def total_correlation(z, mean, logvar):
        # log q(z_i | x_j) for every pair in the batch, per dimension: (B, B, K)
        lq = gaussian_log_density(z[:, None, :], mean[None, :, :], logvar[None, :, :])
        log_qz = tf.reduce_logsumexp(tf.reduce_sum(lq, axis=2), axis=1)
        log_qz_product = tf.reduce_sum(tf.reduce_logsumexp(lq, axis=1), axis=1)
        return tf.reduce_mean(log_qz - log_qz_product)

    def dip(cov, lambda_od, lambda_d):
        diag = tf.linalg.diag_part(cov)
        off = cov - tf.linalg.diag(diag)
        return lambda_od * tf.reduce_sum(tf.square(off)) + lambda_d * tf.reduce_sum(tf.square(diag - 1.0))

    def cov_of(mean):
        centred = mean - tf.reduce_mean(mean, axis=0, keepdims=True)
        return tf.matmul(centred, centred, transpose_a=True) / tf.cast(tf.shape(mean)[0], mean.dtype)

    fam = spec.family
    if fam == "beta_vae":
        return lambda mean, logvar, z, kl, step: value * kl
    if fam == "beta_tc_vae":
        return lambda mean, logvar, z, kl, step: kl + (value - 1.0) * total_correlation(z, mean, logvar)
    if fam == "annealed_vae":
        ramp = float(config.annealed_steps or config.steps)
        gamma = float(config.annealed_gamma)

        def annealed(mean, logvar, z, kl, step):
            c = tf.minimum(value, value * tf.cast(step, tf.float32) / ramp)
            return gamma * tf.abs(kl - c)

        return annealed
    if fam == "dip_vae_i":
        return lambda mean, logvar, z, kl, step: kl + dip(cov_of(mean), value, 10.0 * value)
    if fam == "dip_vae_ii":
        return lambda mean, logvar, z, kl, step: kl + dip(
            cov_of(mean) + tf.linalg.diag(tf.reduce_mean(tf.exp(logvar), axis=0)), value, value
        )
    raise ValueError(f"cannot train family {fam!r}")


def _export_saved_model(tf, encoder, decoder, image_shape, n_latents: int, path: Path) -> None:
    """Write encoder and decoder as a TF2 SavedModel with the zoo's signatures."""
    h, w, c = image_shape
    module = tf.Module()
    module.encoder = encoder
    module.decoder = decoder

    @tf.function(input_signature=[tf.TensorSpec([None, h, w, c], tf.float32, name="images")])
    def gaussian_encoder(images):
        mean, logvar = encoder(images, training=False)
        return {"mean": mean, "logvar": logvar}

    @tf.function(input_signature=[tf.TensorSpec([None, n_latents], tf.float32, name="latent_vectors")])
    def decode(latent_vectors):
        return {"images": decoder(latent_vectors, training=False)}

    @tf.function(input_signature=[tf.TensorSpec([None, h, w, c], tf.float32, name="images")])
    def reconstructions(images):
        mean, _ = encoder(images, training=False)
        return {"images": decoder(mean, training=False)}

    tf.saved_model.save(
        module, str(path),
        signatures={"gaussian_encoder": gaussian_encoder, "decoder": decode, "reconstructions": reconstructions},
    )


def _write_curve_png(rows: list[dict[str, float]], path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    steps = [r["step"] for r in rows]
    ax1.plot(steps, [r["reconstruction_loss"] for r in rows])
    ax1.set(xlabel="step", ylabel="reconstruction loss (nats)", title="reconstruction")
    ax2.plot(steps, [r["kl_loss"] for r in rows], label="KL")
    ax2.plot(steps, [r["regularizer"] for r in rows], label="regulariser")
    ax2.set(xlabel="step", ylabel="nats", title="KL and regulariser")
    ax2.legend()
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=80)


def _load_dataset(config: TrainConfig):
    from repspace.data import load_dataset

    return load_dataset(config.dataset, data_dir=config.data_dir, image_size=config.image_size)


def _draw_pool(dataset: ImageDataset, config: TrainConfig, rng: np.random.Generator) -> np.ndarray | None:
    if config.pool_size <= 0:
        return None
    n = len(dataset)
    if config.pool_size >= n:
        idx = np.arange(n)
    else:
        idx = np.sort(rng.choice(n, size=config.pool_size, replace=False))
    chunks = [dataset.images(idx[s:s + 4096]).astype(np.float16) for s in range(0, len(idx), 4096)]
    return np.concatenate(chunks)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def train_model(
    spec: ModelSpec,
    config: TrainConfig,
    dest: str | Path,
    *,
    dataset: ImageDataset | None = None,
) -> TrainedModel:
    """Train one model of the grid into ``dest/<spec.number>`` (skipped when there).

    Trains in ``dest/.<n>.tmp-<id>`` and renames it to ``dest/<n>`` once everything is
    written, so a killed run leaves no half model behind. A finished model with the same
    config is not trained again; one with another config raises FileExistsError.

    Parameters
    ----------
    spec : ModelSpec
        From :func:`model_grid`.
    config : TrainConfig
    dest : path
        The ensemble's directory.
    dataset : optional
        Overrides ``config.dataset`` (anything with ``len``, ``images(indices)``,
        ``image_shape`` and ``name``).
    """
    dest = Path(dest)
    final = dest / str(spec.number)
    if is_trained(final):
        return TrainedModel(final, spec, _check_existing(final, config, spec), skipped=True)
    if final.exists():
        raise FileExistsError(f"{final} exists but holds no finished model; move it away first")
    dest.mkdir(parents=True, exist_ok=True)
    if dataset is None:
        dataset = _load_dataset(config)
    image_shape = tuple(int(s) for s in dataset.image_shape)
    label = spec.label()
    start = time.time()

    tf = _configure_tf(config, spec.seed)
    rng = np.random.default_rng([spec.seed, spec.number, 0x5EED])
    pool = _draw_pool(dataset, config, rng)

    encoder = build_encoder(config, image_shape)
    decoder = build_decoder(config, image_shape)
    import keras

    optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate)
    variables = encoder.trainable_variables + decoder.trainable_variables
    optimizer.build(variables)
    regularizer = _regularizer(tf, config, spec)

    def train_step(x, eps, step):
        x = tf.cast(x, tf.float32)
        with tf.GradientTape() as tape:
            mean, logvar = encoder(x, training=True)
            z = mean + tf.exp(0.5 * logvar) * eps
            logits = decoder(z, training=True)
            recon = tf.reduce_mean(tf.reduce_sum(
                tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits), axis=[1, 2, 3]))
            kl = tf.reduce_mean(0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(logvar) - logvar - 1.0, axis=1))
            reg = regularizer(mean, logvar, z, kl, step)
            loss = recon + reg
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return tf.stack([loss, recon, kl, reg])

    @tf.function(jit_compile=config.jit_compile)
    def train_steps(xs, eps, first_step):
        """Consecutive steps in one call: xs (K, B, H, W, C), eps (K, B, latent) -> losses (K, 4)."""
        k = tf.shape(xs)[0]
        out = tf.TensorArray(tf.float32, size=k)
        for i in tf.range(k):
            out = out.write(i, train_step(xs[i], eps[i], first_step + tf.cast(i, tf.int64)))
        return out.stack()

    names = ("loss", "reconstruction_loss", "kl_loss", "regularizer")
    rows: list[dict[str, float]] = []
    acc = np.zeros(4)
    acc_n = 0
    chunk = max(1, config.steps_per_call)
    t_train = time.time()
    done = 0
    while done < config.steps:
        k = min(chunk, config.steps - done)
        if pool is not None:
            xs = pool[rng.integers(len(pool), size=(k, config.batch_size))]
        else:
            flat = dataset.images(rng.integers(len(dataset), size=k * config.batch_size))
            xs = flat.reshape(k, config.batch_size, *image_shape)
        eps = rng.standard_normal((k, config.batch_size, config.n_latents), dtype=np.float32)
        losses = train_steps(tf.constant(xs), tf.constant(eps), tf.constant(done + 1, tf.int64)).numpy()
        for row in losses:
            done += 1
            acc += row
            acc_n += 1
            if done % config.log_every == 0 or done == config.steps:
                rows.append({"step": done, **{n: float(v) for n, v in zip(names, acc / acc_n)}})
                acc[:] = 0
                acc_n = 0
            if config.progress_every and (done % config.progress_every == 0 or done == config.steps):
                r = rows[-1] if rows else dict(zip(names, row))
                rate = done / (time.time() - t_train)
                _log(f"{label}: step {done}/{config.steps} loss {r['loss']:.2f} "
                     f"recon {r['reconstruction_loss']:.2f} kl {r['kl_loss']:.2f} ({rate:.0f} steps/s)")
    train_seconds = time.time() - t_train
    if not np.isfinite(rows[-1]["loss"]):
        raise FloatingPointError(f"{label}: loss is {rows[-1]['loss']} after {config.steps} steps")

    tmp = dest / f".{spec.number}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        _export_saved_model(tf, encoder, decoder, image_shape, config.n_latents, tmp / "model" / "tfhub")
        res = _results_dir(tmp)
        (res / "json").mkdir(parents=True)
        (res / "gin").mkdir()
        info = spec.info(getattr(dataset, "name", config.dataset))
        extra = {
            "model.batch_size": config.batch_size, "model.num_latent": config.n_latents,
            "model.training_steps": config.steps, "AdamOptimizer.learning_rate": config.learning_rate,
            "reconstruction_loss.loss_fn": "@bernoulli_loss", "encoder.encoder_fn": f"@{config.architecture}",
        }
        (res / "gin" / "train.gin").write_text(format_train_gin(info, extra))
        with open(res / "loss_curve.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["step", *names])
            writer.writeheader()
            writer.writerows(rows)
        _write_curve_png(rows, res / "loss_curve.png", label)
        results = {
            **{k: rows[-1][k] for k in names},
            "elbo": rows[-1]["reconstruction_loss"] + rows[-1]["kl_loss"],
            "steps": config.steps,
            "train_seconds": train_seconds,
            "elapsed_seconds": time.time() - start,
            "steps_per_second": config.steps / train_seconds,
        }
        run = {
            "run_id": uuid.uuid4().hex,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "info": info.as_dict(),
            "model": _model_config(config, spec),
            "config": config.as_dict(),
            "image_shape": list(image_shape),
            "tensorflow": tf.__version__,
        }
        (res / "json" / "train_config.json").write_text(json.dumps(run, indent=2))
        (res / "json" / "train_results.json").write_text(json.dumps(results, indent=2))
        try:
            os.replace(tmp, final)
        except OSError:
            if not is_trained(final):  # someone else's half copy: not ours to remove
                raise
            # the same model finished elsewhere first (a rerun of a task thought lost)
            return TrainedModel(final, spec, _check_existing(final, config, spec), skipped=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _log(f"{label}: done in {results['elapsed_seconds']:.1f} s, recon {results['reconstruction_loss']:.2f}, "
         f"kl {results['kl_loss']:.2f} -> {final}")
    return TrainedModel(final, spec, results, skipped=False)


def train_ensemble(
    config: TrainConfig,
    dest: str | Path,
    *,
    client: Any = None,
    dataset: ImageDataset | None = None,
    numbers: Sequence[int] | None = None,
) -> list[Path]:
    """Train the grid of ``config`` into ``dest/<n>``, one Dask task per model.

    Parameters
    ----------
    config : TrainConfig
    dest : path
        The ensemble's directory; finished models there are skipped.
    client : distributed.Client, optional
        Where to run; by default a LocalCluster of ``config.workers`` processes with
        one thread each, bound to 127.0.0.1, closed at the end.
    dataset : optional
        Overrides ``config.dataset`` (must pickle when workers are processes).
    numbers : sequence of int, optional
        Train only these models of the grid.

    Returns
    -------
    list of Path
        The model directories, in grid order.

    Raises
    ------
    RuntimeError
        When any model failed, naming each by number, after the others finished.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    specs = model_grid(config)
    if numbers is not None:
        wanted = set(int(n) for n in numbers)
        specs = [s for s in specs if s.number in wanted]
    todo = [s for s in specs if not is_trained(dest / str(s.number))]
    for s in specs:
        if s not in todo:
            _check_existing(dest / str(s.number), config, s)
    _log(f"ensemble in {dest}: {len(specs)} models, {len(specs) - len(todo)} already trained")
    if todo:
        own = client is None
        if own:
            from ..cluster import local_cluster

            client = local_cluster(min(config.workers, len(todo)), threads_per_worker=1)
        try:
            from distributed import as_completed

            futures = {
                client.submit(train_model, s, config, dest, dataset=dataset, pure=False, key=f"train-{s.number}-{uuid.uuid4().hex[:6]}"): s
                for s in todo
            }
            failed: dict[int, str] = {}
            for k, fut in enumerate(as_completed(futures), 1):
                spec = futures[fut]
                if fut.status != "finished":
                    err = fut.exception()
                    failed[spec.number] = f"{type(err).__name__}: {err}"
                    _log(f"[{k}/{len(todo)}] {spec.label()}: FAILED {failed[spec.number]}")
                    continue
                r = fut.result().results
                _log(f"[{k}/{len(todo)}] {spec.label()}: recon {r['reconstruction_loss']:.2f} "
                     f"kl {r['kl_loss']:.2f} ({r.get('elapsed_seconds', 0):.0f} s)")
            if failed:
                lines = "; ".join(f"model {n}: {why}" for n, why in sorted(failed.items()))
                raise RuntimeError(f"{len(failed)} of {len(todo)} models failed to train ({lines})")
        finally:
            if own:
                cluster = client.cluster
                client.close()
                cluster.close()
    return [dest / str(s.number) for s in specs]
