"""What the run-store CLIs share once their configuration is parsed: run it, report it."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable

from ..pipeline import RunConfig, run

__all__ = ["EXECUTION_FLAGS", "add_execution_args", "execution", "run_and_report", "without_figures"]


def add_execution_args(parser: argparse.ArgumentParser, defaults: RunConfig, *, threads: bool = True,
                       gpu: bool = False, figures: bool = False,
                       default_label: str = "default") -> argparse._ArgumentGroup:
    """The "execution" flags of a run-store job: the cluster, the dashboard, the logging (and, when asked,
    threads per worker, the GPU and --no-figures); their defaults come from ``defaults`` (the job's
    configuration file, shown as ``default_label``). :func:`execution` turns the parsed flags into
    configuration overrides."""
    g = parser.add_argument_group("execution")
    g.add_argument("--scheduler-address", help="use an existing Dask cluster (also $DASK_SCHEDULER_ADDRESS)")
    g.add_argument("--workers", type=int, help=f"workers of the in-process LocalCluster ({default_label}: "
                                               f"{defaults.n_workers})")
    if threads:
        g.add_argument("--threads-per-worker", type=int, help=f"threads per LocalCluster worker ({default_label}: "
                                                              f"{defaults.threads_per_worker})")
    g.add_argument("--no-dashboard", action="store_true", help="do not serve the Dask dashboard")
    if gpu:
        g.add_argument("--gpu", action="store_true", help="run the kernels on cupy (GPU workers)")
    if figures:
        g.add_argument("--no-figures", action="store_true", help="skip the figures and the report")
    g.add_argument("--verbose", action="store_true", help="keep TensorFlow's start-up logging (silenced by default)")
    return g


def execution(args: argparse.Namespace) -> dict:
    """The configuration overrides of :func:`add_execution_args`'s flags (None: the file's value)."""
    out = {"scheduler_address": args.scheduler_address, "n_workers": args.workers,
           "dashboard": False if args.no_dashboard else None}
    if hasattr(args, "threads_per_worker"):
        out["threads_per_worker"] = args.threads_per_worker
    if hasattr(args, "gpu"):
        out["gpu"] = True if args.gpu else None
    return out


EXECUTION_FLAGS = {"scheduler_address": "--scheduler-address", "n_workers": "--workers",
                   "threads_per_worker": "--threads-per-worker", "dashboard": "--no-dashboard", "gpu": "--gpu"}
"""The flag of each configuration key :func:`execution` sets (what a refused value's error names)."""


def without_figures(config: RunConfig, skip: bool) -> RunConfig:
    """``config`` without its figures stage when ``skip`` (a job's --no-figures)."""
    return config.replace(stages=tuple(s for s in config.stages if s != "figures")) if skip else config


def run_and_report(config: RunConfig, prepare: Callable[[], object] | None = None) -> int:
    """Run ``config`` (after ``prepare``, when given) and print its summary; an error is one line on stderr.

    Returns the exit status: 0, or 1 after an error or when no model could be used.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        try:
            if prepare is not None:
                prepare()
            result = run(config)
        except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    print(result.summary())
    why = result.unusable()
    if why is not None:
        print(f"error: {why}", file=sys.stderr)
        return 1
    return 0
