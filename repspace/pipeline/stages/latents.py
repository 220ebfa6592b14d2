"""The latents stage (the paper's Sec. 4.3): whole latent spaces compared by Monte Carlo over
``dataset_embeddings``.

One task per estimate, each a call of :func:`repspace.kernels.mc_information`:

- per model: I(U;X), and I(U;X)/H(X) with H(X) = log2 M;
- per pair of models of a group (same dataset, family and hyperparameter value), with the
  shared scheme (the default): its I(U,V;X) only, and each model's I(U,U';X) once
  (:func:`twice_seed`), so a group of n models takes 2n + n(n-1)/2 estimates; NMI, VI and the
  group's errors come from :func:`repspace.kernels.combine_shared`;
- with ``scheme = "pairs"``: the five estimates of :data:`repspace.store.latents.TERMS` per pair,
  each on its own stream, so the pair's NMI and VI equal :func:`repspace.kernels.mc_compare`
  called with :func:`pair_seed` (n + 5 n(n-1)/2 estimates);
- per group (in finalize): inverse-variance-weighted means of I(U;X)/H(X), NMI and VI.

A rerun computes only estimates not yet marked done; added models only their own. Models
not encoded on every image are left out, named.
"""

from __future__ import annotations

import dataclasses

import hashlib
import json
import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from threadpoolctl import threadpool_limits

from ..._checks import check_types
from ...kernels import (MCEstimate, MCOptions, combine_shared, inverse_variance_mean, mc_information, propagate_nmi_vi,
                        uniform_entropy)
from ...store import open_group
from ...store import embeddings as emb_schema
from ...store import latents as schema
from ..checks import ConfigurationRefused, stored_attrs
from ..stage import Block, Plan, Stage, StageContext

if TYPE_CHECKING:
    from ..config import RunConfig

__all__ = ["STAGE", "model_seed", "twice_seed", "pair_seed", "group_models", "estimate_task", "estimate_cost"]

_MODEL_KEY, _PAIR_KEY, _TWICE_KEY = 1, 2, 3  # first spawn-key word of each random stream (0: the image subset)
JOINT = schema.TERMS.index("joint_information")  # the one estimate a pair adds in the shared scheme
TWICE = schema.TERMS.index("information_twice_a")  # the term a model's own I(U,U') is estimated as
LIKELIHOOD_S = {"float64": (1.1e-8, 1e-10), "float32": (7e-9, 5e-11)}
"""Seconds of one worker thread per sample and posterior of one estimate: a fixed part (the exponentials
and the log-sum-exp, which the dimension hardly changes) and a part per dimension. Measured on 2 cores
(2026-12-06): 0.51 s (10-d) and 0.52 s (20-d) for 2,000 samples over 20,000 posteriors alone, 0.31-0.37 s per
estimate in the default compare_latents job (benchmarks/bench_estimates.py), to which the constants are fitted;
for 20,000 samples over 737,280 10-d posteriors they give 177 s (float64) and 111 s (float32) where
benchmarks/bench_latents.py measured 228 s and 98 s; for estimates only."""


