"""Compare whole latent spaces by Monte Carlo over a dataset (the paper's Sec. 4.3).

    python -m repspace.jobs.compare_latents --run-dir runs/latents --models-dir data/models/offline_default \\
        [--dataset dsprites_procedural] [--image-size 32] [--n-images 100000] [--n-samples 20000] [--seed 0] \\
        [--scheduler-address tcp://host:8786 | --workers 2]

Encodes the images with every model (group ``latents_embeddings`` of the store), then, within
each group of models sharing dataset, family and hyperparameter value, estimates I(U;X) per
model and NMI and VI per pair with standard errors, and the groups' inverse-variance means
(group ``latents``). Rerunning computes only what is missing. Without --models-dir the
posteriors already in the store are compared.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from repspace.pipeline.latents import LatentsConfig, run_latents


def parse_args(argv: Sequence[str] | None = None) -> tuple[LatentsConfig, Path | None]:
    """Parse command-line arguments into a :class:`LatentsConfig` and the figure path (or None)."""
    d = LatentsConfig(store="")
    p = argparse.ArgumentParser(prog="python -m repspace.jobs.compare_latents", description=__doc__.split("\n")[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--run-dir", type=Path, help="the run's folder: the store is <run-dir>/store.zarr, the figure "
                       "<run-dir>/figures/latents.png")
    where.add_argument("--store", type=Path, help="the run's zarr store itself (no figure unless --figure)")
    p.add_argument("--models-dir", type=Path, default=None, help="folder of model folders to encode (<n>/model/tfhub, "
                   "SavedModels, .keras); leave out to compare the posteriors already in the store")
    p.add_argument("--model", action="append", default=[], metavar="NAME",
                   help="use only this model of --models-dir (repeatable); default: all of them")
    p.add_argument("--dataset", default=d.dataset, help="dataset the models encode (default: %(default)s)")
    p.add_argument("--data-dir", type=Path, default=None, help="dataset folder (default: $REPSPACE_DATA_DIR or data)")
    p.add_argument("--image-size", type=int, default=None, help="square image size the models take (default: the "
                   "first model's input size, else the dataset's)")
    p.add_argument("--n-images", type=int, default=None, help="M: a seeded random subset of this many images "
                   "(default: every image of the dataset)")
    p.add_argument("--n-samples", type=int, default=d.n_samples, help="S: samples per Monte Carlo estimate (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the image subset and of every Monte Carlo stream "
                   "(default: %(default)s)")
    p.add_argument("--sample-block", type=int, default=d.sample_block, help="samples per likelihood block (default: %(default)s)")
    p.add_argument("--image-block", type=int, default=d.image_block, help="posteriors per likelihood block (memory per "
                   "estimate is about 24 x sample-block x image-block bytes in float64; default: %(default)s)")
    p.add_argument("--encode-block", type=int, default=d.encode_block, help="images per encode task and per chunk of "
                   "the stored posteriors (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="images per call into an encoder (default: %(default)s)")
    p.add_argument("--float32", action="store_true", help="likelihood products in float32 (faster, less exact) "
                   "instead of float64")
    p.add_argument("--scheduler-address", default=None, help="an existing Dask scheduler (default: "
                   "$DASK_SCHEDULER_ADDRESS, else a LocalCluster on 127.0.0.1)")
    p.add_argument("--workers", type=int, default=d.n_workers, help="LocalCluster worker processes (default: %(default)s)")
    p.add_argument("--threads-per-worker", type=int, default=d.threads_per_worker, help="LocalCluster threads per worker (default: %(default)s)")
    p.add_argument("--dashboard", action="store_true", help="serve the LocalCluster's dashboard on 127.0.0.1")
    p.add_argument("--figure", type=Path, default=None, help="draw the NMI/VI figure here (default with --run-dir: "
                   "<run-dir>/figures/latents.png)")
    p.add_argument("--no-figure", action="store_true", help="draw no figure")
    a = p.parse_args(argv)
    store = a.store if a.store is not None else a.run_dir / "store.zarr"
    figure = a.figure
    if figure is None and a.run_dir is not None:
        figure = a.run_dir / "figures" / "latents.png"
    if a.no_figure:
        figure = None
    config = LatentsConfig(
        store=store, models_dir=a.models_dir, models=tuple(a.model), dataset=a.dataset, data_dir=a.data_dir,
        image_size=a.image_size, n_images=a.n_images, seed=a.seed, n_samples=a.n_samples,
        sample_block=a.sample_block, image_block=a.image_block, encode_block=a.encode_block, batch_size=a.batch_size,
        dtype="float32" if a.float32 else "float64", scheduler_address=a.scheduler_address, n_workers=a.workers,
        threads_per_worker=a.threads_per_worker, dashboard=a.dashboard,
    )
    return config, figure


def main(argv: Sequence[str] | None = None) -> int:
    try:
        config, figure = parse_args(argv)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        result = run_latents(config)
    except (ValueError, FileNotFoundError) as err:  # StoreError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(result.summary())
    if figure is not None:
        from repspace.plots.latents import draw_latents_figure

        print(f"  figure: {draw_latents_figure(config.store, figure)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
