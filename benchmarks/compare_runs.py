"""Compare two run stores value by value: does a run of today's code reproduce a stored run?

    python benchmarks/compare_runs.py BASELINE_STORE NEW_STORE [--groups embeddings channels pairs structure]

For every variable of each group in the baseline (markers and bookkeeping left out), the
same variable of the new store (under its current name, where a variable was renamed) must
hold the same values: NaN where the baseline has NaN, and equal numbers elsewhere. Prints
one line per variable with the largest absolute difference; exits 1 if any differs.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import xarray as xr

RENAMED = {"info": "information", "self_info": "information_twice", "info_se": "information_se",
           "info_fraction": "information_fraction", "info_fraction_se": "information_fraction_se",
           "info_mean": "information_mean", "info_mean_se": "information_mean_se",
           "info_fraction_mean": "information_fraction_mean", "info_fraction_mean_se": "information_fraction_mean_se"}
SKIPPED = {"done", "encoded", "info_done", "estimate_done", "information_done"}


def compare(baseline: str, new: str, groups: list[str]) -> bool:
    same = True
    for group in groups:
        a = xr.open_zarr(baseline, group=group, consolidated=False)
        b = xr.open_zarr(new, group=group, consolidated=False)
        for name in sorted(set(a.data_vars) - SKIPPED):
            target = RENAMED.get(name, name)
            if target not in b:
                print(f"{group}/{name}: missing from the new store")
                same = False
                continue
            x, y = a[name].values, b[target].values
            if x.shape != y.shape:
                print(f"{group}/{name}: shape {x.shape} vs {y.shape}")
                same = False
                continue
            if x.dtype.kind in "fc":
                equal = bool(np.array_equal(x, y, equal_nan=True))
                finite = np.isfinite(x) & np.isfinite(y)
                diff = float(np.abs(x[finite] - y[finite]).max()) if finite.any() else 0.0
                print(f"{group}/{name}{'' if target == name else ' -> ' + target}: {x.shape} "
                      f"{'equal' if equal else 'DIFFERENT'}, max |difference| {diff:.3g}")
            else:
                equal = bool(np.array_equal(x, y))
                print(f"{group}/{name}{'' if target == name else ' -> ' + target}: {x.shape} "
                      f"{'equal' if equal else 'DIFFERENT'}")
            same &= equal
    return same


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("baseline")
    p.add_argument("new")
    p.add_argument("--groups", nargs="+", default=["embeddings", "channels", "pairs", "structure"])
    a = p.parse_args(argv)
    same = compare(a.baseline, a.new, a.groups)
    print("the runs agree value by value" if same else "the runs DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
