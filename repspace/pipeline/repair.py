"""Repairing a damaged run: the blocks whose chunks are missing or damaged are marked not done, and
the stages that write them run again (with the run's own configuration), then the stages that
read them. Finished blocks that are intact are not recomputed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .. import store
from ..store import verify
from .config import RunConfig
from .driver import RunReport, _log
from .guards import DROPPED
from .stages import STAGES
from .sweep import run

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["repair", "recorded_config", "drop_models"]

_DOWNSTREAM = ("structure", "traversals", "figures")


def recorded_config(root, store_path: Path, group: str | None = None) -> RunConfig:
    """The configuration that last wrote ``group`` (from its provenance), else the newest of any group; with
    the store where it is now."""
    attrs = dict(root[group].attrs) if group is not None and group in root and "config" in root[group].attrs else \
        max((dict(root[g].attrs) for g, _ in root.groups() if "config" in root[g].attrs),
            key=lambda a: str(a.get("written_at", "")), default=None)
    if attrs is None:
        raise RuntimeError(f"{store_path} records no configuration: nothing to rerun")
    d = _upgrade(json.loads(attrs["config"]))
    d["store_path"] = str(store_path)
    if store_path.name == "store.zarr":
        d["run_dir"] = str(store_path.parent)
    return RunConfig(**d)


_RENAMED = {"latents": {"n_images": "n_dataset_images"}}
_NESTED = {"measures": ("classifier", "classifier_"), "so2": ("learner", "learner_")}
_SO2_FUSION = {"dim": "dim", "fusion_steps": "steps", "fusion_learning_rate": "learning_rate", "init_std": "init_std",
               "dtype": "dtype"}


def _upgrade(d: dict) -> dict:
    """A configuration recorded by an earlier version, in today's keys."""
    d.setdefault("pair_channels", "all")  # recorded before pairs among informative channels: every pair was
    d.setdefault("errors", {"groups": 0})  # recorded before standard errors: repaired without them, as written
    if isinstance(d.get("latents"), dict):
        d["latents"].setdefault("scheme", "pairs")  # recorded before shared terms: five estimates per pair
    for table, renamed in _RENAMED.items():
        for old, new in renamed.items():
            if isinstance(d.get(table), dict) and old in d[table]:
                d[table][new] = d[table].pop(old)
    so2 = d.get("so2")
    if isinstance(so2, dict):  # the circle's fusion options, flat in [so2] before its [so2.fusion] sub-table
        moved = {new: so2.pop(old) for old, new in _SO2_FUSION.items() if old in so2}
        if moved:
            so2["fusion"] = {**moved, **so2.get("fusion", {})}
    for table, (sub, prefix) in _NESTED.items():  # flat keys of a domain's options, before its sub-table
        t = d.get(table)
        if isinstance(t, dict):
            flat = [k for k in t if k.startswith(prefix) and k != sub]
            if flat:
                t[sub] = {**{k[len(prefix):]: t.pop(k) for k in flat}, **t.get(sub, {})}
    return d


