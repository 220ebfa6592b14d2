"""What asking for CKA of the BC matrices costs the all-pairs kernel: the same C units at N images,
``pairwise_information`` without and with ``cka=True``, alternately, in float32.

    python benchmarks/bench_cka_bc.py [--units 1000] [--images 300] [--repeats 3]

Printed: the median time of each and their ratio (the baseline, without CKA, is measured in the
same run).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from repspace import kernels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--units", type=int, default=1000)
    p.add_argument("--images", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(a.units, a.images)).astype(np.float32)
    lv = rng.normal(-1.0, 0.5, size=(a.units, a.images)).astype(np.float32)
    rows = kernels.PosteriorRows(mu, lv)
    times = {False: [], True: []}
    for _ in range(a.repeats):
        for cka in (False, True):
            t = time.perf_counter()
            kernels.pairwise_information(rows, cka=cka)
            times[cka].append(time.perf_counter() - t)
    plain, with_cka = statistics.median(times[False]), statistics.median(times[True])
    print(f"{a.units} units x {a.images} images, float32: {plain:.2f} s without CKA, {with_cka:.2f} s with "
          f"(ratio {with_cka / plain:.2f}x, medians of {a.repeats})")


if __name__ == "__main__":
    main()
