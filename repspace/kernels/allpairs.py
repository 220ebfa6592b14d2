"""The block machinery shared by the all-pairs computations with and without standard errors: block sizes and
threads, the result, NMI and VI from the five quantities, the threads' shares of the row blocks, and CKA from
the products' sums."""

from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._array import namespace
from .rows import RowSource

__all__ = ["BlockOptions", "PairwiseInformation", "nmi_vi", "CKA_CANCELLATION"]


CKA_CANCELLATION = {4: 1e-4, 8: 1e-10}
"""<HKH, HKH> below this fraction of <K, K> is rounding error (float32 and float64 BC rows): CKA is NaN there."""
_PRODUCT_BYTES_FOR_ROWS = 16 * 2**20  # the jackknife's products buffer (grouped._PRODUCT_BYTES)


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


def unit_blocks(n_a: int, n_b: int, ub: int, same: bool) -> list[tuple[int, int, int, int]]:
    """(p0, p1, q0, q1) of every block of ``ub`` x ``ub`` units, rows of blocks first; with one set (``same``)
    only the blocks on or above the block diagonal (the rest is their mirror)."""
    return [(p0, min(n_a, p0 + ub), q0, min(n_b, q0 + ub))
            for p0 in range(0, n_a, ub) for q0 in range(p0 if same else 0, n_b, ub)]


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
