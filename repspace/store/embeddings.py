"""The embeddings groups: posteriors of every model over a set of images.

One layout serves both sets of images a run encodes:

``embeddings``
    the fingerprint images (the channels and pairs stages read it), chunked by blocks of
    models: chunks (models_per_chunk, channel, image);
``dataset_embeddings``
    a whole dataset, or a seeded subset of it (the Monte Carlo latents stage reads it),
    chunked by blocks of images: chunks (1, channel, images_per_chunk).

=============  ======================  =======  ===========================================
variable       dims                    dtype    meaning
=============  ======================  =======  ===========================================
mu             (model, channel, image) float32  posterior mean
logvar         (model, channel, image) float32  posterior log-variance
encoded        (model, image_block)    int64    >0 encoded (a stamp of the posteriors), -1 failed (tried again),
                                                -2 dropped from the run, 0 not yet
image          (image,) coordinate     int64    position of the image in this group, 0..n-1
dataset_index  (image,) coordinate     int64    row of the image in its dataset
channel        (channel,) coordinate   int64    latent channel of the model
model          (model,) coordinate     str      with the model coordinates of
                                                :mod:`repspace.store.models` (and ``path``)
=============  ======================  =======  ===========================================

attrs: ``images_id`` (what identifies the images: for ``embeddings`` the fingerprint set's
:func:`~repspace.store.fingerprint.fingerprint_id`), ``images`` (JSON of it),
``failed_models`` ({name: reason}), ``fixed_logvar`` ({name: [log-variance per channel]} of the
models whose variance is a configured constant, as an InfoGAN's), ``complete``.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from . import fingerprint as fp_schema
from .core import StoreError, block_ranges, open_run, real_array, require_array, set_complete, write_coordinate
from .lock import run_lock
from .verify import record_embedding_chunks
from .models import MODEL_COORDS, merge_models, read_models, write_model_coords

__all__ = [
    "FINGERPRINT",
    "DATASET",
    "Layout",
    "layout",
    "write_posteriors",
    "encoded_models",
    "check_encoded",
    "posteriors",
    "content_stamp",
]

FINGERPRINT = "embeddings"
DATASET = "dataset_embeddings"
PENDING, FAILED, DROPPED = 0, -1, -2
"""Values of ``encoded`` other than done; done is a content stamp > 0 (:func:`content_stamp`)."""


def content_stamp(mu: np.ndarray, logvar: np.ndarray) -> int:
    """A positive number fixed by the posteriors of one model on one image block: what ``encoded`` holds
    for it, so that the blocks computed from a model's posteriors go stale when they change.

    >>> a = np.zeros((2, 3), np.float32)
    >>> content_stamp(a, a) == content_stamp(a.copy(), a) != content_stamp(a + 1, a)
    True
    """
    crc = zlib.crc32(np.ascontiguousarray(mu, np.float32).tobytes())
    return 1 + zlib.crc32(np.ascontiguousarray(logvar, np.float32).tobytes(), crc)
DIMS = ("model", "channel", "image")


class Layout:
    """What one embeddings group holds: its models, channels, images and chunking."""

    def __init__(self, group: zarr.Group):
        self.group = group
        self.models = read_models(group)
        self.names = [m["name"] for m in self.models]
        self.n_models, self.n_channels, self.n_images = (int(s) for s in group["mu"].shape)
        self.models_per_chunk, _, self.images_per_chunk = (int(c) for c in group["mu"].chunks)
        self.image_blocks = block_ranges(self.n_images, self.images_per_chunk)

    def status(self) -> np.ndarray:
        """(model, image_block) int64: >0 encoded, -1 failed, -2 dropped, 0 not yet."""
        return np.asarray(self.group["encoded"][:])


def layout(
    emb: zarr.Group,
    models: Sequence[Any],
    *,
    n_channels: int | None,
    dataset_index: np.ndarray,
    images: Mapping[str, Any],
    images_id: str,
    models_per_chunk: int,
    images_per_chunk: int,
) -> Layout:
    """Lay out (or grow) the embeddings group ``emb`` for ``models`` (models already there keep their place).

    ``n_channels`` None: the group must exist already. Raises StoreError when the group
    holds other images, another chunking or another number of channels.
    """
    name = emb.path
    recorded = emb.attrs.get("images_id")
    if recorded is not None and recorded != images_id:
        raise StoreError(
            f"the store's {name!r} group holds other images ({emb.attrs.get('images')}) than this run "
            f"({json.dumps(dict(images), sort_keys=True, default=str)}); a run never mixes image sets: "
            "use a new run directory"
        )
    if "mu" in emb:
        stored = int(emb["mu"].shape[1])
        if n_channels is not None and n_channels != stored:
            raise StoreError(f"the store's {name!r} models have {stored} channels, these {n_channels}")
        n_channels = stored
    elif n_channels is None:
        raise StoreError(f"the store has no {name!r} yet and the number of channels is not known")
    merged = merge_models(read_models(emb), models)
    m, n = len(merged), int(len(dataset_index))
    emb.attrs.update({"images_id": images_id, "images": json.dumps(dict(images), sort_keys=True, default=str)})
    chunks = (models_per_chunk, n_channels, images_per_chunk)
    for var, desc in (("mu", "posterior mean"), ("logvar", "posterior log-variance")):
        require_array(emb, var, shape=(m, n_channels, n), chunks=chunks, dtype="float32", dims=DIMS,
                      fill_value=np.nan, attrs={"long_name": desc})
    require_array(emb, "encoded", shape=(m, -(-n // images_per_chunk)), chunks=(1, 1), dtype="int64",
                  dims=("model", "image_block"), fill_value=0,
                  attrs={"description": ">0 encoded, -1 failed (NaN or unreadable), -2 dropped, 0 not yet"})
    write_model_coords(emb, merged, with_path=True)
    write_coordinate(emb, "channel", "channel", np.arange(n_channels))
    write_coordinate(emb, "image", "image", np.arange(n), attrs={"long_name": "position of the image in this group"})
    write_coordinate(emb, "dataset_index", "image", np.asarray(dataset_index, np.int64),
                     attrs={"long_name": "row of the image in its dataset"})
    for var in ("mu", "logvar", "encoded"):
        emb[var].attrs["coordinates"] = " ".join(MODEL_COORDS + ("dataset_index",) * (var != "encoded"))
    return Layout(emb)


def fingerprint_images(root: zarr.Group) -> tuple[np.ndarray, dict[str, Any], str]:
    """(dataset indices, identity attrs, images_id) of the store's fingerprint set."""
    if not (fp_schema.GROUP in root and root[fp_schema.GROUP].attrs.get("complete") is True):
        raise FileNotFoundError("the store has no complete fingerprint set; run the fingerprint stage first")
    fp = root[fp_schema.GROUP]
    attrs = {"fingerprint": {k: fp.attrs.get(k) for k in fp_schema.IDENTITY_ATTRS}}
    return np.asarray(fp["index"][:]), attrs, fp_schema.fingerprint_id(root)


