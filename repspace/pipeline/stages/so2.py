"""The fusion experiment on the circle (the paper's Sec. 4.4) as two stages.

``so2_learners``
    one task per weak learner: a 1-D beta-VAE trained on points of the circle
    (:func:`repspace.models.circle_vae.train_circle_vae`), or a code torn at a random angle
    (:func:`repspace.data.circle.torn_learners`), encoded at the fingerprint points;
``so2_fusion``
    one task per (similarity, ensemble size, repeat): :func:`repspace.fusion.fuse` of that
    repeat's first ``size`` learners into a 2-D space, and its continuity
    (:func:`repspace.kernels.continuity`).

A fusion stays done while its members' posteriors (their done-stamps) and the fusion's options are
unchanged, so retraining learners refuses only the fusions that use them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..._checks import check_types
from ...data.circle import circle_points, torn_learners
from ...fusion import SIMILARITIES, FuseOptions, fuse
from ...kernels import continuity
from ...models.circle_vae import CircleVAEOptions
from ...store import open_group, require_complete, set_complete
from ...store import so2 as schema
from ..stage import Block, Plan, Stage, StageContext

__all__ = ["SO2_LEARNERS_STAGE", "SO2_FUSION_STAGE", "learner_task", "fusion_task", "learner_seed"]

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
    learner : the weak learners, the ``[so2.learner]`` table (:class:`repspace.models.circle_vae.CircleVAEOptions`:
        hidden, steps, batch_size, beta, learning_rate; its defaults are the paper's: 256-256, 3,000 steps
        of 2,048, beta 0.03, 1e-3).
    fusion : the fusions, the ``[so2.fusion]`` table (:class:`repspace.fusion.FuseOptions`: dim, steps,
        learning_rate, init_std, dtype; its defaults are the paper's: 2 dimensions, 20,000 steps at 3,
        N(0, 0.05^2) initial means, float32). It has no ``similarity``: the fusions maximise each of
        ``similarities``.
    """

    n_points: int = 100
    sizes: tuple[int, ...] = (2, 3, 5, 10, 20)
    repeats: int = 3
    similarities: tuple[str, ...] = ("information", "vi", "nmi")
    learners: str = "trained"
    learner: CircleVAEOptions = dataclasses.field(default_factory=CircleVAEOptions)
    fusion: FuseOptions = dataclasses.field(default_factory=FuseOptions, metadata={"without": ("similarity",)})

    def __post_init__(self) -> None:
        check_types(self, "")
        for name in ("sizes", "similarities"):
            values = list(getattr(self, name))
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                raise ValueError(f"{name} must list each value once; {', '.join(map(repr, twice))} is listed more "
                                 "than once")
        object.__setattr__(self, "sizes", tuple(sorted(int(k) for k in self.sizes)))
        object.__setattr__(self, "similarities", tuple(self.similarities))
        if isinstance(self.learner, Mapping):
            object.__setattr__(self, "learner", CircleVAEOptions(**self.learner))
        if isinstance(self.fusion, Mapping):
            object.__setattr__(self, "fusion", FuseOptions(**self.fusion))
        if self.fusion.similarity != FuseOptions.similarity:
            raise ValueError(f"fusion.similarity is not read here ({self.fusion.similarity!r}): the fusions "
                             f"maximise each of similarities")
        if not self.sizes or self.sizes[0] < 1:
            raise ValueError(f"sizes must be positive ensemble sizes, got {list(self.sizes)}")
        bad = [s for s in self.similarities if s not in SIMILARITIES]
        if bad or not self.similarities:
            raise ValueError(f"similarities must be some of {SIMILARITIES}, got {list(self.similarities)}")
        if self.learners not in ("trained", "torn"):
            raise ValueError(f"learners must be 'trained' or 'torn', got {self.learners!r}")
        for name in ("n_points", "repeats"):
            if getattr(self, name) < (3 if name == "n_points" else 1):
                raise ValueError(f"{name} is too small: {getattr(self, name)}")
        if self.fusion.steps < 1:
            raise ValueError(f"fusion.steps must be positive, got {self.fusion.steps}")

    @property
    def n_learners(self) -> int:
        return self.repeats * max(self.sizes)


