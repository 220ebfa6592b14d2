"""The weak learners of the paper's fusion experiment: beta-VAEs with a one-dimensional latent space,
trained on points of the unit circle (TensorFlow, seeded).

Encoder and decoder are MLPs (``hidden``, tanh); the encoder gives the mean and log-variance of a
1-D Gaussian posterior, the decoder a point of the plane. Each step draws ``batch_size`` angles
uniformly, and the loss is the mean squared reconstruction error plus beta times the KL divergence
to N(0, 1), minimised by Adam. The paper's settings are the defaults (its notebook
``Rep_space_fusion_SO(2).ipynb``): 256-256, beta 0.03, 3,000 steps of 2,048, learning rate 1e-3.
A 1-D code cannot hold a circle: a trained learner tears it somewhere.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._checks import check_types
from .tf_mlp import MLP, Adam, set_threads

__all__ = ["CircleVAEOptions", "train_circle_vae"]

_STEPS_PER_CALL = 100


@dataclasses.dataclass(frozen=True)
class CircleVAEOptions:
    """One weak learner's architecture and training (defaults: the paper's)."""

    hidden: tuple[int, ...] = (256, 256)
    steps: int = 3000
    batch_size: int = 2048
    beta: float = 0.03
    learning_rate: float = 1e-3

    def __post_init__(self) -> None:
        check_types(self, "")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must be one or more positive widths, got {list(self.hidden)}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate}")
        if not (self.beta >= 0 and math.isfinite(self.beta)):
            raise ValueError(f"beta must be 0 or more, got {self.beta}")


def train_circle_vae(theta: np.ndarray, options: CircleVAEOptions = CircleVAEOptions(), *, seed: int = 0,
                     threads: int | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """Train one learner and encode the angles ``theta`` (item,): mu, logvar (item,) and its final losses."""
    from .._quiet import import_tensorflow

    tf = import_tensorflow()
    set_threads(tf, threads)
    rng = np.random.default_rng(seed)
    encoder = MLP(tf, (2, *options.hidden, 2), tf.tanh, rng)
    decoder = MLP(tf, (1, *options.hidden, 2), tf.tanh, rng)
    variables = encoder.variables + decoder.variables
    adam = Adam(tf, variables, options.learning_rate)
    batch, beta = options.batch_size, options.beta

    def encode(angles):
        out = encoder(tf.stack([tf.cos(angles), tf.sin(angles)], axis=-1))
        return out[:, :1], out[:, 1:]

    @tf.function(reduce_retracing=True)
    def train(start, count):
        losses = tf.TensorArray(tf.float32, size=count, element_shape=[2])
        for k in tf.range(count):
            step = start + k
            key = tf.stack([tf.constant(seed, tf.int64), tf.cast(step, tf.int64)])
            angles = tf.random.stateless_uniform([batch], key, maxval=2 * math.pi)
            noise = tf.random.stateless_normal([batch, 1], key + tf.constant([0, 1 << 40], tf.int64))
            points = tf.stack([tf.cos(angles), tf.sin(angles)], axis=-1)
            with tf.GradientTape() as tape:
                mu, logvar = encode(angles)
                kl = tf.reduce_mean(tf.reduce_sum(0.5 * (tf.square(mu) + tf.exp(logvar) - logvar - 1.0), axis=-1))
                recon = tf.reduce_mean(tf.square(decoder(mu + tf.exp(0.5 * logvar) * noise) - points))
                loss = recon + beta * kl
            adam.step(tape.gradient(loss, variables), step)
            losses = losses.write(k, tf.stack([recon, kl]))
        return losses.stack()

    last = np.zeros((1, 2))
    for start in range(0, options.steps, _STEPS_PER_CALL):
        last = train(tf.constant(start), tf.constant(min(_STEPS_PER_CALL, options.steps - start))).numpy()
    mu, logvar = encode(tf.constant(np.asarray(theta, np.float32)))
    tail = last[-min(len(last), 20):].mean(axis=0)
    return (mu.numpy()[:, 0].astype(np.float64), logvar.numpy()[:, 0].astype(np.float64),
            {"reconstruction": float(tail[0]), "kl": float(tail[1])})
