"""python -m repspace.jobs.fusion_so2: fuse ensembles of weak learners of the circle into one 2-D space (the paper's Sec. 4.4).

Weak learners (1-D beta-VAEs, which must tear the circle somewhere) are trained as Dask tasks on
points of the unit circle and encoded at the fingerprint points; then, for every similarity
(I(U;V), exp(-VI), NMI), ensemble size and repeat, one task fuses that many learners into a 2-D
space by gradient ascent and measures how continuously it holds the circle. The default
(jobs/fusion_so2.toml) finishes in about 9 minutes on two cores with fewer points, sizes, repeats
and steps than the paper (it says so as it starts); jobs/fusion_so2_paper.toml has the paper's
settings, for a cluster. It writes runs/fusion_so2: the store (groups so2_learners and so2_fusion),
figures/ (the fused circles; continuity against ensemble size) and report.html. Rerunning computes
only what is missing.
"""

from __future__ import annotations

import argparse
import sys

from .._quiet import set_verbose
from ..fusion import SIMILARITIES
from ..pipeline import load_config
from ..pipeline.config import job_defaults
from ._run import EXECUTION_FLAGS, JobParser, add_execution_args, execution, refused, run_and_report, without_figures

DEFAULT_CONFIG = job_defaults("fusion_so2.toml")
PAPER = {"n_points": 200, "sizes": (2, 3, 5, 10, 15, 20, 30, 50), "repeats": 5, "learner.steps": 3000,
         "learner.batch_size": 2048, "fusion.steps": 20000}


def build_parser() -> argparse.ArgumentParser:
    d = load_config(DEFAULT_CONFIG)
    o = d.so2
    p = JobParser(prog="python -m repspace.jobs.fusion_so2", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help=f"configuration (TOML); default {DEFAULT_CONFIG}; jobs/fusion_so2_paper.toml "
                                    "has the paper's settings; flags override it")
    p.add_argument("--run-dir", help=f"the run's folder: store.zarr, report.html, figures/ (default: {d.run_dir})")
    p.add_argument("--seed", type=int, help=f"seeds the learners and the fusions' starts (default: {d.seed})")
    g = p.add_argument_group("the experiment")
    g.add_argument("--n-points", type=int, help=f"fingerprint points on the circle (default: {o.n_points}; the paper: "
                                                "200)")
    g.add_argument("--sizes", type=int, nargs="+", help=f"ensemble sizes (default: {' '.join(map(str, o.sizes))}; "
                                                        "the paper: 2 3 5 10 15 20 30 50)")
    g.add_argument("--repeats", type=int, help=f"repeats of every size (default: {o.repeats}; the paper: 5)")
    g.add_argument("--similarities", nargs="+", choices=SIMILARITIES, help="what fusion maximises (default: all)")
    g.add_argument("--learners", choices=("trained", "torn"), help="trained: 1-D beta-VAEs (default); torn: synthetic "
                   "codes torn at random angles, no training")
    g.add_argument("--learner-steps", type=int, help=f"training steps per learner (default: {o.learner.steps}; the "
                                                     "paper: 3000)")
    g.add_argument("--learner-batch-size", type=int, help=f"points per training step (default: "
                                                          f"{o.learner.batch_size}; the paper: 2048)")
    g.add_argument("--fusion-steps", type=int, help=f"gradient steps per fusion (default: {o.fusion.steps}; the paper: "
                                                    "20000)")
    g.add_argument("--fusion-learning-rate", type=float, help=f"(default: {o.fusion.learning_rate})")
    add_execution_args(p, d, threads=False, figures=True)
    return p


FLAGS = {**EXECUTION_FLAGS, "run_dir": "--run-dir", "seed": "--seed", "so2.n_points": "--n-points",
         "so2.sizes": "--sizes", "so2.repeats": "--repeats", "so2.similarities": "--similarities",
         "so2.learners": "--learners", "so2.learner.steps": "--learner-steps",
         "so2.learner.batch_size": "--learner-batch-size", "so2.fusion.steps": "--fusion-steps",
         "so2.fusion.learning_rate": "--fusion-learning-rate"}
"""The flag of each configuration key (what a refused value's error names)."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_verbose(args.verbose)
    so2 = {"n_points": args.n_points, "sizes": tuple(args.sizes) if args.sizes else None, "repeats": args.repeats,
           "similarities": tuple(args.similarities) if args.similarities else None, "learners": args.learners,
           "learner": {"steps": args.learner_steps, "batch_size": args.learner_batch_size},
           "fusion": {"steps": args.fusion_steps, "learning_rate": args.fusion_learning_rate}}
    try:
        config = load_config(args.config or DEFAULT_CONFIG, run_dir=args.run_dir, seed=args.seed,
                             **execution(args), so2=so2, flags=FLAGS)
    except (ValueError, FileNotFoundError) as err:
        return refused(err)
    config = without_figures(config, args.no_figures)
    o = config.so2
    used = {k: getattr(getattr(o, k.partition(".")[0]), k.partition(".")[2]) if "." in k else getattr(o, k)
            for k in PAPER}
    lighter = [f"{k} {list(used[k]) if isinstance(used[k], tuple) else used[k]} (the paper: "
               f"{list(v) if isinstance(v, tuple) else v})" for k, v in PAPER.items() if used[k] != v]
    if lighter:
        print("fusion_so2: lighter than the paper's settings: " + "; ".join(lighter), flush=True)
    return run_and_report(config)


if __name__ == "__main__":
    sys.exit(main())
