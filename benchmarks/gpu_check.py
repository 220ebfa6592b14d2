"""The kernels on a GPU: cupy against numpy, value by value, and timed.

The kernel checks need only numpy, cupy and this package's kernels (no dask, zarr or
TensorFlow), so they run on a bare GPU machine. ``--sweep-models M`` also runs the sweep's
channels and pairs stages on a synthetic store of M models x 10 channels, once with ``gpu``
and once on the CPU, on a LocalCluster of one worker, and compares the stored values one by one
(this part needs dask, distributed, zarr and xarray: carry their wheels, see benchmarks/README.md):

    PYTHONPATH=. python benchmarks/gpu_check.py [--units 10000] [--images 1000] [--sweep-models 200]
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
    p.add_argument("--units", type=int, default=10_000)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--sweep-models", type=int, default=0, help="also run the channels and pairs stages on M models")
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
    opts = BlockOptions(unit_block=min(u, 4096), memory_bytes=16 * 2**30)
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
    if args.sweep_models:
        ok &= sweep_check(args.sweep_models, args.images)
    print("ALL OK" if ok else "MISMATCH")
    return 0 if ok else 1


def sweep_check(models: int, images: int) -> bool:
    """The channels and pairs stages with gpu=True against the CPU, value by value, and timed."""
    import tempfile
    from pathlib import Path

    import xarray as xr
    from distributed import Client, LocalCluster

    from repspace.data import FingerprintConfig, build_fingerprint
    from repspace.models import ModelEntry
    from repspace.pipeline import RunConfig, run
    from repspace.store import write_posteriors

    rng = np.random.default_rng(3)
    mu = rng.normal(size=(models, 10, images)).astype(np.float32)
    logvar = rng.normal(-1.0, 0.5, size=(models, 10, images)).astype(np.float32)
    entries = [ModelEntry(name=str(i), path="", family="synthetic", seed=i, source="gpu-check") for i in range(models)]
    ok, stores, times = True, {}, {}
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                                            dashboard_address=None) as cluster, Client(cluster) as cl:
        for gpu in (True, False):
            config = RunConfig(run_dir=str(Path(tmp) / f"gpu{gpu}"), n_images=images, image_size=32, dashboard=False,
                               gpu=gpu, stages=("channels", "pairs"))
            build_fingerprint(FingerprintConfig(dataset="dsprites_procedural", n=images, seed=0, image_size=32,
                                                store=config.store))
            write_posteriors(config.store, mu, logvar, entries)
            t = time.perf_counter()
            result = run(config, client=cl, log=lambda m: None)
            times[gpu] = {r.name: r.seconds for r in result.stages}
            stores[gpu] = config.store
            print(f"sweep with gpu={gpu}: channels {times[gpu]['channels']:.1f} s, pairs {times[gpu]['pairs']:.1f} s "
                  f"({time.perf_counter() - t:.1f} s in all)")
        for group, names, tol in (("channels", ("information", "information_twice", "nmi_factor", "vi_factor"), 1e-5),
                                  ("pairs", ("nmi", "vi"), 1e-4)):
            a = xr.open_zarr(stores[True], group=group, consolidated=False).load()
            b = xr.open_zarr(stores[False], group=group, consolidated=False).load()
            for name in names:
                x, y = a[name].values, b[name].values
                same_nan = bool((np.isnan(x) == np.isnan(y)).all())
                err = float(np.nanmax(np.abs(x - y)))
                good = same_nan and err <= tol
                ok &= good
                print(f"sweep {group}/{name}: max |gpu - cpu| {err:.2e}, NaN in the same places {same_nan}  "
                      f"{'ok' if good else 'FAIL'}")
    return ok


if __name__ == "__main__":
    sys.exit(main())