@dataclasses.dataclass(frozen=True)
class LatentsOptions:
    """The Monte Carlo comparison of whole latent spaces (stages encode_dataset and latents).

    Attributes
    ----------
    n_dataset_images : M, the images of a seeded subset of the dataset (None: every image).
    n_samples : S, samples per Monte Carlo estimate.
    sample_block, image_block : likelihood block (samples x posteriors) inside one estimate;
        memory per estimate is about 3 x 8 x sample_block x image_block bytes in float64.
    images_per_encode_task : images per encode task and per chunk of ``dataset_embeddings``.
    batch_size : images per call into an encoder.
    dtype : "float64" or "float32", the precision of the likelihood matrix products.
    scheme : "shared" (each model's I(U;X) and I(U,U';X) estimated once and shared by all its pairs:
        2n + n(n-1)/2 estimates for a group of n) or "pairs" (five estimates of its own per pair,
        n + 5 n(n-1)/2, as the paper's code takes them).
    """

    n_dataset_images: int | None = None
    n_samples: int = 2_000
    sample_block: int = 2048
    image_block: int = 16384
    images_per_encode_task: int = 65536
    batch_size: int = 256
    dtype: str = "float64"
    scheme: str = "shared"

    def __post_init__(self) -> None:
        check_types(self, "")
        if self.scheme not in ("shared", "pairs"):
            raise ValueError(f"scheme must be 'shared' or 'pairs', got {self.scheme!r}")
        for name in ("n_samples", "sample_block", "image_block", "images_per_encode_task", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.n_samples < 2:
            raise ValueError(f"n_samples must be at least 2 (a standard error needs two), got {self.n_samples}")
        if self.n_dataset_images is not None and self.n_dataset_images < 2:
            raise ValueError(f"n_dataset_images must be at least 2, got {self.n_dataset_images}")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")


def estimate_cost(n_samples: int, n_images: int, dims: int, dtype: str) -> float:
    """Expected seconds of one worker thread for one estimate.

    >>> round(estimate_cost(20_000, 737_280, 10, "float64") / 60)
    3
    """
    fixed, per_dim = LIKELIHOOD_S[dtype]
    return n_samples * n_images * (fixed + per_dim * dims)


def _name_key(name: str) -> int:
    """A stable 64-bit integer for a model name (spawn keys of its streams)."""
    return int.from_bytes(hashlib.sha256(str(name).encode()).digest()[:8], "little")


def model_seed(seed: int, name: str) -> np.random.SeedSequence:
    """The stream of a model's I(U;X) estimate: fixed by the run seed and the model's name."""
    return np.random.SeedSequence(seed, spawn_key=(_MODEL_KEY, _name_key(name)))


def twice_seed(seed: int, name: str) -> np.random.SeedSequence:
    """The stream of a model's I(U,U';X) estimate in the shared scheme."""
    return np.random.SeedSequence(seed, spawn_key=(_TWICE_KEY, _name_key(name)))


def pair_seed(seed: int, name_a: str, name_b: str) -> np.random.SeedSequence:
    """The seed of a pair's comparison: pass it to :func:`repspace.kernels.mc_compare` to
    reproduce the stage's five estimates (term k uses spawn key ``(..., k)``).

    A fresh SeedSequence on every call (``spawn`` is stateful).
    """
    return np.random.SeedSequence(seed, spawn_key=(_PAIR_KEY, _name_key(name_a), _name_key(name_b)))


def _term_rng(seed: int, name_a: str, name_b: str, term: int) -> np.random.Generator:
    base = pair_seed(seed, name_a, name_b)
    return np.random.default_rng(np.random.SeedSequence(base.entropy, spawn_key=base.spawn_key + (term,)))


def group_models(models: list[dict[str, Any]], valid: np.ndarray) -> list[tuple[tuple[str, str, str, float], list[int]]]:
    """Groups of valid models sharing dataset, family and hyperparameter value, in store order.

    Returns [((dataset, family, hyperparameter, value), [model indices])].
    """
    keys: dict[tuple, list[int]] = {}
    labels = {}
    for i in np.flatnonzero(valid):
        m = models[i]
        value = float(m["hyperparameter_value"])
        key = (str(m["dataset"]), str(m["family"]), "nan" if math.isnan(value) else repr(value))
        keys.setdefault(key, []).append(int(i))
        labels[key] = (key[0], key[1], str(m["hyperparameter"]), value)
    return [(labels[k], v) for k, v in keys.items()]


def _space(emb: Any, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Model i's latent space over the images: mu, logvar (image, channel)."""
    return np.ascontiguousarray(np.asarray(emb["mu"][i]).T), np.ascontiguousarray(np.asarray(emb["logvar"][i]).T)


def _term_space(emb: Any, i: int, j: int, term: int) -> tuple[np.ndarray, np.ndarray]:
    """The space of one of the five estimates of pair (i, j), as :func:`mc_compare` builds it."""
    if term in (0, 2):
        mu, lv = _space(emb, i)
    elif term in (1, 3):
        mu, lv = _space(emb, j)
    else:
        (mu, lv), (mu_b, lv_b) = _space(emb, i), _space(emb, j)
        return np.concatenate([mu, mu_b], axis=1), np.concatenate([lv, lv_b], axis=1)
    if term in (2, 3):
        return np.concatenate([mu, mu], axis=1), np.concatenate([lv, lv], axis=1)
    return mu, lv


def estimate_task(store_path: str, i: int, j: int, term: int, names: tuple[str, str], mc: dict[str, Any]) -> tuple:
    """One Monte Carlo estimate, written to the ``latents`` group.

    ``j < 0``: the I(U;X) of model i (``term`` < 0) or its I(U,U';X) (``term`` TWICE, the shared
    scheme); else term ``term`` (index into TERMS) of pair (i, j).
    mc : {"seed", "n_samples", "sample_block", "image_block", "dtype"}.
    """
    emb = open_group(store_path, emb_schema.DATASET)
    out = open_group(store_path, schema.GROUP, mode="r+")
    options = MCOptions(sample_block=mc["sample_block"], image_block=mc["image_block"])
    if j < 0 and term >= 0:
        mu, lv = _term_space(emb, i, i, term)
        rng = np.random.default_rng(twice_seed(mc["seed"], names[0]))
    elif j < 0:
        mu, lv = _space(emb, i)
        rng = np.random.default_rng(model_seed(mc["seed"], names[0]))
    else:
        mu, lv = _term_space(emb, i, j, term)
        rng = _term_rng(mc["seed"], names[0], names[1], term)
    with threadpool_limits(1):  # the cluster's threads are the parallelism
        est = mc_information(mu, lv, n_samples=mc["n_samples"], rng=rng, options=options, dtype=np.dtype(mc["dtype"]))
    if j < 0 and term >= 0:
        out["information_twice"][i], out["information_twice_se"][i] = est.bits, est.se
    elif j < 0:
        out["information"][i], out["information_se"][i] = est.bits, est.se
    else:
        out["estimate"][i, j, term], out["estimate_se"][i, j, term] = est.bits, est.se
    return est.bits, est.se


def _settings(config: RunConfig) -> dict[str, Any]:
    """The settings a store's estimates record (with the images' identity), as this run would make them."""
    opts = config.latents
    settings = {"seed": config.seed, "n_samples": opts.n_samples, "sample_block": opts.sample_block,
                "dtype": opts.dtype}
    if opts.scheme == "shared":  # recorded only for the shared scheme: stores of the per-pair scheme keep theirs
        settings["scheme"] = "shared"
    return settings


def check(config: RunConfig) -> None:
    """Before any work: the store's estimates, where it has any, were made with this run's settings."""
    recorded = (stored_attrs(config.store, schema.GROUP) or {}).get("estimates")
    try:
        recorded = json.loads(recorded) if recorded is not None else None
    except (ValueError, TypeError):
        return  # damaged: the stage's own checks name it
    if recorded is not None:
        settings = _settings(config)
        why = schema.settings_refusal(recorded, settings, keys=(*settings, "scheme"))
        if why:
            raise ConfigurationRefused(why)


def plan(ctx: StageContext) -> Plan:
    c, opts = ctx.config, ctx.config.latents
    lay = emb_schema.Layout(ctx.root[emb_schema.DATASET])
    valid = emb_schema.encoded_models(lay)
    failed = {lay.names[i]: "posteriors incomplete (an encode block failed or was not run)"
              for i in np.flatnonzero(~valid)}
    if failed:
        warnings.warn("models left out of the comparison: " + ", ".join(failed), UserWarning, stacklevel=2)
    mc = {"seed": c.seed, "n_samples": opts.n_samples, "sample_block": opts.sample_block,
          "image_block": opts.image_block, "dtype": opts.dtype}
    shared = opts.scheme == "shared"
    schema.layout(ctx.group, lay.models, {"images_id": lay.group.attrs.get("images_id"), **_settings(c)})
    groups = group_models(lay.models, valid)
    names, m = lay.names, lay.n_models
    d = lay.n_channels
    cost = {k: estimate_cost(opts.n_samples, lay.n_images, d * (1 if k < 2 else 2), opts.dtype) for k in range(6)}
    stamps = [row.tolist() for row in lay.status()]  # an estimate goes stale when its models' posteriors change
    blocks = [Block(name=f"information-{names[i]}", key=(int(i),), extent=(names[i], stamps[i]),
                    marker="information_done",
                    args=(int(i), -1, -1, (names[i], ""), mc), cost=cost[0]) for i in np.flatnonzero(valid)]
    if shared:
        blocks += [Block(name=f"information_twice-{names[i]}", key=(int(i),), extent=(names[i], stamps[i]),
                         marker="twice_done", args=(int(i), -1, TWICE, (names[i], ""), mc), cost=cost[TWICE])
                   for _, members in groups if len(members) > 1 for i in members]
    terms = [(JOINT, schema.TERMS[JOINT])] if shared else list(enumerate(schema.TERMS))
    for _, members in groups:
        for x, i in enumerate(members):
            for j in members[x + 1:]:
                blocks += [Block(name=f"{term}-{names[i]}-{names[j]}", key=(i, j, k),
                                 extent=(names[i], names[j], stamps[i], stamps[j]),
                                 marker="estimate_done", args=(i, j, k, (names[i], names[j]), mc), cost=cost[k])
                           for k, term in terms]
    ctx.log(f"latents: {int(valid.sum())} models x {lay.n_images} images in {len(groups)} group{'s' if len(groups) != 1 else ''}; "
            f"{len(blocks)} estimates of {opts.n_samples} samples each")
    markers = {"information_done": ((m,), ("model",)),
               "estimate_done": ((m, m, len(schema.TERMS)), ("model_a", "model_b", "term"))}
    if shared:
        markers["twice_done"] = ((m,), ("model",))
    return Plan(blocks=blocks, markers=markers, state=(lay, valid, groups, failed, shared),
                note=f"{int(valid.sum())} models, {lay.n_images} images, {len(groups)} group{'s' if len(groups) != 1 else ''}")


def finalize(ctx: StageContext, plan: Plan, results: dict[str, Any]) -> str:
    """NMI and VI per pair, I(U;X)/H(X) per model, and the groups' inverse-variance means."""
    lay, valid, groups, failed, shared = plan.state
    grp, m = ctx.group, lay.n_models
    h_x = uniform_entropy(lay.n_images)
    done = np.asarray(grp["information_done"][:]) > 0
    ok = done & valid
    info = np.where(ok, np.asarray(grp["information"][:]), np.nan)
    info_se = np.where(ok, np.asarray(grp["information_se"][:]), np.nan)
    est, est_se = np.asarray(grp["estimate"][:]), np.asarray(grp["estimate_se"][:])
    est_done = np.asarray(grp["estimate_done"][:]) > 0
    if shared:
        twice_ok = (np.asarray(grp["twice_done"][:]) > 0) & valid
        twice = np.where(twice_ok, np.asarray(grp["information_twice"][:]), np.nan)
        twice_se = np.where(twice_ok, np.asarray(grp["information_twice_se"][:]), np.nan)
        joint = np.where(est_done[:, :, JOINT], est[:, :, JOINT], np.nan)
        joint_se = np.where(est_done[:, :, JOINT], est_se[:, :, JOINT], np.nan)
    pairs = {k: np.full((m, m), np.nan) for k in ("nmi", "nmi_se", "vi", "vi_se")}
    model_group = np.full(m, -1, dtype=np.int64)
    per_group: dict[str, list[float]] = {k: [] for k in (
        "information_mean", "information_mean_se", "information_fraction_mean", "information_fraction_mean_se",
        "nmi_mean", "nmi_mean_se", "vi_mean", "vi_mean_se", "n_models", "n_pairs")}
    for g, (_, members) in enumerate(groups):
        model_group[members] = g
        im, ise = inverse_variance_mean(info[members], info_se[members])
        if shared:
            sel = np.ix_(members, members)
            res = combine_shared(info[members], info_se[members], twice[members], twice_se[members], joint[sel],
                                 joint_se[sel])
            for key in pairs:
                pairs[key][sel] = getattr(res, key)
            for k, v in zip(per_group, (im, ise, im / h_x, ise / h_x, res.nmi_mean, res.nmi_mean_se, res.vi_mean,
                                        res.vi_mean_se, len(members), res.n_pairs)):
                per_group[k].append(v)
            continue
        pair_nmi, pair_vi = [], []
        for x, i in enumerate(members):
            for j in members[x + 1:]:
                if not est_done[i, j].all():
                    continue
                values = propagate_nmi_vi(*[MCEstimate(float(b), float(s)) for b, s in zip(est[i, j], est_se[i, j])])
                for key, v in zip(("nmi", "nmi_se", "vi", "vi_se"), values):
                    pairs[key][i, j] = pairs[key][j, i] = v
                pair_nmi.append(values[:2])
                pair_vi.append(values[2:])
        nm, nse = inverse_variance_mean(*zip(*pair_nmi)) if pair_nmi else (math.nan, math.nan)
        vm, vse = inverse_variance_mean(*zip(*pair_vi)) if pair_vi else (math.nan, math.nan)
        for k, v in zip(per_group, (im, ise, im / h_x, ise / h_x, nm, nse, vm, vse, len(members), len(pair_nmi))):
            per_group[k].append(v)
    schema.write_summary(
        grp, pairs, {"information_fraction": info / h_x, "information_fraction_se": info_se / h_x},
        {k: np.asarray(v, dtype=np.int64 if k.startswith("n_") else np.float64) for k, v in per_group.items()},
        [lab for lab, _ in groups], model_group)
    grp.attrs.update({"failed_models": json.dumps(failed), "n_models": int(valid.sum()), "n_images": lay.n_images,
                      "h_x": h_x})
    return plan.note


STAGE = Stage(name="latents", writes=schema.GROUP, needs=("dataset_embeddings",), plan=plan, task=estimate_task,
              finalize=finalize, table="latents", options=LatentsOptions, check=check,
              figures="repspace.plots.latents:latents_figures", report="repspace.plots.report:latents_section")
