"""Whole latent spaces (Sec. 4.3): encode every image of a dataset with every model, then
compare the models of each ensemble group by Monte Carlo.

Two parts, each resumable, that meet in the run store:

1. **Encode** (:func:`encode_latents`): the M images (the whole dataset, or a seeded subset)
   through every model; one Dask task per block of images, which renders the block once
   and encodes it with each model still missing there. Precomputed posteriors enter the
   same layout through :func:`write_latent_embeddings`, so the Monte Carlo part never
   needs TensorFlow.
2. **Compare** (:func:`compare_latents`): one Dask task per Monte Carlo estimate, each a
   call of :func:`repspace.kernels.mc_information` (likelihood blocks as matrix
   products, so memory is bounded by the block sizes, not by M):

   - per model: I(U;X), and I(U;X)/H(X) with H(X) = log2 M;
   - per pair of models of a group (same dataset, family and hyperparameter value): the
     five estimates I(U), I(V), I(U,U'), I(V,V'), I(U,V), each on its own stream, so
     the pair's NMI and VI equal :func:`repspace.kernels.mc_compare` called with
     :func:`pair_seed`;
   - per group: inverse-variance-weighted means of I(U;X)/H(X), NMI and VI.

Store layout (zarr format 3; open with ``xr.open_zarr(store, group=..., consolidated=False)``):

``latents_embeddings``
    ``mu``, ``logvar``: float32 (model, image, latent), chunks (1, encode_block, latent);
    ``encoded``: block marker (model, image_block); coordinates ``model`` (with dataset,
    family, hyperparameter, hyperparameter_value, seed, source, path), ``image`` (the
    dataset index of each image), ``latent``.
``latents``
    per model: ``info``, ``info_se``, ``info_fraction``, ``info_fraction_se``, coordinate
    ``model_group`` (index of the model's group, -1 for a model left out); per pair: ``estimate``, ``estimate_se`` (model_a, model_b, term), and
    ``nmi``, ``nmi_se``, ``vi``, ``vi_se`` (model_a, model_b; NaN between groups and on the
    diagonal); per group: ``info_mean``, ``info_fraction_mean``, ``nmi_mean``, ``vi_mean``
    and their ``*_se``, ``n_models``, ``n_pairs``. Bits, with ``units`` attrs.

A rerun computes only estimates not yet marked done; adding models to the embeddings
computes only their own estimates and pairs. A store whose images, number of samples,
seed, sample block or dtype differ from the configuration is refused (StoreError).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from .. import store
from ..kernels import MCOptions, mc_information, propagate_nmi_vi
from ..kernels.montecarlo import MCEstimate, inverse_variance_mean

__all__ = [
    "LatentsConfig",
    "LatentsResult",
    "TERMS",
    "EMBEDDINGS_GROUP",
    "RESULTS_GROUP",
    "run_latents",
    "encode_latents",
    "compare_latents",
    "write_latent_embeddings",
    "select_images",
    "model_seed",
    "pair_seed",
    "group_models",
]

EMBEDDINGS_GROUP = "latents_embeddings"
RESULTS_GROUP = "latents"
TERMS = ("info_a", "info_b", "self_info_a", "self_info_b", "joint")
"""The five estimates of a pair, in the order of :func:`repspace.kernels.mc_compare`'s streams."""
MODEL_COORDS = ("dataset", "family", "hyperparameter", "hyperparameter_value", "seed", "source", "path")
BITS = "bits"
_IMAGES_KEY, _MODEL_KEY, _PAIR_KEY = 0, 1, 2  # first spawn-key word of each random stream


