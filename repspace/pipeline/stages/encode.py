"""The encode stages: every model's posteriors over the fingerprint images (``encode``) or over a
whole dataset (``encode_dataset``), in the one layout of :mod:`repspace.store.embeddings`.

``encode`` runs one task per block of models; ``encode_dataset`` one task per block of images,
which renders the block once and encodes it with every model still missing there. Each task
records per model and image block whether it was encoded (1) or failed (-1, with the reason):
that status is the stage's marker, so a rerun encodes what is missing or failed, and models
added to the run only their own. A model whose posteriors are NaN, that cannot be loaded, or that
takes images of another shape than the fingerprint's, is named and left out; the rest of the run
goes on. A posterior file (``models.source = "posteriors"``) is read, not encoded: its rows for
the block's images, after checking that it was made on the run's images. The group's attr
``fixed_logvar`` ({name: [log-variance per channel]}) records the models whose variance is a
configured constant rather than an output of the model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from collections import Counter
from typing import Any

import numpy as np

from ...data import load_dataset, sample_indices
from ...models import is_posterior_file, load_encoder, open_posteriors
from ...store import StoreError, block_ranges, identity_hash, open_group, verify
from ...store import embeddings as schema
from ...store import models as models_schema
from ..stage import Block, Plan, Stage, StageContext
from .latents import LatentsOptions

__all__ = ["ENCODE", "ENCODE_DATASET", "FailedModelsWarning", "encode_task", "DATASET_IMAGES_STREAM"]

DATASET_IMAGES_STREAM = (0,)
"""Spawn key of the seeded subset of a dataset's images (the fingerprint set uses ())."""


class FailedModelsWarning(UserWarning):
    """Some models could not be encoded; the run goes on without them."""


def _posteriors(path: str, options: dict[str, Any] | None, images, emb, start: int, stop: int, batch_size: int):
    """(mu, logvar) (image, channel) of one model on images start:stop, and its fixed log-variance or None."""
    if is_posterior_file(path):
        source = open_posteriors(path)
        images_attr = json.loads(emb.attrs.get("images", "{}"))
        index = np.asarray(emb["dataset_index"][start:stop])
        return (*source.posteriors(str(emb.attrs.get("images_id")), images_attr, index), None)
    enc = load_encoder(path, options=options)
    return (*enc(images(), batch_size=batch_size), enc.fixed_logvar)


