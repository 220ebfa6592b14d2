"""What an ensemble to train is: the families trainable here, :class:`TrainConfig`
(every tunable of a training) and the grid of :class:`ModelSpec` it expands to.

Nothing here imports TensorFlow; :mod:`repspace.models.training` trains the grid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from repspace._checks import check_types
from repspace.models.zoo import HYPERPARAMETERS, ModelInfo

__all__ = [
    "ARCHITECTURES",
    "TRAINABLE_FAMILIES",
    "ImageDataset",
    "ModelSpec",
    "TrainConfig",
    "model_grid",
]

SOURCE = "repspace"

#: Families :func:`train_model` can train, with their hyperparameter's name.
TRAINABLE_FAMILIES: dict[str, str] = {
    "beta_vae": "beta",
    "beta_tc_vae": "beta",
    "annealed_vae": "c_max",
    "dip_vae_i": "lambda_od",
    "dip_vae_ii": "lambda_od",
}

#: ``"conv"``: the disentanglement_lib conv encoder/decoder; ``"mlp"``: a small MLP for CPUs.
ARCHITECTURES = ("conv", "mlp")


class ImageDataset(Protocol):
    """What training needs of a dataset (see :class:`repspace.data.Dataset`)."""

    name: str
    image_shape: tuple[int, int, int]

    def __len__(self) -> int: ...

    def images(self, indices: Any) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines an ensemble; one options object for all tunables.

    Attributes
    ----------
    dataset, data_dir, image_size
        Passed to :func:`repspace.data.load_dataset`.
    families : tuple of str
        Families to train, from :data:`TRAINABLE_FAMILIES`.
    hyperparameters : mapping family -> tuple of float
        Values per family; a family absent here uses the zoo's six values.
    seeds : tuple of int
    architecture : ``"mlp"`` or ``"conv"``
    mlp_hidden : tuple of int
        Hidden layer widths of the MLP encoder (the decoder mirrors them).
    n_latents, batch_size, learning_rate, steps
        Adam with default betas; ``steps`` optimiser steps of ``batch_size`` images.
    pool_size : int
        Images drawn once (without replacement, from the model's seed) and sampled from
        during training, kept as float16; 0 draws every batch afresh from the dataset.
        Rendering datasets such as dsprites_procedural cost more per image than a
        training step.
    log_every : int
        Steps per point of the loss curve (losses averaged over those steps).
    progress_every : int
        Steps between progress lines of one training (and a line when it is done); 0 (the default)
        for none: an ensemble prints one line per finished model.
    threads : int
        TensorFlow intra- and inter-op threads per training.
    workers : int
        Trainings at once on the LocalCluster started when no client is given.
    deterministic : bool
        Enable TensorFlow's op determinism (same seed, same weights on CPU).
    jit_compile : bool
        Compile the training steps with XLA (about 1.3x faster for the MLP on CPU).
    steps_per_call : int
        Optimiser steps per call into TensorFlow (a loop inside one compiled function);
        saves the per-call overhead, which dominates for the small MLP.
    annealed_gamma, annealed_steps
        annealed_vae's gamma and the steps over which its capacity rises (default: steps).
    shipped : bool
        Write a model from the weights shipped with the package where its recipe is a shipped one
        (:mod:`repspace.models.shipped`: the offline default's ten models) instead of training it;
        False trains every model.
    """

    dataset: str = "dsprites_procedural"
    data_dir: str | None = None
    image_size: int | None = 32
    families: tuple[str, ...] = ("beta_vae",)
    hyperparameters: Mapping[str, tuple[float, ...]] = dataclasses.field(
        default_factory=lambda: {"beta_vae": (16.0,)}
    )
    seeds: tuple[int, ...] = tuple(range(10))
    architecture: str = "mlp"
    mlp_hidden: tuple[int, ...] = (128, 128)
    n_latents: int = 10
    batch_size: int = 128
    learning_rate: float = 5e-4
    steps: int = 10_000
    pool_size: int = 20_000
    log_every: int = 100
    progress_every: int = 0
    threads: int = 1
    workers: int = 2
    deterministic: bool = True
    jit_compile: bool = True
    steps_per_call: int = 50
    annealed_gamma: float = 1000.0
    annealed_steps: int | None = None
    shipped: bool = True

    def __post_init__(self):
        check_types(self, "")
        for fam in (*self.families, *self.hyperparameters):
            if fam not in TRAINABLE_FAMILIES:
                raise ValueError(
                    f"{'families' if fam in self.families else 'hyperparameters'}: cannot train family {fam!r}; "
                    f"trainable: {', '.join(TRAINABLE_FAMILIES)}"
                    + (" (factor_vae models come from the zoo)" if fam == "factor_vae" else "")
                )
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        for name in ("n_latents", "batch_size", "steps", "log_every", "threads", "workers", "steps_per_call"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("pool_size", "progress_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        for name in ("image_size", "annealed_steps"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, or left out; got {getattr(self, name)}")
        if not self.seeds or min(self.seeds) < 0:
            raise ValueError(f"seeds must be one or more seeds, each 0 or more; got {list(self.seeds)}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must not repeat, got {list(self.seeds)}")
        if not self.mlp_hidden or min(self.mlp_hidden) < 1:
            raise ValueError(f"mlp_hidden must be one or more positive widths, got {list(self.mlp_hidden)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate}")
        if self.annealed_gamma < 0:
            raise ValueError(f"annealed_gamma must be 0 or more, got {self.annealed_gamma}")
        object.__setattr__(self, "families", tuple(self.families))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "mlp_hidden", tuple(int(h) for h in self.mlp_hidden))
        object.__setattr__(
            self, "hyperparameters", {k: tuple(float(v) for v in vs) for k, vs in self.hyperparameters.items()}
        )

    @classmethod
    def offline_default(cls, **overrides: Any) -> TrainConfig:
        """The recipe that gave recurring channels on CPU (DESIGN §4).

        beta-VAE with beta 16, the MLP at 32x32 on dsprites_procedural, batch 128, Adam
        lr 5e-4, 10,000 steps, 10 latents, Bernoulli loss, 10 seeds, two trainings at once
        with one thread each (about 70 s a model).

        >>> cfg = TrainConfig.offline_default(steps=50)
        >>> cfg.families, cfg.values("beta_vae"), cfg.steps, cfg.image_size
        (('beta_vae',), (16.0,), 50, 32)
        """
        base = dict(
            dataset="dsprites_procedural", image_size=32, families=("beta_vae",),
            hyperparameters={"beta_vae": (16.0,)}, seeds=tuple(range(10)), architecture="mlp",
            n_latents=10, batch_size=128, learning_rate=5e-4, steps=10_000, threads=1, workers=2,
        )
        base.update(overrides)
        return cls(**base)

    def values(self, family: str) -> tuple[float, ...]:
        """Hyperparameter values of ``family`` in this grid."""
        if family in self.hyperparameters:
            return self.hyperparameters[family]
        return HYPERPARAMETERS[family][1]

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hyperparameters"] = {k: list(v) for k, v in self.hyperparameters.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        kw = dict(d)
        for key in ("families", "seeds", "mlp_hidden"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One model of the grid: its number (directory name) and what it is."""

    number: int
    family: str
    hyperparameter_value: float
    seed: int

    def info(self, dataset: str) -> ModelInfo:
        return ModelInfo(
            self.number, dataset, self.family, TRAINABLE_FAMILIES[self.family],
            float(self.hyperparameter_value), int(self.seed), source=SOURCE,
        )

    def label(self) -> str:
        return f"model {self.number} ({self.family} {TRAINABLE_FAMILIES[self.family]}={self.hyperparameter_value:g} seed {self.seed})"


def model_grid(config: TrainConfig) -> list[ModelSpec]:
    """The ensemble's models, numbered 0.. in the order families x values x seeds.

    >>> [(s.number, s.family, s.hyperparameter_value, s.seed) for s in model_grid(
    ...     TrainConfig(families=("beta_vae", "beta_tc_vae"),
    ...                 hyperparameters={"beta_vae": (1, 4), "beta_tc_vae": (6,)}, seeds=(0, 1)))]
    ... # doctest: +NORMALIZE_WHITESPACE
    [(0, 'beta_vae', 1.0, 0), (1, 'beta_vae', 1.0, 1), (2, 'beta_vae', 4.0, 0), (3, 'beta_vae', 4.0, 1),
     (4, 'beta_tc_vae', 6.0, 0), (5, 'beta_tc_vae', 6.0, 1)]
    """
    specs = []
    for fam in config.families:
        for value in config.values(fam):
            for seed in config.seeds:
                specs.append(ModelSpec(len(specs), fam, float(value), int(seed)))
    return specs
