"""One Monte Carlo I(U;X) estimate over a whole dataset: the blocked GEMM kernel against the
likelihoods evaluated the way the paper's code does.

M = 737,280 ten-dimensional diagonal-Gaussian posteriors (the size of dSprites), S = 20,000
samples. Each part runs in a fresh subprocess, so its peak RSS is its own:

- kernel: :func:`repspace.kernels.mc_information` (log-likelihoods as a matrix product of
  [u^2, u, 1] against per-posterior weights, log-sum-exp over blocks of posteriors), float64
  and float32;
- baseline: for blocks of samples, broadcast the differences u_s - mu_j to (block, M, d),
  square, scale, sum, exp, and average over j. Run on a subset of the samples and
  extrapolated linearly to S (the cost is exactly linear in the number of samples);
  both are checked to give the same log mean likelihoods on the same samples.

    python benchmarks/bench_latents.py [--images 737280] [--dims 10] [--samples 20000] \\
        [--baseline-samples 64] [--baseline-block 4]
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


def posteriors(m: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """float32 (M, d) posteriors shaped like a trained VAE's: a few informative dimensions with
    small variances, the rest near the prior."""
    rng = np.random.default_rng(seed)
    informative = max(1, d // 2)
    mu = rng.normal(size=(m, d)).astype(np.float32)
    mu[:, informative:] *= 0.05
    logvar = np.empty((m, d), np.float32)
    logvar[:, :informative] = rng.normal(-4.0, 0.5, size=(m, informative))
    logvar[:, informative:] = rng.normal(-0.05, 0.02, size=(m, d - informative))
    return mu, logvar


def draw(mu: np.ndarray, logvar: np.ndarray, s: int, rng: np.random.Generator):
    idx = rng.integers(0, mu.shape[0], size=s)
    eps = rng.standard_normal((s, mu.shape[1]))
    mu_i, lv_i = mu[idx].astype(np.float64), logvar[idx].astype(np.float64)
    u = mu_i + np.exp(0.5 * lv_i) * eps
    own = -0.5 * np.sum(eps * eps + lv_i, axis=1) - 0.5 * mu.shape[1] * math.log(2 * math.pi)
    return u, own


def baseline_log_mean_likelihood(u: np.ndarray, mu: np.ndarray, logvar: np.ndarray, block: int) -> np.ndarray:
    """log(1/M sum_j N(u_s; mu_j, var_j)) by broadcast differences, then exp and sum (the paper's way)."""
    mu, logvar = mu.astype(np.float64), logvar.astype(np.float64)
    var = np.exp(logvar)
    norm = -0.5 * (logvar.sum(axis=1) + mu.shape[1] * math.log(2 * math.pi))
    out = np.empty(u.shape[0])
    for s0 in range(0, u.shape[0], block):
        diff = u[s0:s0 + block, None, :] - mu[None, :, :]  # (block, M, d)
        logp = norm[None, :] - 0.5 * np.sum(diff * diff / var[None], axis=2)
        out[s0:s0 + block] = np.log(np.mean(np.exp(logp), axis=1))
    return out


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def part(args: argparse.Namespace) -> dict:
    from repspace import kernels

    mu, logvar = posteriors(args.images, args.dims)
    inputs_mb = peak_rss_mb()
    if args.part == "baseline":
        rng = np.random.default_rng(1)
        u, own = draw(mu, logvar, args.baseline_samples, rng)
        t = time.perf_counter()
        lml = baseline_log_mean_likelihood(u, mu, logvar, args.baseline_block)
        seconds = time.perf_counter() - t
        fast = kernels.log_mean_likelihood(u, mu.astype(np.float64), logvar.astype(np.float64), image_block=16384)
        finite = np.isfinite(lml)
        return {"seconds": seconds, "samples": args.baseline_samples,
                "extrapolated_s": seconds * args.samples / args.baseline_samples,
                "max_abs_diff_vs_kernel": float(np.max(np.abs(lml[finite] - fast[finite]))) if finite.any() else None,
                "underflowed": int((~finite).sum()),
                "bits_on_subset": float(np.mean(own - lml) / math.log(2)),
                "inputs_mb": inputs_mb, "peak_rss_mb": peak_rss_mb()}
    dtype = np.float32 if args.part == "kernel32" else np.float64
    t = time.perf_counter()
    est = kernels.mc_information(mu, logvar, n_samples=args.samples, rng=np.random.default_rng(2), dtype=dtype,
                                 options=kernels.MCOptions(sample_block=args.sample_block, image_block=args.image_block))
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "bits": est.bits, "se": est.se, "inputs_mb": inputs_mb, "peak_rss_mb": peak_rss_mb()}


def run_part(name: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--part", name] + [
        f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items() if k != "part"
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=737_280)
    p.add_argument("--dims", type=int, default=10)
    p.add_argument("--samples", type=int, default=20_000)
    p.add_argument("--sample-block", type=int, default=2048)
    p.add_argument("--image-block", type=int, default=16384)
    p.add_argument("--baseline-samples", type=int, default=64)
    p.add_argument("--baseline-block", type=int, default=4)
    p.add_argument("--part", choices=("kernel", "kernel32", "baseline"), default=None)
    args = p.parse_args()
    if args.part:
        print(json.dumps(part(args)))
        return
    import os

    print(f"M = {args.images} posteriors in {args.dims} dimensions, S = {args.samples} samples; "
          f"{os.cpu_count()} cores; each part in a fresh process")
    base = run_part("baseline", args)
    print(f"baseline (broadcast (block={args.baseline_block}, M, d) differences, exp, sum), float64: "
          f"{base['seconds']:.2f} s for {base['samples']} samples -> {base['extrapolated_s']:.0f} s extrapolated to "
          f"{args.samples} samples; peak RSS {base['peak_rss_mb']:.0f} MB (inputs {base['inputs_mb']:.0f} MB); "
          f"agrees with the kernel to {base['max_abs_diff_vs_kernel']:.1e} nats"
          + (f"; {base['underflowed']} samples underflowed to log 0" if base["underflowed"] else ""))
    for name, label in (("kernel", "float64"), ("kernel32", "float32")):
        r = run_part(name, args)
        print(f"kernel {label} (sample_block {args.sample_block}, image_block {args.image_block}): {r['seconds']:.1f} s, "
              f"I(U;X) = {r['bits']:.4f} +- {r['se']:.4f} bits; peak RSS {r['peak_rss_mb']:.0f} MB "
              f"(inputs {r['inputs_mb']:.0f} MB); speed-up over the baseline x{base['extrapolated_s'] / r['seconds']:.1f}")


if __name__ == "__main__":
    main()