def encode_task(
    store_path: str,
    group: str,
    rows: list[tuple[int, str, str]],
    image_block: int,
    start: int,
    stop: int,
    dataset: dict[str, Any] | None,
    batch_size: int,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Encode images start:stop (the fingerprint images when ``dataset`` is None) with each model of ``rows``
    (a posterior file's rows are read, not encoded).

    rows : (model index, name, path); options : the run's encoder options (``[models.encoder]``).
    Returns {"failed": {name: reason}, "fixed_logvar": {name: [per channel]}, "seconds": float}.
    """
    t0 = time.perf_counter()
    emb = open_group(store_path, group, mode="r+")
    loaded: list[np.ndarray] = []

    def images() -> np.ndarray:  # read or rendered once, and only for a model that encodes them
        if not loaded:
            if dataset is None:
                loaded.append(np.asarray(open_group(store_path, "fingerprint")["images"][start:stop], np.float32))
            else:
                ds = load_dataset(dataset["name"], data_dir=dataset["data_dir"], image_size=dataset["image_size"])
                loaded.append(np.asarray(ds.images(np.asarray(emb["dataset_index"][start:stop])), dtype=np.float32))
        return loaded[0]

    n_channels = int(emb["mu"].shape[1])
    failed: dict[str, str] = {}
    fixed: dict[str, list[float]] = {}
    for i, name, path in rows:
        try:
            mu, logvar, fixed_logvar = _posteriors(path, options, images, emb, start, stop, batch_size)
        except Exception as err:  # one model that cannot encode does not stop the others
            failed[name] = f"{type(err).__name__}: {err}"
            emb["encoded"][i, image_block] = -1
            continue
        mu, logvar = np.asarray(mu, np.float32).T, np.asarray(logvar, np.float32).T  # (channel, image)
        if mu.shape != (n_channels, stop - start) or logvar.shape != mu.shape:
            failed[name] = f"gives {mu.shape[0]} channels for {mu.shape[1]} images; the run expects {n_channels}"
        else:
            bad = ~(np.isfinite(mu) & np.isfinite(logvar))
            if bad.any():
                channels = sorted(set(np.nonzero(bad)[0].tolist()))
                where = "" if dataset is None else f" on images {start}:{stop}"
                failed[name] = f"NaN or infinite posteriors in channels {channels}{where} ({int(bad.sum())} values)"
        if name in failed:
            emb["encoded"][i, image_block] = -1
            continue
        emb["mu"][i, :, start:stop] = mu
        emb["logvar"][i, :, start:stop] = logvar
        emb["encoded"][i, image_block] = schema.content_stamp(mu, logvar)
        if fixed_logvar is not None:
            fixed[name] = [float(v) for v in fixed_logvar]
    return {"failed": failed, "fixed_logvar": fixed, "seconds": time.perf_counter() - t0}


def probe_task(path: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """What one model is: its channels and input shape, or why it cannot be read (runs on a worker)."""
    try:
        enc = open_posteriors(path) if is_posterior_file(path) else load_encoder(path, options=options)
        return {"n_latents": int(enc.n_latents), "input_shape": [None if s is None else int(s) for s in enc.input_shape]}
    except Exception as err:  # a model that cannot be read is named and left out
        return {"error": f"{type(err).__name__}: {err}"}


def _shape(shape) -> str:
    return "x".join("?" if s is None else str(s) for s in shape)


def agree(ctx: StageContext, models: list[dict[str, Any]], image_shape: tuple[int, ...] | None = None
          ) -> tuple[int, list, dict[str, str]]:
    """The channel count of the run (the configuration's, else the one most models give) and its models'
    input shape; and {name: reason} of the models that give another count, cannot be read, or take images
    of another shape than ``image_shape`` (H, W, C) when given."""
    paths = [m["path"] for m in models]
    options = dataclasses.asdict(ctx.config.models.encoder)
    if ctx.client is not None:
        results = ctx.client.gather(ctx.client.map(probe_task, paths, options=options, pure=False, key=[
            f"probe-{i}-{os.urandom(4).hex()}" for i in range(len(paths))]))
    else:
        results = [probe_task(p, options) for p in paths]
    counts = Counter(r["n_latents"] for r in results if "n_latents" in r)
    if not counts:
        raise RuntimeError(f"none of the {len(models)} models can be read: " + "; ".join(
            f"{m['name']}: {r['error']}" for m, r in list(zip(models, results))[:5]))
    top = counts.most_common()
    if ctx.config.n_channels is not None:
        n = ctx.config.n_channels
    elif len(top) > 1 and top[0][1] == top[1][1]:
        raise ValueError(f"the models disagree on their channels ({', '.join(f'{c} models give {k}' for k, c in top)}); "
                         "set n_channels in the configuration")
    else:
        n = top[0][0]
    failed = {}
    for m, r in zip(models, results):
        if "error" in r:
            failed[m["name"]] = f"cannot be read ({r['error']})"
        elif r["n_latents"] != n:
            source = "the configuration's n_channels" if ctx.config.n_channels else f"{counts[n]} of {len(models)} models"
            failed[m["name"]] = f"gives {r['n_latents']} channels; the run's models give {n} ({source})"
        elif image_shape is not None and any(w is not None and w != g for w, g in zip(r["input_shape"], image_shape)):
            failed[m["name"]] = (f"takes images of {_shape(r['input_shape'])} (H x W x C), refused images of "
                                 f"{_shape(image_shape)} (the fingerprint's)")
    shapes = Counter(tuple(r["input_shape"]) for r in results if r.get("n_latents") == n)
    return n, list(shapes.most_common(1)[0][0]) if shapes else [None, None, None], failed


def _leave_out(ctx: StageContext, lay: schema.Layout, failed: dict[str, str]) -> None:
    """Mark ``failed`` models as failed on every image block, with their reasons."""
    for name in failed:
        lay.group["encoded"][lay.names.index(name), :] = -1
    recorded = json.loads(ctx.group.attrs.get("failed_models", "{}"))
    ctx.group.attrs["failed_models"] = json.dumps({**recorded, **failed}, sort_keys=True)


def _run_models(ctx: StageContext) -> list[dict[str, Any]]:
    return models_schema.read_models(ctx.root[models_schema.GROUP])


def _reencode_damaged(ctx: StageContext, lay: schema.Layout) -> None:
    """Chunks of the group that are missing or damaged: their models are encoded again (StoreError for
    posteriors written from elsewhere, which cannot be)."""
    damage = verify.damaged_embeddings(ctx.store_path, lay.group.path)
    paths = {m["name"]: m["path"] for m in lay.models}
    for d in damage:
        if any(not paths.get(m) for m in d.models):
            raise StoreError(f"{d}; these posteriors were written from elsewhere (write_posteriors): write them again")
    verify.discard(ctx.store_path, damage)
    for d in damage:
        ctx.log(f"{ctx.group.path}: {d}; encoding its models again")
        for m in d.models:
            i = lay.names.index(m)
            if lay.status()[i, d.chunk[2]] > 0:  # encoded ones only: failed and dropped models stay as they are
                lay.group["encoded"][i, d.chunk[2]] = 0


def _blocks(lay: schema.Layout, model_ranges: list[tuple[int, int]], args: Any, skip: dict[str, str]) -> list[Block]:
    """A block per (block of models, block of images) with models not yet encoded there (or failed before,
    which are tried again), leaving out the models of ``skip``."""
    status = lay.status()
    paths = [m["path"] for m in lay.models]
    blocks = []
    for b, (s0, s1) in enumerate(lay.image_blocks):
        for m0, m1 in model_ranges:
            rows = [(i, lay.names[i], paths[i]) for i in range(m0, m1)
                    if status[i, b] in (schema.PENDING, schema.FAILED) and lay.names[i] not in skip]
            if rows:
                name = f"models{m0}-{m1 - 1}" if len(lay.image_blocks) == 1 else f"images{s0}-{s1 - 1}"
                blocks.append(Block(name=name, marker=None, args=(lay.group.path, rows, b, s0, s1, *args)))
    return blocks


def plan_encode(ctx: StageContext) -> Plan:
    c = ctx.config
    models = _run_models(ctx)
    index, attrs, images_id = schema.fingerprint_images(ctx.root)
    n_channels, failed = None, {}
    if "mu" not in ctx.group:  # a new group: the channels the models agree on
        image_shape = tuple(int(d) for d in ctx.root["fingerprint"]["images"].shape[1:])
        n_channels, _, failed = agree(ctx, models, image_shape)
    lay = schema.layout(ctx.group, models, n_channels=n_channels, dataset_index=index,
                        images=attrs, images_id=images_id, models_per_chunk=c.models_per_encode_task,
                        images_per_chunk=index.size)
    _leave_out(ctx, lay, failed)
    _reencode_damaged(ctx, lay)
    ranges = block_ranges(lay.n_models, lay.models_per_chunk)
    blocks = _blocks(lay, ranges, (None, 256, dataclasses.asdict(c.models.encoder)), failed)
    return Plan(blocks=blocks, state=(lay, failed),
                note=f"{lay.n_models} models x {lay.n_channels} channels x {lay.n_images} images")


def plan_encode_dataset(ctx: StageContext) -> Plan:
    c, opts = ctx.config, ctx.config.latents
    models = _run_models(ctx)
    if "mu" in ctx.group:  # the group's channels and images decide; the encode tasks check each model
        n_channels, failed = int(ctx.group["mu"].shape[1]), {}
        image_size = c.image_size if c.image_size is not None else json.loads(ctx.group.attrs["images"])["image_size"]
    else:  # a new group: what the models agree on
        n_channels, input_shape, failed = agree(ctx, models)
        image_size = c.image_size if c.image_size is not None else input_shape[0]
    ds = load_dataset(c.dataset, data_dir=c.data_dir, image_size=image_size)
    index = sample_indices(len(ds), opts.n_dataset_images, c.seed, stream=DATASET_IMAGES_STREAM)
    identity = {"dataset": c.dataset, "image_size": image_size, "n_total": len(ds), "n_images": len(index),
                "seed": c.seed if opts.n_dataset_images is not None else None}
    lay = schema.layout(ctx.group, models, n_channels=n_channels, dataset_index=index,
                        images=identity, images_id=identity_hash(identity, index), models_per_chunk=1,
                        images_per_chunk=opts.images_per_encode_task)
    _leave_out(ctx, lay, failed)
    _reencode_damaged(ctx, lay)
    dataset = {"name": c.dataset, "data_dir": c.data_dir, "image_size": image_size}
    encoder = dataclasses.asdict(c.models.encoder)
    blocks = _blocks(lay, [(0, lay.n_models)], (dataset, opts.batch_size, encoder), failed)
    return Plan(blocks=blocks, state=(lay, failed),
                note=f"{lay.n_models} models x {lay.n_images} images of {c.dataset}")


def finalize(ctx: StageContext, plan: Plan, results: dict[str, Any]) -> str:
    """Record which models failed, and why, and the bytes of every chunk; warn about the models that failed now."""
    lay, left_out = plan.state
    verify.record_embedding_chunks(ctx.store_path, ctx.group)
    recorded = json.loads(ctx.group.attrs.get("failed_models", "{}"))
    new: dict[str, str] = dict(left_out)
    for r in results.values():
        for name, why in r["failed"].items():
            new.setdefault(name, why)
    status = lay.status()
    failed = {n: new.get(n, recorded.get(n, "failed")) for i, n in enumerate(lay.names) if (status[i] < 0).any()}
    ctx.group.attrs["failed_models"] = json.dumps(failed, sort_keys=True)
    fixed = json.loads(ctx.group.attrs.get("fixed_logvar", "{}"))
    for r in results.values():
        fixed.update(r.get("fixed_logvar", {}))
    ctx.group.attrs["fixed_logvar"] = json.dumps(fixed, sort_keys=True)
    if new:
        warnings.warn("models left out of the run: " + "; ".join(f"{k}: {v}" for k, v in new.items()),
                      FailedModelsWarning, stacklevel=2)
    return plan.note + (f"; {len(failed)} left out" if failed else "")


ENCODE = Stage(name="encode", writes=schema.FINGERPRINT, needs=("fingerprint", "models"), plan=plan_encode,
               task=encode_task, finalize=finalize)
ENCODE_DATASET = Stage(name="encode_dataset", writes=schema.DATASET, needs=("models",), plan=plan_encode_dataset,
                       task=encode_task, finalize=finalize, table="latents", options=LatentsOptions)
