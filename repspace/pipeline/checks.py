"""Where a run's options came from, so that a refusal names the key and its source, and the checks of a
configuration against the store it runs on, made before any stage starts.

A value is read from a run TOML file or given as an override (a job's command-line flag). A refused
value's message names the key as the file writes it and the file (``run.toml: [models.train]
learning_rate must be ...``), or the flag and the file it overrides (``--info-threshold (a
command-line flag, over jobs/offline_default.toml): info_threshold must be ...``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._checks import refused_key

if TYPE_CHECKING:
    from .config import RunConfig

__all__ = ["ConfigurationRefused", "Origins", "check_tables", "check_store", "stored_attrs"]


class ConfigurationRefused(ValueError):
    """Options that the disk contradicts, refused before any stage runs and before anything is written (the jobs
    exit 2, as for any refused option)."""


class Origins:
    """Which keys of a configuration were overridden (dotted: ``so2.learner.steps``), and the flag of each."""

    def __init__(self, path: Path, flags: Mapping[str, str] | None = None) -> None:
        self.path = path
        self.flags = dict(flags or {})
        self.overridden: set[str] = set()

    def override(self, key: str, value: Any) -> None:
        """Record the override ``key`` = ``value`` (a mapping: each of its keys, None values left out)."""
        if value is None:
            return
        if isinstance(value, Mapping):
            for k, v in value.items():
                self.override(f"{key}.{k}", v)
        else:
            self.overridden.add(key)

    def explain(self, text: str, names: Iterable[str]) -> str:
        """``text``, a refusal of one key (``[table] key ...`` or ``key ...``; ``names``: the top level's keys),
        prefixed with where that key's value came from."""
        m = re.match(r"\[([A-Za-z0-9_.]+)\] (.*)", text)
        table, rest = (m.group(1), m.group(2)) if m else (None, text)
        word = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", rest)
        key = word.group(1) if word else None
        if table is None:
            key = refused_key(rest, names)
        dotted = f"{table}.{key}" if table and key else key
        if dotted is not None and any(dotted == k or dotted.startswith(k + ".") or k.startswith(dotted + ".")
                                      for k in self.overridden):
            flag = self.flags.get(dotted) or next((f for k, f in self.flags.items() if k.startswith(dotted + ".")),
                                                  None)
            given = f"{flag} (a command-line flag, over {self.path})" if flag else \
                f"the override {dotted} (over {self.path})"
            return f"{given}: {text}"
        return f"{self.path}: {text}"


def check_tables(raw: Mapping[str, Any], tables: Iterable[str]) -> None:
    """Refuse a table of the file (``[models]``, ``[so2]``, ...) given as a plain value, naming it."""
    for name in tables:
        if name in raw and not isinstance(raw[name], Mapping):
            raise ValueError(f"{name} must be a table ([{name}] and its keys), got {raw[name]!r} "
                             f"({type(raw[name]).__name__})")
    models = raw.get("models")
    if isinstance(models, Mapping) and "train" in models and not isinstance(models["train"], Mapping):
        raise ValueError(f"[models] train must be a table ([models.train] and its keys), got {models['train']!r} "
                         f"({type(models['train']).__name__})")


def stored_attrs(store: Path, group: str) -> dict[str, Any] | None:
    """The attributes of a store's group, from its metadata alone (None: no such group, or one too damaged to
    read, which the stages' own checks name)."""
    meta = store / group / "zarr.json"
    try:
        attrs = json.loads(meta.read_text()).get("attributes", {}) if meta.is_file() else None
    except (OSError, ValueError, AttributeError):
        return None
    return attrs if isinstance(attrs, dict) else None


def _stored_channels(store: Path, group: str) -> int | None:
    """Channels per model of a store's embeddings group, from its metadata (None: no such group)."""
    meta = store / group / "mu" / "zarr.json"
    if not meta.is_file():
        return None
    try:
        return int(json.loads(meta.read_text())["shape"][1])
    except (ValueError, KeyError, IndexError, TypeError):
        return None  # a damaged group: the stages' own checks name it


def check_store(config: RunConfig) -> None:
    """Refuse, before any stage runs, options that the store ``config.store`` already holds otherwise:
    a path to it through a file; ``n_channels`` against the channels of its posteriors. Reads metadata only;
    writes nothing."""
    existing = next(p for p in (config.store, *config.store.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigurationRefused(f"{existing} is a file, not a folder: the run's store would be "
                                   f"{config.store} (--run-dir or --store names a folder)")
    if config.n_channels is None or not (config.store / "zarr.json").is_file():
        return
    for group in ("embeddings", "dataset_embeddings"):
        stored = _stored_channels(config.store, group)
        if stored is not None and stored != config.n_channels:
            raise ConfigurationRefused(f"n_channels = {config.n_channels}, but the store {config.store} holds {stored} "
                             f"channels per model (group {group}): leave n_channels out, or set it to {stored}, or "
                             "use another store")