def write_posteriors(
    store_path: str | Path,
    mu: Any,
    logvar: Any,
    models: Sequence[Any],
    *,
    group: str = FINGERPRINT,
    dataset_index: np.ndarray | None = None,
    images: Mapping[str, Any] | None = None,
    models_per_chunk: int = 8,
    images_per_chunk: int = 65536,
) -> Layout:
    """Put posteriors computed elsewhere into a run store, in the layout the stages read.

    Parameters
    ----------
    store_path : the run store (created for ``dataset_embeddings`` when missing).
    mu, logvar : float (model, channel, image)
    models : one per model: a name, or a ModelEntry-like object or mapping with ``name`` and
        the model coordinates.
    group : ``"embeddings"`` (over the store's fingerprint images, which must be written) or
        ``"dataset_embeddings"`` (over the images ``dataset_index`` of a dataset, default 0..n-1,
        identified by ``images``).
    models_per_chunk, images_per_chunk : chunking of a new ``embeddings`` / ``dataset_embeddings``.

    Everything is checked before the store is touched; a refused call changes nothing.
    """
    mu, logvar = real_array(mu, "mu", "write_posteriors"), real_array(logvar, "logvar", "write_posteriors")
    if mu.ndim != 3 or mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must share a shape (model, channel, image), got {mu.shape} and {logvar.shape}")
    if len(models) != mu.shape[0]:
        raise ValueError(f"{len(models)} models for {mu.shape[0]} sets of posteriors")
    records = merge_models([], models)
    if len(records) != len(models):
        raise ValueError("models must have distinct names")
    if group == DATASET:
        _check_finite(records, mu, logvar)  # before the store is created
    with run_lock(store_path, f"write_posteriors-{os.getpid()}"):
        return _write_locked(store_path, mu, logvar, records, group, dataset_index, images, models_per_chunk,
                             images_per_chunk)


