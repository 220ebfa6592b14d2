"""The channels stage: I(U) and I(U,U') of every channel, and its NMI and VI with every factor.

One task per block of models (``pair_block_units`` channels), against the fingerprint
set's ground-truth factors as label units.
"""

from __future__ import annotations


import numpy as np

from ... import kernels
from ...store import block_ranges, open_group
from ...store import channels as schema
from ..stage import Block, Plan, Stage, StageContext
from ._units import one_thread, open_units, unit_rows

SECONDS_PER_UNIT_IMAGE2 = 2.5e-9
"""Seconds of one worker thread per channel and squared fingerprint image (5 factors), measured
by benchmarks/bench_sweep.py (benchmarks/README.md); for estimates only."""


def task(store_path: str, start: int, stop: int, gpu: bool) -> None:
    with one_thread():
        rows, valid, (m, c) = unit_rows(store_path, start, stop, gpu)
        labels = np.asarray(open_group(store_path, "fingerprint")["factors"][:])
        if gpu:
            import cupy

            labels = cupy.asarray(labels)
        res = kernels.pairwise_information(rows, kernels.LabelRows(labels, rows.dtype),
                                           options=kernels.BlockOptions(threads=1))
        nmi, vi = (kernels.to_numpy(x).reshape(m, c, -1) for x in res.nmi_vi())
        values = {"information": kernels.to_numpy(res.information_a).reshape(m, c),
                  "information_twice": kernels.to_numpy(res.information_twice_a).reshape(m, c),
                  "nmi_factor": nmi, "vi_factor": vi}
        for arr in values.values():
            arr[~valid] = np.nan
        schema.write_block(open_group(store_path, schema.GROUP, mode="r+"), start, stop, values)


def plan(ctx: StageContext) -> Plan:
    lay, block = open_units(ctx)
    factors = [str(f) for f in ctx.root["fingerprint"]["factor"][:]]
    schema.layout(ctx.group, lay.models, lay.n_channels, factors, block)
    ranges = block_ranges(lay.n_models, block)
    per_model = lay.n_channels * lay.n_images**2 * SECONDS_PER_UNIT_IMAGE2
    status = lay.status()  # the posteriors' stamps: a block whose models' posteriors changed is computed again
    blocks = [Block(name=f"block{b}", key=(b,), extent=(r, status[r[0]:r[1]].tolist()), args=(*r, ctx.config.gpu),
                    cost=(r[1] - r[0]) * per_model) for b, r in enumerate(ranges)]
    return Plan(blocks=blocks, markers={"done": ((len(ranges),), ("block",))}, note=f"blocks of {block} models")


STAGE = Stage(name="channels", writes=schema.GROUP, needs=("fingerprint", "embeddings"), plan=plan, task=task)
