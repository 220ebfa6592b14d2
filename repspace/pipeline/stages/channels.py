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
from ._units import ErrorOptions, one_thread, open_units, unit_rows

SECONDS_PER_UNIT_IMAGE2 = 2.5e-9
"""Seconds of one worker thread per channel and squared fingerprint image (5 factors), measured
by benchmarks/bench_sweep.py (benchmarks/README.md); for estimates only."""
ERROR_COST = 2.4
"""Time with standard errors (10 groups) over time without, measured by benchmarks/bench_errors.py."""


def task(store_path: str, start: int, stop: int, gpu: bool, groups: int = 0, seed: int = 0) -> None:
    """Models start:stop; ``groups``, ``seed``: the jackknife's (0: no standard errors)."""
    with one_thread():
        rows, valid, (m, c) = unit_rows(store_path, start, stop, gpu)
        labels = np.asarray(open_group(store_path, "fingerprint")["factors"][:])
        if gpu:
            import cupy

            labels = cupy.asarray(labels)
        labels_of = ErrorOptions(groups).labels(labels.shape[0], seed)
        res = kernels.pairwise_information(rows, kernels.LabelRows(labels, rows.dtype),
                                           options=kernels.BlockOptions(threads=1), groups=labels_of)
        nmi, vi = (kernels.to_numpy(x).reshape(m, c, -1) for x in res.nmi_vi())
        values = {"information": kernels.to_numpy(res.information_a).reshape(m, c),
                  "information_twice": kernels.to_numpy(res.information_twice_a).reshape(m, c),
                  "nmi_factor": nmi, "vi_factor": vi}
        if groups:
            values.update({"information_se": kernels.to_numpy(res.information_se_a).reshape(m, c),
                           "information_twice_se": kernels.to_numpy(res.information_twice_se_a).reshape(m, c),
                           "nmi_factor_se": kernels.to_numpy(res.nmi_se).reshape(m, c, -1),
                           "vi_factor_se": kernels.to_numpy(res.vi_se).reshape(m, c, -1)})
        for arr in values.values():
            arr[~valid] = np.nan
        schema.write_block(open_group(store_path, schema.GROUP, mode="r+"), start, stop, values)


def plan(ctx: StageContext) -> Plan:
    lay, block = open_units(ctx)
    factors = [str(f) for f in ctx.root["fingerprint"]["factor"][:]]
    errors = ctx.config.errors
    groups = errors.groups
    errors.labels(lay.n_images, ctx.config.seed)  # too many groups: refused before any task
    schema.layout(ctx.group, lay.models, lay.n_channels, factors, block, errors=bool(groups))
    ctx.group.attrs["error_groups"] = groups
    ranges = block_ranges(lay.n_models, block)
    per_model = lay.n_channels * lay.n_images**2 * SECONDS_PER_UNIT_IMAGE2
    status = lay.status()  # the posteriors' stamps: a block whose models' posteriors changed is computed again
    blocks = [Block(name=f"block{b}", key=(b,), extent=(r, status[r[0]:r[1]].tolist(), *errors.extent(ctx.config.seed)), args=(*r, ctx.config.gpu, groups, ctx.config.seed),
                    cost=(r[1] - r[0]) * per_model * (ERROR_COST if groups else 1.0)) for b, r in enumerate(ranges)]
    return Plan(blocks=blocks, markers={"done": ((len(ranges),), ("block",))}, note=f"blocks of {block} models")


STAGE = Stage(name="channels", writes=schema.GROUP, needs=("fingerprint", "embeddings"), plan=plan, task=task,
              table="errors", options=ErrorOptions)
