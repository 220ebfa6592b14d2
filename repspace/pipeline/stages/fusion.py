"""The fusion stage: a run's channels fused into one space (the paper's Sec. 4.4, on a real ensemble).

The members are the informative channels of the run (I(U) >= ``info_threshold``), the members of
one OPTICS cluster of ``structure``, or a list. One task runs :func:`repspace.fusion.fuse` on their
posteriors over the fingerprint images; finalize adds the fused space's NMI with each ground-truth
factor beside the members' and replaces the group ``fusion`` whole. A rerun with the same members,
posteriors and options computes nothing.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from ... import kernels
from ...fusion import FuseOptions
from ...store import is_complete, open_group, require_complete, stamp, write_dataset
from ...store import embeddings as emb_schema
from ...store import fusion as schema
from ...store.channels import informative
from ...store.fingerprint import open_fingerprint
from ..stage import Block, Plan, Stage, StageContext
from .so2 import fusion_cost

__all__ = ["STAGE", "fusion_task", "choose_members"]


def choose_members(ctx: StageContext) -> tuple[list[tuple[int, int]], str]:
    """(model index, channel) of the members, in store order, and how they were chosen."""
    o, root = ctx.config.fusion, ctx.root
    channels = require_complete(root, "channels", "fusion")
    lay = emb_schema.Layout(root[emb_schema.FINGERPRINT])
    valid = emb_schema.encoded_models(lay)
    if o.members == "informative":
        keep = informative(channels, ctx.config.info_threshold) & valid[:, None]
        chosen = [(int(m), int(c)) for m, c in zip(*np.nonzero(keep))]
        how = f"every channel with I(U) >= {ctx.config.info_threshold} bits"
    elif o.members == "cluster":
        st = require_complete(root, "structure", "fusion")
        measures = [str(m) for m in np.asarray(st["measure"][:]).tolist()]
        labels = np.asarray(st["label"][:])[measures.index(o.cluster_measure)]
        if o.cluster not in set(labels.tolist()) - {-1}:
            found = sorted(set(labels.tolist()) - {-1})
            raise ValueError(f"fusion.cluster {o.cluster}: structure has clusters {found} for {o.cluster_measure}")
        units = np.flatnonzero(labels == o.cluster)
        mi, ch = np.asarray(st["model_index"][:]), np.asarray(st["channel"][:])
        chosen = [(int(mi[u]), int(ch[u])) for u in units]
        how = f"OPTICS cluster {o.cluster} of {o.cluster_measure}"
    else:
        index = {name: i for i, name in enumerate(lay.names)}
        chosen = []
        for name in o.channels:
            model, _, channel = name.rpartition("/")
            if model not in index or not channel.isdigit() or int(channel) >= lay.n_channels:
                raise ValueError(f"fusion.channels: no channel {name!r} in this run (names are 'model/channel', "
                                 f"models {', '.join(lay.names[:5])}..., channels 0-{lay.n_channels - 1})")
            if not valid[index[model]]:
                raise ValueError(f"fusion.channels: model {model!r} has no posteriors (failed or dropped)")
            chosen.append((index[model], int(channel)))
        how = "the listed channels"
    if not chosen:
        raise RuntimeError(f"fusion: no members ({how}); nothing to fuse")
    return chosen, how


def fusion_task(store_path: str, members: list[tuple[int, int]], options: dict[str, Any], threads: int) -> dict:
    """Fuse the members' posteriors (fingerprint images): the fused space as plain arrays."""
    from ...fusion import fuse

    emb = open_group(store_path, emb_schema.FINGERPRINT)
    mu = np.stack([np.asarray(emb["mu"][m, c], np.float64) for m, c in members])
    lv = np.stack([np.asarray(emb["logvar"][m, c], np.float64) for m, c in members])
    ds = fuse(mu, lv, threads=threads, **options)
    return {k: ds[k].values for k in ("mu", "logvar", "objective", "nmi", "vi", "step")} | {
        "information": float(ds.attrs["information_bits"])}