def repair(store_path: str | Path, damage: list[verify.Damage], *, client: "Client | None" = None,
           log: Callable[[str], None] = _log) -> RunReport | None:
    """Mark what ``damage`` covers as not done and rerun the stages that write it, then those that read it."""
    if not damage:
        return None
    store_path = Path(store_path)
    with store.run_lock(store_path, "repair"):
        root = store.open_run(store_path, create=False)
        writers = {s.writes: s.name for s in STAGES.values() if s.writes}
        for d in damage:  # everything checked before anything is changed
            if d.group in ("embeddings", "dataset_embeddings"):
                paths = {m["name"]: m["path"] for m in store.models.read_models(root[d.group])}
                if any(not paths.get(m) for m in d.models):
                    raise store.StoreError(f"{d}: these posteriors were written from elsewhere (write_posteriors) "
                                           "and cannot be encoded again here: write them again")
        stages: dict[str, str] = {}  # stage -> the group whose recorded configuration it reruns with
        for d in damage:
            group = store.open_group(store_path, d.group, mode="r+")
            if d.group in verify.MARKED_GROUPS:
                block = (d.marker, d.key) if d.marker else verify.chunk_block(d.group, d.array, d.chunk)
                if block is not None:
                    group[block[0]][block[1]] = 0
            elif d.group in ("embeddings", "dataset_embeddings") and d.array in ("mu", "logvar"):
                names = [str(x) for x in group["model"][:]]
                for m in d.models:
                    if int(group["encoded"][names.index(m), d.chunk[2]]) > 0:  # dropped and failed models stay
                        group["encoded"][names.index(m), d.chunk[2]] = 0
            store.set_complete(group, False)
            stages[writers.get(d.group, d.group)] = d.group
            log(f"repair: {d}")
        verify.discard(store_path, damage)  # what is not a data chunk (a marker, a coordinate) its stage writes again
        for s in _DOWNSTREAM:
            if s == "figures" or s in root:
                stages.setdefault(s, s)
        if "encode" in stages or "encode_dataset" in stages:
            stages.setdefault("models", "models")
        reports = []
        for name in [s for s in STAGES if s in stages]:  # each with the configuration that wrote its group
            log(f"repair: rerunning {name}")
            reports.append(run(recorded_config(root, store_path, stages[name]).replace(stages=(name,)),
                               client=client, log=log))
        if not reports:
            return None
        # one report of every stage rerun (the last run's figures and report)
        return dataclasses.replace(reports[-1], stages=[r for rep in reports for r in rep.stages],
                                   failed_models={k: v for rep in reports for k, v in rep.failed_models.items()})


def drop_models(store_path: str | Path, names: list[str], *, log: Callable[[str], None] = _log) -> None:
    """Take models out of a run: their posteriors are marked dropped (never encoded again), and every block of
    channels, pairs and latents that involves them is marked not done, so that the next run of those stages
    recomputes exactly those blocks (with NaN for the dropped models)."""
    from ..store import embeddings as emb_schema

    store_path = Path(store_path)
    with store.run_lock(store_path, "drop-models"):
        root = store.open_run(store_path, create=False)
        known = set()
        for name in ("embeddings", "dataset_embeddings"):
            if name in root:
                known |= {str(x) for x in root[name]["model"][:]}
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(f"the run has no models {', '.join(unknown)}; its models: {', '.join(sorted(known))}")
        for name in ("embeddings", "dataset_embeddings"):
            if name not in root:
                continue
            group = store.open_group(store_path, name, mode="r+")
            models = [str(x) for x in group["model"][:]]
            rows = [models.index(m) for m in names if m in models]
            for i in rows:
                group["encoded"][i, :] = emb_schema.DROPPED
            failed = json.loads(group.attrs.get("failed_models", "{}"))
            failed.update({models[i]: DROPPED for i in rows})
            group.attrs["failed_models"] = json.dumps(failed, sort_keys=True)
            log(f"{name}: dropped {', '.join(models[i] for i in rows)}")
            if name == "embeddings":
                for marked in ("channels", "pairs"):
                    if marked in root and "done" in root[marked]:
                        g = store.open_group(store_path, marked, mode="r+")
                        per = int(g.attrs.get("models_per_block", 1))
                        blocks = sorted({i // per for i in rows})
                        done = g["done"]
                        for b in blocks:
                            if marked == "channels":
                                done[b] = 0
                            else:
                                done[b, :] = 0
                                done[:, b] = 0
                        store.set_complete(g, False)
            elif "latents" in root:
                g = store.open_group(store_path, "latents", mode="r+")
                for i in rows:
                    g["information_done"][i] = 0
                    if "twice_done" in g:
                        g["twice_done"][i] = 0
                    g["estimate_done"][i, :, :] = 0
                    g["estimate_done"][:, i, :] = 0
                store.set_complete(g, False)
