"""Quiet imports of TensorFlow: its C++ start-up lines (absl, oneDNN, cpu_feature_guard) bury
repspace's own output, in the main process and in every worker.

``REPSPACE_VERBOSE=1`` (set by the jobs' ``--verbose``; worker processes inherit it) keeps them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from types import ModuleType

__all__ = ["import_tensorflow", "import_tfds", "verbose", "set_verbose"]


def verbose() -> bool:
    return os.environ.get("REPSPACE_VERBOSE", "") not in ("", "0")


def set_verbose(on: bool) -> None:
    """Keep (or silence) TensorFlow's start-up logging here and in workers started after this call."""
    os.environ["REPSPACE_VERBOSE"] = "1" if on else "0"


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null: what C++ libraries write while loading goes nowhere."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _import(name: str) -> ModuleType:
    import importlib

    if name in sys.modules or verbose():
        return importlib.import_module(name)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # 2 lets oneDNN notices at ERROR level through, in training
    with _stderr_silenced():
        module = importlib.import_module(name)
    for logger in ("tensorflow", "absl", "tensorflow_datasets"):
        logging.getLogger(logger).setLevel(logging.ERROR)
    return module


def import_tensorflow() -> ModuleType:
    """``import tensorflow``, silently unless verbose."""
    return _import("tensorflow")


def import_tfds() -> ModuleType:
    """``import tensorflow_datasets``, silently unless verbose."""
    import_tensorflow()
    return _import("tensorflow_datasets")