LEARNER_STEP_S = 1.0e-5
"""Seconds of one worker thread per sample of one training step (the default job: 2,000 steps of 512
in about 11 s per learner, two at a time on 2 cores); for estimates only."""
FUSION_STEP_S = (7.6e-4, 3.3e-9)
"""Seconds of one worker thread per step of a fusion: a fixed part, and a part per squared point per
distribution (the members and the fused one). Fitted to two runs on 2 cores (2026-12-06,
benchmarks/bench_estimates.py): the default job's 45 fusions of 6,000 steps on 100 points (2.4 min) and
the offline default's fusion of 30 channels over 300 images (60 s); for estimates only."""


def fusion_cost(steps: int, n_points: int, members: int) -> float:
    """Estimated seconds of one fusion of ``members`` distributions over ``n_points`` points.

    >>> round(fusion_cost(6000, 300, 30))
    61
    """
    fixed, per = FUSION_STEP_S
    return 1.0 + steps * (fixed + per * n_points ** 2 * (1 + members))


def learner_seed(seed: int, k: int) -> int:
    """The seed of learner k of a run seeded ``seed``."""
    return int(np.random.SeedSequence(seed, spawn_key=(7, k)).generate_state(1)[0])


def learner_task(store_path: str, k: int, source: str, options: dict[str, Any], n_points: int, seed: int,
                 threads: int) -> int:
    """Learner k's posteriors at the fingerprint points, written to ``so2_learners``."""
    theta, _ = circle_points(n_points)
    grp = open_group(store_path, schema.LEARNERS, mode="r+")
    if source == "torn":
        mu, lv = torn_learners(theta, 1, seed=learner_seed(seed, k))
        mu, lv, losses = mu[0, :, 0], lv[0, :, 0], {"reconstruction": np.nan, "kl": np.nan}
    else:
        from ...models.circle_vae import CircleVAEOptions, train_circle_vae

        mu, lv, losses = train_circle_vae(theta, CircleVAEOptions(**options), seed=learner_seed(seed, k),
                                          threads=threads)
    grp["mu"][k], grp["logvar"][k] = mu, lv
    grp["reconstruction"][k], grp["kl"][k] = losses["reconstruction"], losses["kl"]
    grp["continuity"][k] = continuity(mu, lv)
    return k


def fusion_task(store_path: str, key: tuple[int, int, int], similarity: str, members: list[int],
                options: dict[str, Any], threads: int) -> float:
    """One fusion, written to ``so2_fusion``; returns its continuity."""
    learners = open_group(store_path, schema.LEARNERS)
    mu = np.asarray(learners["mu"].get_orthogonal_selection((members, slice(None))))
    lv = np.asarray(learners["logvar"].get_orthogonal_selection((members, slice(None))))
    ds = fuse(mu, lv, similarity=similarity, threads=threads, **options)
    grp = open_group(store_path, schema.FUSION, mode="r+")
    grp["mu"][key], grp["logvar"][key] = ds.mu.values, ds.logvar.values
    c = continuity(ds.mu.values, ds.logvar.values)
    grp["continuity"][key] = c
    grp["objective"][key] = float(ds.objective.values[-1])
    grp["nmi_mean"][key], grp["vi_mean"][key] = float(np.nanmean(ds.nmi.values)), float(np.mean(ds.vi.values))
    return c


def plan_learners(ctx: StageContext) -> Plan:
    o = ctx.config.so2
    theta, _ = circle_points(o.n_points)
    schema.layout_learners(ctx.group, theta, o.n_learners)
    ctx.group.attrs.update({"learners": o.learners})
    options = {k: (list(v) if isinstance(v, tuple) else v) for k, v in
               dataclasses.asdict(o.learner).items()}
    trained = o.learners == "trained"
    cost = 2.0 + o.learner.steps * o.learner.batch_size * LEARNER_STEP_S if trained else 0.0
    extent_options = options if trained else {}
    blocks = [Block(name=f"learner-{k}", key=(k,), extent=(k, o.learners, extent_options, o.n_points, ctx.config.seed),
                    args=(k, o.learners, options, o.n_points, ctx.config.seed, ctx.config.threads_per_worker),
                    cost=cost) for k in range(o.n_learners)]
    ctx.log(f"so2_learners: {o.n_learners} {o.learners} learners on {o.n_points} points of the circle")
    return Plan(blocks=blocks, markers={"done": ((o.n_learners,), ("learner",))},
                note=f"{o.n_learners} {o.learners} learners")


