"""python -m repspace.jobs.compare_measures: NMI and VI beside CKA, shape and classifier measures (the paper's Sec. 4.1).

By default it compares the paper's nine synthetic spaces (64 items each, in one or two
dimensions) by every measure, in 1.5 to 2.5 minutes on two cores, and writes runs/measures: the store
(groups ``spaces`` and ``measures``), figures/ (the spaces, one matrix per measure, the Spearman
agreement between measures and the scatter matrix behind it) and report.html. With --store it
compares the spaces of an existing run instead: each model's whole latent space over the
fingerprint images (--spaces latents), or each informative channel (--spaces channels). Rerunning
computes only what changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .._quiet import set_verbose
from ..measures import MEASURES
from ..pipeline import load_config
from ..pipeline.config import job_defaults
from ._run import EXECUTION_FLAGS, JobParser, add_execution_args, execution, refused, run_and_report, without_figures
from ..store.spaces import SOURCES

DEFAULT_CONFIG = job_defaults("compare_measures.toml")


def build_parser() -> argparse.ArgumentParser:
    d = load_config(DEFAULT_CONFIG)
    m, k = d.measures, d.measures.classifier
    p = JobParser(prog="python -m repspace.jobs.compare_measures", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help=f"configuration (TOML); default {DEFAULT_CONFIG}; jobs/measures_paper.toml has "
                                    "the paper's classifier settings; flags override it")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--run-dir", help=f"the comparison's folder: store.zarr, report.html, figures/ (default: "
                                         f"{d.run_dir})")
    where.add_argument("--store", help="an existing run store (RUN/store.zarr) whose spaces to compare; the groups "
                                       "spaces and measures are written into it, the figures to RUN/figures")
    g = p.add_argument_group("spaces")
    g.add_argument("--spaces", choices=SOURCES, help="synthetic: the paper's nine spaces (default without --store); "
                   "latents: every model's whole latent space (default with --store); channels: every channel "
                   "carrying at least --info-threshold bits, as a 1-D space")
    g.add_argument("--n-items", type=int, help=f"items of the synthetic spaces, a square number divisible by 4 "
                                               f"(default: {m.n_items})")
    g.add_argument("--max-spaces", type=int, help=f"at most this many spaces of a run, in store order (default: "
                                                  f"{m.max_spaces})")
    g.add_argument("--info-threshold", type=float, help=f"bits a channel needs to count (--spaces channels; default: "
                                                        f"{d.info_threshold})")
    g = p.add_argument_group("measures")
    g.add_argument("--measures", nargs="+", choices=MEASURES, metavar="MEASURE",
                   help=f"measures to compute, of {' '.join(MEASURES)} (default: all)")
    g.add_argument("--seed", type=int, help=f"seeds the Monte Carlo streams, the shape search and the classifiers "
                                            f"(default: {d.seed})")
    g.add_argument("--mc-samples", type=int, help=f"samples per Monte Carlo estimate (default: {m.mc_samples})")
    g.add_argument("--shape-alpha", type=float, help=f"alpha of the shape distance: 2 means only, 1 2-Wasserstein, "
                                                     f"0 covariances only (default: {m.shape_alpha})")
    g.add_argument("--shape-restarts", type=int, help=f"starts of the shape distance's search over alignments "
                                                      f"(default: {m.shape_restarts})")
    g.add_argument("--debiased", action="store_true", help="the debiased HSIC estimator in every CKA")
    g.add_argument("--classifier-steps", type=int, help=f"training steps per classifier (default: "
                                                        f"{k.steps}; the paper: 10000)")
    g.add_argument("--classifier-batch-size", type=int, help=f"samples per classifier step (default: "
                                                             f"{k.batch_size}; the paper: 16384)")
    g.add_argument("--classifier-learning-rate", type=float, help=f"Adam's learning rate (default: "
                                                                  f"{k.learning_rate})")
    g.add_argument("--classifier-eval-samples", type=int, help=f"samples per item in its mean predicted distribution "
                                                               f"(default: {k.eval_samples})")
    add_execution_args(p, d, figures=True)
    return p


FLAGS = {**EXECUTION_FLAGS, "run_dir": "--run-dir", "store_path": "--store", "seed": "--seed",
         "info_threshold": "--info-threshold", "measures.source": "--spaces", "measures.n_items": "--n-items",
         "measures.max_spaces": "--max-spaces", "measures.measures": "--measures",
         "measures.mc_samples": "--mc-samples", "measures.shape_alpha": "--shape-alpha",
         "measures.shape_restarts": "--shape-restarts", "measures.debiased": "--debiased",
         "measures.classifier.steps": "--classifier-steps", "measures.classifier.batch_size": "--classifier-batch-size",
         "measures.classifier.learning_rate": "--classifier-learning-rate",
         "measures.classifier.eval_samples": "--classifier-eval-samples"}
"""The flag of each configuration key (what a refused value's error names)."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_verbose(args.verbose)
    source = args.spaces or ("latents" if args.store else None)
    if args.store and source == "synthetic":
        return refused("--store compares a run's spaces (--spaces latents or channels); leave it out for the "
                       "synthetic spaces")
    store = Path(args.store) if args.store else None
    if store is not None and not (store / "zarr.json").is_file():
        return refused(f"no run store at {store} (expected RUN/store.zarr of a finished sweep)")
    measures = {"source": source, "n_items": args.n_items, "max_spaces": args.max_spaces,
                "measures": tuple(dict.fromkeys(args.measures)) if args.measures else None,
                "mc_samples": args.mc_samples, "shape_alpha": args.shape_alpha, "shape_restarts": args.shape_restarts,
                "debiased": True if args.debiased else None,
                "classifier": {"steps": args.classifier_steps, "batch_size": args.classifier_batch_size,
                               "learning_rate": args.classifier_learning_rate,
                               "eval_samples": args.classifier_eval_samples}}
    try:
        config = load_config(
            args.config or DEFAULT_CONFIG,
            run_dir=str(store.parent) if store is not None else args.run_dir,
            store_path=str(store) if store is not None else None, seed=args.seed,
            info_threshold=args.info_threshold, measures=measures, **execution(args), flags=FLAGS)
    except (ValueError, FileNotFoundError) as err:
        return refused(err)
    config = without_figures(config, args.no_figures)
    return run_and_report(config)


if __name__ == "__main__":
    sys.exit(main())
