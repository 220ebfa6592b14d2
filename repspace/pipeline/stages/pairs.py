"""The pairs stage: NMI and VI between every two channels of the run, block (a, b) of models at a
time for a <= b; each task writes its block and the transpose."""

from __future__ import annotations

import numpy as np

from ... import kernels
from ...store import block_ranges, open_group
from ...store import pairs as schema
from ..stage import Block, Plan, Stage, StageContext
from ._units import one_thread, open_units, unit_rows

PAIR_FLOPS_PER_S = 2.7e10
"""Useful flops (N^2 per pair of units) per second of one worker thread, measured by
benchmarks/bench_sweep.py on the 2-core machine (benchmarks/README.md); for estimates only."""


def task(store_path: str, range_a: tuple[int, int], range_b: tuple[int, int], row_block_bytes: int,
         gpu: bool, measures: tuple[str, ...] = schema.DEFAULT) -> None:
    with one_thread():
        rows_a, valid_a, (ma, c) = unit_rows(store_path, *range_a, gpu)
        same = range_a == range_b
        rows_b, valid_b, (mb, _) = (None, valid_a, (ma, c)) if same else unit_rows(store_path, *range_b, gpu)
        res = kernels.pairwise_information(rows_a, rows_b, options=kernels.BlockOptions(memory_bytes=row_block_bytes,
                                                                                      threads=1),
                                           cka="cka_bc" in measures)
        nmi, vi = res.nmi_vi()
        values = {"nmi": nmi, "vi": vi, "cka_bc": res.cka_bc}
        values = {k: kernels.to_numpy(values[k]).astype(np.float32).reshape(ma, c, mb, c) for k in measures}
        for arr in values.values():
            arr[~valid_a] = np.nan
            arr[:, :, ~valid_b] = np.nan
        schema.write_block(open_group(store_path, schema.GROUP, mode="r+"), tuple(range_a), tuple(range_b), values)


def plan(ctx: StageContext) -> Plan:
    lay, block = open_units(ctx)
    measures = tuple(ctx.config.pair_measures)
    schema.layout(ctx.group, lay.models, lay.n_channels, block, measures)
    ranges = block_ranges(lay.n_models, block)
    units = [(r1 - r0) * lay.n_channels for r0, r1 in ranges]
    status = [lay.status()[r0:r1].tolist() for r0, r1 in ranges]  # the posteriors' stamps of each block's models
    blocks = [Block(name=f"block{a}x{b}", key=(a, b), extent=(ranges[a], ranges[b], status[a], status[b]),
                    args=(ranges[a], ranges[b], ctx.config.row_block_bytes, ctx.config.gpu, measures),
                    cost=lay.n_images**2 * units[a] * units[b] / PAIR_FLOPS_PER_S)
              for a in range(len(ranges)) for b in range(a, len(ranges))]
    units = lay.n_models * lay.n_channels
    return Plan(blocks=blocks, markers={"done": ((len(ranges), len(ranges)), ("block_a", "block_b"))},
                note=f"{units} x {units} channel pairs in blocks of {block} models")


STAGE = Stage(name="pairs", writes=schema.GROUP, needs=("embeddings",), plan=plan, task=task)
