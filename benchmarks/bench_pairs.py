"""All-pairs information: the blockwise GEMM kernel against the reference algorithm.

Prints, for C units at N fingerprint images:
- the reference algorithm's time (a [C, N, N] float64 distance tensor, then a Python
  loop over pairs, each an exp and a log over N x N), the kernel's time, and their ratio;
- the pairwise phase's GFLOP/s against numpy's float32 GEMM rate, measured in this run;
- peak RSS of the kernel alone for a large case, in a fresh subprocess.

    python benchmarks/bench_pairs.py [--units 200] [--images 300] [--big-units 2000] [--big-images 1000]
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time

import numpy as np

from repspace.kernels import PosteriorRows, pairwise_information


def posteriors(units: int, images: int, dtype, seed: int = 0):
    rng = np.random.default_rng(seed)
    mu = rng.normal(scale=1.5, size=(units, images)).astype(dtype)
    logvar = rng.normal(loc=-1.0, size=(units, images)).astype(dtype)
    return mu, logvar


def reference_all_pairs(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """The reference algorithm: a float64 distance tensor, then a Python loop over pairs."""
    mu, var = mu.astype(np.float64), np.exp(logvar.astype(np.float64))
    c, n = mu.shape
    var_mean = (var[:, :, None] + var[:, None, :]) / 2
    distance = 0.125 * (mu[:, :, None] - mu[:, None, :]) ** 2 / var_mean + 0.5 * np.log(
        var_mean / np.sqrt(var[:, :, None] * var[:, None, :])
    )
    joint = np.empty((c, c))
    for a in range(c):
        for b in range(a, c):
            joint[a, b] = joint[b, a] = -np.mean(np.log2(np.mean(np.exp(-distance[a] - distance[b]), axis=1)))
    return joint


def gemm_rate(n: int = 2048, repeats: int = 5) -> float:
    rng = np.random.default_rng(1)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def best_of(fn, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def peak_rss_child(units: int, images: int) -> None:
    mu, logvar = posteriors(units, images, np.float32)
    t = time.perf_counter()
    res = pairwise_information(PosteriorRows(mu, logvar))
    elapsed = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": elapsed, "peak_rss_bytes": peak, "joint_shape": list(res.joint_information.shape)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--units", type=int, default=200)
    p.add_argument("--images", type=int, default=300)
    p.add_argument("--big-units", type=int, default=2000)
    p.add_argument("--big-images", type=int, default=1000)
    p.add_argument("--skip-big", action="store_true")
    p.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        peak_rss_child(*args.child)
        return

    c, n = args.units, args.images
    mu, logvar = posteriors(c, n, np.float64)
    print(f"all pairs of C={c} units at N={n} images")
    t = time.perf_counter()
    expected = reference_all_pairs(mu, logvar)
    t_ref = time.perf_counter() - t
    print(f"  reference (distance tensor + loop over {c * (c + 1) // 2} pairs): {t_ref:8.3f} s")

    for dtype in (np.float64, np.float32):
        m, lv = mu.astype(dtype), logvar.astype(dtype)
        res = pairwise_information(PosteriorRows(m, lv))
        err = np.abs(res.joint_information - expected).max()
        t_fast = best_of(lambda: pairwise_information(PosteriorRows(m, lv)), 3)
        print(f"  kernel {np.dtype(dtype).name}: {t_fast:8.4f} s   speed-up {t_ref / t_fast:7.0f}x   max |diff| {err:.1e} bits")

    # the pairwise phase alone: BC rows precomputed, then the batched products and logs
    m, lv = mu.astype(np.float32), logvar.astype(np.float32)
    rows = PosteriorRows(m, lv).rows(0, n)

    class Precomputed:
        xp, dtype, n_units, n_images = np, np.float32, c, n

        def rows(self, start, stop):
            return rows[start:stop]

    t_pairs = best_of(lambda: pairwise_information(Precomputed()), 3)
    flops = n * n * c * (c + 1)  # a multiply and an add per (row, column, unordered pair)
    rate = gemm_rate()
    print(f"  float32 GEMM (2048^3, numpy): {rate:7.1f} GFLOP/s")
    print(f"  pairwise phase: {t_pairs:.4f} s = {flops / t_pairs / 1e9:7.1f} GFLOP/s = {flops / t_pairs / 1e9 / rate:5.1%} of GEMM")

    if not args.skip_big:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(args.big_units), str(args.big_images)],
            check=True, capture_output=True, text=True,
        )
        big = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"C={args.big_units} units at N={args.big_images} (float32, default blocks): {big['seconds']:.1f} s, "
            f"peak RSS {big['peak_rss_bytes'] / 2**30:.2f} GiB"
        )


if __name__ == "__main__":
    main()
