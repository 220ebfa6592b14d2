"""The configuration of a run: one typed object, read from TOML and overridden by flags.

A run is a list of stages over one store; every stage reads what it needs from
:class:`RunConfig`: the fingerprint set, the models, the computation and the cluster.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._checks import check_types as _check_types
from ..data.catalog import DATASETS
from ..models import TrainConfig

__all__ = ["RunConfig", "ModelsConfig", "LatentsOptions", "MeasuresOptions", "SO2Options", "FusionOptions", "load_config", "DEFAULT_CONFIG", "SWEEP_STAGES", "STAGE_NAMES"]

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "jobs" / "offline_default.toml"

MODEL_SOURCES = ("trained", "directory", "zoo")
STAGE_NAMES = ("fingerprint", "models", "encode", "channels", "pairs", "structure", "traversals", "fusion",
               "encode_dataset", "latents", "spaces", "measures", "so2_learners", "so2_fusion", "figures")
"""Every stage, in the order a run takes them."""
SWEEP_STAGES = ("fingerprint", "models", "encode", "channels", "pairs", "structure", "traversals", "figures")
"""The stages of the full sweep (add "encode_dataset" and "latents" for whole latent spaces)."""


@dataclasses.dataclass(frozen=True)
class ModelsConfig:
    """Where the ensemble comes from.

    Attributes
    ----------
    source : "trained" (train ``train`` into ``dir`` on first use), "directory" (every
        model folder in ``dir``), or "zoo" (download ``numbers`` into ``dir``).
    dir : folder of model folders ``<n>/model/tfhub``.
    numbers : model numbers or ranges such as "0-49" (zoo; trained: a selection of the grid);
        for a directory: folder names (numbers or ranges of numbered folders).
    base_url : zoo mirror (None: the public bucket).
    train : TrainConfig fields for source = "trained".
    """

    source: str = "trained"
    dir: str = "data/models/offline"
    numbers: tuple[str, ...] = ()
    base_url: str | None = None
    train: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_types(self, "models.")
        if self.source not in MODEL_SOURCES:
            raise ValueError(f"models.source must be one of {MODEL_SOURCES}, got {self.source!r}")
        object.__setattr__(self, "numbers", tuple(str(n) for n in self.numbers))

    def train_config(self) -> TrainConfig:
        return TrainConfig.offline_default(**dict(self.train))


@dataclasses.dataclass(frozen=True)
class LatentsOptions:
    """The Monte Carlo comparison of whole latent spaces (stages encode_dataset and latents).

    Attributes
    ----------
    n_images : M, a seeded subset of the dataset (None: every image).
    n_samples : S, samples per Monte Carlo estimate.
    sample_block, image_block : likelihood block (samples x posteriors) inside one estimate;
        memory per estimate is about 3 x 8 x sample_block x image_block bytes in float64.
    images_per_encode_task : images per encode task and per chunk of ``dataset_embeddings``.
    batch_size : images per call into an encoder.
    dtype : "float64" or "float32", the precision of the likelihood matrix products.
    scheme : "shared" (each model's I(U;X) and I(U,U';X) estimated once and shared by all its pairs:
        2n + n(n-1)/2 estimates for a group of n) or "pairs" (five estimates of its own per pair,
        n + 5 n(n-1)/2, as before wave 2).
    """

    n_images: int | None = None
    n_samples: int = 2_000
    sample_block: int = 2048
    image_block: int = 16384
    images_per_encode_task: int = 65536
    batch_size: int = 256
    dtype: str = "float64"
    scheme: str = "shared"

    def __post_init__(self) -> None:
        _check_types(self, "latents.")
        if self.scheme not in ("shared", "pairs"):
            raise ValueError(f"latents.scheme must be 'shared' or 'pairs', got {self.scheme!r}")
        for name in ("n_samples", "sample_block", "image_block", "images_per_encode_task", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"latents.{name} must be positive, got {getattr(self, name)}")
        if self.n_samples < 2:
            raise ValueError(f"latents.n_samples must be at least 2 (a standard error needs two), got {self.n_samples}")
        if self.n_images is not None and self.n_images < 2:
            raise ValueError(f"latents.n_images must be at least 2, got {self.n_images}")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"latents.dtype must be 'float64' or 'float32', got {self.dtype!r}")


@dataclasses.dataclass(frozen=True)
class MeasuresOptions:
    """The measure comparison (stages spaces and measures; the paper's Sec. 4.1).

    Attributes
    ----------
    source : the spaces compared: "synthetic" (the paper's nine spaces), "latents" (each model's
        whole latent space over the fingerprint images) or "channels" (each informative channel,
        I(U) >= the run's ``info_threshold``, as a 1-D space).
    measures : names from :data:`repspace.measures.MEASURES` (default: every one).
    n_items : items of the synthetic spaces (the paper: 64).
    max_spaces : at most this many spaces from a run, in store order (the rest are named in the log
        and the group's attrs); the classifier measure trains one network per space.
    debiased, mc_samples, shape_alpha, shape_restarts : see :class:`repspace.measures.MeasureOptions`.
    classifier_hidden, classifier_steps, classifier_batch_size, classifier_learning_rate,
    classifier_eval_samples : the classifier measure (:class:`repspace.measures.ClassifierOptions`).
        The defaults train each network in seconds on a laptop: 2,000 steps of 2,048 where the
        paper took 10,000 of 16,384 (``jobs/measures_paper.toml`` has the paper's settings).
    """

    source: str = "synthetic"
    measures: tuple[str, ...] = ()
    n_items: int = 64
    max_spaces: int = 60
    debiased: bool = False
    mc_samples: int = 2000
    shape_alpha: float = 1.0
    shape_restarts: int = 8
    classifier_hidden: tuple[int, ...] = (256, 256)
    classifier_steps: int = 2000
    classifier_batch_size: int = 2048
    classifier_learning_rate: float = 3e-4
    classifier_eval_samples: int = 1000

    def __post_init__(self) -> None:
        from ..measures import MEASURES
        from ..store.spaces import SOURCES

        _check_types(self, "measures.")
        object.__setattr__(self, "measures", tuple(self.measures) or MEASURES)
        unknown = [m for m in self.measures if m not in MEASURES]
        if unknown:
            raise ValueError(f"measures.measures: unknown measures {unknown}; measures are {', '.join(MEASURES)}")
        if self.source not in SOURCES:
            raise ValueError(f"measures.source must be one of {SOURCES}, got {self.source!r}")
        if self.max_spaces < 2:
            raise ValueError(f"measures.max_spaces must be at least 2, got {self.max_spaces}")
        self.options(0)  # every value checked now, not when the stage runs

    def options(self, seed: int):
        """The :class:`repspace.measures.MeasureOptions` of these settings."""
        from ..measures import ClassifierOptions, MeasureOptions

        classifier = ClassifierOptions(hidden=tuple(self.classifier_hidden), steps=self.classifier_steps,
                                       batch_size=self.classifier_batch_size,
                                       learning_rate=self.classifier_learning_rate,
                                       eval_samples=self.classifier_eval_samples)
        return MeasureOptions(seed=seed, debiased=self.debiased, mc_samples=self.mc_samples,
                              shape_alpha=self.shape_alpha, shape_restarts=self.shape_restarts, classifier=classifier)


@dataclasses.dataclass(frozen=True)
class SO2Options:
    """The paper's fusion experiment on the circle (stages so2_learners and so2_fusion; its Sec. 4.4).

    Attributes
    ----------
    n_points : fingerprint points on the circle (the paper: 200).
    sizes : ensemble sizes (the paper: 2, 3, 5, 10, 15, 20, 30, 50).
    repeats : repeats of every size, each with learners of its own (the paper: 5); the learners
        are ``repeats x max(sizes)`` in all.
    similarities : what fusion maximises: of "information", "vi", "nmi" (the paper: all three).
    learners : "trained" (1-D beta-VAEs trained as tasks) or "torn" (synthetic codes torn at random
        angles, :func:`repspace.data.circle.torn_learners`: no training).
    learner_hidden, learner_steps, learner_batch_size, learner_beta, learner_learning_rate : the
        weak learners (:class:`repspace.models.circle_vae.CircleVAEOptions`; the paper: 256-256,
        3,000 steps of 2,048, beta 0.03, 1e-3).
    dim : dimensions of the fused space (the paper: 2).
    fusion_steps, fusion_learning_rate, init_std, dtype : the fusion's gradient ascent (the paper:
        20,000 steps at 3, N(0, 0.05^2) initial means, float32).
    """

    n_points: int = 100
    sizes: tuple[int, ...] = (2, 3, 5, 10, 20)
    repeats: int = 3
    similarities: tuple[str, ...] = ("information", "vi", "nmi")
    learners: str = "trained"
    learner_hidden: tuple[int, ...] = (256, 256)
    learner_steps: int = 2000
    learner_batch_size: int = 512
    learner_beta: float = 0.03
    learner_learning_rate: float = 1e-3
    dim: int = 2
    fusion_steps: int = 6000
    fusion_learning_rate: float = 3.0
    init_std: float = 0.05
    dtype: str = "float32"

    def __post_init__(self) -> None:
        from ..fusion import SIMILARITIES

        _check_types(self, "so2.")
        object.__setattr__(self, "sizes", tuple(sorted({int(k) for k in self.sizes})))
        object.__setattr__(self, "similarities", tuple(self.similarities))
        object.__setattr__(self, "learner_hidden", tuple(int(h) for h in self.learner_hidden))
        if not self.sizes or self.sizes[0] < 1:
            raise ValueError(f"so2.sizes must be positive ensemble sizes, got {list(self.sizes)}")
        bad = [s for s in self.similarities if s not in SIMILARITIES]
        if bad or not self.similarities:
            raise ValueError(f"so2.similarities must be some of {SIMILARITIES}, got {list(self.similarities)}")
        if self.learners not in ("trained", "torn"):
            raise ValueError(f"so2.learners must be 'trained' or 'torn', got {self.learners!r}")
        for name in ("n_points", "repeats", "dim", "fusion_steps"):
            if getattr(self, name) < (3 if name == "n_points" else 1):
                raise ValueError(f"so2.{name} is too small: {getattr(self, name)}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"so2.dtype must be 'float32' or 'float64', got {self.dtype!r}")
        self.learner_options()  # checked now, not when the stage runs

    @property
    def n_learners(self) -> int:
        return self.repeats * max(self.sizes)

    def learner_options(self):
        from ..models.circle_vae import CircleVAEOptions

        return CircleVAEOptions(hidden=self.learner_hidden, steps=self.learner_steps,
                                batch_size=self.learner_batch_size, beta=self.learner_beta,
                                learning_rate=self.learner_learning_rate)


@dataclasses.dataclass(frozen=True)
class FusionOptions:
    """Fusion of a run's channels into one space (stage fusion).

    Attributes
    ----------
    members : "informative" (every channel with I(U) >= the run's ``info_threshold``), "cluster"
        (the members of OPTICS cluster ``cluster`` of measure ``cluster_measure`` in ``structure``),
        or "list" (``channels``).
    cluster_measure, cluster : the cluster, for members = "cluster".
    channels : "model/channel" names, for members = "list".
    max_members : at most this many channels, in store order (the rest are named).
    dim, similarity, steps, learning_rate, init_std, dtype : :func:`repspace.fusion.fuse`.
    """

    members: str = "informative"
    cluster_measure: str = "vi"
    cluster: int = 0
    channels: tuple[str, ...] = ()
    max_members: int = 100
    dim: int = 2
    similarity: str = "vi"
    steps: int = 6000
    learning_rate: float = 3.0
    init_std: float = 0.05
    dtype: str = "float32"

    def __post_init__(self) -> None:
        from ..fusion import SIMILARITIES

        _check_types(self, "fusion.")
        object.__setattr__(self, "channels", tuple(str(c) for c in self.channels))
        if self.members not in ("informative", "cluster", "list"):
            raise ValueError(f"fusion.members must be 'informative', 'cluster' or 'list', got {self.members!r}")
        if self.members == "list" and not self.channels:
            raise ValueError("fusion.members = 'list' needs fusion.channels (names such as '3/7': model 3, channel 7)")
        if self.cluster_measure not in ("vi", "nmi"):
            raise ValueError(f"fusion.cluster_measure must be 'vi' or 'nmi', got {self.cluster_measure!r}")
        if self.similarity not in SIMILARITIES:
            raise ValueError(f"fusion.similarity must be one of {SIMILARITIES}, got {self.similarity!r}")
        for name in ("dim", "steps", "max_members"):
            if getattr(self, name) < 1:
                raise ValueError(f"fusion.{name} must be positive, got {getattr(self, name)}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"fusion.dtype must be 'float32' or 'float64', got {self.dtype!r}")


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything a run needs.

    Attributes
    ----------
    run_dir : the run's folder: ``store.zarr``, ``figures/`` inside.
    store_path : the store itself, when it lives elsewhere (None: ``run_dir/store.zarr``).
    dataset, data_dir : the dataset the fingerprint set (and whole-dataset runs) draw from.
    image_size : image height and width the models take (None: the dataset's own for the
        fingerprint set, the first model's input for whole-dataset runs).
    n_images, seed : the fingerprint set (the seed also seeds every Monte Carlo stream).
    models : ModelsConfig.
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
    latents : LatentsOptions.
    measures : MeasuresOptions.
    so2 : SO2Options.
    fusion : FusionOptions.
    """

    run_dir: str = "runs/offline_default"
    store_path: str | None = None
    dataset: str = "dsprites_procedural"
    data_dir: str | None = None
    image_size: int | None = 32
    n_images: int = 300
    seed: int = 0
    models: ModelsConfig = dataclasses.field(default_factory=ModelsConfig)
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
    latents: LatentsOptions = dataclasses.field(default_factory=LatentsOptions)
    measures: MeasuresOptions = dataclasses.field(default_factory=MeasuresOptions)
    so2: SO2Options = dataclasses.field(default_factory=SO2Options)
    fusion: FusionOptions = dataclasses.field(default_factory=FusionOptions)

    def __post_init__(self) -> None:
        for name in ("run_dir", "store_path", "data_dir"):
            if isinstance(getattr(self, name), Path):
                object.__setattr__(self, name, str(getattr(self, name)))
        if isinstance(self.models, Mapping):
            object.__setattr__(self, "models", ModelsConfig(**self.models))
        if isinstance(self.latents, Mapping):
            _check_keys(self.latents, LatentsOptions, "latents")
            object.__setattr__(self, "latents", LatentsOptions(**self.latents))
        if isinstance(self.measures, Mapping):
            _check_keys(self.measures, MeasuresOptions, "measures")
            object.__setattr__(self, "measures", MeasuresOptions(**self.measures))
        if isinstance(self.so2, Mapping):
            _check_keys(self.so2, SO2Options, "so2")
            object.__setattr__(self, "so2", SO2Options(**self.so2))
        if isinstance(self.fusion, Mapping):
            _check_keys(self.fusion, FusionOptions, "fusion")
            object.__setattr__(self, "fusion", FusionOptions(**self.fusion))
        _check_types(self, "")
        stages = tuple(self.stages)
        unknown = [s for s in stages if s not in STAGE_NAMES]
        if unknown:
            raise ValueError(f"unknown stages {unknown}; stages are {list(STAGE_NAMES)}")
        object.__setattr__(self, "stages", tuple(s for s in STAGE_NAMES if s in stages))
        for name in ("n_images", "models_per_encode_task", "pair_block_units", "row_block_bytes", "n_workers",
                     "threads_per_worker"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.info_threshold < 0:
            raise ValueError(f"info_threshold must be at least 0 bits, got {self.info_threshold}")
        object.__setattr__(self, "pair_measures", tuple(self.pair_measures))
        bad = [m for m in self.pair_measures if m not in ("nmi", "vi", "cka_bc")]
        if bad or not {"nmi", "vi"} <= set(self.pair_measures):
            raise ValueError(f"pair_measures must hold nmi and vi, and may add cka_bc; got {list(self.pair_measures)}")
        if self.pair_channels not in ("informative", "all"):
            raise ValueError(f"pair_channels must be 'informative' or 'all', got {self.pair_channels!r}")
        if self.n_channels is not None and self.n_channels < 1:
            raise ValueError(f"n_channels must be positive, or left out for what the models agree on; got "
                             f"{self.n_channels}")
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

    def as_dict(self) -> dict[str, Any]:
        """The fields as plain data, paths made absolute (what provenance records, so a rerun from another
        folder finds the same files)."""
        d = dataclasses.asdict(self)
        d["models"]["train"] = dict(self.models.train)
        for key in ("run_dir", "store_path", "data_dir"):
            if d[key] is not None:
                d[key] = str(Path(d[key]).resolve())
        if d["models"]["dir"]:
            d["models"]["dir"] = str(Path(d["models"]["dir"]).resolve())
        return d

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)


def _check_keys(d: Mapping[str, Any], cls: type, where: str) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(names)}")


def load_config(
    path: str | Path | None = None, *, train_overrides: Mapping[str, Any] | None = None, **overrides: Any
) -> RunConfig:
    """Read a run TOML file (the offline default when None), then apply ``overrides``.

    ``overrides`` are RunConfig fields; ``models``, ``latents``, ``measures``, ``so2`` and ``fusion`` may be
    partial mappings merged into the file's tables, and ``train_overrides`` into its ``[models.train]`` table.
    None values are ignored, so CLI flags that were not given change nothing.
    """
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"no run configuration at {path}")
    with path.open("rb") as f:
        try:
            raw = tomllib.load(f)
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path}: not valid TOML ({err})") from None
    _check_keys(raw, RunConfig, str(path))
    tables = {"models": dict(raw.pop("models", {})), "latents": dict(raw.pop("latents", {})),
              "measures": dict(raw.pop("measures", {})), "so2": dict(raw.pop("so2", {})),
              "fusion": dict(raw.pop("fusion", {}))}
    _check_keys(tables["models"], ModelsConfig, f"{path} [models]")
    _check_keys(tables["latents"], LatentsOptions, f"{path} [latents]")
    _check_keys(tables["measures"], MeasuresOptions, f"{path} [measures]")
    _check_keys(tables["so2"], SO2Options, f"{path} [so2]")
    _check_keys(tables["fusion"], FusionOptions, f"{path} [fusion]")
    for key, value in overrides.items():
        if value is None:
            continue
        if key in tables:
            tables[key].update({k: v for k, v in dict(value).items() if v is not None})
        else:
            raw[key] = value
    _check_keys(raw, RunConfig, "overrides")
    models = tables["models"]
    if train_overrides:
        models["train"] = {**dict(models.get("train", {})), **train_overrides}
    try:
        if "train" in models:
            TrainConfig.offline_default(**models["train"])  # bad training options fail now, not after other stages
        return RunConfig(**raw, models=ModelsConfig(**models), latents=LatentsOptions(**tables["latents"]),
                         measures=MeasuresOptions(**tables["measures"]), so2=SO2Options(**tables["so2"]),
                         fusion=FusionOptions(**tables["fusion"]))
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: {err}") from None