@dataclasses.dataclass(frozen=True)
class LatentsConfig:
    """Everything the whole-latent-space comparison needs.

    Attributes
    ----------
    store : the run's zarr store.
    models_dir : folder of model folders (``<n>/model/tfhub``, SavedModels, ``.keras``) to
        encode; None: use the posteriors already in the store's ``latents_embeddings``.
    models : names (folder names) of the models in ``models_dir`` to use; empty: all.
    dataset, data_dir, image_size : the dataset the models encode (image_size None: the size
        the first model takes, else the dataset's own).
    n_images : M, a seeded subset of the dataset (None: every image).
    seed : seeds the image subset and every Monte Carlo stream.
    n_samples : S, samples per Monte Carlo estimate.
    sample_block, image_block : likelihood block (samples x posteriors) inside one estimate;
        memory per estimate is about 3 x 8 x sample_block x image_block bytes in float64.
    encode_block : images per encode task and per chunk of the embeddings.
    batch_size : images per call into an encoder.
    dtype : "float64" or "float32", the precision of the likelihood matrix products.
    scheduler_address : an existing Dask scheduler (None: a LocalCluster on 127.0.0.1).
    n_workers, threads_per_worker, dashboard : the LocalCluster.
    """

    store: str | Path
    models_dir: str | Path | None = None
    models: tuple[str, ...] = ()
    dataset: str = "dsprites_procedural"
    data_dir: str | Path | None = None
    image_size: int | None = None
    n_images: int | None = None
    seed: int = 0
    n_samples: int = 20_000
    sample_block: int = 2048
    image_block: int = 16384
    encode_block: int = 65536
    batch_size: int = 256
    dtype: str = "float64"
    scheduler_address: str | None = None
    n_workers: int = 2
    threads_per_worker: int = 1
    dashboard: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(str(m) for m in self.models))
        for name in ("n_samples", "sample_block", "image_block", "encode_block", "batch_size", "n_workers",
                     "threads_per_worker"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.n_samples < 2:
            raise ValueError(f"n_samples must be at least 2 (a standard error needs two), got {self.n_samples}")
        if self.n_images is not None and self.n_images < 2:
            raise ValueError(f"n_images must be at least 2, got {self.n_images}")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")

    def mc_options(self) -> MCOptions:
        return MCOptions(sample_block=self.sample_block, image_block=self.image_block)

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


@dataclasses.dataclass
class LatentsResult:
    """What :func:`run_latents` did.

    Attributes
    ----------
    store : the run store.
    n_models, n_images : models with complete posteriors, M.
    n_groups : groups of models compared.
    encoded, computed, skipped : encode tasks run; estimates computed and found done.
    failed_models : {name: reason} of models left out.
    seconds : wall time.
    """

    store: Path
    n_models: int
    n_images: int
    n_groups: int
    encoded: int
    computed: int
    skipped: int
    failed_models: dict[str, str]
    seconds: float

    def open(self) -> Any:
        """The ``latents`` group as an xarray Dataset."""
        import xarray as xr

        return xr.open_zarr(self.store, group=RESULTS_GROUP, consolidated=False)

    def summary(self) -> str:
        lines = [
            f"latents: {self.n_models} models x {self.n_images} images in {self.n_groups} groups; "
            f"{self.computed} estimates computed, {self.skipped} already done ({self.seconds:.1f} s)",
            f"  store: {self.store}",
            f'  open:  xr.open_zarr("{self.store}", group="{RESULTS_GROUP}", consolidated=False)',
        ]
        if self.failed_models:
            lines.append("  models left out: " + "; ".join(f"{k}: {v}" for k, v in self.failed_models.items()))
        return "\n".join(lines)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- random streams ---------------------------------------------------------------------------


def _name_key(name: str) -> int:
    """A stable 64-bit integer for a model name (spawn keys of its streams)."""
    return int.from_bytes(hashlib.sha256(str(name).encode()).digest()[:8], "little")


def select_images(n_total: int, n_images: int | None, seed: int) -> np.ndarray:
    """Dataset indices of the M images: all of them, or a seeded subset in increasing order.

    >>> select_images(10, None, 0)
    array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    >>> len(select_images(10, 4, 0)), bool((select_images(10, 4, 0) == select_images(10, 4, 0)).all())
    (4, True)
    """
    if n_images is None or n_images >= n_total:
        if n_images is not None and n_images > n_total:
            raise ValueError(f"n_images = {n_images} exceeds the dataset's {n_total} images")
        return np.arange(n_total, dtype=np.int64)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_IMAGES_KEY,)))
    return np.sort(rng.choice(n_total, size=n_images, replace=False)).astype(np.int64)


def model_seed(seed: int, name: str) -> np.random.SeedSequence:
    """The stream of a model's I(U;X) estimate: fixed by the run seed and the model's name."""
    return np.random.SeedSequence(seed, spawn_key=(_MODEL_KEY, _name_key(name)))


def pair_seed(seed: int, name_a: str, name_b: str) -> np.random.SeedSequence:
    """The seed of a pair's comparison: pass it to :func:`repspace.kernels.mc_compare` to
    reproduce the job's five estimates (term k uses spawn key ``(..., k)``).

    A fresh SeedSequence on every call (``spawn`` is stateful).
    """
    return np.random.SeedSequence(seed, spawn_key=(_PAIR_KEY, _name_key(name_a), _name_key(name_b)))


