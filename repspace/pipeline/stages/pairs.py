"""The pairs stage: NMI and VI between every two informative channels of the run, block (a, b)
of models at a time for a <= b; each task writes its block and the transpose.

By default (``pair_channels = "informative"``) only channels carrying at least ``info_threshold``
bits (from the channels stage) take part: a block's kept channels are packed densely into the
matrix products, and the pairs of every other channel stay NaN (a block with none writes no
chunk). A trained VAE keeps 2-6 of its 10 channels, so this is most of the work saved. Which
channels a block kept is part of its extent: a rerun with another threshold recomputes exactly
the blocks whose kept channels changed. ``pair_channels = "all"`` computes every pair.
"""

from __future__ import annotations

import numpy as np

from ... import kernels
from ...store import StoreError, block_ranges, open_group
from ...store import pairs as schema
from ...store.channels import informative
from ..stage import Block, Plan, Stage, StageContext
from ._units import ErrorOptions, one_thread, open_units, unit_rows
from .channels import ERROR_COST

PAIR_FLOPS_PER_S = 4.3e10
"""Useful flops (N^2 per pair of units) per second of one worker thread, measured by
benchmarks/bench_sweep.py on the 2-core machine (benchmarks/README.md); for estimates only."""


def task(store_path: str, range_a: tuple[int, int], range_b: tuple[int, int], row_block_bytes: int,
         gpu: bool, measures: tuple[str, ...] = schema.DEFAULT, keep_a: list[int] | None = None,
         keep_b: list[int] | None = None, groups: int = 0, seed: int = 0) -> None:
    """Block (a, b); ``keep_a``, ``keep_b``: the flat (model-major) indices of each block's kept
    channels (None: all of them); ``groups``, ``seed``: the jackknife's (0: no standard errors)."""
    with one_thread():
        ka = None if keep_a is None else np.asarray(keep_a, dtype=np.int64)
        kb = None if keep_b is None else np.asarray(keep_b, dtype=np.int64)
        rows_a, valid_a, (ma, c) = unit_rows(store_path, *range_a, gpu, ka)
        same = range_a == range_b
        rows_b, valid_b, (mb, _) = (rows_a, valid_a, (ma, c)) if same else unit_rows(store_path, *range_b, gpu, kb)
        kb = ka if same else kb
        subsets = ErrorOptions(groups).subsets
        names = (*measures, *(schema.ERRORS if groups else ()))
        values = {k: np.full((ma * c, mb * c), np.nan, dtype=np.float32) for k in names}
        values.update({k: np.full((len(subsets), ma * c, mb * c), np.nan, dtype=np.float32)
                       for k in (schema.SUBSETS if subsets else ())})
        if rows_a is not None and rows_b is not None:
            n_images = rows_a.n_images
            res = kernels.pairwise_information(rows_a, None if same else rows_b,
                                               options=kernels.BlockOptions(memory_bytes=row_block_bytes, threads=1),
                                               cka="cka_bc" in measures,
                                               groups=ErrorOptions(groups).labels(n_images, seed), subsets=subsets)
            nmi, vi = res.nmi_vi()
            found = {"nmi": nmi, "vi": vi, "cka_bc": res.cka_bc, "nmi_se": res.nmi_se, "vi_se": res.vi_se}
            at = np.ix_(np.arange(ma * c) if ka is None else ka, np.arange(mb * c) if kb is None else kb)
            for k in names:
                values[k][at] = kernels.to_numpy(found[k])
            for s, sub in enumerate(res.subsets):
                nmi_s, vi_s = sub.nmi_vi()
                values["nmi_subset"][s][at], values["vi_subset"][s][at] = kernels.to_numpy(nmi_s), kernels.to_numpy(vi_s)
        values = {k: v.reshape(*v.shape[:-2], ma, c, mb, c) for k, v in values.items()}
        for arr in values.values():
            arr[..., ~valid_a, :, :, :] = np.nan
            arr[..., ~valid_b, :] = np.nan
        schema.write_block(open_group(store_path, schema.GROUP, mode="r+"), tuple(range_a), tuple(range_b), values)


