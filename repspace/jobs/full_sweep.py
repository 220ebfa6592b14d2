"""python -m repspace.jobs.full_sweep: the whole pipeline, from a fingerprint set to figures.

With no arguments it runs the offline default (jobs/offline_default.toml): dsprites rendered
here, ten beta-VAEs written on first use from the weights shipped with the package, 300 fingerprint
images, an in-process LocalCluster. A TOML file (--config) sets everything; flags override it.
"""

from __future__ import annotations

import argparse
import sys

from .._quiet import set_verbose
from ..data.catalog import DATASETS
from ..pipeline import STAGE_NAMES, SWEEP_STAGES, load_config
from ..pipeline.config import DEFAULT_CONFIG
from ..pipeline.repair import drop_models
from ..pipeline.stages.models import MODEL_SOURCES
from ._run import EXECUTION_FLAGS, JobParser, add_execution_args, execution, refused, run_and_report, without_figures


def build_parser() -> argparse.ArgumentParser:
    p = JobParser(
        prog="python -m repspace.jobs.full_sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d = load_config(DEFAULT_CONFIG)  # flags default to the configuration file; shown: the offline default's values
    p.add_argument("--config", help=f"run configuration (TOML); default {DEFAULT_CONFIG}; flags override it")
    p.add_argument("--run-dir", help=f"the run's folder: store.zarr, report.html and figures/ go inside; rerunning "
                                     f"resumes it (offline default: {d.run_dir})")
    g = p.add_argument_group("fingerprint set")
    g.add_argument("--dataset", choices=list(DATASETS), metavar="DATASET",
                   help=f"one of {', '.join(DATASETS)} (files: data/README.md; default from the config)")
    g.add_argument("--data-dir", help="folder of dataset files (default: $REPSPACE_DATA_DIR or data/)")
    g.add_argument("--image-size", type=int, help=f"image height and width the models take (offline default: "
                                                  f"{d.image_size})")
    g.add_argument("--n-images", type=int, help=f"number of fingerprint images N (offline default: {d.n_images})")
    g.add_argument("--seed", type=int, help=f"seed that draws the fingerprint set (offline default: {d.seed})")
    g = p.add_argument_group("models")
    g.add_argument("--models-source", choices=MODEL_SOURCES,
                   help="trained: train the [models.train] grid on first use; directory: every model in --models-dir "
                        "(TensorFlow or ONNX); zoo: download --models numbers into --models-dir; posteriors: every "
                        "posterior file (.npz, .zarr) in --models-dir")
    g.add_argument("--models-dir", help=f"folder of the models, e.g. <n>/model/tfhub or <name>.onnx (offline "
                                        f"default: {d.models.dir})")
    g.add_argument("--models", nargs="+", help="model numbers or ranges, e.g. 0-49 300-349")
    g.add_argument("--base-url", help="zoo mirror to download from")
    g.add_argument("--train-steps", type=int, help="training steps per model (source = trained)")
    g.add_argument("--train-seeds", type=int, help="number of seeds to train (source = trained)")
    g = p.add_argument_group("computation")
    g.add_argument("--models-per-encode-task", type=int,
                   help=f"models per encode task (offline default: {d.models_per_encode_task})")
    g.add_argument("--pair-block-units", type=int, help=f"channels per side of one pairs task (bounds task memory; "
                                                        f"offline default: {d.pair_block_units})")
    g.add_argument("--pair-measures", nargs="+", choices=("nmi", "vi", "cka_bc"), metavar="MEASURE",
                   help="what the pairs stage stores for every two channels: nmi vi, and cka_bc on request "
                        "(CKA of their BC matrices, from the same matrix products; default: nmi vi)")
    g.add_argument("--info-threshold", type=float, help=f"channels under this many bits are left out of the "
                                                        f"pairs and the structure (offline default: "
                                                        f"{d.info_threshold})")
    g.add_argument("--all-pairs", action="store_true",
                   help="compute the pairs of every two channels, not only of the informative ones")
    g.add_argument("--error-groups", type=int, metavar="G",
                   help=f"standard errors of every I, NMI and VI by a jackknife over G random groups of the fingerprint "
                        f"images (offline default: {d.errors.groups}); 0 turns them off, for the largest runs (they "
                        "cost about 2.4x the channels and pairs stages' time without them: benchmarks/README.md)")
    g.add_argument("--min-samples", type=int, help="OPTICS min_samples (default: min(20, half the models))")
    g.add_argument("--stages", nargs="+", choices=STAGE_NAMES,
                   help=f"run these stages (default: {' '.join(SWEEP_STAGES)}; add encode_dataset latents for "
                        "whole latent spaces)")
    g.add_argument("--no-figures", action="store_true", help="skip the figures")
    g.add_argument("--drop-models", nargs="+", metavar="NAME",
                   help="take these models out of the run first (never encoded again); the channels and pairs "
                        "blocks that involve them are recomputed by this run's stages")
    add_execution_args(p, d, gpu=True, default_label="offline default")
    return p


FLAGS = {**EXECUTION_FLAGS, "run_dir": "--run-dir", "dataset": "--dataset", "data_dir": "--data-dir",
         "image_size": "--image-size", "n_images": "--n-images", "seed": "--seed",
         "models_per_encode_task": "--models-per-encode-task", "pair_block_units": "--pair-block-units",
         "pair_channels": "--all-pairs", "pair_measures": "--pair-measures", "info_threshold": "--info-threshold",
         "min_samples": "--min-samples", "stages": "--stages", "errors.groups": "--error-groups",
         "models.source": "--models-source", "models.dir": "--models-dir", "models.numbers": "--models",
         "models.base_url": "--base-url", "models.train.steps": "--train-steps", "models.train.seeds": "--train-seeds"}
"""The flag of each configuration key (what a refused value's error names)."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_verbose(args.verbose)
    train: dict = {}
    if args.train_steps is not None:
        train["steps"] = args.train_steps
    if args.train_seeds is not None:
        train["seeds"] = list(range(args.train_seeds))
    try:
        config = load_config(
            args.config,
            run_dir=args.run_dir, dataset=args.dataset, data_dir=args.data_dir, image_size=args.image_size,
            n_images=args.n_images, seed=args.seed, models_per_encode_task=args.models_per_encode_task,
            pair_block_units=args.pair_block_units, pair_channels="all" if args.all_pairs else None,
            pair_measures=tuple(dict.fromkeys(("nmi", "vi", *args.pair_measures))) if args.pair_measures else None,
            info_threshold=args.info_threshold, min_samples=args.min_samples,
            stages=tuple(args.stages) if args.stages else None, **execution(args),
            errors={"groups": args.error_groups},
            models={"source": args.models_source, "dir": args.models_dir,
                    "numbers": tuple(args.models) if args.models else None, "base_url": args.base_url},
            train_overrides=train or None, flags=FLAGS,
        )
    except (ValueError, FileNotFoundError) as err:
        return refused(err)
    config = without_figures(config, args.no_figures)
    return run_and_report(config, (lambda: drop_models(config.store, args.drop_models)) if args.drop_models else None)


if __name__ == "__main__":
    sys.exit(main())