def finalize_learners(ctx: StageContext, plan: Plan, results: dict[str, Any]) -> str:
    if results and schema.FUSION in ctx.root:
        set_complete(ctx.root[schema.FUSION], False)  # fused from other learners: stale until so2_fusion runs again
    c = np.asarray(ctx.group["continuity"][:])
    return f"{plan.note}; their continuity: median {np.nanmedian(c):.3g} (1: unbroken; large: torn)"


def plan_fusion(ctx: StageContext) -> Plan:
    o = ctx.config.so2
    learners = require_complete(ctx.root, schema.LEARNERS, "so2_fusion")
    if int(learners["mu"].shape[0]) < o.n_learners or int(learners["mu"].shape[1]) != o.n_points:
        raise RuntimeError(f"so2_fusion needs {o.n_learners} learners on {o.n_points} points; so2_learners holds "
                           f"{tuple(learners['mu'].shape)}: run the stage so2_learners with these settings first")
    stamps = np.asarray(learners["done"][:]).tolist()
    theta, _ = circle_points(o.n_points)
    f = o.fusion
    schema.layout_fusion(ctx.group, theta, o.similarities, o.sizes, o.repeats, f.dim)
    options = {field.name: getattr(f, field.name) for field in dataclasses.fields(FuseOptions)
               if field.name != "similarity"} | {"record_every": max(1, f.steps // 20)}
    blocks = []
    for si, similarity in enumerate(o.similarities):
        for zi, size in enumerate(o.sizes):
            for r in range(o.repeats):
                members = schema.members(r, size, o.sizes)
                opts = {**options, "seed": ctx.config.seed + r}
                blocks.append(Block(
                    name=f"fusion-{similarity}-{size}-{r}", key=(si, zi, r),
                    extent=(similarity, size, r, [stamps[m] for m in members], opts),
                    args=((si, zi, r), similarity, members, opts, ctx.config.threads_per_worker),
                    cost=fusion_cost(f.steps, o.n_points, size)))
    blocks.sort(key=lambda b: -b.cost)  # the longest first, so that no worker is left with one at the end
    ctx.log(f"so2_fusion: {len(blocks)} fusions ({len(o.similarities)} similarities x {len(o.sizes)} sizes x "
            f"{o.repeats} repeats), {f.steps} steps each")
    grid = (len(o.similarities), len(o.sizes), o.repeats)
    return Plan(blocks=blocks, markers={"done": (grid, ("similarity", "size", "repeat"))},
                note=f"{len(blocks)} fusions of {f.steps} steps")


def finalize_fusion(ctx: StageContext, plan: Plan, results: dict[str, Any]) -> str:
    o = ctx.config.so2
    c = np.asarray(ctx.group["continuity"][:])
    parts = []
    for si, similarity in enumerate(o.similarities):
        means = ", ".join(f"{size}: {np.nanmean(c[si, zi]):.3g}" for zi, size in enumerate(o.sizes))
        parts.append(f"{similarity} {means}")
    return f"{plan.note}; mean continuity by ensemble size: " + "; ".join(parts)


SO2_LEARNERS_STAGE = Stage(name="so2_learners", writes=schema.LEARNERS, plan=plan_learners, task=learner_task,
                 finalize=finalize_learners, table="so2", options=SO2Options)
SO2_FUSION_STAGE = Stage(name="so2_fusion", writes=schema.FUSION, needs=(schema.LEARNERS,), plan=plan_fusion, task=fusion_task,
               finalize=finalize_fusion, table="so2", options=SO2Options, figures="repspace.plots.so2:draw_so2_figures",
               report="repspace.plots.report:so2_section")
