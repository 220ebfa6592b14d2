"""The measures between many spaces: all-pairs CKA against the per-pair formula, and the
classifier measure's cost per space.

- CKA: S one-dimensional spaces (channels) of N items. Baseline: every kernel formed once,
  then :func:`repspace.kernels.cka` per pair (centring, traces), the way the paper's notebook does
  it. Fast paths: :func:`repspace.kernels.linear_cka_all_pairs` (features, no kernel) and
  :func:`repspace.kernels.cka_all_pairs` (RBF kernels, one Gram product per block). Values are
  checked to agree before any time is printed.
- classifier: one space of the nine (the spiral) trained with the job's default settings; the
  paper's settings are extrapolated from the ratio of their operation counts (``--paper`` runs them).

    python benchmarks/bench_measures.py [--spaces 200] [--items 300] [--paper]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from repspace import kernels
from repspace.data.synthetic_spaces import nine_spaces
from repspace.measures import ClassifierOptions, MeasureOptions, classifier_predictions
from repspace.models.classifier import PAPER_CLASSIFIER


def timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--spaces", type=int, default=200)
    p.add_argument("--items", type=int, default=300)
    p.add_argument("--paper", action="store_true", help="also train with the paper's settings (minutes)")
    a = p.parse_args()
    rng = np.random.default_rng(0)
    mus = [rng.normal(size=(a.items, 1)) * rng.uniform(0.5, 2) for _ in range(a.spaces)]
    bandwidth = 0.7
    grams, t_kernels = timed(lambda: [kernels.rbf_kernel(m, bandwidth) for m in mus])
    lin = [kernels.linear_kernel(m) for m in mus]

    def per_pair(ks):
        out = np.empty((a.spaces, a.spaces))
        for i in range(a.spaces):
            for j in range(i, a.spaces):
                out[i, j] = out[j, i] = kernels.cka(ks[i], ks[j])
        return out

    slow_rbf, t_slow_rbf = timed(lambda: per_pair(grams))
    slow_lin, t_slow_lin = timed(lambda: per_pair(lin))
    fast_rbf, t_fast_rbf = timed(lambda: kernels.cka_all_pairs(np.stack(grams)))
    fast_lin, t_fast_lin = timed(lambda: kernels.linear_cka_all_pairs(mus))
    assert np.allclose(fast_rbf, slow_rbf, atol=1e-10) and np.allclose(fast_lin, slow_lin, atol=1e-10)
    pairs = a.spaces * (a.spaces + 1) // 2
    print(f"CKA between {a.spaces} spaces of {a.items} items ({pairs} pairs):")
    print(f"  RBF    per pair {t_slow_rbf:7.2f} s   all pairs {t_fast_rbf:6.2f} s   {t_slow_rbf / t_fast_rbf:6.1f}x "
          f"(kernels formed in {t_kernels:.2f} s, not counted)")
    print(f"  linear per pair {t_slow_lin:7.2f} s   features  {t_fast_lin:6.3f} s   {t_slow_lin / t_fast_lin:6.0f}x")

    space = nine_spaces()[0]
    quick = ClassifierOptions(steps=2000, batch_size=2048)
    classifier_predictions(space.mu, space.logvar, MeasureOptions(classifier=ClassifierOptions(steps=10)))  # warm
    (_, bits), t_quick = timed(lambda: classifier_predictions(space.mu, space.logvar, MeasureOptions(classifier=quick)))
    rate = quick.flops(64, 2) / t_quick
    print(f"classifier, job default ({quick.steps} steps of {quick.batch_size}): {t_quick:.1f} s, {bits:.2f} bits, "
          f"{rate / 1e9:.0f} GFLOP/s")
    paper_s = PAPER_CLASSIFIER.flops(64, 2) / rate
    print(f"  the paper's settings: {PAPER_CLASSIFIER.flops(64, 2) / quick.flops(64, 2):.0f}x the operations, "
          f"about {paper_s / 60:.1f} min at that rate")
    if a.paper:
        (_, bits), t_paper = timed(lambda: classifier_predictions(space.mu, space.logvar, MeasureOptions()))
        print(f"  measured: {t_paper / 60:.1f} min, {bits:.2f} bits")


if __name__ == "__main__":
    main()
