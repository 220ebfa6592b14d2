"""The classifier measure's model: an MLP that names the item a posterior sample came from (TensorFlow).

For one space of N items with diagonal-Gaussian posteriors, an MLP (``hidden`` layers,
leaky ReLU, softmax over the N items) is trained by Adam on batches of (item, sample)
pairs: items drawn uniformly, one reparameterised sample of each item's posterior. After
training, the *mean predicted distribution* of item i is the network's softmax averaged over
``eval_samples`` samples of p(u|x_i): an (N, N) matrix whose rows sum to 1. The
Jensen-Shannon divergence between two spaces' matrices (:func:`repspace.kernels.jensen_shannon`)
is the paper's classifier measure.

Everything is seeded: the initial weights come from a numpy Generator, and the items and
noise of every step from TensorFlow's stateless random ops keyed by (seed, step), so a space
is trained on the same items and, for spaces of one dimension, the same noise, whatever
else runs in the process. Two runs with one seed on one machine give the same matrix.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._checks import check_types
from .tf_mlp import MLP, Adam, set_threads

__all__ = ["ClassifierOptions", "item_predictions", "PAPER_CLASSIFIER"]


@dataclasses.dataclass(frozen=True)
class ClassifierOptions:
    """The classifier and its training.

    Attributes
    ----------
    hidden : widths of the hidden layers (the paper: 256, 256).
    steps : Adam steps (the paper: 10,000).
    batch_size : (item, sample) pairs per step (the paper: 16,384).
    learning_rate : Adam's learning rate (the paper: 3e-4).
    eval_samples : posterior samples per item in its mean predicted distribution (the paper: 1,000).
    """

    hidden: tuple[int, ...] = (256, 256)
    steps: int = 10_000
    batch_size: int = 16_384
    learning_rate: float = 3e-4
    eval_samples: int = 1_000

    def __post_init__(self) -> None:
        check_types(self, "")
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        for name in ("steps", "batch_size", "eval_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden must be one or more positive widths, got {list(self.hidden)}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")

    def flops(self, n_items: int, dim: int) -> float:
        """Floating-point operations of one training (forward and backward) and its evaluation."""
        widths = (dim, *self.hidden, n_items)
        per_row = 2 * sum(a * b for a, b in zip(widths[:-1], widths[1:]))
        return per_row * (3 * self.steps * self.batch_size + n_items * self.eval_samples)


PAPER_CLASSIFIER = ClassifierOptions()
"""The paper's settings (its notebook ``Similarity_comparison_synthetic.ipynb``)."""

_STEPS_PER_CALL = 50
_EVAL_ROWS = 16_384


def item_predictions(mu: np.ndarray, logvar: np.ndarray, options: ClassifierOptions = PAPER_CLASSIFIER, *,
                     seed: int = 0, threads: int | None = None) -> tuple[np.ndarray, float]:
    """Train the classifier on one space and return its mean predicted distributions.

    Parameters
    ----------
    mu, logvar : (item, dim) posteriors of the space's N items.
    options : ClassifierOptions.
    seed : seeds the weights, the items and the noise.
    threads : TensorFlow's thread pools, where this process has not started them yet (a worker's
        first task); None leaves them as they are.

    Returns
    -------
    predictions : (item, item) float64; row i is the mean predicted distribution of item i.
    final_loss : the mean cross-entropy (nats) of the last ``min(100, steps)`` steps.
    """
    from .._quiet import import_tensorflow

    tf = import_tensorflow()
    set_threads(tf, threads)
    mu = np.asarray(mu, np.float32)
    logvar = np.asarray(logvar, np.float32)
    if mu.ndim == 1:
        mu, logvar = mu[:, None], logvar[:, None]
    n, d = mu.shape
    rng = np.random.default_rng(seed)
    net = MLP(tf, (d, *options.hidden, n), lambda x: tf.nn.leaky_relu(x, alpha=0.2), rng)
    adam = Adam(tf, net.variables, options.learning_rate)
    mu_t, std_t = tf.constant(mu), tf.constant(np.exp(logvar / 2))
    batch = options.batch_size

    @tf.function(jit_compile=False, reduce_retracing=True)
    def train(start, count):
        losses = tf.TensorArray(tf.float32, size=count)
        for k in tf.range(count):
            step = start + k
            key = tf.stack([tf.constant(seed, tf.int64), tf.cast(step, tf.int64)])
            items = tf.random.stateless_uniform([batch], key, minval=0, maxval=n, dtype=tf.int32)
            noise = tf.random.stateless_normal([batch, d], key + tf.constant([0, 1 << 40], tf.int64))
            u = tf.gather(mu_t, items) + tf.gather(std_t, items) * noise
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=items, logits=net(u)))
            adam.step(tape.gradient(loss, net.variables), step)
            losses = losses.write(k, loss)
        return losses.stack()

    tail: list[float] = []
    for start in range(0, options.steps, _STEPS_PER_CALL):
        count = min(_STEPS_PER_CALL, options.steps - start)
        tail = (tail + train(tf.constant(start), tf.constant(count)).numpy().tolist())[-100:]

    @tf.function(reduce_retracing=True)
    def mean_softmax(items, key):
        noise = tf.random.stateless_normal([tf.size(items), d], key)
        u = tf.gather(mu_t, items) + tf.gather(std_t, items) * noise
        return tf.nn.softmax(net(u))

    s = options.eval_samples
    per_call = max(1, _EVAL_ROWS // s)  # items per call, each with all of its samples
    out = np.empty((n, n), np.float64)
    for lo in range(0, n, per_call):
        hi = min(n, lo + per_call)
        items = np.repeat(np.arange(lo, hi, dtype=np.int32), s)
        key = tf.constant([seed, -1 - lo], tf.int64)
        probs = mean_softmax(tf.constant(items), key).numpy().astype(np.float64)
        out[lo:hi] = probs.reshape(hi - lo, s, n).mean(axis=1)
    out /= out.sum(axis=1, keepdims=True)
    return out, float(np.mean(tail))
