"""The models stage: the ensemble located on disk, downloaded from the zoo, or trained on first use.

Writes the run's model list (group ``models``); models already listed keep their place.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zarr

from ..._checks import check_types, unknown_keys
from ...models import (EncoderOptions, TrainConfig, ModelEntry, download_models, find_models, parse_model_numbers,
                       train_ensemble)
from ...models.train_config import model_grid
from ...store import models as schema
from ..checks import ConfigurationRefused
from ..stage import Plan, Stage, StageContext

if TYPE_CHECKING:
    from ..config import RunConfig


def locate(ctx: StageContext) -> list[ModelEntry]:
    """The configured models, trained or downloaded into ``models.dir`` first where needed."""
    mc = ctx.config.models
    numbers = _numbers(mc)
    if mc.source == "trained":
        paths = train_ensemble(mc.train_config(), mc.dir, client=ctx.client, numbers=numbers)
        return find_models(mc.dir, [Path(p).name for p in paths])
    if mc.source == "zoo":
        if not numbers:
            raise ValueError("models.source = 'zoo' needs models.numbers, e.g. ['0-49']")
        kwargs = {"base_url": mc.base_url} if mc.base_url else {}
        report = download_models(numbers, mc.dir, **kwargs)
        ctx.log(report.summary())
        got = [n for n in numbers if n not in report.failed]
        if not got:
            raise FileNotFoundError(f"none of the {len(numbers)} zoo models could be downloaded into {mc.dir}")
        return find_models(mc.dir, got)
    return _in_folder(mc, numbers)


def _numbers(mc: "ModelsConfig") -> list[int] | None:
    """The model numbers of ``models.numbers`` (None: all, or folder names that are not numbers)."""
    try:
        return parse_model_numbers(",".join(mc.numbers)) if mc.numbers else None
    except ValueError:
        if mc.source not in ("directory", "posteriors"):
            raise
        return None


def _in_folder(mc: "ModelsConfig", numbers: list[int] | None) -> list[ModelEntry]:
    """The models already in ``models.dir`` (source directory or posteriors)."""
    kind = "posteriors" if mc.source == "posteriors" else "encoders"
    if mc.numbers and numbers is None:
        return find_models(mc.dir, list(mc.numbers), kind=kind)
    return find_models(mc.dir, numbers, kind=kind)


def check(config: RunConfig) -> None:
    """Before any work: the folder that a directory or posteriors source reads holds the models asked for, and
    no model the store already holds would come from another place (its stored results are those of the model at
    the recorded path: a model of the same name elsewhere, or a second ensemble trained or downloaded into a
    mistyped folder, would be left out silently)."""
    mc = config.models
    if mc.source in ("directory", "posteriors"):
        try:
            planned = {e.name: Path(e.path) for e in _in_folder(mc, _numbers(mc))}
        except FileNotFoundError as err:
            raise ConfigurationRefused(f"[models] dir (--models-dir): {err}; models.source = {mc.source!r} reads "
                                       "the models already there") from None
    else:
        numbers = _numbers(mc)
        if numbers is None:
            numbers = [s.number for s in model_grid(mc.train_config())] if mc.source == "trained" else []
        planned = {str(n): (Path(mc.dir) / str(n)).resolve() for n in numbers}
    recorded = {r["name"]: Path(r["path"]) for r in _listed(config.store) if r["path"]}
    moved = [name for name, path in planned.items() if name in recorded and recorded[name] != path]
    if moved:
        common = Path(os.path.commonpath([str(recorded[n].parent) for n in moved]))
        shown = ", ".join(moved[:5]) + (" ..." if len(moved) > 5 else "")
        raise ConfigurationRefused(
            f"[models] dir (--models-dir): {mc.dir} is not where the run's models are: the store {config.store} "
            f"holds {len(moved)} models in {common} ({shown}) that models.source = {mc.source!r} would take from "
            f"{Path(mc.dir).resolve()}, and its results are those of the models it holds. Give --models-dir "
            f"{common}, or a new --run-dir for these models")


def _listed(store: Path) -> list[dict[str, Any]]:
    """The model records of a store's models group (none: no store, or no such group yet)."""
    if not (store / schema.GROUP / "zarr.json").is_file():
        return []
    try:
        return schema.read_models(zarr.open_group(str(store / schema.GROUP), mode="r"))
    except (OSError, ValueError, KeyError):  # a damaged group: the stage's own checks name it
        return []


