"""The configuration of a run: one typed object, read from TOML and overridden by flags.

A run is a list of stages over one store. :class:`RunConfig` holds what every stage shares (the
fingerprint set, the computation, the cluster) as fields, and each stage's own table as an
options object, ``config.<table>`` (``config.latents``, ``config.measures``, ...). Which tables
exist, and the class each is parsed into, comes from the stages themselves
(:data:`repspace.pipeline.stages.STAGES`): adding a stage with options adds its table here.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from .._checks import check_finite, check_types
from ..data.catalog import DATASETS
from ..models import TrainConfig
from .checks import Origins, check_tables
from .options import as_table, build, check_keys, table_classes
from .stages import STAGE_NAMES, SWEEP_STAGES, stage_names
from .stages.models import check_train_keys

__all__ = ["RunConfig", "load_config", "job_defaults", "DEFAULT_CONFIG", "SWEEP_STAGES", "STAGE_NAMES"]


def job_defaults(name: str) -> Path:
    """The job configuration ``name`` (e.g. "offline_default.toml") as the package ships it: the files of the
    checkout's ``jobs/`` folder, installed with the package (``repspace/jobs/defaults``)."""
    return Path(str(resources.files("repspace.jobs").joinpath("defaults", name)))


DEFAULT_CONFIG = job_defaults("offline_default.toml")


@dataclasses.dataclass(frozen=True, init=False)
class RunConfig:
    """Everything a run needs.

    Attributes
    ----------
    run_dir : the run's folder: ``store.zarr``, ``figures/`` inside.
    store_path : the store itself, when it lives elsewhere (None: ``run_dir/store.zarr``).
    dataset, data_dir : the dataset the fingerprint set (and whole-dataset runs) draw from.
    image_size : image height and width the models take (None: the dataset's own for the
        fingerprint set, the first model's input for whole-dataset runs).
    n_images, seed : N, the size of the fingerprint set, and its seed (the seed also seeds every
        Monte Carlo stream).
    n_channels : channels per model (None: the count most of the run's models give; a model that
        gives another is named and left out).
    models_per_encode_task : models per encode task (and per chunk of ``embeddings``).
    pair_block_units : units (channels) per side of one pairs task.
    pair_measures : what the pairs stage stores for every two channels: "nmi", "vi", and on request
        "cka_bc" (CKA of their BC matrices, from the same matrix products).
    pair_channels : "informative" (pairs only among channels with I(U) >= ``info_threshold``, what
        the structure uses) or "all" (every two channels).
    row_block_bytes : memory budget of generated BC rows inside one task.
    info_threshold : channels carrying less (bits) are left out of the pairs and the structure.
    min_samples : OPTICS min_samples (None: min(20, half the models), at least 2).
    scheduler_address : an existing Dask scheduler (None: a LocalCluster here).
    n_workers, threads_per_worker : the LocalCluster.
    dashboard : serve the LocalCluster's dashboard on 127.0.0.1.
    gpu : run the kernels on cupy.
    stages : the stages to run, in the order of :data:`STAGE_NAMES`.
    options : each stage table's options object by table name (also ``config.<table>``); pass a
        table as a keyword, ``RunConfig(latents=LatentsOptions(...))`` or a mapping of its keys.
    """

    run_dir: str = "runs/offline_default"
    store_path: str | None = None
    dataset: str = "dsprites_procedural"
    data_dir: str | None = None
    image_size: int | None = 32
    n_images: int = 300
    seed: int = 0
    n_channels: int | None = None
    models_per_encode_task: int = 2
    pair_block_units: int = 2000
    pair_measures: tuple[str, ...] = ("nmi", "vi")
    pair_channels: str = "informative"
    row_block_bytes: int = 256 * 2**20
    info_threshold: float = 0.01
    min_samples: int | None = None
    scheduler_address: str | None = None
    n_workers: int = 2
    threads_per_worker: int = 1
    dashboard: bool = True
    gpu: bool = False
    stages: tuple[str, ...] = SWEEP_STAGES
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __init__(self, **values: Any) -> None:
        tables = table_classes()
        given = dict(values.pop("options", None) or {})
        given.update({name: values.pop(name) for name in list(values) if name in tables})
        check_keys(values, _core_names(), "RunConfig", extra=tables)
        for f in _core_fields():
            value = values.get(f.name, f.default if f.default is not dataclasses.MISSING else f.default_factory())
            object.__setattr__(self, f.name, str(value) if isinstance(value, Path) else value)
        options = {}
        for name, cls in tables.items():
            value = given.pop(name, None)
            options[name] = value if isinstance(value, cls) else build(cls, value or {}, name)
        if given:
            raise ValueError(f"unknown tables {sorted(given)}; tables are {sorted(tables)}")
        object.__setattr__(self, "options", options)
        self._check()

    def __getattr__(self, name: str) -> Any:
        options = self.__dict__.get("options", {})
        if name in options:
            return options[name]
        raise AttributeError(f"{type(self).__name__} has no field or table {name!r}")

    def _check(self) -> None:
        if isinstance(self.info_threshold, float) and not 0 <= self.info_threshold < float("inf"):  # NaN too
            raise ValueError(f"info_threshold must be at least 0 bits, got {self.info_threshold}")
        check_types(self, "")
        check_finite(self)
        if self.info_threshold < 0:
            raise ValueError(f"info_threshold must be at least 0 bits, got {self.info_threshold}")
        stages = tuple(self.stages)
        names = stage_names()
        unknown = [s for s in stages if s not in names]
        if unknown:
            raise ValueError(f"stages: unknown stages {unknown}; stages are {list(names)}")
        object.__setattr__(self, "stages", tuple(s for s in names if s in stages))
        for name in ("n_images", "models_per_encode_task", "pair_block_units", "row_block_bytes", "n_workers",
                     "threads_per_worker"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        object.__setattr__(self, "pair_measures", tuple(self.pair_measures))
        bad = [m for m in self.pair_measures if m not in ("nmi", "vi", "cka_bc")]
        if bad or not {"nmi", "vi"} <= set(self.pair_measures):
            raise ValueError(f"pair_measures must hold nmi and vi, and may add cka_bc; got {list(self.pair_measures)}")
        if self.pair_channels not in ("informative", "all"):
            raise ValueError(f"pair_channels must be 'informative' or 'all', got {self.pair_channels!r}")
        for name in ("n_channels", "image_size"):  # None: what the models agree on, the dataset's own
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, or left out; got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed must be 0 or more, got {self.seed}")
        if self.min_samples is not None and self.min_samples < 2:
            raise ValueError(f"min_samples must be at least 2 (OPTICS), or left out for min(20, half the models); "
                             f"got {self.min_samples}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {self.dataset!r}")

    @property
    def store(self) -> Path:
        return Path(self.store_path) if self.store_path is not None else Path(self.run_dir) / "store.zarr"

    @property
    def figure_dir(self) -> Path:
        return Path(self.run_dir) / "figures"

    def as_dict(self, tables: bool | tuple[str, ...] = True) -> dict[str, Any]:
        """The fields and tables as plain data, paths made absolute (what provenance records, so a rerun from
        another folder finds the same files). ``tables``: every table, or only those named."""
        d = {f.name: copy.deepcopy(getattr(self, f.name)) for f in _core_fields()}
        for name, value in self.options.items():
            if tables is True or name in tables:
                d[name] = as_table(value)
        if "models" in d:
            d["models"]["train"] = dict(self.models.train)
            if d["models"]["dir"]:
                d["models"]["dir"] = str(Path(d["models"]["dir"]).resolve())
        for key in ("run_dir", "store_path", "data_dir"):
            if d[key] is not None:
                d[key] = str(Path(d[key]).resolve())
        return d

    def replace(self, **changes: Any) -> RunConfig:
        return RunConfig(**{**{f.name: getattr(self, f.name) for f in _core_fields()}, **self.options, **changes})


def _core_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(RunConfig) if f.name != "options"]


