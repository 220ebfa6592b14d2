"""What the run-store CLIs share once their configuration is parsed: run it, report it."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable

from ..pipeline import RunConfig, run

__all__ = ["without_figures", "run_and_report"]


def without_figures(config: RunConfig, skip: bool) -> RunConfig:
    """``config`` without its figures stage when ``skip`` (a job's --no-figures)."""
    return config.replace(stages=tuple(s for s in config.stages if s != "figures")) if skip else config


def run_and_report(config: RunConfig, prepare: Callable[[], object] | None = None) -> int:
    """Run ``config`` (after ``prepare``, when given) and print its summary; an error is one line on stderr.

    Returns the exit status: 0, or 1 after an error.
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
    return 0