def finalize(ctx: StageContext, plan: Plan, results: dict[str, Any]) -> str:
    entries = locate(ctx)
    before = len(schema.read_models(ctx.group))
    records = schema.write_models(ctx.group, entries)
    listed = {e.name for e in entries}
    kept = [r["name"] for r in records if r["name"] not in listed]
    if kept:
        ctx.log(f"the store holds {len(kept)} models that this configuration does not list "
                f"({', '.join(kept[:10])}{' ...' if len(kept) > 10 else ''}); they are kept")
    shipped = sum(_shipped(e.path) for e in entries) if ctx.config.models.source == "trained" else 0
    source = ctx.config.models.source
    if shipped:  # written from the package's weights, not trained here
        source = "trained (the weights shipped for this recipe" + ("" if shipped == len(entries) else
                                                                    f", {shipped} of the models") + ")"
    return f"{source}: {ctx.config.models.dir}; {len(entries)} models ({len(records) - before} new)"


def _shipped(path: str) -> bool:
    """Whether the model at ``path`` was written from shipped weights (:mod:`repspace.models.shipped`)."""
    results = Path(path) / "model" / "results" / "json" / "train_results.json"
    try:
        return bool(json.loads(results.read_text()).get("shipped"))
    except (OSError, ValueError):
        return False


MODEL_SOURCES = ("trained", "directory", "zoo", "posteriors")


@dataclasses.dataclass(frozen=True)
class ModelsConfig:
    """Where the ensemble comes from.

    Attributes
    ----------
    source : "trained" (train ``train`` into ``dir`` on first use), "directory" (every
        model in ``dir``: zoo-layout folders, SavedModels, .keras files, ONNX models), "zoo"
        (download ``numbers`` into ``dir``), or "posteriors" (every posterior file in ``dir``,
        see :mod:`repspace.models.posterior_files`).
    dir : folder of the models (``key=value`` folders in it are searched too).
    numbers : model numbers or ranges such as "0-49" (zoo; trained: a selection of the grid);
        for a directory: model names (numbers or ranges of numbered folders).
    base_url : zoo mirror (None: the public bucket).
    train : TrainConfig fields for source = "trained".
    encoder : how to read ONNX encoders (the ``[models.encoder]`` table; a model's sidecar
        overrides it key by key): outputs, scale, layout, value range, decoder, fixed variance.
    """

    source: str = "trained"
    dir: str = "data/models/offline"
    numbers: tuple[str | int, ...] = ()
    base_url: str | None = None
    train: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    encoder: EncoderOptions = dataclasses.field(default_factory=EncoderOptions)

    def __post_init__(self) -> None:
        check_types(self, "")
        if self.source not in MODEL_SOURCES:
            raise ValueError(f"source must be one of {MODEL_SOURCES}, got {self.source!r}")
        object.__setattr__(self, "numbers", tuple(str(n) for n in self.numbers))
        try:
            check_train_keys(self.train)
        except ValueError as err:
            raise ValueError(f"train: {err}") from None

    def train_config(self) -> TrainConfig:
        return TrainConfig.offline_default(**dict(self.train))


def check_train_keys(train: Mapping[str, Any]) -> None:
    """Refuse keys of a ``[models.train]`` table that TrainConfig has no field for, naming the known ones."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(train) - known)
    if unknown:
        raise ValueError(unknown_keys(unknown, known))


STAGE = Stage(name="models", writes=schema.GROUP, finalize=finalize, table="models", options=ModelsConfig, check=check)