def plan(ctx: StageContext) -> Plan:
    o = ctx.config.fusion
    chosen, how = choose_members(ctx)
    left_out = chosen[o.max_members:]
    chosen = chosen[:o.max_members]
    lay = emb_schema.Layout(ctx.root[emb_schema.FINGERPRINT])
    status = lay.status()
    options = {f.name: getattr(o, f.name) for f in dataclasses.fields(FuseOptions)} | {
        "seed": ctx.config.seed, "record_every": max(1, o.steps // 100)}
    extent = (chosen, [status[m].tolist() for m, _ in chosen], options)
    names = [f"{lay.names[m]}/{c}" for m, c in chosen]
    state = dict(chosen=chosen, names=names, how=how, left_out=[f"{lay.names[m]}/{c}" for m, c in left_out],
                 extent_stamp=stamp(extent))
    if is_complete(ctx.root, schema.GROUP) and ctx.root[schema.GROUP].attrs.get("extent_stamp") == stamp(extent):
        return Plan(blocks=[], state=state, note=f"{len(chosen)} channels ({how}), unchanged")
    if left_out:
        ctx.log(f"fusion: {len(chosen) + len(left_out)} channels; fusing the first {o.max_members} "
                f"(fusion.max_members)")
    ctx.log(f"fusion: {len(chosen)} channels ({how}) into {o.dim} dimensions, {o.steps} steps of {o.similarity}")
    cost = 1.0 + fusion_cost(o.steps, lay.n_images, len(chosen))
    block = Block(name="fusion", marker=None, args=(chosen, options, ctx.config.threads_per_worker), cost=cost)
    return Plan(blocks=[block], state=state, note=f"{len(chosen)} channels ({how})")


def finalize(ctx: StageContext, plan: Plan, results: dict[str, Any]) -> str:
    s = plan.state
    if not results:
        return plan.note
    r = results["fusion"]
    fp = open_fingerprint(ctx.store_path)
    factors = [str(f) for f in fp["factor"].values]
    fused_rows = kernels.PosteriorRows(r["mu"][None], r["logvar"][None])
    res = kernels.pairwise_information(fused_rows, kernels.LabelRows(fp["factors"].values, fused_rows.dtype))
    fused_nmi = kernels.to_numpy(res.nmi_vi()[0])[0]
    channels = open_group(ctx.store_path, "channels")
    member_nmi = np.stack([np.asarray(channels["nmi_factor"][m, c]) for m, c in s["chosen"]])
    o = ctx.config.fusion
    ds = schema.dataset(
        {"mu": r["mu"], "logvar": r["logvar"], "objective": r["objective"], "nmi": r["nmi"], "vi": r["vi"],
         "member_nmi_factor": member_nmi, "nmi_factor": fused_nmi, "information": r["information"]},
        coords={"image": np.arange(r["mu"].shape[0]), "dim": np.arange(r["mu"].shape[1]), "step": r["step"],
                "member": np.array(s["names"], dtype=object),
                "model": ("member", np.array([n.rpartition("/")[0] for n in s["names"]], dtype=object)),
                "channel": ("member", np.array([m[1] for m in s["chosen"]], np.int64)),
                "factor": np.array(factors, dtype=object)},
        attrs={"members": s["how"], "left_out": json.dumps(s["left_out"]), "similarity": o.similarity,
               "extent_stamp": s["extent_stamp"], "options": json.dumps(dataclasses.asdict(o), default=list)})
    write_dataset(ctx.store_path, schema.GROUP, ds)
    note = f"{len(s['names'])} channels ({s['how']}) fused into {o.dim} dimensions"
    if np.isfinite(r["nmi"]).any():
        note += f": mean NMI with the members {np.nanmean(r['nmi']):.2f}"
    if np.isfinite(fused_nmi).any():
        k = int(np.nanargmax(fused_nmi))
        note += f"; NMI with {factors[k]} {fused_nmi[k]:.2f}"
    return note


@dataclasses.dataclass(frozen=True)
class FusionOptions(FuseOptions):
    """Fusion of a run's channels into one space (stage fusion): which channels, and the options of
    :func:`repspace.fusion.fuse` (:class:`repspace.fusion.FuseOptions`: ``dim``, ``similarity``, ``steps``,
    ``learning_rate``, ``init_std``, ``dtype``, with their defaults) under the same names.

    Attributes
    ----------
    members : "informative" (every channel with I(U) >= the run's ``info_threshold``), "cluster"
        (the members of OPTICS cluster ``cluster`` of measure ``cluster_measure`` in ``structure``),
        or "list" (``channels``).
    cluster_measure, cluster : the cluster, for members = "cluster".
    channels : "model/channel" names, for members = "list".
    max_members : at most this many channels, in store order (the rest are named).
    """

    members: str = "informative"
    cluster_measure: str = "vi"
    cluster: int = 0
    channels: tuple[str, ...] = ()
    max_members: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "channels", tuple(str(c) for c in self.channels))
        twice = sorted({c for c in self.channels if self.channels.count(c) > 1})
        if twice:
            raise ValueError(f"channels must name each channel once; {', '.join(map(repr, twice))} is listed more "
                             "than once")
        if self.members not in ("informative", "cluster", "list"):
            raise ValueError(f"members must be 'informative', 'cluster' or 'list', got {self.members!r}")
        if self.members == "list" and not self.channels:
            raise ValueError("members = 'list' needs fusion.channels (names such as '3/7': model 3, channel 7)")
        if self.cluster_measure not in ("vi", "nmi"):
            raise ValueError(f"cluster_measure must be 'vi' or 'nmi', got {self.cluster_measure!r}")
        for name in ("steps", "max_members"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


STAGE = Stage(name="fusion", writes=schema.GROUP, needs=("fingerprint", "embeddings", "channels"), plan=plan,
              task=fusion_task, finalize=finalize, whole=True, table="fusion", options=FusionOptions,
              figures="repspace.plots.fusion:fusion_figures", report="repspace.plots.report:fusion_section")
