"""Train one model of an ensemble into its directory, in the zoo's layout.

:func:`train_model` runs the optimisation loop and writes ``dest/<n>`` (layout and
losses in :mod:`repspace.models.training`); the helpers here record what a model
directory was trained with, so that a rerun skips a finished model and refuses one
trained with another config.
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
from pathlib import Path
from typing import Any

import numpy as np

from repspace.models.architectures import _export_saved_model, _regularizer, build_decoder, build_encoder
from repspace.models.train_config import ImageDataset, ModelSpec, TrainConfig
from repspace.models.zoo import format_train_gin

__all__ = ["TrainedModel", "is_trained", "train_model"]


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


_LOSSES = ("loss", "reconstruction_loss", "kl_loss", "regularizer")


# --- TensorFlow parts ---------------------------------------------------------------


def _configure_tf(config: TrainConfig, seed: int):
    from .._quiet import import_tensorflow

    tf = import_tensorflow()

    try:
        tf.config.threading.set_intra_op_parallelism_threads(config.threads)
        tf.config.threading.set_inter_op_parallelism_threads(config.threads)
    except RuntimeError:
        pass  # the runtime is already initialised in this process: keep its thread pools
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    tf.keras.utils.set_random_seed(seed)
    return tf


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
    start = time.time()
    if config.shipped and dataset is None:
        from .shipped import shipped_model

        shipped = shipped_model(_model_config(config, spec))
        if shipped is not None:
            return _write_shipped(shipped, spec, config, dest, start)
    if dataset is None:
        dataset = _load_dataset(config)
    image_shape = tuple(int(s) for s in dataset.image_shape)
    label = spec.label()

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

    names = _LOSSES
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

    results = {
        **{k: rows[-1][k] for k in _LOSSES},
        "elbo": rows[-1]["reconstruction_loss"] + rows[-1]["kl_loss"],
        "steps": config.steps,
        "train_seconds": train_seconds,
        "steps_per_second": config.steps / train_seconds,
    }
    saved = _save_model(tf, encoder, decoder, image_shape, spec, config, dest, rows, results,
                        getattr(dataset, "name", config.dataset), start)
    if saved.skipped:
        return saved
    if config.progress_every:
        _log(f"{label}: done in {results['elapsed_seconds']:.1f} s, recon {results['reconstruction_loss']:.2f}, "
             f"kl {results['kl_loss']:.2f} -> {final}")
    return TrainedModel(final, spec, results, skipped=False)


def _save_model(tf: Any, encoder: Any, decoder: Any, image_shape: tuple[int, ...], spec: ModelSpec,
                config: TrainConfig, dest: Path, rows: list[dict[str, float]], results: dict[str, Any],
                dataset_name: str, start: float, record: dict[str, Any] | None = None) -> TrainedModel:
    """Write a model into ``dest/.<n>.tmp-<id>`` (SavedModel, gin, loss curve, records) and rename it to
    ``dest/<n>`` once everything is there; ``record``: a shipped model's training record, kept as it was."""
    final = dest / str(spec.number)
    tmp = dest / f".{spec.number}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        _export_saved_model(tf, encoder, decoder, image_shape, config.n_latents, tmp / "model" / "tfhub")
        res = _results_dir(tmp)
        (res / "json").mkdir(parents=True)
        (res / "gin").mkdir()
        info = spec.info(dataset_name)
        extra = {
            "model.batch_size": config.batch_size, "model.num_latent": config.n_latents,
            "model.training_steps": config.steps, "AdamOptimizer.learning_rate": config.learning_rate,
            "reconstruction_loss.loss_fn": "@bernoulli_loss", "encoder.encoder_fn": f"@{config.architecture}",
        }
        (res / "gin" / "train.gin").write_text(format_train_gin(info, extra))
        with open(res / "loss_curve.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["step", *_LOSSES])
            writer.writeheader()
            writer.writerows(rows)
        _write_curve_png(rows, res / "loss_curve.png", spec.label())
        run = record or {
            "run_id": uuid.uuid4().hex,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "info": info.as_dict(),
            "model": _model_config(config, spec),
            "config": config.as_dict(),
            "image_shape": list(image_shape),
            "tensorflow": tf.__version__,
        }
        (res / "json" / "train_config.json").write_text(json.dumps(run, indent=2))
        results["elapsed_seconds"] = time.time() - start
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
    return TrainedModel(final, spec, results, skipped=False)


def _write_shipped(shipped: dict[str, Any], spec: ModelSpec, config: TrainConfig, dest: Path,
                   start: float) -> TrainedModel:
    """The model of ``spec`` from weights shipped with the package (:mod:`repspace.models.shipped`), written
    as a trained one is; its results are those recorded when it was trained, and say where it came from."""
    record = shipped["record"]
    tf = _configure_tf(config, spec.seed)
    image_shape = tuple(int(s) for s in record["image_shape"])
    encoder, decoder = build_encoder(config, image_shape), build_decoder(config, image_shape)
    encoder.set_weights(shipped["encoder"])
    decoder.set_weights(shipped["decoder"])
    rows = [{k: float(v) if k != "step" else int(v) for k, v in row.items()}
            for row in csv.DictReader(record["curve"].splitlines())]
    results = {**record["results"], "shipped": shipped["file"], "weights": "float16, as shipped"}
    run = {k: record[k] for k in ("info", "model", "config", "image_shape", "tensorflow", "created")}
    run["run_id"] = uuid.uuid4().hex
    return _save_model(tf, encoder, decoder, image_shape, spec, config, dest, rows, results,
                       record["info"]["dataset"], start, record=run)
