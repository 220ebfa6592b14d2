"""All pairs with delete-a-group jackknife standard errors and nested subsets, riding on the same products.

The images are sorted by group, and every block's product over all N images is made as G products over
each group's images (the same flops); the compiled reduction of :mod:`repspace.kernels.jackknife` turns
them into the full sums of logs, each replicate's and each subset's (:func:`pairwise_with_errors`, which
:func:`repspace.kernels.pairwise_information` calls when given ``groups``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Sequence

import numpy as np

from . import fused
from .allpairs import (BlockOptions, PairwiseInformation, _PRODUCT_BYTES_FOR_ROWS, _add_cka_cross, _add_cka_rows,
                       _cka_from_sums, _run_blocks, _second_set, nmi_vi, unit_blocks)
from .jackknife import ImageGroups, Reduction, grouped_log_sums, jackknife_se, rows_per_log
from .jackknife import compiled as jackknife_compiled
from .rows import RowSource, grouped_rows_and_sums, reordered

__all__ = ["pairwise_with_errors"]


class _GroupedPartial:
    """One thread's running sums of logs: the full sums, each replicate's and each subset's (float64)."""

    def __init__(self, xp: Any, sets: tuple[RowSource, ...], n_a: int, n_b: int, n_groups: int, n_sub: int,
                 cka: bool, compiled: bool) -> None:
        def zeros(*shape: int) -> Any:
            return xp.zeros(shape, dtype=xp.float64)

        self.slots = 1 + n_groups + n_sub
        self.compiled = compiled
        self.buffers = [fused.scratch() for _ in sets]
        self.scratch = fused.scratch()
        if compiled:  # per block of pairs, and per set and sum, a Reduction; gathered by assemble()
            self.blocks: dict[tuple[int, int, int, int], Reduction] = {}
            self.units = [[Reduction(self.slots, s.n_units) for _ in range(2)] for s in sets]
        else:
            self.acc, self.rep, self.sub = zeros(n_a, n_b), zeros(n_groups, n_a, n_b), zeros(n_sub, n_a, n_b)
            # per set, (1, units) arrays so that units ride the pairs' reduction as a block of one row
            self.units = [[(zeros(1, s.n_units), zeros(n_groups, 1, s.n_units), zeros(n_sub, 1, s.n_units))
                           for _ in range(2)] for s in sets]
        self.shape = (n_a, n_b, n_groups, n_sub)
        self.cka = cka
        if cka:
            self.frob, self.cross = zeros(n_a, n_b), zeros(n_a, n_b)
            self.self_frob = [zeros(s.n_units) for s in sets]
            self.self_cross = [zeros(s.n_units) for s in sets]
            self.totals = [zeros(s.n_units) for s in sets]

    def assemble(self) -> None:
        """The compiled path's block sums into acc (A, B), rep (G, A, B), sub (K, A, B) and units' triples."""
        if not self.compiled:
            return
        n_a, n_b, n_groups, n_sub = self.shape
        self.acc = np.zeros((n_a, n_b))
        self.rep, self.sub = np.zeros((n_groups, n_a, n_b)), np.zeros((n_sub, n_a, n_b))
        for (p0, p1, q0, q1), red in self.blocks.items():
            acc = red.acc.reshape(self.slots, p1 - p0, q1 - q0)
            self.acc[p0:p1, q0:q1] = acc[0]
            self.rep[:, p0:p1, q0:q1] = acc[1:1 + n_groups]
            self.sub[:, p0:p1, q0:q1] = acc[1 + n_groups:]
        self.units = [[(r.acc[:1], r.acc[1:1 + n_groups, None, :], r.acc[1 + n_groups:, None, :]) for r in pair]
                      for pair in self.units]
        self.blocks = {}


