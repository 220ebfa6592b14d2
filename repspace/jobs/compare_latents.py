"""Compare whole latent spaces by Monte Carlo over a dataset (the paper's Sec. 4.3).

    python -m repspace.jobs.compare_latents --run-dir runs/latents --models-dir data/models/offline \\
        [--dataset dsprites_procedural] [--image-size 32] [--n-images 20000 | all] [--n-samples 2000] [--seed 0] \\
        [--scheduler-address tcp://host:8786 | --workers 2]

The stages models, encode_dataset, latents and figures of the run driver: encodes the images
with every model (group ``dataset_embeddings`` of the store), then, within each group of models
sharing dataset, family and hyperparameter value, estimates I(U;X) per model and NMI and VI
per pair with standard errors, and the groups' inverse-variance means (group ``latents``).
Rerunning computes only what is missing. Without --models-dir the posteriors already in the
store are compared.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from repspace._quiet import set_verbose
from repspace.data.catalog import DATASETS
from repspace.pipeline import LATENTS_STAGES, LatentsOptions, ModelsConfig, RunConfig, run


DEFAULT_N_IMAGES = 20_000


def _n_images(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of images or 'all', got {text!r}") from None


def parse_args(argv: Sequence[str] | None = None) -> RunConfig:
    """Parse command-line arguments into the :class:`RunConfig` of the latents stages."""
    d = LatentsOptions()
    p = argparse.ArgumentParser(prog="python -m repspace.jobs.compare_latents", description=__doc__.split("\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--run-dir", type=Path, help="the run's folder: the store is <run-dir>/store.zarr, the figure "
                       "<run-dir>/figures/latents.png")
    where.add_argument("--store", type=Path, help="the run's zarr store itself (no figure)")
    p.add_argument("--models-dir", type=Path, default=None, help="folder of model folders to encode (<n>/model/tfhub, "
                   "SavedModels, .keras); leave out to compare the posteriors already in the store")
    p.add_argument("--model", action="append", default=[], metavar="NAME",
                   help="use only this model of --models-dir (repeatable); default: all of them")
    p.add_argument("--dataset", default="dsprites_procedural", choices=list(DATASETS), metavar="DATASET",
                   help=f"dataset the models encode, one of {', '.join(DATASETS)} (default: %(default)s)")
    p.add_argument("--data-dir", type=Path, default=None, help="dataset folder (default: $REPSPACE_DATA_DIR or data)")
    p.add_argument("--image-size", type=int, default=None, help="square image size the models take (default: the "
                   "first model's input size)")
    p.add_argument("--n-images", type=_n_images, default=DEFAULT_N_IMAGES, help="M: a seeded random subset of this "
                   "many images, or 'all' for the whole dataset (default: %(default)s, which with the default samples "
                   "takes minutes on two cores; the whole of dSprites is 737,280 images: a cluster's job)")
    p.add_argument("--n-samples", type=int, default=d.n_samples, help="S: samples per Monte Carlo estimate (default: "
                   "%(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the image subset and of every Monte Carlo stream "
                   "(default: %(default)s)")
    p.add_argument("--sample-block", type=int, default=d.sample_block, help="samples per likelihood block (default: "
                   "%(default)s)")
    p.add_argument("--image-block", type=int, default=d.image_block, help="posteriors per likelihood block (memory per "
                   "estimate is about 24 x sample-block x image-block bytes in float64; default: %(default)s)")
    p.add_argument("--images-per-encode-task", type=int, default=d.images_per_encode_task, help="images per encode "
                   "task and per chunk of the stored posteriors (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="images per call into an encoder (default: "
                   "%(default)s)")
    p.add_argument("--float32", action="store_true", help="likelihood products in float32 (faster, less exact) "
                   "instead of float64")
    p.add_argument("--per-pair-estimates", action="store_true",
                   help="five estimates of its own per pair (n + 5 n(n-1)/2 for a group of n models, as before wave 2) "
                        "instead of each model's two terms shared by all its pairs (2n + n(n-1)/2)")
    p.add_argument("--scheduler-address", default=None, help="an existing Dask scheduler (default: "
                   "$DASK_SCHEDULER_ADDRESS, else a LocalCluster on 127.0.0.1)")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default: %(default)s)")
    p.add_argument("--threads-per-worker", type=int, default=1, help="LocalCluster threads per worker (default: "
                   "%(default)s)")
    p.add_argument("--dashboard", action="store_true", help="serve the LocalCluster's dashboard on 127.0.0.1")
    p.add_argument("--no-figure", action="store_true", help="draw no figure")
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's start-up logging (silenced by default)")
    a = p.parse_args(argv)
    set_verbose(a.verbose)
    stages = set(LATENTS_STAGES)
    if a.models_dir is None:
        stages -= {"models", "encode_dataset"}
    if a.no_figure or a.store is not None:
        stages.discard("figures")
    latents = LatentsOptions(n_images=a.n_images, n_samples=a.n_samples, sample_block=a.sample_block,
                             image_block=a.image_block, images_per_encode_task=a.images_per_encode_task,
                             batch_size=a.batch_size, dtype="float32" if a.float32 else "float64",
                             scheme="pairs" if a.per_pair_estimates else "shared")
    models = ModelsConfig(source="directory", dir=str(a.models_dir or ""), numbers=tuple(a.model))
    return RunConfig(
        run_dir=str(a.run_dir if a.run_dir is not None else a.store.parent),
        store_path=None if a.store is None else str(a.store), dataset=a.dataset,
        data_dir=None if a.data_dir is None else str(a.data_dir), image_size=a.image_size, seed=a.seed, models=models,
        scheduler_address=a.scheduler_address, n_workers=a.workers, threads_per_worker=a.threads_per_worker,
        dashboard=a.dashboard, stages=tuple(stages), latents=latents,
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config = parse_args(argv)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        result = run(config)
    except (ValueError, FileNotFoundError, RuntimeError) as err:  # StoreError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
