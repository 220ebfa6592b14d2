"""Train an ensemble of VAEs and export each model in the zoo's layout.

    python -m repspace.jobs.train_ensemble [--dest data/models/offline] [--steps 10000] ...

Without options: the offline default (TrainConfig.offline_default(): ten beta-VAEs with
beta 16, MLP, 32x32 dsprites_procedural, 10,000 steps, two trainings at once). Rerunning
skips finished models. ``--scheduler ADDRESS`` runs on an existing Dask cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from pathlib import Path

from repspace._checks import check_finite, refused_key, unknown_keys
from repspace._quiet import set_verbose
from repspace.cluster import connect
from repspace.data.catalog import DATASETS
from repspace.models.training import ARCHITECTURES, TRAINABLE_FAMILIES, TrainConfig, train_ensemble
from repspace.models.zoo import parse_model_numbers

DEFAULT_DEST = Path("data/models/offline")


def _values(text: str) -> tuple[str, tuple[float, ...]]:
    family, _, vals = text.partition("=")
    if family not in TRAINABLE_FAMILIES or not vals:
        raise argparse.ArgumentTypeError(f"expected FAMILY=v1,v2,... with FAMILY in {', '.join(TRAINABLE_FAMILIES)}")
    return family, tuple(float(v) for v in vals.split(","))


def _families(text: str) -> tuple[str, ...]:
    names = tuple(f for f in text.split(",") if f)
    unknown = [f for f in names if f not in TRAINABLE_FAMILIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown families {unknown}; choose from {', '.join(TRAINABLE_FAMILIES)}")
    return names


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, Path, str | None]:
    """(config, destination, scheduler address or None) from the command line."""
    p = argparse.ArgumentParser(prog="python -m repspace.jobs.train_ensemble", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="ensemble directory (default %(default)s)")
    p.add_argument("--config", type=Path, help="a JSON file of TrainConfig fields (options below override it)")
    p.add_argument("--scheduler", help="address of an existing Dask scheduler (default: a local cluster)")
    d = TrainConfig.offline_default()
    p.add_argument("--dataset", choices=list(DATASETS), metavar="DATASET",
                   help=f"one of {', '.join(DATASETS)} (default: {d.dataset})")
    p.add_argument("--data-dir", help="dataset folder (default: $REPSPACE_DATA_DIR or data)")
    p.add_argument("--image-size", type=int, help=f"default: {d.image_size}")
    p.add_argument("--families", type=_families,
                   help=f"comma-separated, from {', '.join(TRAINABLE_FAMILIES)} (default: {','.join(d.families)})")
    p.add_argument("--values", type=_values, action="append", metavar="FAMILY=V1,V2",
                   help="hyperparameter values of a family (repeatable)")
    p.add_argument("--seeds", help="e.g. 0-9 or 0,3,5")
    p.add_argument("--architecture", choices=ARCHITECTURES, help=f"default: {d.architecture}")
    p.add_argument("--mlp-hidden", help="hidden widths of the MLP, e.g. 128,128")
    p.add_argument("--latents", type=int, dest="n_latents")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, dest="learning_rate")
    p.add_argument("--steps", type=int, help=f"training steps per model (default: {d.steps})")
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's start-up logging (silenced by default)")
    p.add_argument("--pool-size", type=int)
    p.add_argument("--workers", type=int, help="trainings at once on the local cluster")
    p.add_argument("--threads", type=int, help="TensorFlow threads per training")
    p.add_argument("--no-shipped", action="store_true", help="train every model, also those whose recipe ships "
                   "with the package (the offline default's ten models are written from shipped weights)")
    a = p.parse_args(argv)
    set_verbose(a.verbose)  # inherited by local worker processes

    source = str(a.config) if a.config else "the offline default"
    try:
        fields = json.loads(a.config.read_text()) if a.config else {}
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"--config {a.config}: cannot be read as JSON ({err})") from None
    if not isinstance(fields, dict):
        raise ValueError(f"{a.config}: must hold one object of TrainConfig fields, got {type(fields).__name__}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"{a.config}: {unknown_keys(unknown, known)}")
    given = {}
    for name in ("dataset", "data_dir", "image_size", "architecture", "n_latents", "batch_size",
                 "learning_rate", "steps", "pool_size", "workers", "threads"):
        if getattr(a, name) is not None:
            given[name] = getattr(a, name)
    if a.no_shipped:
        given["shipped"] = False
    if a.families:
        given["families"] = a.families
    if a.values:
        given["hyperparameters"] = {**fields.get("hyperparameters", {}), **dict(a.values)}
    try:
        if a.seeds:
            given["seeds"] = tuple(parse_model_numbers(a.seeds))
        if a.mlp_hidden:
            given["mlp_hidden"] = tuple(int(h) for h in a.mlp_hidden.split(","))
    except ValueError as err:
        flag = "--seeds" if "seeds" not in given else "--mlp-hidden"
        raise ValueError(f"{flag} (a command-line flag): {err}") from None
    fields.update(given)
    if "families" in fields and "hyperparameters" not in fields:
        fields["hyperparameters"] = {}  # the zoo's six values for each named family
    try:
        config = TrainConfig.offline_default(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in fields.items()})
        check_finite(config)
    except (ValueError, TypeError) as err:
        key = refused_key(str(err), known)
        flag = FLAGS.get(key, f"--{key}".replace("_", "-")) if key else None
        where = f"{flag} (a command-line flag, over {source})" if key in given else source
        raise ValueError(f"{where}: {err}") from None
    return config, a.dest, a.scheduler


FLAGS = {"n_latents": "--latents", "learning_rate": "--lr", "hyperparameters": "--values", "data_dir": "--data-dir",
         "image_size": "--image-size", "batch_size": "--batch-size", "pool_size": "--pool-size",
         "mlp_hidden": "--mlp-hidden"}
"""The flags whose names are not the TrainConfig field's (what a refused value's error names)."""


def main(argv: list[str] | None = None) -> int:
    try:
        config, dest, address = parse_args(argv)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with connect(scheduler_address=address, log=print) if address else contextlib.nullcontext(None) as client:
        paths = train_ensemble(config, dest, client=client)
    print(f"{len(paths)} models in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