def _add_rows_grouped(part: _GroupedPartial, a: RowSource, b: RowSource, same: bool, r0: int, r1: int, dtype: Any,
                      ub: int, groups: ImageGroups, per: int) -> None:
    """Add rows r0:r1 (images sorted by group) of every sum of logs to ``part``."""
    xp = a.xp
    bounds = [int(x) for x in groups.bounds]
    row_groups = groups.row_groups[r0:r1]
    xa, *sums_a = grouped_rows_and_sums(a, r0, r1, dtype, bounds, part.buffers[0])  # (rows, A, N), (G, rows, A) x2
    xb, *sums_b = (xa, *sums_a) if same else grouped_rows_and_sums(b, r0, r1, dtype, bounds, part.buffers[1])
    n_groups, rows = len(bounds) - 1, r1 - r0

    row_sums = []
    for k, sums in enumerate((sums_a,) if same else (sums_a, sums_b)):
        for t, g_sums in enumerate(sums):  # row sums, then sums of squares
            if part.compiled:
                part.units[k][t].add(np.ascontiguousarray(g_sums), row_groups, groups, per, True, part.scratch)
            else:
                products = xp.reshape(g_sums, (n_groups, rows, 1, g_sums.shape[-1]))
                part.units[k][t] = grouped_log_sums(xp, products, row_groups, groups, *part.units[k][t])
        if part.cka:
            _add_cka_rows(part, xp, k, xp.sum(xp.astype(sums[0], xp.float64), axis=0),
                          xp.sum(xp.astype(sums[1], xp.float64), axis=(0, 1)), row_sums)
    if part.cka:
        _add_cka_cross(part, xp, row_sums, same)
    n_a, n_b = a.n_units, b.n_units
    spans = list(zip(bounds[:-1], bounds[1:]))
    if part.compiled:
        _grouped_products_compiled(part, xa, xb, same, n_a, n_b, rows, dtype, ub, groups, row_groups, spans, per)
        return
    for p0, p1, q0, q1 in unit_blocks(n_a, n_b, ub, same):
        left, right = xa[:, p0:p1, :], xp.permute_dims(xb[:, q0:q1, :], (0, 2, 1))
        products = xp.stack([xp.matmul(left[:, :, c0:c1], right[:, c0:c1, :]) for c0, c1 in spans], axis=0)
        acc, rep, sub = grouped_log_sums(xp, products, row_groups, groups, part.acc[p0:p1, q0:q1],
                                         part.rep[:, p0:p1, q0:q1], part.sub[:, p0:p1, q0:q1])
        part.acc[p0:p1, q0:q1], part.rep[:, p0:p1, q0:q1] = acc, rep
        if groups.subsets:
            part.sub[:, p0:p1, q0:q1] = sub
        if part.cka:
            part.frob[p0:p1, q0:q1] = part.frob[p0:p1, q0:q1] + xp.sum(products, axis=(0, 1), dtype=xp.float64)

