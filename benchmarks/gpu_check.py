"""The kernels on a GPU: cupy against numpy, value by value, and timed.

Needs only numpy, cupy and this package's kernels (no dask, zarr or TensorFlow), so it
runs on a bare GPU machine:

    PYTHONPATH=. python benchmarks/gpu_check.py [--units 2000] [--images 1000]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from repspace.kernels import BlockOptions, LabelRows, PosteriorRows, mc_information, pairwise_information
from repspace.kernels._array import to_numpy


def timed(fn, sync, repeats=3):
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return out, best


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--units", type=int, default=2000)
    p.add_argument("--images", type=int, default=1000)
    args = p.parse_args()
    import cupy as cp

    sync = cp.cuda.Device().synchronize
    rng = np.random.default_rng(0)
    ok = True
    print(f"device: {cp.cuda.runtime.getDeviceProperties(0)['name'].decode()}")

    # correctness on a small case, both dtypes, with and without labels
    for dtype, tol in ((np.float64, 1e-9), (np.float32, 1e-4)):
        mu = rng.normal(size=(60, 200)).astype(dtype)
        lv = rng.normal(-1, 1, size=(60, 200)).astype(dtype)
        labels = rng.integers(0, 4, size=(200, 3))
        opts = BlockOptions(unit_block=16, row_block=32)
        ref = pairwise_information(PosteriorRows(mu, lv), options=opts)
        gpu = pairwise_information(PosteriorRows(cp.asarray(mu), cp.asarray(lv)), options=opts)
        err = float(np.abs(to_numpy(gpu.joint_information) - ref.joint_information).max())
        ref_f = pairwise_information(PosteriorRows(mu, lv), LabelRows(labels, dtype), options=opts)
        gpu_f = pairwise_information(PosteriorRows(cp.asarray(mu), cp.asarray(lv)), LabelRows(cp.asarray(labels), cp.dtype(dtype).type))
        err_f = float(np.abs(to_numpy(gpu_f.joint_information) - ref_f.joint_information).max())
        good = err <= tol and err_f <= tol
        ok &= good
        print(f"all pairs {np.dtype(dtype).name}: max |cupy - numpy| {err:.2e} bits, with factors {err_f:.2e}  {'ok' if good else 'FAIL'}")
    m = rng.normal(size=(5000, 10))
    lv = rng.normal(-1, 0.5, size=(5000, 10))
    a = mc_information(m, lv, n_samples=2000, rng=np.random.default_rng(1))
    b = mc_information(cp.asarray(m), cp.asarray(lv), n_samples=2000, rng=np.random.default_rng(1))
    good = abs(a.bits - b.bits) < 1e-9
    ok &= good
    print(f"Monte Carlo I(U;X): numpy {a.bits:.6f} cupy {b.bits:.6f} bits  {'ok' if good else 'FAIL'}")

    # timing: all pairs of U units at N images, float32
    u, n = args.units, args.images
    mu = rng.normal(size=(u, n)).astype(np.float32)
    lv = rng.normal(-1, 1, size=(u, n)).astype(np.float32)
    d_mu, d_lv = cp.asarray(mu), cp.asarray(lv)
    opts = BlockOptions(unit_block=u, memory_bytes=8 * 2**30)
    _, t_gpu = timed(lambda: pairwise_information(PosteriorRows(d_mu, d_lv), options=opts), sync)
    flops = n * n * u * (u + 1)
    print(f"all pairs of {u} units at N={n} on the GPU: {t_gpu:.3f} s = {flops / t_gpu / 1e12:.2f} TFLOP/s (useful)")
    x = cp.asarray(rng.random((8192, 8192), dtype=np.float32))
    _, t_mm = timed(lambda: x @ x, sync)
    print(f"cupy float32 GEMM 8192^3: {2 * 8192**3 / t_mm / 1e12:.2f} TFLOP/s")
    t = time.perf_counter()
    pairwise_information(PosteriorRows(mu[:200], lv[:200]))
    t_cpu = time.perf_counter() - t
    print(f"numpy, 200 units at N={n}: {t_cpu:.3f} s (for scale)")
    print("ALL OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
