"""Information carried by units, and all pairs of units at once, from BC matrices.

A unit's BC matrix over the fingerprint set gives (Kolchinsky & Tracey lower bounds, bits)

    I(U)    = -1/N sum_i log2( 1/N sum_j BC_ij )
    I(U,U') = -1/N sum_i log2( 1/N sum_j BC_ij^2 )
    I(U,V)  = -1/N sum_i log2( 1/N sum_j BC^U_ij BC^V_ij )

For a fixed row i, S_i[a, b] = sum_j BC^a_ij BC^b_ij is entry (a, b) of X_i X_i^T, where X_i
stacks row i of every unit's BC matrix; every I(U,V) comes from a batched matrix product
and one log per (i, a, b). Rows of BC are generated block by block from a *row source*
(posteriors, ground-truth labels or explicit BC matrices), so memory stays bounded for any
number of units.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from . import fused
from .allpairs import (CKA_CANCELLATION, BlockOptions, PairwiseInformation, _add_cka_cross, _add_cka_rows,
                       _cka_from_sums, _run_blocks, _second_set, nmi_vi, unit_blocks)
from .grouped import pairwise_with_errors
from .jackknife import jackknife_groups, jackknife_se
from .rows import LabelRows, MatrixRows, PosteriorRows, RowSource, label_coefficients, rows_and_sums

__all__ = [
    "BlockOptions",
    "RowSource",
    "PosteriorRows",
    "LabelRows",
    "MatrixRows",
    "PairwiseInformation",
    "pairwise_information",
    "label_coefficients",
    "nmi_vi",
    "jackknife_groups",
    "jackknife_se",
    "CKA_CANCELLATION",
]


def _sum_log2_mean(xp: Any, sums: Any, n: int, acc: Any = None, scratch: Any = None) -> Any:
    """sum over axis 0 of log2(sums / n), accumulated in float64: returned, or added in place to
    ``acc`` (numpy only; ``sums`` is then overwritten and ``scratch`` holds the buffers).

    Every sum lies in [1, n] when it holds the diagonal's BC_ii = 1, so groups of rows are
    multiplied first and one log taken per group: as many rows as keep the product inside the
    float range (at most 8; :func:`_group_size`), a few times fewer logs at the rounding of a product.
    """
    rows = sums.shape[0]
    group = _group_size(float(xp.min(sums)), n, rows, sums.dtype == xp.float32)
    full = rows - rows % group
    parts = []
    if group > 1 and full:
        grouped = xp.reshape(sums[:full, ...], (full // group, group, *sums.shape[1:]))
        parts.append(xp.prod(grouped, axis=1) if acc is None else
                     np.multiply.reduce(grouped, axis=1, out=scratch.get("prods", grouped.shape[:1] + grouped.shape[2:],
                                                                         sums.dtype)))
        sums = sums[full:, ...]
    if sums.shape[0]:
        parts.append(sums)
    if acc is None:
        total = 0.0
        for x in parts:
            total = total + xp.sum(xp.log2(x), axis=0, dtype=xp.float64)
        return total - rows * math.log2(n)
    total = scratch.get("log_sums", acc.shape, np.float64)
    for x in parts:  # in place, into buffers reused from block to block
        np.log2(x, out=x)
        np.sum(x, axis=0, dtype=np.float64, out=total)
        acc += total
    acc -= rows * math.log2(n)
    return acc


def _group_size(smallest: float, n: int, rows: int, single: bool) -> int:
    """Rows whose product stays inside the float range, at most 8: sums are at most ``n`` (BC <= 1),
    and at least ``smallest`` (1 with the diagonal's BC_ii = 1; explicit BC matrices may hold less)."""
    top = 125.0 if single else 1021.0  # log2 of the largest and of the smallest normal float, less 2
    if not smallest > 0.0:
        return 1  # a zero sum: its log is -inf either way
    per_row = max(math.log2(max(n, 2)), -math.log2(smallest), 1.0)
    return max(1, min(8, rows, int(top // per_row)))


class _Partial:
    """One thread's running sums over the row blocks it was given."""

    def __init__(self, xp: Any, sets: tuple[RowSource, ...], n_a: int, n_b: int, cka: bool = False) -> None:
        self.acc = xp.zeros((n_a, n_b), dtype=xp.float64)
        self.buffers = [fused.scratch() for _ in sets]  # each set's rows, reused from block to block
        self.scratch = fused.scratch()  # products and their logs (numpy)
        self.information = [xp.zeros((s.n_units,), dtype=xp.float64) for s in sets]
        self.information_twice = [xp.zeros((s.n_units,), dtype=xp.float64) for s in sets]
        self.cka = cka
        if cka:  # the raw sums behind <HKH, HLH>: <K, L>, sum_i r^K_i r^L_i, and the totals (r: row sums)
            self.frob = xp.zeros((n_a, n_b), dtype=xp.float64)
            self.cross = xp.zeros((n_a, n_b), dtype=xp.float64)
            self.self_frob = [xp.zeros((s.n_units,), dtype=xp.float64) for s in sets]
            self.self_cross = [xp.zeros((s.n_units,), dtype=xp.float64) for s in sets]
            self.totals = [xp.zeros((s.n_units,), dtype=xp.float64) for s in sets]


def _add_rows(
    part: _Partial, a: RowSource, b: RowSource, same: bool, r0: int, r1: int, dtype: Any, ub: int, n: int
) -> None:
    """Add rows r0:r1 of every sum to ``part``."""
    xp = a.xp
    xa, *sums_a = rows_and_sums(a, r0, r1, dtype, part.buffers[0])  # (rows, A, N), (rows, A) twice
    xb, *sums_b = (xa, *sums_a) if same else rows_and_sums(b, r0, r1, dtype, part.buffers[1])
    row_sums = []
    for k, (rs, twice) in enumerate((sums_a,) if same else (sums_a, sums_b)):
        part.information[k] = part.information[k] + _sum_log2_mean(xp, rs, n)
        part.information_twice[k] = part.information_twice[k] + _sum_log2_mean(xp, twice, n)
        if part.cka:
            _add_cka_rows(part, xp, k, xp.astype(rs, xp.float64), xp.sum(twice, axis=0, dtype=xp.float64), row_sums)
    if part.cka:
        _add_cka_cross(part, xp, row_sums, same)
    for p0, p1, q0, q1 in unit_blocks(a.n_units, b.n_units, ub, same):
        left = xa[:, p0:p1, :]
        right = xp.permute_dims(xb[:, q0:q1, :], (0, 2, 1))
        if xp is np:  # into buffers reused from block to block: no fresh pages to fault in every time
            products = np.matmul(left, right, out=part.scratch.get("products", (r1 - r0, p1 - p0, q1 - q0), dtype))
            if part.cka:
                part.frob[p0:p1, q0:q1] += np.sum(products, axis=0, dtype=np.float64)
            _sum_log2_mean(np, products, n, part.acc[p0:p1, q0:q1], part.scratch)
            continue
        products = xp.matmul(left, right)
        part.acc[p0:p1, q0:q1] = part.acc[p0:p1, q0:q1] + _sum_log2_mean(xp, products, n)
        if part.cka:
            part.frob[p0:p1, q0:q1] = part.frob[p0:p1, q0:q1] + xp.sum(products, axis=0, dtype=xp.float64)

def pairwise_information(
    a: RowSource, b: RowSource | None = None, *, options: BlockOptions | None = None, progress: Any = None,
    cka: bool = False, groups: Any = None, subsets: Sequence[int] = (), keep_replicates: bool = False,
) -> PairwiseInformation:
    """I(U), I(U,U') per unit and I(U,V) for every pair of units, blockwise.

    Parameters
    ----------
    a : RowSource
        The first stack of units (A units over N images).
    b : RowSource, optional
        A second stack over the same N images; when omitted, all pairs within ``a``
        are computed once each (the symmetry is used) and ``joint_information`` is (A, A).
    options : BlockOptions
    progress : callable(done_rows, total_rows), optional
    cka : also CKA between every two units' BC matrices, from the same products (their sums before
        the logs): <HK_aH, HK_bH> = <K_a, K_b> - (2/N) sum_i r_ai r_bi + t_a t_b / N^2 with r the
        row sums and t the totals.
    groups : int array (image,), optional
        Labels in [0, G) of a random partition of the images (:func:`jackknife_groups`): adds
        delete-a-group jackknife standard errors of every value (see :mod:`repspace.kernels.jackknife`).
        The products are then made as G products over each group's images (the same flops), so the values
        move by rounding only: measured on ensembles of 200-300 channels at N = 300-1000, I(U) and I(U,V)
        by at most 2.4e-7 bits in float32 and 5e-15 in float64; NMI between channels carrying more than 0.01
        bits by 2.6e-7 in float32 (as much as float32 and float64 differ), while NMI of channels near the
        1e-6-bit floor of ``nmi_vi`` is rounding over rounding on either path. Without groups the
        computation is the one it always was, bit for bit.
    subsets : sequence of int
        With ``groups``: numbers k of leading groups; the values on the images of groups 0..k-1 alone
        (outer and inner means) are returned in ``subsets``, from the same sums.
    keep_replicates : with ``groups``, also return the G replicates' values (arrays (G, ...)).

    Returns
    -------
    PairwiseInformation
        float64 arrays in bits.
    """
    if groups is not None:
        return pairwise_with_errors(a, b, options or BlockOptions(), progress, cka, groups, subsets, keep_replicates)
    if subsets:
        raise ValueError("subsets need groups")
    options = options or BlockOptions()
    xp = a.xp
    b, same, n = _second_set(a, b)
    dtype = xp.float64 if (a.dtype == xp.float64 or b.dtype == xp.float64) else xp.float32
    itemsize = 8 if dtype == xp.float64 else 4
    n_a, n_b = a.n_units, b.n_units
    sets = (a,) if same else (a, b)
    threads = options.threads_for(xp)
    rb = options.rows_for(n_a if same else n_a + n_b, n, itemsize, threads)
    ub = max(1, options.unit_block)
    ub = -(-n_a // -(-n_a // ub))  # blocks of equal size: 2,000 units in blocks of 512 become four of 500
    blocks = [(r0, min(n, r0 + rb)) for r0 in range(0, n, rb)]
    threads = min(threads, len(blocks))
    parts = [_Partial(xp, sets, n_a, n_b, cka) for _ in range(threads)]
    _run_blocks(blocks, threads, xp, progress, n, lambda k, r0, r1: _add_rows(parts[k], a, b, same, r0, r1, dtype, ub, n))
    acc, information, information_twice = parts[0].acc, parts[0].information, parts[0].information_twice
    for part in parts[1:]:
        acc = acc + part.acc
        information = [x + y for x, y in zip(information, part.information)]
        information_twice = [x + y for x, y in zip(information_twice, part.information_twice)]

    def symmetric(m: Any) -> Any:
        # only blocks on or above the block diagonal were computed: mirror the rest,
        # then average with the transpose so the result is exactly symmetric
        block_of = xp.arange(n_a) // ub
        lower = xp.reshape(block_of, (n_a, 1)) > xp.reshape(block_of, (1, n_a))
        m = xp.where(lower, xp.permute_dims(m, (1, 0)), m)
        return 0.5 * (m + xp.permute_dims(m, (1, 0)))

    if same:
        acc = symmetric(acc)
    joint = -acc / n
    ia, sa = -information[0] / n, -information_twice[0] / n
    ib, sb = (ia, sa) if same else (-information[1] / n, -information_twice[1] / n)
    cka_bc = None
    if cka:
        total = {name: [getattr(parts[0], name)[k] for k in range(len(sets))] for name in
                 ("self_frob", "self_cross", "totals")}
        frob, cross = parts[0].frob, parts[0].cross
        for part in parts[1:]:
            frob, cross = frob + part.frob, cross + part.cross
            for name in total:
                total[name] = [x + y for x, y in zip(total[name], getattr(part, name))]
        if same:
            frob = symmetric(frob)
        cka_bc = _cka_from_sums(xp, frob, cross, total["self_frob"], total["self_cross"], total["totals"], n, same,
                                itemsize)
    return PairwiseInformation(ia, sa, ib, sb, joint, cka_bc)
