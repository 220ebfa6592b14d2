"""What the run-store CLIs share once their configuration is parsed: run it, report it, and exit with a status
that says how it went (:data:`EXIT_STATUSES`)."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable

from ..pipeline import RunConfig, run
from ..pipeline.checks import ConfigurationRefused
from ..pipeline.guards import READ_ONLY_ERRNOS, DiskFull, StoreReadOnly, models_left_out, nothing_written

__all__ = ["EXECUTION_FLAGS", "EXIT_STATUSES", "JobParser", "add_execution_args", "execution", "finish", "refused", "run_and_report",
           "without_figures"]

EXIT_OK, EXIT_ERROR, EXIT_REFUSED, EXIT_MODELS_LEFT_OUT, EXIT_NOTHING_WRITTEN, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130
EXIT_STATUSES = {
    EXIT_OK: "everything done",
    EXIT_ERROR: "an error (one line on stderr), or no usable model",
    EXIT_REFUSED: "the configuration or flags were refused before any work",
    EXIT_MODELS_LEFT_OUT: "finished, but some models were left out (how many, and where they are named)",
    EXIT_NOTHING_WRITTEN: "a stage wrote nothing it should have",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C, SIGINT): the finished blocks are kept, and the same command resumes",
}
"""The exit statuses of every job that runs stages (README.md, "Exit statuses"); the last line a job prints is
``status: ...``."""


class JobParser(argparse.ArgumentParser):
    """The argument parser of a job that runs stages: a flag it refuses (an unknown one, a value not among the
    choices) ends, like every other refusal, with one error line (where --help lists the flags; no usage block)
    and the status line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise SystemExit(refused(f"{message} ({self.prog} --help lists the flags)"))


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


def refused(err: BaseException | str) -> int:
    """A configuration or flags refused before any work: its one-line error, the status line; returns 2."""
    print(f"error: {err}", file=sys.stderr)
    return finish(EXIT_REFUSED, "configuration refused")


def finish(code: int, what: str) -> int:
    """Print the final status line, ``status: <what>`` (one line a job array can test), and return ``code``."""
    print(f"status: {what}", flush=True)
    return code


def run_and_report(config: RunConfig, prepare: Callable[[], object] | None = None) -> int:
    """Run ``config`` (after ``prepare``, when given), print its summary and one final ``status:`` line; an error
    is one line on stderr.

    Returns the exit status (:data:`EXIT_STATUSES`): 0 everything done; 1 an error, or no usable model; 3 finished
    with models left out; 4 a stage wrote nothing it should have; 130 interrupted.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        try:
            if prepare is not None:
                prepare()
            result = run(config)
        except OSError as err:  # a full disk (DiskFull names the group), a folder that cannot be written
            if err.errno in READ_ONLY_ERRNOS and not isinstance(err, DiskFull):
                err = StoreReadOnly(f"{err.filename} cannot be written ({err.strerror}): the run folder is "
                                    "read-only; choose a writable --run-dir")
            print(f"error: {err}" if isinstance(err, (DiskFull, StoreReadOnly)) or err.filename is not None
                  else f"error: {type(err).__name__}: {err}", file=sys.stderr)
            return finish(EXIT_ERROR, "error (see the line above)")
        except ConfigurationRefused as err:  # before any work, as a refused option
            return refused(err)
        except (ValueError, RuntimeError) as err:  # StoreError, StoreLocked, StoreReadOnly, TaskFailed among them
            print(f"error: {err}", file=sys.stderr)
            return finish(EXIT_ERROR, "error (see the line above)")
        except KeyboardInterrupt:  # the lock is freed and the cluster closed on the way out
            print("interrupted: the finished blocks are kept; run the same command again to resume", file=sys.stderr)
            return finish(EXIT_INTERRUPTED, "interrupted")
    print(result.summary())
    why = result.unusable()
    if why is not None:
        print(f"error: {why}", file=sys.stderr)
        return finish(EXIT_ERROR, "no usable model")
    empty = nothing_written(result, config)
    left, total = models_left_out(result)
    also = f"; {left} of {total} models left out" if left else ""
    where = result.report if result.report is not None else f"{result.store} (embeddings attrs failed_models)"
    if empty:
        for line in empty:
            print(f"error: {line}", file=sys.stderr)
        return finish(EXIT_NOTHING_WRITTEN, f"{len(empty)} stage(s) wrote nothing: "
                                            f"{', '.join(e.partition(':')[0] for e in empty)}{also}")
    if left:
        return finish(EXIT_MODELS_LEFT_OUT, f"{left} of {total} models left out (named above; report: {where})")
    return finish(EXIT_OK, "ok")
