"""The channels and pairs stages on a synthetic embeddings store, against the GEMM roofline.

A store of M models x C channels x N images (default 1,000 x 10 x 1,000) goes through
the channels and pairs stages (and the structure with ``--structure``) on an in-process
LocalCluster. Printed: the time of each stage, the time the float32 GEMM roofline allows for
the pairs stage (N^2 U^2 flops for the U channels whose pairs are computed, at the GEMM rate
measured in this run with one thread per worker), their ratio, and the peak RSS of the whole
process tree.

Every channel is informative by default. ``--realistic`` makes the ensemble look like trained
VAEs: each model keeps 2-6 of its channels (posteriors that follow a factor, with small
variances) and leaves the rest near the prior (mu about 0, logvar about 0).

    python benchmarks/bench_sweep.py [--models 1000] [--channels 10] [--images 1000] [--workers 2]
                                     [--realistic] [--structure] [--all-pairs]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from repspace.data import FingerprintConfig, build_fingerprint
from repspace.models import ModelEntry
from repspace.pipeline import RunConfig, run
from repspace.store import write_posteriors


def gemm_rate_one_thread(n: int = 2048, repeats: int = 3) -> float:
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    best = math.inf
    with threadpool_limits(1):
        a @ a
        for _ in range(repeats):
            t = time.perf_counter()
            a @ a
            best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def _gemm_worker(n: int, repeats: int, queue) -> None:
    queue.put(gemm_rate_one_thread(n, repeats))


def gemm_rate_concurrent(workers: int, n: int = 2048, repeats: int = 6) -> float:
    """GFLOP/s of ``workers`` processes running one-thread GEMMs at the same time (what the workers
    share: cores, caches, memory, and the clock the chip allows when every core is busy)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_gemm_worker, args=(n, repeats, queue)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    rates = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    return sum(rates)


class PeakRSS(threading.Thread):
    """Samples the RSS of this process and its children (the workers) every 0.2 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.2)


def realistic_posteriors(rng: np.random.Generator, models: int, channels: int,
                         factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posteriors like a trained VAE's: 2-6 channels follow a factor (or a mix of two) with small
    variances; the others sit near the prior, carrying almost nothing."""
    n = factors.shape[0]
    mu = rng.normal(0.0, 0.02, size=(models, channels, n)).astype(np.float32)
    logvar = rng.normal(0.0, 0.02, size=(models, channels, n)).astype(np.float32)
    for k in range(models):
        kept = rng.choice(channels, size=int(rng.integers(2, 7)), replace=False)
        for ch in kept:
            w = rng.normal(size=factors.shape[1])
            w[rng.random(w.size) < 0.6] = 0.0  # mostly one or two factors
            mu[k, ch] = factors @ w + rng.normal(0, 0.2, n)
            logvar[k, ch] = rng.normal(-3.0, 0.3, n)
    return mu, logvar


def alone(config: RunConfig, stage: str) -> tuple[float, int]:
    """Run one stage of ``config`` in a fresh process: (seconds, its peak RSS in bytes, sampled)."""
    from bench_structure import alone as run_alone  # benchmarks/ is on the path when this script runs

    return run_alone({"run_dir": config.run_dir, "n_images": config.n_images, "image_size": config.image_size,
                      "dashboard": False, "pair_channels": config.pair_channels}, stage)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, default=1000)
    p.add_argument("--channels", type=int, default=10)
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--pair-block-units", type=int, default=2000)
    p.add_argument("--dir", help="where to put the store (default: a temporary folder)")
    p.add_argument("--realistic", action="store_true", help="2-6 informative channels per model, the rest near the prior")
    p.add_argument("--structure", action="store_true", help="run the structure stage too")
    p.add_argument("--all-pairs", action="store_true", help="pairs of every channel, not only the informative ones")
    args = p.parse_args()
    m, c, n = args.models, args.channels, args.images

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        stages = ("channels", "pairs", "structure") if args.structure else ("channels", "pairs")
        config = RunConfig(run_dir=str(Path(tmp) / "run"), n_images=n, image_size=32, dashboard=False,
                           n_workers=args.workers, pair_block_units=args.pair_block_units, stages=stages,
                           pair_channels="all" if args.all_pairs else "informative")
        fp = build_fingerprint(FingerprintConfig(dataset="dsprites_procedural", n=n, seed=0, image_size=32,
                                                 store=config.store))
        factors = fp["factors"].values.astype(np.float32)
        factors = (factors - factors.mean(axis=0)) / np.maximum(factors.std(axis=0), 1e-6)
        rng = np.random.default_rng(0)
        for start in range(0, m, 100):  # write in slices: never the whole synthetic ensemble in memory
            stop = min(m, start + 100)
            if args.realistic:
                mu, logvar = realistic_posteriors(rng, stop - start, c, factors)
            else:
                mu = rng.normal(size=(stop - start, c, n)).astype(np.float32)
                logvar = rng.normal(-1.0, 0.5, size=(stop - start, c, n)).astype(np.float32)
            models = [ModelEntry(name=str(i), path="", family="synthetic", seed=i, source="benchmark") for i in range(start, stop)]
            write_posteriors(config.store, mu, logvar, models, models_per_chunk=50)
        rate = gemm_rate_one_thread() * args.workers
        busy = gemm_rate_concurrent(args.workers)
        print(f"synthetic store: {m} models x {c} channels x {n} images = {m * c} channels"
              f"{' (realistic)' if args.realistic else ''}")
        print(f"float32 GEMM: {rate:.1f} GFLOP/s as {args.workers} x one thread alone, {busy:.1f} GFLOP/s with "
              f"{args.workers} processes at once (2048^3, measured now)")
        monitor = PeakRSS()
        monitor.start()
        t0 = time.perf_counter()
        result = run(config)
        total = time.perf_counter() - t0
        monitor.stop.set()
        monitor.join()
        times = {r.name: r.seconds for r in result.stages}
        import xarray as xr

        info = xr.open_zarr(config.store, group="channels", consolidated=False)["information"].values
        units = m * c if args.all_pairs else int((info >= config.info_threshold).sum())
        flops = n * n * units * units  # N^2 U^2 with the symmetry used
        roofline, roofline_busy = flops / (rate * 1e9), flops / (busy * 1e9)
        print(f"channels stage: {times['channels']:.1f} s; {units} of {m * c} channels have pairs computed")
        print(f"pairs stage:    {times['pairs']:.1f} s; roofline {roofline:.1f} s ({flops / 1e12:.1f} TFLOP); "
              f"ratio {times['pairs'] / roofline:.2f}x the roofline; {times['pairs'] / roofline_busy:.2f}x the "
              f"roofline of every worker busy ({roofline_busy:.1f} s)")
        if args.structure:
            print(f"structure stage: {times['structure']:.1f} s; channels + pairs + structure "
                  f"{sum(times.values()):.1f} s")
        print(f"whole run (with cluster start): {total:.1f} s; peak RSS (all processes) {monitor.peak / 2**30:.2f} GiB")
        if args.structure:  # again, each alone in a fresh process: its own peak RSS
            for stage in ("structure", "figures"):
                seconds, rss = alone(config, stage)
                print(f"{stage} alone: {seconds:.1f} s, peak RSS {rss / 2**30:.2f} GiB")
        pairs = xr.open_zarr(config.store, group="pairs", consolidated=False)
        shape = pairs["nmi"].shape
        print(f"pairs in the store: nmi {shape} = {shape[0] * shape[1]} x {shape[2] * shape[3]}, "
              f"finite {bool(np.isfinite(pairs['vi'][0, 0].values).all())}")


if __name__ == "__main__":
    main()