def pair_work(units_a: int, units_b: int, same: bool, unit_block: int = kernels.BlockOptions.unit_block) -> float:
    """Unit pairs a block's products cover: all of them across two blocks; within one, the unit
    blocks on and above the diagonal (what :func:`repspace.kernels.pairwise_information` computes)."""
    if not same:
        return float(units_a * units_b)
    blocks = -(-units_a // unit_block) if units_a else 0
    return units_a * units_a * (blocks + 1) / (2 * blocks) if blocks else 0.0


def kept_channels(ctx: StageContext, names: list[str], n_channels: int) -> np.ndarray | None:
    """(model, channel) bool: the channels pairs are computed among (None: every channel)."""
    if ctx.config.pair_channels == "all":
        return None
    channels = ctx.root["channels"]
    recorded = [str(m) for m in channels["model"][:]]
    if recorded != list(names) or tuple(channels["information"].shape) != (len(names), n_channels):
        raise StoreError(f"the channels group covers {len(recorded)} models and the embeddings {len(names)} (or "
                         "other models): run the channels stage before pairs (or set pair_channels = \"all\")")
    return informative(channels, ctx.config.info_threshold)


def plan(ctx: StageContext) -> Plan:
    lay, block = open_units(ctx)
    measures = tuple(ctx.config.pair_measures)
    errors, seed = ctx.config.errors, ctx.config.seed
    groups = errors.groups
    labels = errors.labels(lay.n_images, seed)  # too many groups: refused before any task
    subset_sizes = [int(np.isin(labels, np.arange(k)).sum()) for k in errors.subsets] if groups else []
    schema.layout(ctx.group, lay.models, lay.n_channels, block, measures, errors=bool(groups), subset_sizes=subset_sizes)
    ctx.group.attrs["error_groups"] = groups
    kept = kept_channels(ctx, lay.names, lay.n_channels)
    ctx.group.attrs["pair_channels"] = ctx.config.pair_channels
    ctx.group.attrs["info_threshold_bits"] = ctx.config.info_threshold if kept is not None else None
    ranges = block_ranges(lay.n_models, block)
    status = [lay.status()[r0:r1].tolist() for r0, r1 in ranges]  # the posteriors' stamps of each block's models
    if kept is None:
        keep = [None] * len(ranges)
        units = [(r1 - r0) * lay.n_channels for r0, r1 in ranges]
    else:
        keep = [np.flatnonzero(kept[r0:r1].ravel()).tolist() for r0, r1 in ranges]
        units = [len(k) for k in keep]

    def extent(a: int, b: int) -> tuple:
        base = (ranges[a], ranges[b], status[a], status[b])
        base = base if kept is None else (*base, keep[a], keep[b])  # the kept channels are part of what it covers
        return (*base, *errors.extent(seed))

    blocks = [Block(name=f"block{a}x{b}", key=(a, b), extent=extent(a, b),
                    args=(ranges[a], ranges[b], ctx.config.row_block_bytes, ctx.config.gpu, measures, keep[a], keep[b],
                          groups, seed),
                    cost=lay.n_images**2 * pair_work(units[a], units[b], a == b) / PAIR_FLOPS_PER_S
                    * (ERROR_COST if groups else 1.0))
              for a in range(len(ranges)) for b in range(a, len(ranges))]
    total = lay.n_models * lay.n_channels
    among = (f"{total} x {total} channel pairs" if kept is None else
             f"pairs among the {int(kept.sum())} of {total} channels with I(U) >= {ctx.config.info_threshold} bits")
    errors_note = (f"; standard errors from {groups} jackknife groups, about {ERROR_COST:g}x the time without them "
                   f"(--error-groups 0: none)" if groups else "")
    return Plan(blocks=blocks, markers={"done": ((len(ranges), len(ranges)), ("block_a", "block_b"))},
                note=f"{among}, in blocks of {block} models{errors_note}")


STAGE = Stage(name="pairs", writes=schema.GROUP, needs=("embeddings",), plan=plan, task=task,
              needs_when=lambda config: ("channels",) if config.pair_channels == "informative" else (),
              table="errors", options=ErrorOptions)