def _grouped_products_compiled(part: _GroupedPartial, xa: np.ndarray, xb: np.ndarray, same: bool, n_a: int, n_b: int,
                               rows: int, dtype: Any, ub: int, groups: ImageGroups, row_groups: np.ndarray,
                               spans: list[tuple[int, int]], per: int) -> None:
    """Each group's products of every block into one reused buffer (G, rows, A', B'), a few rows at a time, reduced
    by the compiled loop. The right side of a column of blocks is copied once to (rows, N, B') row-major: a
    product over a slice of N images runs about twice as fast from it as from the transposed view."""
    for q0 in range(0, n_b, ub):
        q1 = min(n_b, q0 + ub)
        right = part.scratch.get("right", (rows, xb.shape[2], q1 - q0), dtype)
        np.copyto(right, np.transpose(xb[:, q0:q1, :], (0, 2, 1)))
        for p0 in range(0, q1 if same else n_a, ub):
            p1 = min(n_a, p0 + ub)
            left = xa[:, p0:p1, :]
            key = (p0, p1, q0, q1)
            red = part.blocks.get(key) or part.blocks.setdefault(key, Reduction(part.slots, (p1 - p0) * (q1 - q0)))
            step = max(1, _PRODUCT_BYTES // (len(spans) * (p1 - p0) * (q1 - q0) * left.itemsize))
            for s0 in range(0, rows, step):
                s1 = min(rows, s0 + step)
                products = part.scratch.get("products", (len(spans), s1 - s0, p1 - p0, q1 - q0), dtype)
                for g, (c0, c1) in enumerate(spans):
                    np.matmul(left[s0:s1, :, c0:c1], right[s0:s1, c0:c1, :], out=products[g])
                red.add(products.reshape(len(spans), s1 - s0, -1), row_groups[s0:s1], groups, per, s1 == rows,
                        part.scratch)
                if part.cka:
                    part.frob[p0:p1, q0:q1] += np.sum(products, axis=(0, 1), dtype=np.float64)


_PRODUCT_BYTES = _PRODUCT_BYTES_FOR_ROWS
"""Bytes of each group's products made at once (rows of a block at a time), so that they are still in the
cache when they are reduced."""


def pairwise_with_errors(a: RowSource, b: RowSource | None, options: BlockOptions, progress: Any, cka: bool,
                          labels: Any, subsets: Sequence[int], keep_replicates: bool) -> PairwiseInformation:
    """:func:`pairwise_information` with ``groups``: the same blocks, each product split by group of images."""
    xp = a.xp
    b, same, n = _second_set(a, b)
    groups = ImageGroups.from_labels(_host(labels), n, subsets)
    n_groups, n_sub = groups.n_groups, len(groups.subsets)
    # each group's images contiguous, in the rows (the outer sum is order-free) and the columns
    a = reordered(a, groups.order)
    b = a if same else reordered(b, groups.order)
    dtype = xp.float64 if (a.dtype == xp.float64 or b.dtype == xp.float64) else xp.float32
    itemsize = 8 if dtype == xp.float64 else 4
    n_a, n_b = a.n_units, b.n_units
    sets = (a,) if same else (a, b)
    threads = options.threads_for(xp)
    ub = max(1, min(options.unit_block, options.error_unit_block))
    options = replace(options, unit_block=ub)
    rb = options.rows_for(n_a if same else n_a + n_b, n, itemsize, threads, n_groups)
    ub = -(-n_a // -(-n_a // ub))
    blocks = [(r0, min(n, r0 + rb)) for r0 in range(0, n, rb)]
    threads = min(threads, len(blocks))
    # rows multiplied before one log: every sum is in [1, N] where each unit's BC_ii = 1
    per = rows_per_log(n, all(getattr(s, "unit_diagonal", False) for s in sets))
    compiled = xp is np and jackknife_compiled() and dtype in (np.float32, np.float64)
    parts = [_GroupedPartial(xp, sets, n_a, n_b, n_groups, n_sub, cka, compiled) for _ in range(threads)]
    _run_blocks(blocks, threads, xp, progress, n,
                lambda k, r0, r1: _add_rows_grouped(parts[k], a, b, same, r0, r1, dtype, ub, groups, per))
    for part in parts:
        part.assemble()

    def total(get: Any) -> Any:
        out = get(parts[0])
        for part in parts[1:]:
            out = out + get(part)
        return out

    sizes = groups.sizes
    kept = [n - int(x) for x in sizes]  # images in each replicate
    sub_n = list(groups.subset_images)

    def bits(point: Any, rep: Any, sub: Any) -> tuple[Any, Any, Any]:
        """From sums of log2 S to -mean log2(S / n): the full set, each replicate, each subset."""
        def scale(x: Any, counts: list[int]) -> Any:
            c = xp.reshape(xp.asarray(counts, dtype=xp.float64), (len(counts),) + (1,) * (x.ndim - 1))
            return -(x / c - xp.log2(c))
        return -(point / n - math.log2(n)), scale(rep, kept), (scale(sub, sub_n) if n_sub else sub)

    def symmetric(m: Any) -> Any:
        block_of = xp.arange(n_a) // ub
        lower = xp.reshape(block_of, (n_a, 1)) > xp.reshape(block_of, (1, n_a))
        m = xp.where(lower, _swap_last(xp, m), m)
        return 0.5 * (m + _swap_last(xp, m))

    acc, rep, sub = total(lambda p: p.acc), total(lambda p: p.rep), total(lambda p: p.sub)
    if same:
        acc, rep = symmetric(acc), symmetric(rep)
        sub = symmetric(sub) if n_sub else sub
    joint, joint_r, joint_s = bits(acc, rep, sub)
    units = []  # per set: (information, twice), each (value, replicates, subsets) with units on the last axis
    for k, s in enumerate(sets):
        pair = []
        for t in range(2):
            point, r, u = (total(lambda p, i=i: p.units[k][t][i]) for i in range(3))
            v, vr, vs = bits(point, r, u)
            pair.append((xp.reshape(v, (s.n_units,)), xp.reshape(vr, (n_groups, s.n_units)),
                         xp.reshape(vs, (n_sub, s.n_units))))
        units.append(pair)
    (ia, sa) = units[0]
    (ib, sb) = (ia, sa) if same else units[1]
    nmi_r, vi_r = zip(*(nmi_vi(ia[1][g, ...], sa[1][g, ...], ib[1][g, ...], sb[1][g, ...], joint_r[g, ...])
                          for g in range(n_groups)))
    nmi_se, vi_se = jackknife_se(xp.stack(nmi_r, axis=0), xp), jackknife_se(xp.stack(vi_r, axis=0), xp)
    del nmi_r, vi_r
    cka_bc = None
    if cka:
        frob = total(lambda p: p.frob)
        cka_bc = _cka_from_sums(xp, symmetric(frob) if same else frob, total(lambda p: p.cross),
                                [total(lambda p, k=k: p.self_frob[k]) for k in range(len(sets))],
                                [total(lambda p, k=k: p.self_cross[k]) for k in range(len(sets))],
                                [total(lambda p, k=k: p.totals[k]) for k in range(len(sets))], n, same,
                                8 if dtype == xp.float64 else 4)
    subset_values = tuple(PairwiseInformation(ia[2][k, ...], sa[2][k, ...], ib[2][k, ...], sb[2][k, ...], joint_s[k, ...])
                          for k in range(n_sub))
    replicates = PairwiseInformation(ia[1], sa[1], ib[1], sb[1], joint_r) if keep_replicates else None
    se_a, se_sa = jackknife_se(ia[1], xp), jackknife_se(sa[1], xp)
    se_b, se_sb = (se_a, se_sa) if same else (jackknife_se(ib[1], xp), jackknife_se(sb[1], xp))
    return PairwiseInformation(
        ia[0], sa[0], ib[0], sb[0], joint, cka_bc,
        information_se_a=se_a, information_twice_se_a=se_sa, information_se_b=se_b, information_twice_se_b=se_sb,
        joint_information_se=jackknife_se(joint_r, xp), nmi_se=nmi_se, vi_se=vi_se,
        subsets=subset_values, subset_images=tuple(sub_n), replicates=replicates,
    )


def _swap_last(xp: Any, m: Any) -> Any:
    axes = tuple(range(m.ndim - 2)) + (m.ndim - 1, m.ndim - 2)
    return xp.permute_dims(m, axes)


def _host(labels: Any) -> np.ndarray:
    from ._array import to_numpy

    return np.asarray(to_numpy(labels))