def _write_locked(store_path: str | Path, mu: np.ndarray, logvar: np.ndarray, records: list[dict[str, Any]],
                  group: str, dataset_index: np.ndarray | None, images: Mapping[str, Any] | None,
                  models_per_chunk: int, images_per_chunk: int) -> Layout:
    root = open_run(store_path, create=group == DATASET)
    if group == FINGERPRINT:
        index, attrs, images_id = fingerprint_images(root)
        if mu.shape[2] != index.size:
            raise ValueError(f"the posteriors cover {mu.shape[2]} images; the fingerprint set has {index.size}")
        chunks = (models_per_chunk, index.size)
    elif group == DATASET:
        index = np.arange(mu.shape[2], dtype=np.int64) if dataset_index is None else np.asarray(dataset_index, np.int64)
        if index.shape != (mu.shape[2],):
            raise ValueError(f"dataset_index has shape {index.shape}, expected ({mu.shape[2]},)")
        attrs = {"source": "precomputed", **dict(images or {}), "n_images": int(index.size)}
        images_id = fp_schema.identity_hash(attrs, index)
        chunks = (1, min(images_per_chunk, index.size))
    else:
        raise ValueError(f"group must be {FINGERPRINT!r} or {DATASET!r}, got {group!r}")
    _check_finite(records, mu, logvar)
    if group in root and "mu" in root[group]:
        stored = root[group]["mu"]
        chunks = (int(stored.chunks[0]), int(stored.chunks[2]))
    lay = layout(root.require_group(group), records, n_channels=mu.shape[1], dataset_index=index, images=attrs,
                 images_id=images_id, models_per_chunk=chunks[0], images_per_chunk=chunks[1])
    emb = lay.group
    rows = [lay.names.index(r["name"]) for r in records]
    stamps = np.array([[content_stamp(m_[:, s0:s1], lv[:, s0:s1]) for s0, s1 in lay.image_blocks]
                       for m_, lv in zip(mu, logvar)], dtype=np.int64)
    if rows == list(range(rows[0], rows[0] + len(rows))):  # one slice: one write per chunk
        emb["mu"][rows[0]:rows[-1] + 1] = mu
        emb["logvar"][rows[0]:rows[-1] + 1] = logvar
        emb["encoded"][rows[0]:rows[-1] + 1] = stamps
    else:
        for k, i in enumerate(rows):
            emb["mu"][i] = mu[k]
            emb["logvar"][i] = logvar[k]
            emb["encoded"][i] = stamps[k]
    record_embedding_chunks(store_path, emb)
    set_complete(emb, bool((lay.status() != 0).all()))
    return lay


def _check_finite(records: Sequence[Mapping[str, Any]], mu: np.ndarray, logvar: np.ndarray) -> None:
    for rec, m_, lv in zip(records, mu, logvar):
        bad = ~(np.isfinite(m_) & np.isfinite(lv))
        if bad.any():
            raise ValueError(f"model {rec['name']}: NaN or infinite posteriors in channels "
                             f"{sorted(set(np.nonzero(bad)[0].tolist()))}")


def encoded_models(lay: Layout) -> np.ndarray:
    """(model,) bool: models encoded on every image block."""
    return (lay.status() > 0).all(axis=1)


def check_encoded(lay: Layout) -> None:
    """Refuse a group with models not yet encoded (0) anywhere: an interrupted encode stage."""
    pending = (lay.status() == 0).any(axis=1)
    if pending.any():
        names = [lay.names[i] for i in np.flatnonzero(pending)]
        raise RuntimeError(f"models {', '.join(names[:20])} have no posteriors in {lay.group.path!r} yet (an "
                           "interrupted encode stage?); rerun the encode stage")


def read(group: zarr.Group, name: str, start: int, stop: int) -> np.ndarray:
    """``name`` of models start:stop; an error of zarr or a codec names the array, the chunks and the models."""
    try:
        return np.asarray(group[name][start:stop])
    except Exception as err:
        per = int(group[name].chunks[0])
        names = [str(x) for x in group["model"][start:stop]]
        raise StoreError(f"{group.path}/{name}: chunks {start // per}-{(stop - 1) // per} (models {', '.join(names)}) "
                         f"cannot be read ({type(err).__name__}: {err}); python -m repspace.jobs.verify RUN_DIR "
                         "--repair encodes them again") from err


def posteriors(group: zarr.Group, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mu, logvar (model, channel, image) of models start:stop, failed models zeroed, and which are valid."""
    mu = read(group, "mu", start, stop)
    logvar = read(group, "logvar", start, stop)
    valid = (np.asarray(group["encoded"][start:stop]) > 0).all(axis=1)
    mu[~valid] = 0.0
    logvar[~valid] = 0.0
    return mu, logvar, valid