def _term_rng(seed: int, name_a: str, name_b: str, term: int) -> np.random.Generator:
    base = pair_seed(seed, name_a, name_b)
    return np.random.default_rng(np.random.SeedSequence(base.entropy, spawn_key=base.spawn_key + (term,)))


# --- embeddings -------------------------------------------------------------------------------


def _models_from_dir(config: LatentsConfig) -> list[Any]:
    from .sweep import find_models

    entries = find_models(config.models_dir)
    if config.models:
        by_name = {e.name: e for e in entries}
        missing = [m for m in config.models if m not in by_name]
        if missing:
            raise FileNotFoundError(f"{config.models_dir} holds no models named {', '.join(missing)}")
        entries = [by_name[m] for m in config.models]
    return entries


def _identity(attrs: dict[str, Any], index: np.ndarray) -> str:
    h = hashlib.sha256(json.dumps(attrs, sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(index, dtype=np.int64).tobytes())
    return h.hexdigest()[:16]


def _prepare_embeddings(
    root: zarr.Group,
    entries: Sequence[Any],
    *,
    index: np.ndarray,
    n_latents: int,
    block: int,
    identity: dict[str, Any],
) -> tuple[zarr.Group, list[Any]]:
    """Create or grow the embeddings group for ``entries`` (existing models keep their place)."""
    emb = root.require_group(EMBEDDINGS_GROUP)
    ident = _identity(identity, index)
    recorded = emb.attrs.get("images_id")
    if recorded is not None and recorded != ident:
        raise store.StoreError(
            f"the store's {EMBEDDINGS_GROUP!r} holds other images ({json.loads(emb.attrs['images'])}) than this run "
            f"({identity}); use a new store"
        )
    recorded_block = emb.attrs.get("encode_block")
    if recorded_block is not None and int(recorded_block) != block:
        raise store.StoreError(f"the embeddings are chunked in blocks of {recorded_block} images, this run asks for "
                               f"{block}; set encode_block = {recorded_block} or use a new store")
    if "mu" in emb and int(emb["mu"].shape[2]) != n_latents:
        raise store.StoreError(f"the store's latent spaces have {emb['mu'].shape[2]} dimensions, these models {n_latents}")
    existing = [str(x) for x in emb["model"][:]] if "model" in emb else []
    kept = {}
    for i, name in enumerate(existing):
        kept[name] = {k: _item(emb[k][i]) for k in MODEL_COORDS}
    new = {e.name: {k: getattr(e, k) for k in MODEL_COORDS} for e in entries}
    names = existing + [n for n in new if n not in kept]
    coords = {**kept, **{n: v for n, v in new.items() if n not in kept}}
    m, n = len(names), len(index)
    emb.attrs.update({"images_id": ident, "images": json.dumps(identity, sort_keys=True, default=str),
                      "n_images": n, "encode_block": block})
    dims = ("model", "image", "latent")
    for name, desc in (("mu", "posterior mean"), ("logvar", "posterior log-variance")):
        store.require_array(emb, name, shape=(m, n, n_latents), chunks=(1, block, n_latents), dtype="float32",
                            dims=dims, fill_value=np.nan, attrs={"long_name": desc})
    store.require_marker(emb, "encoded", (m, -(-n // block)), ("model", "image_block"))
    store.write_coordinate(emb, "model", "model", names)
    store.write_coordinate(emb, "image", "image", index, attrs={"long_name": "index of the image in the dataset"})
    store.write_coordinate(emb, "latent", "latent", np.arange(n_latents))
    for key in MODEL_COORDS:
        store.write_coordinate(emb, key, "model", [coords[nm][key] for nm in names])
    for name in ("mu", "logvar", "encoded"):
        emb[name].attrs["coordinates"] = " ".join(MODEL_COORDS)
    return emb, names


def _item(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def write_latent_embeddings(
    store_path: str | Path,
    mu: np.ndarray,
    logvar: np.ndarray,
    models: Sequence[Any],
    *,
    image_index: np.ndarray | None = None,
    images: dict[str, Any] | None = None,
    block: int = 65536,
) -> zarr.Group:
    """Put precomputed posteriors into a run store, in the layout :func:`compare_latents` reads.

    Parameters
    ----------
    store_path : the run store (created when missing).
    mu, logvar : float (model, image, latent)
    models : one per model: a name, or an object with ``name`` and the model coordinates
        (dataset, family, hyperparameter, hyperparameter_value, seed, source, path), such
        as :class:`repspace.pipeline.ModelEntry`.
    image_index : (image,) dataset indices (default 0..M-1).
    images : what identifies the images (dataset, subset, ...), recorded and checked.
    block : images per chunk.

    Returns
    -------
    the ``latents_embeddings`` zarr group
    """
    from .sweep import ModelEntry

    mu, logvar = np.asarray(mu, np.float32), np.asarray(logvar, np.float32)
    if mu.ndim != 3 or mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must share a shape (model, image, latent), got {mu.shape} and {logvar.shape}")
    if len(models) != mu.shape[0]:
        raise ValueError(f"{len(models)} models for {mu.shape[0]} latent spaces")
    if not (np.isfinite(mu).all() and np.isfinite(logvar).all()):
        raise ValueError("mu and logvar must be finite")
    entries = [ModelEntry(name=m, path="") if isinstance(m, str) else m for m in models]
    index = np.arange(mu.shape[1], dtype=np.int64) if image_index is None else np.asarray(image_index, np.int64)
    if index.shape != (mu.shape[1],):
        raise ValueError(f"image_index has shape {index.shape}, expected ({mu.shape[1]},)")
    root = store.open_run(store_path)
    identity = {"source": "precomputed", **(images or {}), "n_images": int(mu.shape[1])}
    emb, names = _prepare_embeddings(root, entries, index=index, n_latents=mu.shape[2], block=block, identity=identity)
    marker = emb["encoded"]
    for e, m_, lv in zip(entries, mu, logvar):
        i = names.index(e.name)
        emb["mu"][i] = m_
        emb["logvar"][i] = lv
        marker[i, :] = np.ones(marker.shape[1], dtype=np.int64)
    store.set_complete(emb, bool((np.asarray(marker[:]) > 0).all()))
    return emb


def encode_block_task(
    store_path: str,
    rows: list[tuple[int, str, str]],
    block: int,
    start: int,
    stop: int,
    dataset: dict[str, Any],
    batch_size: int,
) -> dict[str, Any]:
    """Render images start:stop of the run's selection once and encode them with each model in ``rows``.

    rows : (model index, name, path). Returns {"failed": {name: reason}, "seconds": float}.
    """
    from ..data import load_dataset
    from ..models import load_encoder

    t0 = time.perf_counter()
    emb = zarr.open_group(store_path, path=EMBEDDINGS_GROUP, mode="r+", zarr_format=3)
    index = np.asarray(emb["image"][start:stop])
    ds = load_dataset(dataset["name"], data_dir=dataset["data_dir"], image_size=dataset["image_size"])
    images = np.asarray(ds.images(index), dtype=np.float32)
    d = int(emb["mu"].shape[2])
    failed: dict[str, str] = {}
    for i, name, path in rows:
        try:
            mu, logvar = load_encoder(path)(images, batch_size=batch_size)
        except Exception as err:  # one model that cannot encode does not stop the others
            failed[name] = f"{type(err).__name__}: {err}"
            continue
        mu, logvar = np.asarray(mu, np.float32), np.asarray(logvar, np.float32)
        if mu.shape != (stop - start, d) or logvar.shape != mu.shape:
            failed[name] = f"gives posteriors of shape {mu.shape}, the run expects {(stop - start, d)}"
            continue
        if not (np.isfinite(mu).all() and np.isfinite(logvar).all()):
            failed[name] = f"NaN or infinite posteriors on images {start}:{stop}"
            continue
        emb["mu"][i, start:stop] = mu
        emb["logvar"][i, start:stop] = logvar
        store.mark_block(emb["encoded"], (i, block), 1)
    return {"failed": failed, "seconds": time.perf_counter() - t0}


def encode_latents(config: LatentsConfig, client: Any, *, log: Callable[[str], None] = _log) -> tuple[int, dict[str, str]]:
    """Encode the run's images with every model of ``config.models_dir`` not yet encoded.

    Returns (number of encode tasks run, {model name: reason} of models that failed).
    """
    from ..data import load_dataset
    from ..models import load_encoder
    from .execution import run_tasks

    entries = _models_from_dir(config)
    first = load_encoder(entries[0].path)
    image_size = config.image_size if config.image_size is not None else first.input_shape[0]
    ds = load_dataset(config.dataset, data_dir=config.data_dir, image_size=image_size)
    index = select_images(len(ds), config.n_images, config.seed)
    root = store.open_run(config.store)
    n_latents = int(first.n_latents)
    identity = {"dataset": config.dataset, "image_size": image_size, "n_total": len(ds),
                "n_images": len(index), "seed": config.seed if config.n_images is not None else None}
    emb, names = _prepare_embeddings(root, entries, index=index, n_latents=n_latents, block=config.encode_block,
                                     identity=identity)
    block = config.encode_block
    done = np.asarray(emb["encoded"][:]) > 0
    paths = [str(_item(p)) for p in emb["path"][:]]
    wanted = {e.name for e in entries}
    dataset = {"name": config.dataset, "data_dir": None if config.data_dir is None else str(config.data_dir),
               "image_size": image_size}
    calls = []
    for b, (s0, s1) in enumerate(store.block_ranges(len(index), block)):
        rows = [(i, n, paths[i]) for i, n in enumerate(names) if n in wanted and not done[i, b]]
        if rows:
            calls.append((f"images{s0}-{s1 - 1}", encode_block_task,
                          (str(config.store), rows, b, s0, s1, dataset, config.batch_size), {}))
    log(f"encode: {len(names)} models x {len(index)} images of {config.dataset}; {len(calls)} blocks to encode")
    results = run_tasks(client, "encode", calls)
    failed: dict[str, str] = {}
    for r in results.values():
        for k, v in r["failed"].items():
            failed.setdefault(k, v)
    done = np.asarray(emb["encoded"][:]) > 0
    store.set_complete(emb, bool(done.all()), failed_models=failed)
    return len(calls), failed


# --- Monte Carlo ------------------------------------------------------------------------------


def group_models(emb: zarr.Group | Any, valid: np.ndarray) -> list[tuple[tuple[str, str, str, float], list[int]]]:
    """Groups of valid models sharing dataset, family and hyperparameter value, in store order.

    Returns [((dataset, family, hyperparameter, value), [model indices])].
    """
    keys: dict[tuple, list[int]] = {}
    labels = {}
    cols = {k: [_item(v) for v in emb[k][:]] for k in ("dataset", "family", "hyperparameter", "hyperparameter_value")}
    for i in np.flatnonzero(valid):
        value = float(cols["hyperparameter_value"][i])
        key = (str(cols["dataset"][i]), str(cols["family"][i]), "nan" if math.isnan(value) else repr(value))
        keys.setdefault(key, []).append(int(i))
        labels[key] = (key[0], key[1], str(cols["hyperparameter"][i]), value)
    return [(labels[k], v) for k, v in keys.items()]


def _space(emb: zarr.Group, i: int) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(emb["mu"][i]), np.asarray(emb["logvar"][i])


def _term_space(emb: zarr.Group, i: int, j: int, term: int) -> tuple[np.ndarray, np.ndarray]:
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


def estimate_task(
    store_path: str,
    i: int,
    j: int,
    term: int,
    names: tuple[str, str],
    mc: dict[str, Any],
) -> tuple[float, float]:
    """One Monte Carlo estimate, written to the ``latents`` group and marked done.

    ``j < 0``: the I(U;X) of model i; else term ``term`` (index into :data:`TERMS`) of pair (i, j).
    mc : {"seed", "n_samples", "sample_block", "image_block", "dtype"}.
    """
    from threadpoolctl import threadpool_limits

    emb = zarr.open_group(store_path, path=EMBEDDINGS_GROUP, mode="r", zarr_format=3)
    out = zarr.open_group(store_path, path=RESULTS_GROUP, mode="r+", zarr_format=3)
    options = MCOptions(sample_block=mc["sample_block"], image_block=mc["image_block"])
    if j < 0:
        mu, lv = _space(emb, i)
        rng = np.random.default_rng(model_seed(mc["seed"], names[0]))
    else:
        mu, lv = _term_space(emb, i, j, term)
        rng = _term_rng(mc["seed"], names[0], names[1], term)
    with threadpool_limits(1):  # the cluster's threads are the parallelism
        est = mc_information(mu, lv, n_samples=mc["n_samples"], rng=rng, options=options, dtype=np.dtype(mc["dtype"]))
    if j < 0:
        out["info"][i] = est.bits
        out["info_se"][i] = est.se
        store.mark_block(out["info_done"], (i,), 1)
    else:
        out["estimate"][i, j, term] = est.bits
        out["estimate_se"][i, j, term] = est.se
        store.mark_block(out["estimate_done"], (i, j, term), 1)
    return est.bits, est.se


def _prepare_results(root: zarr.Group, emb: zarr.Group, config: LatentsConfig) -> zarr.Group:
    grp = root.require_group(RESULTS_GROUP)
    identity = {"images_id": emb.attrs.get("images_id"), "seed": config.seed, "n_samples": config.n_samples,
                "sample_block": config.sample_block, "dtype": config.dtype}
    recorded = grp.attrs.get("estimates")
    if recorded is not None and json.loads(recorded) != identity:
        raise store.StoreError(
            f"the store's {RESULTS_GROUP!r} estimates were made with {json.loads(recorded)}, this run asks for "
            f"{identity}; use a new store (or the recorded settings)"
        )
    grp.attrs["estimates"] = json.dumps(identity, sort_keys=True)
    m = int(emb["mu"].shape[0])
    bits = {"units": BITS}
    store.require_array(grp, "info", shape=(m,), chunks=(1,), dtype="float64", dims=("model",), fill_value=np.nan,
                        attrs={**bits, "long_name": "I(U;X), information the latent space carries about the images"})
    store.require_array(grp, "info_se", shape=(m,), chunks=(1,), dtype="float64", dims=("model",), fill_value=np.nan,
                        attrs={**bits, "long_name": "standard error of I(U;X)"})
    store.require_marker(grp, "info_done", (m,), ("model",))
    shape3, dims3 = (m, m, len(TERMS)), ("model_a", "model_b", "term")
    store.require_array(grp, "estimate", shape=shape3, chunks=(1, 1, 1), dtype="float64", dims=dims3,
                        fill_value=np.nan, attrs={**bits, "long_name": "the five Monte Carlo estimates of a pair"})
    store.require_array(grp, "estimate_se", shape=shape3, chunks=(1, 1, 1), dtype="float64", dims=dims3,
                        fill_value=np.nan, attrs={**bits, "long_name": "standard errors of the five estimates"})
    store.require_marker(grp, "estimate_done", shape3, dims3)
    return grp


def _recreate(grp: zarr.Group, name: str, values: np.ndarray, dims: Sequence[str], attrs: dict[str, Any]) -> None:
    """A derived array, written whole (recomputed from the estimates on every run)."""
    if name in grp:
        del grp[name]
    values = np.asarray(values)
    arr = grp.create_array(name, shape=values.shape, chunks=tuple(max(1, s) for s in values.shape), dtype=values.dtype,
                           dimension_names=tuple(dims), fill_value=np.nan if values.dtype.kind == "f" else 0,
                           attributes=attrs)
    arr[...] = values


def _finalize(grp: zarr.Group, emb: zarr.Group, groups: list, valid: np.ndarray, names: list[str]) -> None:
    """NMI and VI per pair, I(U;X)/H(X) per model, and the groups' inverse-variance means."""
    m, n_images = len(names), int(emb["mu"].shape[1])
    h_x = math.log2(n_images)
    info, info_se = np.asarray(grp["info"][:]), np.asarray(grp["info_se"][:])
    info_done = np.asarray(grp["info_done"][:]) > 0
    info, info_se = np.where(info_done & valid, info, np.nan), np.where(info_done & valid, info_se, np.nan)
    est, est_se = np.asarray(grp["estimate"][:]), np.asarray(grp["estimate_se"][:])
    est_done = np.asarray(grp["estimate_done"][:]) > 0
    nmi, nmi_se, vi, vi_se = (np.full((m, m), np.nan) for _ in range(4))
    group_of = np.full(m, -1, dtype=np.int64)
    summary: dict[str, list[float]] = {k: [] for k in ("info_mean", "info_mean_se", "info_fraction_mean",
                                                       "info_fraction_mean_se", "nmi_mean", "nmi_mean_se",
                                                       "vi_mean", "vi_mean_se", "n_models", "n_pairs")}
    for g, (_, members) in enumerate(groups):
        group_of[members] = g
        pair_nmi, pair_vi = [], []
        for x, i in enumerate(members):
            for j in members[x + 1:]:
                if not est_done[i, j].all():
                    continue
                five = [MCEstimate(float(b), float(s)) for b, s in zip(est[i, j], est_se[i, j])]
                values = propagate_nmi_vi(*five)
                nmi[i, j], nmi_se[i, j], vi[i, j], vi_se[i, j] = values
                nmi[j, i], nmi_se[j, i], vi[j, i], vi_se[j, i] = values
                pair_nmi.append(values[:2])
                pair_vi.append(values[2:])
        im, ise = inverse_variance_mean(info[members], info_se[members])
        nm, nse = inverse_variance_mean(*zip(*pair_nmi)) if pair_nmi else (math.nan, math.nan)
        vm, vse = inverse_variance_mean(*zip(*pair_vi)) if pair_vi else (math.nan, math.nan)
        for k, v in zip(summary, (im, ise, im / h_x, ise / h_x, nm, nse, vm, vse, len(members), len(pair_nmi))):
            summary[k].append(v)
    pair_dims, pair_coords = ("model_a", "model_b"), "dataset_a family_a hyperparameter_value_a dataset_b family_b hyperparameter_value_b"
    for name, values, attrs in (
        ("nmi", nmi, {"units": "1", "long_name": "normalized mutual information between latent spaces"}),
        ("nmi_se", nmi_se, {"units": "1", "long_name": "standard error of NMI (propagated)"}),
        ("vi", vi, {"units": BITS, "long_name": "variation of information between latent spaces"}),
        ("vi_se", vi_se, {"units": BITS, "long_name": "standard error of VI (propagated)"}),
    ):
        _recreate(grp, name, values, pair_dims, {**attrs, "coordinates": pair_coords})
    model_coords = "dataset family hyperparameter hyperparameter_value seed source model_group"
    _recreate(grp, "info_fraction", info / h_x, ("model",),
              {"units": "1", "long_name": "I(U;X)/H(X), H(X) = log2 M", "coordinates": model_coords})
    _recreate(grp, "info_fraction_se", info_se / h_x, ("model",),
              {"units": "1", "long_name": "standard error of I(U;X)/H(X)", "coordinates": model_coords})
    for name in ("info", "info_se"):
        grp[name].attrs["coordinates"] = model_coords
    g_dims = ("group",)
    units = {"info_mean": BITS, "info_mean_se": BITS, "vi_mean": BITS, "vi_mean_se": BITS}
    longs = {"info_mean": "inverse-variance-weighted mean I(U;X) of the group's models",
             "info_fraction_mean": "inverse-variance-weighted mean I(U;X)/H(X)",
             "nmi_mean": "inverse-variance-weighted mean NMI over the group's pairs",
             "vi_mean": "inverse-variance-weighted mean VI over the group's pairs",
             "n_models": "models in the group", "n_pairs": "pairs compared"}
    group_coords = "group_dataset group_family group_hyperparameter group_hyperparameter_value"
    for k, v in summary.items():
        dtype = np.int64 if k.startswith("n_") else np.float64
        long = longs.get(k, f"standard error of {k[:-3]}")
        _recreate(grp, k, np.asarray(v, dtype=dtype), g_dims,
                  {"units": units.get(k, "1"), "long_name": long, "coordinates": group_coords})
    store.write_coordinate(grp, "group", "group", np.arange(len(groups)))
    for x, key in enumerate(("dataset", "family", "hyperparameter")):
        store.write_coordinate(grp, f"group_{key}", "group", [str(lab[x]) for lab, _ in groups])
    store.write_coordinate(grp, "group_hyperparameter_value", "group", np.asarray([lab[3] for lab, _ in groups], np.float64))
    store.write_coordinate(grp, "model_group", "model", group_of, attrs={"long_name": "index of the model's group (-1: left out)"})


def _write_model_coords(grp: zarr.Group, emb: zarr.Group, names: list[str]) -> None:
    for dim in ("model", "model_a", "model_b"):
        store.write_coordinate(grp, dim, dim, names)
    for key in MODEL_COORDS:
        if key == "path":
            continue
        values = emb[key][:]
        store.write_coordinate(grp, key, "model", values)
        if key in ("dataset", "family", "hyperparameter_value"):
            store.write_coordinate(grp, f"{key}_a", "model_a", values)
            store.write_coordinate(grp, f"{key}_b", "model_b", values)
    store.write_coordinate(grp, "term", "term", list(TERMS))


def compare_latents(config: LatentsConfig, client: Any, *, log: Callable[[str], None] = _log) -> LatentsResult:
    """The Monte Carlo part: every missing estimate as one Dask task, then NMI, VI and group means.

    Reads ``latents_embeddings`` of ``config.store``; writes ``latents``.
    """
    from .execution import run_tasks

    t0 = time.perf_counter()
    root = store.open_run(config.store, create=False)
    if EMBEDDINGS_GROUP not in root or "mu" not in root[EMBEDDINGS_GROUP]:
        raise FileNotFoundError(f"{config.store} holds no {EMBEDDINGS_GROUP!r}: encode first (give models_dir), "
                                "or write posteriors with write_latent_embeddings")
    emb = root[EMBEDDINGS_GROUP]
    names = [str(x) for x in emb["model"][:]]
    m, n_images = len(names), int(emb["mu"].shape[1])
    valid = (np.asarray(emb["encoded"][:]) > 0).all(axis=1)
    failed = {names[i]: "posteriors incomplete (an encode block failed or was not run)" for i in np.flatnonzero(~valid)}
    if failed:
        warnings.warn("models left out of the comparison: " + ", ".join(failed), UserWarning, stacklevel=2)
    grp = _prepare_results(root, emb, config)
    _write_model_coords(grp, emb, names)
    groups = group_models(emb, valid)
    mc = {"seed": config.seed, "n_samples": config.n_samples, "sample_block": config.sample_block,
          "image_block": config.image_block, "dtype": config.dtype}
    path = str(config.store)
    info_done = np.asarray(grp["info_done"][:]) > 0
    est_done = np.asarray(grp["estimate_done"][:]) > 0
    calls, total = [], 0
    for i in np.flatnonzero(valid):
        total += 1
        if not info_done[i]:
            calls.append((f"info-{names[i]}", estimate_task, (path, int(i), -1, -1, (names[i], ""), mc), {}))
    for _, members in groups:
        for x, i in enumerate(members):
            for j in members[x + 1:]:
                for k, term in enumerate(TERMS):
                    total += 1
                    if not est_done[i, j, k]:
                        calls.append((f"{term}-{names[i]}-{names[j]}", estimate_task,
                                      (path, i, j, k, (names[i], names[j]), mc), {}))
    log(f"latents: {int(valid.sum())} models x {n_images} images in {len(groups)} groups; "
        f"{len(calls)} of {total} estimates to compute ({config.n_samples} samples each)")
    store.set_complete(grp, False)
    run_tasks(client, "latents", calls)
    _finalize(grp, emb, groups, valid, names)
    store.set_complete(grp, True, failed_models=failed, n_models=int(valid.sum()), n_images=n_images,
                       h_x=math.log2(n_images))
    elapsed = time.perf_counter() - t0
    store.record_provenance(grp, config=config.as_dict(), elapsed_s=elapsed, computed=len(calls),
                            skipped=total - len(calls))
    return LatentsResult(store=Path(config.store), n_models=int(valid.sum()), n_images=n_images, n_groups=len(groups),
                         encoded=0, computed=len(calls), skipped=total - len(calls), failed_models=failed,
                         seconds=elapsed)


def run_latents(config: LatentsConfig, *, client: Any = None, log: Callable[[str], None] = _log) -> LatentsResult:
    """Encode (when ``config.models_dir`` is set) and compare whole latent spaces.

    Parameters
    ----------
    config : LatentsConfig
    client : distributed.Client, optional
        Run the tasks here; otherwise a client is made from the config and closed at the end.

    Returns
    -------
    LatentsResult
    """
    from .execution import run_client

    t0 = time.perf_counter()
    Path(config.store).parent.mkdir(parents=True, exist_ok=True)
    ctx = contextlib.nullcontext(client) if client is not None else run_client(
        scheduler_address=config.scheduler_address, n_workers=config.n_workers,
        threads_per_worker=config.threads_per_worker, dashboard=config.dashboard, log=log)
    with ctx as cl:
        encoded, enc_failed = 0, {}
        if config.models_dir is not None:
            encoded, enc_failed = encode_latents(config, cl, log=log)
        result = compare_latents(config, cl, log=log)
    result.encoded = encoded
    result.failed_models = {**enc_failed, **result.failed_models}
    result.seconds = time.perf_counter() - t0
    return result
