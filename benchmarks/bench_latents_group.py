"""The latents stage on one group of models: shared terms against the per-pair scheme of wave 1.

A group of n models (default 10) with d-dimensional latent spaces over M images (default
50,000), shaped like trained VAEs' (half the dimensions informative), goes through the latents
stage twice on the in-process LocalCluster: with ``scheme = "pairs"`` (five estimates per pair:
n + 5 n(n-1)/2) and with ``scheme = "shared"`` (each model's I(U;X) and I(U,U';X) once:
2n + n(n-1)/2). Printed: estimates and wall time of each, and the group's mean NMI and VI
with their errors.

    python benchmarks/bench_latents_group.py [--models 10] [--images 50000] [--dims 10] [--samples 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from repspace.models import ModelEntry
from repspace.pipeline import RunConfig, run
from repspace.store import write_posteriors


def group_posteriors(n: int, m: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(model, dim, image) float32: every model a noisy rotation of shared factors in half its dimensions."""
    rng = np.random.default_rng(seed)
    k = max(1, d // 2)
    factors = rng.normal(size=(m, k))
    mu = np.empty((n, d, m), np.float32)
    logvar = np.empty((n, d, m), np.float32)
    for i in range(n):
        rot = np.linalg.qr(rng.normal(size=(k, k)))[0]
        mu[i, :k] = (factors @ rot + 0.1 * rng.normal(size=(m, k))).T
        mu[i, k:] = 0.05 * rng.normal(size=(d - k, m))
        logvar[i, :k] = rng.normal(-4.0, 0.3, size=(k, m))
        logvar[i, k:] = rng.normal(-0.05, 0.02, size=(d - k, m))
    return mu, logvar


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", type=int, default=10)
    p.add_argument("--images", type=int, default=50_000)
    p.add_argument("--dims", type=int, default=10)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    n = args.models
    mu, logvar = group_posteriors(n, args.images, args.dims)
    models = [ModelEntry(name=str(i), path="", dataset="bench", family="vae", hyperparameter="beta",
                         hyperparameter_value=1.0, seed=i, source="benchmark") for i in range(n)]
    print(f"a group of {n} models, {args.dims}-d latent spaces over {args.images} images, {args.samples} samples "
          f"per estimate, {args.workers} workers x 1 thread")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scheme in ("pairs", "shared"):
            path = Path(tmp) / scheme / "store.zarr"
            write_posteriors(path, mu, logvar, models, group="dataset_embeddings")
            config = RunConfig(run_dir=str(path.parent), stages=("latents",), dashboard=False, n_workers=args.workers,
                               latents={"n_samples": args.samples, "scheme": scheme})
            t = time.perf_counter()
            report = run(config, log=lambda msg: None).stage("latents")
            seconds = time.perf_counter() - t
            ds = xr.open_zarr(path, group="latents", consolidated=False).load()
            results[scheme] = seconds
            print(f"{scheme:>6}: {report.computed} estimates in {seconds:.1f} s; group NMI "
                  f"{float(ds.nmi_mean[0]):.4f} +- {float(ds.nmi_mean_se[0]):.4f}, VI {float(ds.vi_mean[0]):.4f} +- "
                  f"{float(ds.vi_mean_se[0]):.4f} bits")
    print(f"shared terms: {results['pairs'] / results['shared']:.2f}x faster than the per-pair scheme")


if __name__ == "__main__":
    main()
