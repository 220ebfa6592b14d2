"""The networks and per-family loss terms of the VAEs trained by :mod:`repspace.models.training`.

Keras encoder and decoder (disentanglement_lib's conv pair, or a small MLP), the term
each family adds to the reconstruction loss (formulas in :mod:`repspace.models.training`),
and the export of a trained pair as a TF2 SavedModel with the zoo's signatures. Keras and
TensorFlow are imported inside the functions, when a model is trained.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repspace.models.train_config import ModelSpec, TrainConfig

__all__ = ["build_decoder", "build_encoder"]


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
