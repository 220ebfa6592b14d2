"""Small multilayer perceptrons in TensorFlow, seeded from numpy: the classifier measure's networks
and the circle's weak learners. Plain variables and a hand-written Adam, so that a network's whole
training runs inside one ``tf.function`` and depends on nothing but its seed."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["MLP", "Adam", "set_threads"]


def set_threads(tf: Any, threads: int | None) -> None:
    """TensorFlow's thread pools, where this process has not started them yet (a worker's first task)."""
    if threads is None:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # the runtime is already initialised in this process: keep its thread pools


def _glorot(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)


class MLP:
    """Dense layers ``widths[0] -> ... -> widths[-1]``, ``activation`` between them, none after the last.

    Weights are Glorot-uniform from ``rng`` (a numpy Generator), biases 0.
    """

    def __init__(self, tf: Any, widths: tuple[int, ...], activation: Any, rng: np.random.Generator):
        self.tf, self.activation = tf, activation
        self.weights = [tf.Variable(_glorot(rng, a, b)) for a, b in zip(widths[:-1], widths[1:])]
        self.biases = [tf.Variable(np.zeros(b, np.float32)) for b in widths[1:]]

    @property
    def variables(self) -> list[Any]:
        return [p for pair in zip(self.weights, self.biases) for p in pair]

    def __call__(self, x: Any) -> Any:
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            x = self.activation(x @ w + b)
        return x @ self.weights[-1] + self.biases[-1]


class Adam:
    """Adam (Kingma and Ba) over a fixed list of variables; ``step(grads, t)`` with t counted from 0."""

    def __init__(self, tf: Any, variables: list[Any], learning_rate: float, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-7):
        self.tf, self.variables = tf, variables
        self.lr, self.beta1, self.beta2, self.eps = learning_rate, beta1, beta2, eps
        self.first = [tf.Variable(tf.zeros_like(v)) for v in variables]
        self.second = [tf.Variable(tf.zeros_like(v)) for v in variables]

    def step(self, grads: list[Any], t: Any) -> None:
        tf = self.tf
        t = tf.cast(t + 1, tf.float32)
        scale = self.lr * tf.sqrt(1 - self.beta2 ** t) / (1 - self.beta1 ** t)
        for p, g, m, v in zip(self.variables, grads, self.first, self.second):
            m.assign(self.beta1 * m + (1 - self.beta1) * g)
            v.assign(self.beta2 * v + (1 - self.beta2) * tf.square(g))
            p.assign_sub(scale * m / (tf.sqrt(v) + self.eps))
