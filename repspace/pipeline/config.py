"""The configuration of a sweep: one typed object, read from TOML and overridden by flags."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..models import TrainConfig

__all__ = ["SweepConfig", "ModelsConfig", "load_config", "DEFAULT_CONFIG"]

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "jobs" / "offline_default.toml"

MODEL_SOURCES = ("trained", "directory", "zoo")


@dataclasses.dataclass(frozen=True)
class ModelsConfig:
    """Where the ensemble comes from.

    Attributes
    ----------
    source : "trained" (train ``train`` into ``dir`` on first use), "directory" (every
        model folder in ``dir``), or "zoo" (download ``numbers`` into ``dir``).
    dir : folder of model folders ``<n>/model/tfhub``.
    numbers : model numbers or ranges such as "0-49" (zoo; for directory: a selection).
    base_url : zoo mirror (None: the public bucket).
    train : TrainConfig fields for source = "trained".
    """

    source: str = "trained"
    dir: str = "data/models/offline"
    numbers: tuple[str, ...] = ()
    base_url: str | None = None
    train: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in MODEL_SOURCES:
            raise ValueError(f"models.source must be one of {MODEL_SOURCES}, got {self.source!r}")
        object.__setattr__(self, "numbers", tuple(str(n) for n in self.numbers))

    def train_config(self) -> TrainConfig:
        return TrainConfig.offline_default(**dict(self.train))


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """Everything a sweep run needs.

    Attributes
    ----------
    run_dir : the run's folder: ``store.zarr`` and ``figures/`` inside.
    dataset, data_dir, image_size, n_images, seed : the fingerprint set.
    models : ModelsConfig.
    encode_block : models per encode task (and per chunk of the embeddings).
    pair_block_units : units (channels) per side of one pairs task.
    row_block_bytes : memory budget of generated BC rows inside one task.
    info_threshold : channels carrying less (bits) are left out of the structure.
    min_samples : OPTICS min_samples (None: min(20, half the models), at least 2).
    scheduler_address : an existing Dask scheduler (None: a LocalCluster here).
    n_workers, threads_per_worker : the LocalCluster.
    dashboard : serve the LocalCluster's dashboard on 127.0.0.1.
    gpu : run the kernels on cupy.
    stages : the stages to run, in order ("latents", the Monte Carlo comparison of whole
        latent spaces, is not among the defaults: add it to run it).
    latents : LatentsConfig fields for the latents stage (n_images, n_samples, ...); the
        store, models, dataset and cluster come from this config.
    figures : draw figures.
    """

    run_dir: str = "runs/offline_default"
    dataset: str = "dsprites_procedural"
    data_dir: str | None = None
    image_size: int | None = 32
    n_images: int = 300
    seed: int = 0
    models: ModelsConfig = dataclasses.field(default_factory=ModelsConfig)
    encode_block: int = 2
    pair_block_units: int = 2000
    row_block_bytes: int = 64 * 2**20
    info_threshold: float = 0.01
    min_samples: int | None = None
    scheduler_address: str | None = None
    n_workers: int = 2
    threads_per_worker: int = 1
    dashboard: bool = True
    gpu: bool = False
    stages: tuple[str, ...] = ("fingerprint", "models", "encode", "channels", "pairs", "structure", "figures")
    latents: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    figures: bool = True

    def __post_init__(self) -> None:
        from .sweep import STAGES

        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stages {unknown}; stages are {list(STAGES)}")
        object.__setattr__(self, "stages", tuple(self.stages))
        if isinstance(self.models, Mapping):
            object.__setattr__(self, "models", ModelsConfig(**self.models))
        for name in ("n_images", "encode_block", "pair_block_units", "n_workers", "threads_per_worker"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def store(self) -> Path:
        return Path(self.run_dir) / "store.zarr"

    @property
    def figure_dir(self) -> Path:
        return Path(self.run_dir) / "figures"

    def latents_config(self, models: tuple[str, ...] = ()) -> Any:
        """The LatentsConfig of the latents stage: this run's store, models, dataset and cluster."""
        from .latents import LatentsConfig

        base = dict(store=self.store, models_dir=self.models.dir, models=models, dataset=self.dataset,
                    data_dir=self.data_dir, image_size=self.image_size, seed=self.seed,
                    scheduler_address=self.scheduler_address, n_workers=self.n_workers,
                    threads_per_worker=self.threads_per_worker)
        base.update(self.latents)
        return LatentsConfig(**base)

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["models"]["train"] = dict(self.models.train)
        d["latents"] = dict(self.latents)
        return d

    def replace(self, **changes: Any) -> SweepConfig:
        return dataclasses.replace(self, **changes)


def _check_keys(d: Mapping[str, Any], cls: type, where: str) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(names)}")


def load_config(
    path: str | Path | None = None, *, train_overrides: Mapping[str, Any] | None = None, **overrides: Any
) -> SweepConfig:
    """Read a sweep TOML file (the offline default when None), then apply ``overrides``.

    ``overrides`` are SweepConfig fields; ``models`` may be a partial mapping merged into
    the file's, and ``train_overrides`` into its ``[models.train]`` table. None values are
    ignored, so CLI flags that were not given change nothing.
    """
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"no sweep configuration at {path}")
    with path.open("rb") as f:
        raw = tomllib.load(f)
    _check_keys(raw, SweepConfig, str(path))
    models = dict(raw.pop("models", {}))
    _check_keys(models, ModelsConfig, f"{path} [models]")
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "models":
            for mk, mv in value.items():
                if mv is not None:
                    models[mk] = mv
        else:
            raw[key] = value
    _check_keys(raw, SweepConfig, "overrides")
    if train_overrides:
        models["train"] = {**dict(models.get("train", {})), **train_overrides}
    if "train" in models:
        TrainConfig.offline_default(**models["train"])  # fail early on bad training options
    config = SweepConfig(**raw, models=ModelsConfig(**models))
    if config.latents:
        config.latents_config()  # fail early on bad latents options
    return config
