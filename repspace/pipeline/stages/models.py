"""The models stage: the ensemble located on disk, downloaded from the zoo, or trained on first use.

Writes the run's model list (group ``models``); models already listed keep their place.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

from pathlib import Path
from typing import Any

from ..._checks import check_types
from ...models import (EncoderOptions, TrainConfig, ModelEntry, download_models, find_models, parse_model_numbers,
                       train_ensemble)
from ...store import models as schema
from ..stage import Plan, Stage, StageContext


def locate(ctx: StageContext) -> list[ModelEntry]:
    """The configured models, trained or downloaded into ``models.dir`` first where needed."""
    mc = ctx.config.models
    try:
        numbers = parse_model_numbers(",".join(mc.numbers)) if mc.numbers else None
    except ValueError:
        if mc.source not in ("directory", "posteriors"):
            raise
        numbers = None  # folder names that are not numbers
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
    kind = "posteriors" if mc.source == "posteriors" else "encoders"
    if mc.numbers and numbers is None:
        return find_models(mc.dir, list(mc.numbers), kind=kind)
    return find_models(mc.dir, numbers, kind=kind)


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
        raise ValueError(f"unknown keys {unknown}; known: {sorted(known)}")


STAGE = Stage(name="models", writes=schema.GROUP, finalize=finalize, table="models", options=ModelsConfig)
