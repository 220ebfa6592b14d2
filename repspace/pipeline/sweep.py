"""The full sweep: fingerprint -> models -> encode -> channels -> pairs -> structure -> figures.

Each stage reads the run store, runs its blocks as Dask tasks and writes back; finished
blocks are skipped on a rerun, and adding models computes only what is new.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from .. import store
from .execution import run_client, run_tasks
from .tasks import channels_block, encode_block, pairs_block

__all__ = ["STAGES", "run_sweep", "write_embeddings", "prepare_embeddings", "SweepResult", "StageReport", "ModelEntry", "find_models", "FailedModelsWarning"]

STAGES = ("fingerprint", "models", "encode", "channels", "pairs", "structure", "figures", "latents")


class FailedModelsWarning(UserWarning):
    """Some models could not be encoded; the run goes on without them."""


@dataclasses.dataclass
class StageReport:
    name: str
    seconds: float
    computed: int = 0
    skipped: int = 0
    note: str = ""


@dataclasses.dataclass
class ModelEntry:
    name: str
    path: str
    dataset: str = ""
    family: str = ""
    hyperparameter: str = ""
    hyperparameter_value: float = float("nan")
    seed: int = -1
    source: str = ""


@dataclasses.dataclass
class SweepResult:
    store: Path
    figure_dir: Path
    stages: list[StageReport]
    failed_models: dict[str, str]
    figures: list[Path]

    def summary(self) -> str:
        lines = ["", "repspace sweep finished", f"  store:   {self.store}", ""]
        lines.append(f"  {'stage':<12}{'time':>9}  {'computed':>9}  {'skipped':>8}  note")
        for r in self.stages:
            lines.append(f"  {r.name:<12}{r.seconds:8.1f}s  {r.computed:>9}  {r.skipped:>8}  {r.note}")
        if self.failed_models:
            lines.append("")
            lines.append("  models left out (could not be encoded):")
            lines.extend(f"    {k}: {v}" for k, v in self.failed_models.items())
        if self.figures:
            lines.append("")
            lines.append("  figures:")
            lines.extend(f"    {p}" for p in self.figures)
        lines += [
            "",
            "  open the results in Python:",
            "    import xarray as xr",
            *(
                f'    xr.open_zarr("{self.store}", group="{g}", consolidated=False)'
                for g in ("fingerprint", "embeddings", "channels", "pairs", "structure", "latents")
                if (self.store / "zarr.json").exists() and (self.store / g).is_dir()
            ),
        ]
        return "\n".join(lines)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- models -------------------------------------------------------------------------------


def _is_model_dir(p: Path) -> bool:
    return (p / "model" / "tfhub").is_dir() or (p / "saved_model.pb").is_file() or p.suffix == ".keras"


def _sort_key(p: Path) -> tuple:
    return (0, int(p.name), "") if p.name.isdigit() else (1, 0, p.name)


def find_models(model_dir: str | Path, numbers: list[int] | None = None) -> list[ModelEntry]:
    """The models in ``model_dir`` (folders ``<n>/model/tfhub``), with what each one is."""
    from ..models import read_model_info

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model directory {model_dir} does not exist")
    if numbers is not None:
        paths = [model_dir / str(n) for n in numbers]
        missing = [p.name for p in paths if not _is_model_dir(p)]
        if missing:
            raise FileNotFoundError(f"{model_dir} lacks models {', '.join(missing[:20])} (expected <n>/model/tfhub)")
    else:
        paths = sorted((p for p in model_dir.iterdir() if _is_model_dir(p)), key=_sort_key)
    if not paths:
        raise FileNotFoundError(
            f"no models in {model_dir}: expected folders <n>/model/tfhub (the zoo's layout, or "
            "python -m repspace.jobs.train_ensemble), SavedModels or .keras files"
        )
    entries = []
    for p in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            info = read_model_info(p) if p.is_dir() else None
        entry = ModelEntry(name=p.name, path=str(p.resolve()))
        if info is not None:
            entry = ModelEntry(
                name=p.name, path=str(p.resolve()), dataset=info.dataset, family=info.family,
                hyperparameter=info.hyperparameter_name, hyperparameter_value=float(info.hyperparameter_value),
                seed=int(info.seed), source=info.source,
            )
        entries.append(entry)
    return entries


def _stage_models(config: Any, client: Any) -> list[ModelEntry]:
    from ..models import download_models, parse_model_numbers, train_ensemble

    mc = config.models
    numbers = parse_model_numbers(",".join(mc.numbers)) if mc.numbers else None
    if mc.source == "trained":
        paths = train_ensemble(mc.train_config(), mc.dir, client=client, numbers=numbers)
        return find_models(mc.dir, [int(Path(p).name) for p in paths])
    if mc.source == "zoo":
        if not numbers:
            raise ValueError("models.source = 'zoo' needs models.numbers, e.g. ['0-49']")
        kwargs = {"base_url": mc.base_url} if mc.base_url else {}
        report = download_models(numbers, mc.dir, **kwargs)
        _log(report.summary())
        got = [n for n in numbers if n not in report.failed]
        if not got:
            raise FileNotFoundError(f"none of the {len(numbers)} zoo models could be downloaded into {mc.dir}")
        return find_models(mc.dir, got)
    return find_models(mc.dir, numbers)


# --- fingerprint identity ---------------------------------------------------------------------


def fingerprint_id(root: zarr.Group) -> str:
    fp = root["fingerprint"]
    h = hashlib.sha256()
    for key in ("dataset", "seed", "n", "image_size"):
        h.update(repr(fp.attrs.get(key)).encode())
    h.update(np.asarray(fp["index"][:]).tobytes())
    return h.hexdigest()[:16]


def _check_fingerprint(group: zarr.Group, fid: str, where: str) -> None:
    recorded = group.attrs.get("fingerprint_id")
    if recorded is not None and recorded != fid:
        raise store.StoreError(
            f"the {where!r} group was computed on another fingerprint set ({recorded}, this store's is {fid}); "
            "a run never mixes fingerprint sets: use a new run directory"
        )
    group.attrs["fingerprint_id"] = fid


# --- encode ---------------------------------------------------------------------------------


MODEL_COORDS = ("dataset", "family", "hyperparameter", "hyperparameter_value", "seed", "source", "path")


def prepare_embeddings(
    root: zarr.Group, models: list[ModelEntry], *, encode_block: int, n_channels: int | None = None, quiet: bool = False
) -> tuple[zarr.Group, list[ModelEntry]]:
    """Lay out (or grow) the ``embeddings`` group for ``models``; returns it and the run's models.

    Models already in the store keep their place; new ones are appended. ``n_channels`` is
    read from the store or, for a new group, from the first model (or given).
    """
    fid = fingerprint_id(root)
    n_images = int(root["fingerprint"]["index"].shape[0])
    emb = root.require_group("embeddings")
    _check_fingerprint(emb, fid, "embeddings")
    existing = [str(x) for x in emb["model"][:]] if "model" in emb else []
    by_name = {m.name: m for m in models}
    unlisted = [i for i, name in enumerate(existing) if name not in by_name]
    if unlisted:
        stored = {k: emb[k][:] for k in MODEL_COORDS}
        for i in unlisted:
            by_name[existing[i]] = ModelEntry(name=existing[i], **{k: _plain(stored[k][i]) for k in MODEL_COORDS})
        if not quiet:
            _log(f"the store holds {len(unlisted)} models that this configuration does not list "
                 f"({', '.join(existing[i] for i in unlisted[:10])}{' ...' if len(unlisted) > 10 else ''}); they are kept")
    ordered = existing + [m.name for m in models if m.name not in existing]
    entries = [by_name[n] for n in ordered]
    n_models = len(entries)
    if "mu" in emb:
        n_channels = int(emb["mu"].shape[1])
    elif n_channels is None:
        from ..models import load_encoder

        n_channels = int(load_encoder(entries[0].path).n_latents)
    chunks = (encode_block, n_channels, n_images)
    dims = ("model", "channel", "image")
    for name, desc in (("mu", "posterior mean"), ("logvar", "posterior log-variance")):
        store.require_array(emb, name, shape=(n_models, n_channels, n_images), chunks=chunks, dtype="float32",
                            dims=dims, fill_value=np.nan, attrs={"long_name": desc})
    store.require_array(emb, "encoded", shape=(n_models,), chunks=(1,), dtype="int64", dims=("model",), fill_value=0,
                        attrs={"description": ">0 encoded, -1 failed (NaN or unreadable), 0 not yet"})
    store.write_coordinate(emb, "model", "model", [e.name for e in entries])
    store.write_coordinate(emb, "channel", "channel", np.arange(n_channels))
    store.write_coordinate(emb, "image", "image", np.arange(n_images))
    for key in MODEL_COORDS:
        store.write_coordinate(emb, key, "model", [getattr(e, key) for e in entries])
    for name in ("mu", "logvar", "encoded"):
        emb[name].attrs["coordinates"] = " ".join(MODEL_COORDS)
    return emb, entries


def write_embeddings(
    store_path: str | Path, mu: np.ndarray, logvar: np.ndarray, models: list[ModelEntry], *, encode_block: int = 8
) -> None:
    """Put precomputed posteriors of ``models`` into a run whose fingerprint set is written.

    mu, logvar : (model, channel, image) over the store's fingerprint images, in the order
    of ``models``. Used for encoders that live outside TensorFlow, and for benchmarks.
    """
    mu, logvar = np.asarray(mu, np.float32), np.asarray(logvar, np.float32)
    if mu.shape != logvar.shape or mu.ndim != 3 or mu.shape[0] != len(models):
        raise ValueError(f"mu and logvar must be (model, channel, image) for {len(models)} models; got {mu.shape}, {logvar.shape}")
    root = store.open_run(store_path, create=False)
    if not store.is_complete(root, "fingerprint"):
        raise FileNotFoundError(f"{store_path} has no complete fingerprint set")
    n_images = int(root["fingerprint"]["index"].shape[0])
    if mu.shape[2] != n_images:
        raise ValueError(f"the posteriors cover {mu.shape[2]} images; the fingerprint set has {n_images}")
    emb, entries = prepare_embeddings(root, models, encode_block=encode_block, n_channels=mu.shape[1], quiet=True)
    order = {e.name: i for i, e in enumerate(entries)}
    n_models = len(entries)
    for k, m in enumerate(models):
        bad = ~(np.isfinite(mu[k]) & np.isfinite(logvar[k]))
        if bad.any():
            raise ValueError(f"model {m.name}: NaN or infinite posteriors in channels {sorted(set(np.nonzero(bad)[0].tolist()))}")
    index = np.array([order[m.name] for m in models])
    if np.array_equal(index, np.arange(index[0], index[0] + index.size)):  # one slice: one write per chunk
        where: Any = slice(int(index[0]), int(index[0]) + index.size)
        emb["mu"][where] = mu
        emb["logvar"][where] = logvar
        emb["encoded"][where] = n_models
    else:
        for k, i in enumerate(index.tolist()):
            emb["mu"][i] = mu[k]
            emb["logvar"][i] = logvar[k]
            emb["encoded"][i] = n_models
    store.set_complete(emb, bool((np.asarray(emb["encoded"][:]) != 0).all()), n_models=n_models, n_channels=int(mu.shape[1]))


def _stage_encode(config: Any, client: Any, root: zarr.Group, models: list[ModelEntry]) -> tuple[StageReport, dict]:
    t0 = time.perf_counter()
    n_images = int(root["fingerprint"]["index"].shape[0])
    emb, entries = prepare_embeddings(root, models, encode_block=config.encode_block)
    ordered = [e.name for e in entries]
    n_models, n_channels = len(entries), int(emb["mu"].shape[1])
    encoded = emb["encoded"]
    state = np.asarray(encoded[:])
    todo = [i for i in range(n_models) if state[i] <= 0]
    calls = []
    for c0, c1 in store.block_ranges(n_models, config.encode_block):
        rows = [(i, entries[i].name, entries[i].path) for i in todo if c0 <= i < c1]
        if rows:
            calls.append((f"models{c0}-{c1 - 1}", encode_block, (str(config.store), rows, n_models), {}))
    store.set_complete(emb, False)
    results = run_tasks(client, "encode", calls)
    failed: dict[str, str] = {}
    for r in results.values():
        failed.update(r["failed"])
    if failed:
        warnings.warn(
            "models left out of the run: " + "; ".join(f"{k}: {v}" for k, v in failed.items()), FailedModelsWarning, stacklevel=3
        )
    unreadable = [k for k in failed if int(encoded[ordered.index(k)]) == 0]
    for k in unreadable:  # a model that could not be loaded at all is marked failed too
        encoded[ordered.index(k)] = -1
    store.set_complete(emb, True, failed_models=failed, n_models=n_models, n_channels=n_channels)
    store.record_provenance(emb, config=config.as_dict(), elapsed_s=time.perf_counter() - t0)
    rep = StageReport("encode", time.perf_counter() - t0, computed=len(todo), skipped=n_models - len(todo),
                      note=f"{n_models} models x {n_channels} channels x {n_images} images")
    return rep, failed


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


# --- channels and pairs ---------------------------------------------------------------------


def _copy_model_coords(emb: zarr.Group, grp: zarr.Group, suffixes: tuple[str, ...]) -> list[str]:
    names = []
    for sfx in suffixes:
        dim = f"model{sfx}"
        store.write_coordinate(grp, dim, dim, emb["model"][:])
        store.write_coordinate(grp, f"channel{sfx}", f"channel{sfx}", emb["channel"][:])
        for key in MODEL_COORDS:
            if key == "path":
                continue
            store.write_coordinate(grp, f"{key}{sfx}", dim, emb[key][:])
            names.append(f"{key}{sfx}")
    return names


def _check_encoded(emb: zarr.Group) -> None:
    state = np.asarray(emb["encoded"][:])
    missing = [str(emb["model"][i]) for i in np.flatnonzero(state == 0)]
    if missing:
        raise RuntimeError(
            f"models {', '.join(missing[:20])} have no embeddings yet (an interrupted encode stage?); "
            "rerun with the encode stage"
        )


def _open_block_stage(config: Any, root: zarr.Group, name: str) -> tuple[zarr.Group, zarr.Group, int, int, int]:
    """Checks shared by the blockwise stages; returns (embeddings, the stage's group, models, channels, models per block)."""
    emb = root["embeddings"]
    n_models, n_channels = int(emb["mu"].shape[0]), int(emb["mu"].shape[1])
    fid = fingerprint_id(root)
    _check_fingerprint(emb, fid, "embeddings")
    _check_encoded(emb)
    grp = root.require_group(name)
    _check_fingerprint(grp, fid, name)
    block = max(1, config.pair_block_units // n_channels)
    stored_block = grp.attrs.get("models_per_block", block)
    if stored_block != block:
        raise store.StoreError(f"{name} were computed in blocks of {stored_block} models, this run uses {block}: "
                               f"set pair_block_units = {stored_block * n_channels} or use a new run directory")
    grp.attrs["models_per_block"] = block
    return emb, grp, n_models, n_channels, block


def _stage_channels(config: Any, client: Any, root: zarr.Group) -> StageReport:
    t0 = time.perf_counter()
    emb, grp, n_models, n_channels, block = _open_block_stage(config, root, "channels")
    factors = [str(f) for f in root["fingerprint"]["factor"][:]]
    n_blocks = -(-n_models // block)
    dims2, dims3 = ("model", "channel"), ("model", "channel", "factor")
    chunk2, chunk3 = (block, n_channels), (block, n_channels, len(factors))
    for name, long in (("info", "I(U), information about the fingerprint set"), ("self_info", "I(U,U')")):
        store.require_array(grp, name, shape=(n_models, n_channels), chunks=chunk2, dtype="float64", dims=dims2,
                            fill_value=np.nan, attrs={"units": "bits", "long_name": long})
    store.require_array(grp, "nmi_factor", shape=(n_models, n_channels, len(factors)), chunks=chunk3, dtype="float64",
                        dims=dims3, fill_value=np.nan, attrs={"units": "1", "long_name": "NMI with each ground-truth factor"})
    store.require_array(grp, "vi_factor", shape=(n_models, n_channels, len(factors)), chunks=chunk3, dtype="float64",
                        dims=dims3, fill_value=np.nan, attrs={"units": "bits", "long_name": "VI with each ground-truth factor"})
    done = store.require_marker(grp, "done", (n_blocks,), ("channel_block",))
    coords = _copy_model_coords(emb, grp, ("",))
    store.write_coordinate(grp, "factor", "factor", factors)
    for name in ("info", "self_info", "nmi_factor", "vi_factor"):
        grp[name].attrs["coordinates"] = " ".join(coords)
    calls = []
    for b, (m0, m1) in enumerate(store.block_ranges(n_models, block)):
        if not store.block_done(done, (b,), block, n_models):
            calls.append((f"block{b}", channels_block, (str(config.store), b, m0, m1, n_models), {"gpu": config.gpu}))
    store.set_complete(grp, False)
    run_tasks(client, "channels", calls)
    store.set_complete(grp, True)
    store.record_provenance(grp, config=config.as_dict(), elapsed_s=time.perf_counter() - t0)
    return StageReport("channels", time.perf_counter() - t0, computed=len(calls), skipped=n_blocks - len(calls),
                       note=f"blocks of {block} models")


def _stage_pairs(config: Any, client: Any, root: zarr.Group) -> StageReport:
    t0 = time.perf_counter()
    emb, grp, n_models, n_channels, block = _open_block_stage(config, root, "pairs")
    n_blocks = -(-n_models // block)
    dims = ("model_a", "channel_a", "model_b", "channel_b")
    shape = (n_models, n_channels, n_models, n_channels)
    chunks = (block, n_channels, block, n_channels)
    store.require_array(grp, "nmi", shape=shape, chunks=chunks, dtype="float32", dims=dims, fill_value=np.nan,
                        attrs={"units": "1", "long_name": "normalized mutual information between channels"})
    store.require_array(grp, "vi", shape=shape, chunks=chunks, dtype="float32", dims=dims, fill_value=np.nan,
                        attrs={"units": "bits", "long_name": "variation of information between channels"})
    done = store.require_marker(grp, "done", (n_blocks, n_blocks), ("block_a", "block_b"))
    coords = _copy_model_coords(emb, grp, ("_a", "_b"))
    for name in ("nmi", "vi"):
        grp[name].attrs["coordinates"] = " ".join(coords)
    ranges = store.block_ranges(n_models, block)
    calls = []
    total = 0
    for ba in range(n_blocks):
        for bb in range(ba, n_blocks):
            total += 1
            if store.block_done(done, (ba, bb), block, n_models):
                continue
            calls.append((f"block{ba}x{bb}", pairs_block,
                          (str(config.store), ba, bb, ranges[ba], ranges[bb], n_models, config.row_block_bytes),
                          {"gpu": config.gpu}))
    store.set_complete(grp, False)
    run_tasks(client, "pairs", calls)
    store.set_complete(grp, True)
    store.record_provenance(grp, config=config.as_dict(), elapsed_s=time.perf_counter() - t0)
    units = n_models * n_channels
    return StageReport("pairs", time.perf_counter() - t0, computed=len(calls), skipped=total - len(calls),
                       note=f"{units} x {units} channel pairs in blocks of {block} models")


# --- the run ----------------------------------------------------------------------------------


def run_sweep(config: Any, *, client: Any = None, log: Callable[[str], None] = _log) -> SweepResult:
    """Run the stages of ``config`` (a :class:`SweepConfig`) and return what was done.

    Parameters
    ----------
    config : SweepConfig
    client : distributed.Client, optional
        Use this client; otherwise one is made from the config (and closed at the end).
    """
    from ..data import FingerprintConfig, build_fingerprint
    from .structure import compute_structure

    Path(config.run_dir).mkdir(parents=True, exist_ok=True)
    root = store.open_run(config.store)
    reports: list[StageReport] = []
    failed: dict[str, str] = {}
    figures: list[Path] = []
    stages = config.stages if config.figures else tuple(s for s in config.stages if s != "figures")
    log(f"run {config.run_dir}: stages {', '.join(stages)}")

    t = time.perf_counter()
    if "fingerprint" in stages:
        existed = store.is_complete(root, "fingerprint")
        build_fingerprint(FingerprintConfig(dataset=config.dataset, n=config.n_images, seed=config.seed, store=config.store,
                                            data_dir=config.data_dir, image_size=config.image_size))
        reports.append(StageReport("fingerprint", time.perf_counter() - t, computed=0 if existed else 1,
                                   skipped=1 if existed else 0, note=f"{config.dataset}, {config.n_images} images, seed {config.seed}"))
    if "fingerprint" not in root:
        raise FileNotFoundError(f"{config.store} has no fingerprint set; run the fingerprint stage first")

    needs_client = any(s in stages for s in ("models", "encode", "channels", "pairs", "latents"))
    ctx = contextlib.nullcontext(client) if (client is not None or not needs_client) else run_client(
        scheduler_address=config.scheduler_address, n_workers=config.n_workers,
        threads_per_worker=config.threads_per_worker, dashboard=config.dashboard, log=log)
    with ctx as cl:
        models: list[ModelEntry] = []
        if "models" in stages or "encode" in stages or "latents" in stages:
            t = time.perf_counter()
            models = _stage_models(config, cl)
            reports.append(StageReport("models", time.perf_counter() - t, computed=len(models),
                                       note=f"{config.models.source}: {config.models.dir}"))
        if "encode" in stages:
            rep, failed = _stage_encode(config, cl, root, models)
            reports.append(rep)
        if "channels" in stages:
            reports.append(_stage_channels(config, cl, root))
        if "pairs" in stages:
            reports.append(_stage_pairs(config, cl, root))
        if "latents" in stages:
            from .latents import run_latents

            t = time.perf_counter()
            lat = run_latents(config.latents_config(tuple(m.name for m in models)), client=cl, log=log)
            failed.update({str(k): str(v) for k, v in (lat.failed_models or {}).items()})
            reports.append(StageReport("latents", time.perf_counter() - t, computed=lat.computed, skipped=lat.skipped,
                                       note=f"{lat.n_models} models, {lat.n_images} images, {lat.n_groups} groups"))
    if "structure" in stages:
        t = time.perf_counter()
        note = compute_structure(config)
        reports.append(StageReport("structure", time.perf_counter() - t, computed=1, note=note))
    if "figures" in stages:
        from ..plots import draw_run_figures

        t = time.perf_counter()
        figures = draw_run_figures(config.store, config.figure_dir) if "structure" in root else []
        if store.is_complete(root, "latents"):
            from ..plots.latents import draw_latents_figure

            figures.append(draw_latents_figure(config.store, config.figure_dir / "latents.png"))
        reports.append(StageReport("figures", time.perf_counter() - t, computed=len(figures), note=str(config.figure_dir)))
    root.attrs["last_run"] = json.dumps({r.name: round(r.seconds, 2) for r in reports})
    return SweepResult(store=Path(config.store), figure_dir=Path(config.figure_dir), stages=reports,
                       failed_models=failed, figures=figures)
