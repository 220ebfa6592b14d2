"""What the blockwise information stages (channels, pairs) share: blocks of models, and
posteriors as BC-row sources on the CPU or the GPU."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from ... import kernels
from ..._checks import check_types
from ...store import StoreError, open_group
from ...store import embeddings as emb_schema
from ...store.fingerprint import fingerprint_id
from ..stage import StageContext

__all__ = ["ErrorOptions", "open_units", "unit_rows", "one_thread"]

ERROR_GROUPS_STREAM = (2,)
"""Spawn key of the jackknife's image groups (fingerprint sets draw with (), whole-dataset images with (0,))."""


@dataclasses.dataclass(frozen=True)
class ErrorOptions:
    """The ``[errors]`` table: standard errors of the fingerprint estimates (the channels and pairs stages).

    Every I(U), I(U,U'), NMI and VI of the channels and pairs groups gets ``<name>_se`` beside it (same
    dims, same units): a delete-a-group jackknife over ``groups`` random groups of the fingerprint
    images, drawn from the run's seed, each replicate leaving its group out of both the outer and
    the inner mean (:func:`repspace.kernels.jackknife_groups`), from the same matrix products.

    Attributes
    ----------
    groups : G, the jackknife's groups of images (0: no errors, the values alone, as fast as before).
    """

    groups: int = 10

    def __post_init__(self) -> None:
        check_types(self, "")
        if self.groups != 0 and self.groups < 2:
            raise ValueError(f"groups must be 0 (no errors) or at least 2, got {self.groups}")

    @property
    def subsets(self) -> tuple[int, ...]:
        """The nested subsets the pairs stage also computes, as numbers of leading groups: about a fifth and half of
        the images with 10 groups (none with fewer than 4 groups)."""
        if self.groups < 4:
            return ()
        return tuple(sorted({max(1, self.groups // 5), self.groups // 2}))

    def extent(self, seed: int) -> tuple[int, ...]:
        """What a block's values depend on beyond its inputs: nothing without errors (blocks computed before
        errors existed stay done), else the groups and the seed that draws them."""
        return (self.groups, seed) if self.groups else ()

    def labels(self, n_images: int, seed: int) -> np.ndarray | None:
        """The group of every fingerprint image (None without errors)."""
        if not self.groups:
            return None
        if self.groups > n_images:
            raise ValueError(f"[errors] groups = {self.groups} is more than the {n_images} fingerprint images")
        stream = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=ERROR_GROUPS_STREAM))
        return kernels.jackknife_groups(n_images, self.groups, stream)


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
