"""BC rows with their sums: the fused numba kernel against the array-module path.

The pairs and channels stages generate every unit's BC rows, and each row's sum and sum of
squares, block by block. Prints, for C units at N fingerprint images, in float32 and float64:
nanoseconds per BC element for the array-module path (separate numpy passes, what cupy runs)
and for the fused kernel (``repspace.kernels.fused``), their ratio, and the largest relative
difference between the two (over the first two row blocks, where it is not negligible). At the
defaults the array path takes about a minute per repeat.

    python benchmarks/bench_rows.py [--units 4000] [--images 1000] [--rows 50] [--repeats 3]
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_pairs import best_of  # benchmarks/ is on the path when this script runs

from repspace import kernels
from repspace.kernels import PosteriorRows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--units", type=int, default=4000)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--rows", type=int, default=50, help="rows per call (a row block)")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    if not kernels.fused.available():
        raise SystemExit("numba is not installed: there is no fused kernel to time")
    rng = np.random.default_rng(0)
    print(f"{a.units} units x {a.images} images, {a.rows} rows per call (best of {a.repeats})")
    for dtype in (np.float32, np.float64):
        mu = rng.normal(scale=1.5, size=(a.units, a.images)).astype(dtype)
        logvar = rng.normal(loc=-1.0, size=(a.units, a.images)).astype(dtype)
        fused, numpy_path = PosteriorRows(mu, logvar, fused_kernel=True), PosteriorRows(mu, logvar, fused_kernel=False)
        buffers = kernels.fused.scratch()
        blocks = [(r0, min(a.images, r0 + a.rows)) for r0 in range(0, a.images, a.rows)]
        worst = 0.0
        for r0, r1 in blocks[:2]:  # values first (and the kernel compiled)
            got = kernels.rows_and_sums(fused, r0, r1, fused.dtype, buffers)
            want = kernels.rows_and_sums(numpy_path, r0, r1, numpy_path.dtype)
            for g, w in zip(got, want):
                big = np.abs(w) > 1e-30  # relative, where the entries are not negligible
                worst = max(worst, float(np.max(np.abs(g[big] - w[big]) / np.abs(w[big]))))

        def run(rows, buf=None):
            for r0, r1 in blocks:
                kernels.rows_and_sums(rows, r0, r1, rows.dtype, buf)

        elements = a.units * a.images * a.images
        t_numpy = best_of(lambda: run(numpy_path), a.repeats)
        t_fused = best_of(lambda: run(fused, buffers), a.repeats)
        print(f"{np.dtype(dtype).name}: array path {t_numpy / elements * 1e9:.2f} ns per element, fused "
              f"{t_fused / elements * 1e9:.2f} ns ({t_numpy / t_fused:.1f}x); largest relative difference "
              f"{worst:.1e}")


if __name__ == "__main__":
    main()
