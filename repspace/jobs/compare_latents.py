"""Compare whole latent spaces by Monte Carlo over a dataset (the paper's Sec. 4.3).

    python -m repspace.jobs.compare_latents --run-dir runs/latents --models-dir data/models/offline \\
        [--dataset dsprites_procedural] [--image-size 32] [--n-dataset-images 20000 | all] [--n-samples 2000] \\
        [--seed 0] [--scheduler-address tcp://host:8786 | --workers 2]

The stages models, encode_dataset, latents and figures of the run driver, configured by
jobs/compare_latents.toml (--config for another file; flags override it): encodes M images with
every model (group ``dataset_embeddings`` of the store), then, within each group of models
sharing dataset, family and hyperparameter value, estimates I(U;X) per model and NMI and VI
per pair with standard errors, and the groups' inverse-variance means (group ``latents``).
Rerunning computes only what is missing. Without --models-dir the posteriors already in the
store are compared.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from .._quiet import set_verbose
from ..data.catalog import DATASETS
from ..pipeline import RunConfig, load_config
from ..pipeline.config import job_defaults
from ._run import EXECUTION_FLAGS, JobParser, add_execution_args, execution, refused, run_and_report


DEFAULT_CONFIG = job_defaults("compare_latents.toml")


def _n_images(text: str) -> int | str:
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of images or 'all', got {text!r}") from None


FLAGS = {**EXECUTION_FLAGS, "run_dir": "--run-dir", "store_path": "--store", "dataset": "--dataset",
         "data_dir": "--data-dir", "seed": "--seed", "image_size": "--image-size", "models.dir": "--models-dir",
         "models.numbers": "--model", "latents.n_dataset_images": "--n-dataset-images",
         "latents.n_samples": "--n-samples", "latents.sample_block": "--sample-block",
         "latents.image_block": "--image-block", "latents.images_per_encode_task": "--images-per-encode-task",
         "latents.batch_size": "--batch-size", "latents.dtype": "--float32", "latents.scheme": "--per-pair-estimates"}
"""The flag of each configuration key (what a refused value's error names)."""


def parse_args(argv: Sequence[str] | None = None) -> RunConfig:
    """Parse command-line arguments into the :class:`RunConfig` of the latents stages."""
    d = load_config(DEFAULT_CONFIG)
    o = d.latents
    p = JobParser(prog="python -m repspace.jobs.compare_latents", description=__doc__.split("\n")[0])
    p.add_argument("--config", help=f"configuration (TOML); default {DEFAULT_CONFIG}; flags override it")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--run-dir", type=Path, help="the run's folder: the store is <run-dir>/store.zarr, the figure "
                       "<run-dir>/figures/latents.png")
    where.add_argument("--store", type=Path, help="the run's zarr store itself (no figure)")
    p.add_argument("--models-dir", type=Path, default=None, help="folder of model folders to encode (<n>/model/tfhub, "
                   "SavedModels, .keras); leave out to compare the posteriors already in the store")
    p.add_argument("--model", action="append", default=[], metavar="NAME",
                   help="use only this model of --models-dir (repeatable); default: all of them")
    p.add_argument("--dataset", choices=list(DATASETS), metavar="DATASET",
                   help=f"dataset the models encode, one of {', '.join(DATASETS)} (default: {d.dataset})")
    p.add_argument("--data-dir", type=Path, default=None, help="dataset folder (default: $REPSPACE_DATA_DIR or data)")
    p.add_argument("--image-size", type=int, default=None, help="square image size the models take (default: the "
                   "first model's input size)")
    p.add_argument("--n-dataset-images", type=_n_images, help=f"M: a seeded random subset of this many images of the "
                   f"dataset, or 'all' for the whole dataset (default: {o.n_dataset_images}, which with the default "
                   "samples takes about 35 s on two cores for ten models; the whole of dSprites is 737,280 images: "
                   "a cluster's job)")
    p.add_argument("--n-samples", type=int, help=f"S: samples per Monte Carlo estimate (default: {o.n_samples})")
    p.add_argument("--seed", type=int, help=f"seed of the image subset and of every Monte Carlo stream (default: "
                                            f"{d.seed})")
    p.add_argument("--sample-block", type=int, help=f"samples per likelihood block (default: {o.sample_block})")
    p.add_argument("--image-block", type=int, help=f"posteriors per likelihood block (memory per estimate is about "
                                                   f"24 x sample-block x image-block bytes in float64; default: "
                                                   f"{o.image_block})")
    p.add_argument("--images-per-encode-task", type=int, help=f"images per encode task and per chunk of the stored "
                                                              f"posteriors (default: {o.images_per_encode_task})")
    p.add_argument("--batch-size", type=int, help=f"images per call into an encoder (default: {o.batch_size})")
    p.add_argument("--float32", action="store_true", help="likelihood products in float32 (faster, less exact) "
                   "instead of float64")
    p.add_argument("--per-pair-estimates", action="store_true",
                   help="five estimates of its own per pair (n + 5 n(n-1)/2 for a group of n models, as the paper's "
                        "code takes them) instead of each model's two terms shared by all its pairs (2n + n(n-1)/2)")
    add_execution_args(p, d, figures=True)
    a = p.parse_args(argv)
    set_verbose(a.verbose)
    config = load_config(
        a.config or DEFAULT_CONFIG, run_dir=str(a.run_dir if a.run_dir is not None else a.store.parent),
        store_path=None if a.store is None else str(a.store), dataset=a.dataset,
        data_dir=None if a.data_dir is None else str(a.data_dir), seed=a.seed, image_size=a.image_size,
        **execution(a), flags=FLAGS,
        models={"source": "directory", "dir": str(a.models_dir or ""), "numbers": tuple(a.model) or None},
        latents={"n_dataset_images": a.n_dataset_images if a.n_dataset_images != "all" else None,
                 "n_samples": a.n_samples, "sample_block": a.sample_block, "image_block": a.image_block,
                 "images_per_encode_task": a.images_per_encode_task, "batch_size": a.batch_size,
                 "dtype": "float32" if a.float32 else None, "scheme": "pairs" if a.per_pair_estimates else None})
    stages = set(config.stages)
    if a.models_dir is None:
        stages -= {"models", "encode_dataset"}
    if a.no_figures or a.store is not None:
        stages.discard("figures")
    latents = config.latents
    if a.n_dataset_images == "all":
        latents = dataclasses.replace(latents, n_dataset_images=None)
    # the image size is the flag's, or the first model's input (None), whatever the file says
    return config.replace(image_size=a.image_size, stages=tuple(stages), latents=latents)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = parse_args(argv)
    except ValueError as err:
        return refused(err)
    return run_and_report(config)

if __name__ == "__main__":
    sys.exit(main())
