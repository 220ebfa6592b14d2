"""The encode stages: every model's posteriors over the fingerprint images (``encode``) or over a
whole dataset (``encode_dataset``), in the one layout of :mod:`repspace.store.embeddings`.

``encode`` runs one task per block of models; ``encode_dataset`` one task per block of images,
which renders the block once and encodes it with every model still missing there. Each task
records per model and image block whether it was encoded (1) or failed (-1, with the reason):
that status is the stage's marker, so a rerun encodes what is missing or failed, and models
added to the run only their own. A model whose posteriors are NaN, or that cannot be loaded,
is named and left out; the rest of the run goes on.
"""

from __future__ import annotations

import json
import time
import warnings
from typing import Any

import numpy as np

from ...data import load_dataset, sample_indices
from ...models import load_encoder
from ...store import StoreError, block_ranges, identity_hash, open_group, verify
from ...store import embeddings as schema
from ...store import models as models_schema
from ..stage import Block, Plan, Stage, StageContext

__all__ = ["ENCODE", "ENCODE_DATASET", "FailedModelsWarning", "encode_task", "DATASET_IMAGES_STREAM"]

DATASET_IMAGES_STREAM = (0,)
"""Spawn key of the seeded subset of a dataset's images (the fingerprint set uses ())."""


class FailedModelsWarning(UserWarning):
    """Some models could not be encoded; the run goes on without them."""


def encode_task(
    store_path: str,
    group: str,
    rows: list[tuple[int, str, str]],
    image_block: int,
    start: int,
    stop: int,
    dataset: dict[str, Any] | None,
    batch_size: int,
) -> dict[str, Any]:
    """Encode images start:stop (the fingerprint images when ``dataset`` is None) with each model of ``rows``.

    rows : (model index, name, path). Returns {"failed": {name: reason}, "seconds": float}.
    """
    t0 = time.perf_counter()
    emb = open_group(store_path, group, mode="r+")
    if dataset is None:
        images = np.asarray(open_group(store_path, "fingerprint")["images"][start:stop], dtype=np.float32)
    else:
        ds = load_dataset(dataset["name"], data_dir=dataset["data_dir"], image_size=dataset["image_size"])
        images = np.asarray(ds.images(np.asarray(emb["dataset_index"][start:stop])), dtype=np.float32)
    n_channels = int(emb["mu"].shape[1])
    failed: dict[str, str] = {}
    for i, name, path in rows:
        try:
            mu, logvar = load_encoder(path)(images, batch_size=batch_size)
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
        emb["encoded"][i, image_block] = 1
    return {"failed": failed, "seconds": time.perf_counter() - t0}


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
            lay.group["encoded"][i, d.chunk[2]] = 0


def _blocks(lay: schema.Layout, model_ranges: list[tuple[int, int]], label: str, args: Any) -> list[Block]:
    """A block per (block of models, block of images) with models not yet encoded there."""
    status = lay.status()
    paths = [m["path"] for m in lay.models]
    blocks = []
    for b, (s0, s1) in enumerate(lay.image_blocks):
        for m0, m1 in model_ranges:
            rows = [(i, lay.names[i], paths[i]) for i in range(m0, m1) if status[i, b] <= 0]
            if rows:
                name = f"models{m0}-{m1 - 1}" if label == "models" else f"images{s0}-{s1 - 1}"
                blocks.append(Block(name=name, marker=None, args=(lay.group.path, rows, b, s0, s1, *args)))
    return blocks


def plan_encode(ctx: StageContext) -> Plan:
    c = ctx.config
    models = _run_models(ctx)
    index, attrs, images_id = schema.fingerprint_images(ctx.root)
    n_channels = None
    if "mu" not in ctx.group:
        n_channels = int(load_encoder(models[0]["path"]).n_latents)
    lay = schema.layout(ctx.group, models, n_channels=n_channels, dataset_index=index,
                        images=attrs, images_id=images_id, models_per_chunk=c.models_per_encode_task,
                        images_per_chunk=index.size)
    _reencode_damaged(ctx, lay)
    ranges = block_ranges(lay.n_models, lay.models_per_chunk)
    blocks = _blocks(lay, ranges, "models", (None, 256))
    return Plan(blocks=blocks, state=lay, note=f"{lay.n_models} models x {lay.n_channels} channels x {lay.n_images} images")


def plan_encode_dataset(ctx: StageContext) -> Plan:
    c, opts = ctx.config, ctx.config.latents
    models = _run_models(ctx)
    first = load_encoder(models[0]["path"])
    image_size = c.image_size if c.image_size is not None else first.input_shape[0]
    ds = load_dataset(c.dataset, data_dir=c.data_dir, image_size=image_size)
    index = sample_indices(len(ds), opts.n_images, c.seed, stream=DATASET_IMAGES_STREAM)
    identity = {"dataset": c.dataset, "image_size": image_size, "n_total": len(ds), "n_images": len(index),
                "seed": c.seed if opts.n_images is not None else None}
    lay = schema.layout(ctx.group, models, n_channels=int(first.n_latents), dataset_index=index,
                        images=identity, images_id=identity_hash(identity, index), models_per_chunk=1,
                        images_per_chunk=opts.images_per_encode_task)
    _reencode_damaged(ctx, lay)
    dataset = {"name": c.dataset, "data_dir": c.data_dir, "image_size": image_size}
    blocks = _blocks(lay, [(0, lay.n_models)], "images", (dataset, opts.batch_size))
    return Plan(blocks=blocks, state=lay, note=f"{lay.n_models} models x {lay.n_images} images of {c.dataset}")


def finalize(ctx: StageContext, plan: Plan, results: dict[str, Any]) -> str:
    """Record which models failed, and why, and the bytes of every chunk; warn about the models that failed now."""
    lay: schema.Layout = plan.state
    verify.record_embedding_chunks(ctx.store_path, ctx.group)
    recorded = json.loads(ctx.group.attrs.get("failed_models", "{}"))
    new: dict[str, str] = {}
    for r in results.values():
        for name, why in r["failed"].items():
            new.setdefault(name, why)
    status = lay.status()
    failed = {n: new.get(n, recorded.get(n, "failed")) for i, n in enumerate(lay.names) if (status[i] < 0).any()}
    ctx.group.attrs["failed_models"] = json.dumps(failed, sort_keys=True)
    if new:
        warnings.warn("models left out of the run: " + "; ".join(f"{k}: {v}" for k, v in new.items()),
                      FailedModelsWarning, stacklevel=2)
    return plan.note + (f"; {len(failed)} left out" if failed else "")


ENCODE = Stage(name="encode", writes=schema.FINGERPRINT, needs=("fingerprint", "models"), plan=plan_encode,
               task=encode_task, finalize=finalize)
ENCODE_DATASET = Stage(name="encode_dataset", writes=schema.DATASET, needs=("models",), plan=plan_encode_dataset,
                       task=encode_task, finalize=finalize)