def _core_names() -> set[str]:
    return {f.name for f in _core_fields()}


def load_config(
    path: str | Path | None = None, *, train_overrides: Mapping[str, Any] | None = None,
    flags: Mapping[str, str] | None = None, **overrides: Any
) -> RunConfig:
    """Read a run TOML file (the offline default when None), then apply ``overrides``.

    ``overrides`` are RunConfig fields, or partial mappings merged into a table of the file (``models``,
    ``latents``, ``measures``, ...; a sub-table such as ``measures.classifier`` as a nested mapping), and
    ``train_overrides`` into its ``[models.train]`` table. None values are ignored, so CLI flags that were
    not given change nothing. Every option is checked here, before any work. A refused value's error names
    the key as the file writes it and the file, or, for an override, its flag (``flags``: the flag of each
    dotted key, e.g. {"so2.learner.steps": "--learner-steps"}) and the file it overrides.
    """
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"no run configuration at {path}")
    with path.open("rb") as f:
        try:
            raw = tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path}: not valid TOML ({err})") from None
    tables = table_classes()
    origins = Origins(path, flags)
    try:
        check_keys(raw, _core_names(), "the file's top level", extra=tables)
        check_tables(raw, tables)
        found = {name: dict(raw.pop(name, {})) for name in tables}
        for key, value in overrides.items():
            origins.override(key, value)
            if value is None:
                continue
            if key in tables:
                _merge(found[key], value)
            else:
                raw[key] = value
        check_keys(raw, _core_names(), "overrides", extra=tables)
        if train_overrides:
            origins.override("models.train", train_overrides)
            found["models"]["train"] = {**dict(found["models"].get("train", {})), **train_overrides}
        if "train" in found["models"]:
            try:
                check_train_keys(found["models"]["train"])
                check_finite(TrainConfig.offline_default(**found["models"]["train"]))  # bad training options fail now
            except (ValueError, TypeError) as err:
                raise ValueError(f"[models.train] {err}") from None
        options = {name: build(cls, found[name], name) for name, cls in tables.items()}
        return RunConfig(**raw, options=options)
    except (ValueError, TypeError) as err:
        raise ValueError(origins.explain(str(err), _core_names() | set(tables))) from None


def _merge(into: dict[str, Any], changes: Mapping[str, Any]) -> None:
    """Merge ``changes`` (None values left out) into a table, sub-tables key by key."""
    for key, value in changes.items():
        if value is None:
            continue
        if isinstance(value, Mapping) and isinstance(into.get(key), Mapping):
            into[key] = dict(into[key])
            _merge(into[key], value)
        else:
            into[key] = value
