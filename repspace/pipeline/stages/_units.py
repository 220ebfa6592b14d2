"""What the blockwise information stages (channels, pairs) share: blocks of models, and
posteriors as BC-row sources on the CPU or the GPU."""

from __future__ import annotations

from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from ... import kernels
from ...store import StoreError, open_group
from ...store import embeddings as emb_schema
from ...store.fingerprint import fingerprint_id
from ..stage import StageContext

__all__ = ["open_units", "unit_rows", "one_thread"]


def open_units(ctx: StageContext) -> tuple[emb_schema.Layout, int]:
    """The fingerprint embeddings (every model encoded or failed) and the models per block of the
    stage's group, which a rerun must keep; the group records the images it was computed on."""
    lay = emb_schema.Layout(ctx.root[emb_schema.FINGERPRINT])
    emb_schema.check_encoded(lay)
    fid = fingerprint_id(ctx.root)
    if lay.group.attrs.get("images_id") != fid:
        raise StoreError("the embeddings were computed on another fingerprint set than the store's; a run never "
                         "mixes fingerprint sets: use a new run directory")
    grp = ctx.group
    recorded = grp.attrs.get("images_id")
    if recorded is not None and recorded != fid:
        raise StoreError(f"the {grp.path!r} group was computed on another fingerprint set ({recorded}, this store's "
                         f"is {fid}); a run never mixes fingerprint sets: use a new run directory")
    grp.attrs["images_id"] = fid
    block = max(1, ctx.config.pair_block_units // lay.n_channels)
    stored = grp.attrs.get("models_per_block", block)
    if stored != block:
        raise StoreError(f"{grp.path} were computed in blocks of {stored} models, this run uses {block}: set "
                         f"pair_block_units = {stored * lay.n_channels} or use a new run directory")
    grp.attrs["models_per_block"] = block
    return lay, block


def unit_rows(store_path: str, start: int, stop: int, gpu: bool,
              keep: np.ndarray | None = None) -> tuple[kernels.PosteriorRows | None, np.ndarray, tuple]:
    """The channels of models start:stop as one set of units (model-major), which models are valid,
    and the (model, channel) shape; only the units ``keep`` (flat indices, model-major) when given
    (None for the rows when it is empty)."""
    group = open_group(store_path, emb_schema.FINGERPRINT)
    mu, logvar, valid = emb_schema.posteriors(group, start, stop)
    m, c, n = mu.shape
    mu, logvar = mu.reshape(m * c, n), logvar.reshape(m * c, n)
    if keep is not None:
        if keep.size == 0:
            return None, valid, (m, c)
        mu, logvar = mu[keep], logvar[keep]
    if gpu:
        import cupy

        mu, logvar = cupy.asarray(mu), cupy.asarray(logvar)
    return kernels.PosteriorRows(mu, logvar), valid, (m, c)


def one_thread() -> Any:
    """One BLAS thread per Dask thread: the cluster supplies the parallelism."""
    return threadpool_limits(1)
