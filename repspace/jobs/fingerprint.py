"""Make a run's fingerprint set.

    python -m repspace.jobs.fingerprint --dataset dsprites_procedural -n 300 --seed 0 \\
        --store runs/x.zarr [--data-dir data] [--image-size 32] [--option KEY=VALUE ...]

Writes the group ``fingerprint`` of the store (see :mod:`repspace.data.fingerprint`);
rerunning with the same arguments does nothing, and a store holding a different set
is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repspace.data.catalog import DATASETS
from repspace.data.fingerprint import FingerprintConfig, build_fingerprint


def _option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def parse_args(argv: Sequence[str] | None = None) -> FingerprintConfig:
    """Parse command-line arguments into a :class:`FingerprintConfig`."""
    p = argparse.ArgumentParser(prog="python -m repspace.jobs.fingerprint", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="dsprites_procedural", choices=list(DATASETS), metavar="DATASET",
                   help=f"one of {', '.join(DATASETS)} (default: %(default)s; files: data/README.md)")
    p.add_argument("-n", "--n", type=int, default=300, help="number of images (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    p.add_argument("--store", type=Path, required=True, help="the run's zarr store")
    p.add_argument("--data-dir", type=Path, default=None, help="dataset folder (default: $REPSPACE_DATA_DIR or data)")
    p.add_argument("--image-size", type=int, default=None, help="square image size (default: the dataset's)")
    p.add_argument(
        "--option", type=_option, action="append", default=[], metavar="KEY=VALUE",
        help="loader option, e.g. source=hdf5 or transform_seed=1 (VALUE read as JSON when it parses)",
    )
    a = p.parse_args(argv)
    try:
        return FingerprintConfig(
            dataset=a.dataset, n=a.n, seed=a.seed, store=a.store, data_dir=a.data_dir,
            image_size=a.image_size, options=dict(a.option),
        )
    except ValueError as err:
        key = str(err).split()[0]
        raise ValueError(f"{FLAGS.get(key, key)} (a command-line flag): {err}") from None


FLAGS = {"n": "-n", "seed": "--seed", "image_size": "--image-size"}
"""The flag of each FingerprintConfig field the command line sets (what a refused value's error names)."""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = parse_args(argv)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        fp = build_fingerprint(config)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    h, w, c = fp["images"].shape[1:]
    print(
        f"fingerprint: {fp.attrs['n']} images {h}x{w}x{c} of {fp.attrs['dataset']} (seed {fp.attrs['seed']}, "
        f"factors {', '.join(map(str, fp['factor'].values))}) in {config.store} [{fp.attrs['elapsed_s']} s]"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
