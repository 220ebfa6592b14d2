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
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from ._array import namespace
from . import fused
from .jackknife import ImageGroups, Reduction, grouped_log_sums, jackknife_groups, jackknife_se, rows_per_log
from .jackknife import compiled as jackknife_compiled
from .rows import (LabelRows, MatrixRows, PosteriorRows, RowSource, grouped_rows_and_sums, label_coefficients,
                   reordered, rows_and_sums)

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
]


CKA_CANCELLATION = {4: 1e-4, 8: 1e-10}
"""<HKH, HKH> below this fraction of <K, K> is rounding error (float32 and float64 BC rows): CKA is NaN there."""
_PRODUCT_BYTES_FOR_ROWS = 16 * 2**20  # the jackknife's products buffer (information._PRODUCT_BYTES)


@dataclass(frozen=True)
class BlockOptions:
    """Block sizes and threads of the all-pairs computation.

    Attributes
    ----------
    unit_block : int
        Units per side of one matrix-product block.
    error_unit_block : int
        The same with jackknife groups (at most ``unit_block``): each block then has G products, and
        smaller blocks keep them in the cache while they are reduced.
    row_block : int or None
        Fingerprint rows per block; chosen from ``memory_bytes`` when None.
    memory_bytes : int
        Budget for the generated BC rows and the block products of all threads.
    threads : int or None
        Threads that share the row blocks (numpy only; each runs single-threaded BLAS).
        None: every core for numpy arrays, 1 for other modules. Pass 1 inside a Dask task.
    """

    unit_block: int = 512
    error_unit_block: int = 256
    row_block: int | None = None
    memory_bytes: int = 256 * 2**20
    threads: int | None = None

    def rows_for(self, n_units: int, n_images: int, itemsize: int, threads: int = 1, groups: int = 0) -> int:
        """Rows per block: the generated rows of every unit and a block's products, for every thread within
        ``memory_bytes``. With ``groups`` (the jackknife) the products are made a few rows at a time into one
        buffer, and every thread holds a block's running products, (1 + groups) x unit_block^2 float64: their
        room is taken from the budget first. (The sums of logs, as large as the results times 1 + groups per
        thread, are not counted, like the results.)"""
        if self.row_block is not None:
            return max(1, min(self.row_block, n_images))
        ub = min(self.unit_block, n_units)
        per_row = n_units * n_images * itemsize + (ub * ub * (itemsize + 8) if not groups else 0)
        fixed = 0
        if groups:
            fixed = (1 + groups) * 8 * ub * ub + _PRODUCT_BYTES_FOR_ROWS
        budget = max(self.memory_bytes - fixed * max(threads, 1), self.memory_bytes // 4)
        by_memory = (budget if groups else self.memory_bytes) // max(per_row * max(threads, 1), 1)
        by_balance = -(-n_images // (8 * max(threads, 1)))  # about eight blocks per thread, for balance and cache
        return max(1, min(n_images, by_memory, by_balance))

    def threads_for(self, xp: Any) -> int:
        if self.threads is not None:
            return max(1, self.threads)
        return max(1, os.cpu_count() or 1) if xp is np else 1


@dataclass
class PairwiseInformation:
    """Per-unit and pairwise information, in bits (arrays of the inputs' module, float64).

    Attributes
    ----------
    information_a, information_twice_a : (A,)  I(U) and I(U,U') of the first set
    information_b, information_twice_b : (B,)  the same for the second set (the first again when there is one set)
    joint_information : (A, B)  I(U,V)
    cka_bc : (A, B) or None  CKA of the units' BC matrices as kernels (biased HSIC), when asked for
    information_se_a, information_twice_se_a, information_se_b, information_twice_se_b : (A,), (B,) or None
        delete-a-group jackknife standard errors (bits) of the above, when groups were given
    joint_information_se : (A, B) or None  the same for I(U,V)
    nmi_se, vi_se : (A, B) or None  jackknife standard errors of NMI and VI: each replicate's NMI and VI from
        that replicate's five quantities (NaN where NMI is undefined in any replicate)
    subsets : tuple of PairwiseInformation  the values on nested subsets of the images (no errors)
    subset_images : tuple of int  the number of images in each subset
    replicates : PairwiseInformation or None  the G replicates, arrays (G, ...), when asked for
    """

    information_a: Any
    information_twice_a: Any
    information_b: Any
    information_twice_b: Any
    joint_information: Any
    cka_bc: Any = None
    information_se_a: Any = None
    information_twice_se_a: Any = None
    information_se_b: Any = None
    information_twice_se_b: Any = None
    joint_information_se: Any = None
    nmi_se: Any = None
    vi_se: Any = None
    subsets: tuple[PairwiseInformation, ...] = ()
    subset_images: tuple[int, ...] = ()
    replicates: PairwiseInformation | None = None

    def nmi_vi(self) -> tuple[Any, Any]:
        return nmi_vi(self.information_a, self.information_twice_a, self.information_b, self.information_twice_b, self.joint_information)

    def nmi_vi_se(self) -> tuple[Any, Any, Any, Any]:
        """(nmi, vi, nmi_se, vi_se), each (A, B): the errors by the jackknife over the replicates (each
        replicate's NMI and VI from its own five quantities), not by linear propagation."""
        if self.nmi_se is None:
            raise ValueError("no standard errors: pass groups= to pairwise_information")
        nmi, vi = self.nmi_vi()
        return nmi, vi, self.nmi_se, self.vi_se


def nmi_vi(
    information_a: Any, self_a: Any, information_b: Any, self_b: Any, joint: Any, *, min_information: float = 1e-6
) -> tuple[Any, Any]:
    """NMI and VI (bits) of every pair from the five information quantities.

    NMI(U,V) = (I(U) + I(V) - I(U,V)) / sqrt((2 I(U) - I(U,U')) (2 I(V) - I(V,V')))
    VI(U,V)  = 2 I(U,V) - I(U,U') - I(V,V')

    NMI is NaN where a unit carries (almost) no information: where 2 I(U) - I(U,U') is
    below ``min_information`` bits the ratio would be rounding error over rounding error.
    """
    xp = namespace(information_a)
    ia, ib = information_a[:, None], information_b[None, :]
    sa, sb = self_a[:, None], self_b[None, :]
    norm_a, norm_b = 2.0 * ia - sa, 2.0 * ib - sb
    defined = (norm_a >= min_information) & (norm_b >= min_information)
    denom = xp.where(defined, norm_a * norm_b, xp.ones_like(ia + ib))
    nmi = xp.where(defined, (ia + ib - joint) / xp.sqrt(denom), xp.full_like(denom, math.nan))
    vi = 2.0 * joint - sa - sb
    return nmi, vi


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
    n_a, n_b = a.n_units, b.n_units
    for p0 in range(0, n_a, ub):
        p1 = min(n_a, p0 + ub)
        left = xa[:, p0:p1, :]
        for q0 in range(p0 if same else 0, n_b, ub):
            q1 = min(n_b, q0 + ub)
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
        return _pairwise_with_errors(a, b, options or BlockOptions(), progress, cka, groups, subsets, keep_replicates)
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


def _add_cka_rows(part: Any, xp: Any, k: int, rs64: Any, self_frob: Any, row_sums: list[Any]) -> None:
    """Add a row block's CKA sums of set ``k``: its row sums ``rs64`` (rows, units), float64, and their squares'
    total ``self_frob`` (units,)."""
    part.self_frob[k] = part.self_frob[k] + self_frob
    part.self_cross[k] = part.self_cross[k] + xp.sum(rs64 * rs64, axis=0)
    part.totals[k] = part.totals[k] + xp.sum(rs64, axis=0)
    row_sums.append(rs64)


def _add_cka_cross(part: Any, xp: Any, row_sums: list[Any], same: bool) -> None:
    """Add sum_i r_ai r_bi of a row block to the running CKA cross sums."""
    ra = row_sums[0]
    rb = ra if same else row_sums[1]
    part.cross = part.cross + xp.matmul(xp.permute_dims(ra, (1, 0)), rb)


def _second_set(a: RowSource, b: RowSource | None) -> tuple[RowSource, bool, int]:
    """The second set of units (``a`` again when None), whether it is ``a`` itself, and the images both cover."""
    if b is None:
        return a, True, a.n_images
    if b.n_images != a.n_images:
        raise ValueError(f"unit sets cover different numbers of images: {a.n_images} vs {b.n_images}")
    if b.xp is not a.xp:
        raise TypeError("both unit sets must use the same array module")
    return b, False, a.n_images


def _run_blocks(blocks: list[tuple[int, int]], threads: int, xp: Any, progress: Any, n: int, add: Any) -> None:
    """``add(k, r0, r1)`` for every row block, thread k taking a fixed, strided share of them."""
    done = [0]
    lock = threading.Lock()

    def run(k: int) -> None:
        # a fixed, strided share of the row blocks per thread: the same sums in the same order every time
        for r0, r1 in blocks[k::threads]:
            add(k, r0, r1)
            if progress is not None:
                with lock:
                    done[0] += r1 - r0
                    progress(done[0], n)

    if threads == 1:
        run(0)
    else:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(1) if xp is np else nullcontext()
        with limit, ThreadPoolExecutor(threads) as pool:
            for future in [pool.submit(run, k) for k in range(threads)]:
                future.result()


def _cka_from_sums(xp: Any, frob: Any, cross: Any, self_frob: list[Any], self_cross: list[Any], t: list[Any], n: int,
                   same: bool, itemsize: int) -> Any:
    """CKA of BC matrices from <K_a, K_b>, sum_i r_ai r_bi and the totals (frob already symmetric)."""
    n_a, n_b = frob.shape
    tb = t[0] if same else t[1]
    h_ab = frob - (2.0 / n) * cross + xp.reshape(t[0], (n_a, 1)) * xp.reshape(tb, (1, n_b)) / n**2
    h_self = [f - (2.0 / n) * c + tt * tt / n**2 for f, c, tt in zip(self_frob, self_cross, t)]
    # a unit whose BC matrix is constant (it carries nothing) has <HKH, HKH> = 0 up to the cancellation of
    # terms of order N^2: below that rounding level its CKA is undefined (NaN), as its NMI is
    floor = CKA_CANCELLATION[itemsize]
    h_self = [xp.where(h > floor * f, h, xp.zeros_like(h)) for h, f in zip(h_self, self_frob)]
    ha = h_self[0]
    hb = ha if same else h_self[1]
    denom = xp.reshape(ha, (n_a, 1)) * xp.reshape(hb, (1, n_b))
    ok = denom > 0
    return xp.where(ok, h_ab / xp.sqrt(xp.where(ok, denom, xp.ones_like(denom))), xp.full_like(denom, math.nan))


# --- the delete-a-group jackknife, riding on the same products ---------------------------


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
    for p0 in range(0, n_a, ub):
        p1 = min(n_a, p0 + ub)
        left = xa[:, p0:p1, :]
        for q0 in range(p0 if same else 0, n_b, ub):
            q1 = min(n_b, q0 + ub)
            right = xp.permute_dims(xb[:, q0:q1, :], (0, 2, 1))
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


def _pairwise_with_errors(a: RowSource, b: RowSource | None, options: BlockOptions, progress: Any, cka: bool,
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
