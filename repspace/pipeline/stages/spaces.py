"""The spaces stage: the representation spaces a measure comparison compares, as group ``spaces``.

From ``measures.source``: the paper's nine synthetic spaces (:func:`repspace.data.synthetic_spaces.nine_spaces`),
each model's whole latent space over the fingerprint images (``embeddings``), or each channel
carrying at least ``info_threshold`` bits (``channels``) as a 1-D space. At most
``measures.max_spaces`` spaces, in store order; those left out are named. Runs in the driving
process; the group is replaced whole, and left alone when its spaces are unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ...data.synthetic_spaces import nine_spaces
from ...store import require_complete, set_complete, write_dataset
from ...store import embeddings as emb_schema
from ...store import spaces as schema
from ...store.channels import informative
from ..stage import Plan, Stage, StageContext
from .measures import ComparisonOptions


def _model_text(m: dict[str, Any]) -> str:
    parts = [str(m.get("family") or "")]
    if m.get("hyperparameter"):
        parts.append(f"{m['hyperparameter']} {m['hyperparameter_value']:g}")
    if int(m.get("seed", -1)) >= 0:
        parts.append(f"seed {m['seed']}")
    return ", ".join(p for p in parts if p) or str(m["name"])


def run_spaces(ctx: StageContext) -> tuple[list[str], list[str], list[np.ndarray], list[np.ndarray], Any]:
    """(names, descriptions, mus, logvars, item dataset indices or None) of the configured source."""
    o, root = ctx.config.measures, ctx.root
    if o.source == "synthetic":
        spaces = nine_spaces(o.n_items)
        return ([s.name for s in spaces], [s.description for s in spaces], [s.mu for s in spaces],
                [s.logvar for s in spaces], None)
    require_complete(root, emb_schema.FINGERPRINT, "spaces")
    lay = emb_schema.Layout(root[emb_schema.FINGERPRINT])
    valid = emb_schema.encoded_models(lay)
    index = np.asarray(lay.group["dataset_index"][:])
    names, texts, mus, lvs = [], [], [], []
    if o.source == "latents":
        for i in np.flatnonzero(valid):
            names.append(lay.names[i])
            texts.append(f"the latent space of {lay.names[i]} ({_model_text(lay.models[i])}), "
                         f"{lay.n_channels} channels")
            mus.append(np.asarray(lay.group["mu"][i], np.float64).T)
            lvs.append(np.asarray(lay.group["logvar"][i], np.float64).T)
        return names, texts, mus, lvs, index
    channels = require_complete(root, "channels", "spaces")
    information = np.asarray(channels["information"][:])
    keep = informative(channels, ctx.config.info_threshold) & valid[:, None]
    for i, c in zip(*np.nonzero(keep)):
        names.append(f"{lay.names[i]}/{c}")
        texts.append(f"channel {c} of {lay.names[i]} ({_model_text(lay.models[i])}), {information[i, c]:.2f} bits")
        mus.append(np.asarray(lay.group["mu"][i, c], np.float64)[:, None])
        lvs.append(np.asarray(lay.group["logvar"][i, c], np.float64)[:, None])
    return names, texts, mus, lvs, index


def finalize(ctx: StageContext, plan: Plan, results: dict[str, Any]) -> str:
    o = ctx.config.measures
    names, texts, mus, lvs, index = run_spaces(ctx)
    left_out = names[o.max_spaces:]
    if left_out:
        ctx.log(f"spaces: {len(names)} spaces from {o.source}; comparing the first {o.max_spaces} "
                f"(measures.max_spaces), leaving out {', '.join(left_out[:10])}{' ...' if len(left_out) > 10 else ''}")
        names, texts, mus, lvs = names[:o.max_spaces], texts[:o.max_spaces], mus[:o.max_spaces], lvs[:o.max_spaces]
    if len(names) < 2:
        raise RuntimeError(f"spaces: the {o.source} of this store give {len(names)} space(s); a comparison needs two "
                           "or more" + (f" (channels need I(U) >= {ctx.config.info_threshold} bits)"
                                        if o.source == "channels" else ""))
    bad = [n for n, m, v in zip(names, mus, lvs) if not (np.isfinite(m).all() and np.isfinite(v).all())]
    if bad:
        raise ValueError(f"spaces: NaN or infinite posteriors in {', '.join(bad[:10])}")
    ds = schema.spaces_dataset(names, texts, mus, lvs, source=o.source, item_index=index,
                               attrs={"left_out": json.dumps(left_out)})
    old = ctx.root[schema.GROUP].attrs.get("spaces_id") if schema.GROUP in ctx.root else None
    if old == ds.attrs["spaces_id"] and ctx.root[schema.GROUP].attrs.get("complete") is True:
        return f"{len(names)} spaces from {o.source}, unchanged"
    write_dataset(ctx.store_path, schema.GROUP, ds)
    if "measures" in ctx.root and ctx.root["measures"].attrs.get("spaces_id") != ds.attrs["spaces_id"]:
        set_complete(ctx.root["measures"], False)  # of other spaces: stale until the measures stage runs again
    dims = sorted(set(int(np.shape(m)[1]) for m in mus))
    return f"{len(names)} spaces from {o.source}, {np.shape(mus[0])[0]} items, dims {dims}"


STAGE = Stage(name="spaces", writes=schema.GROUP, finalize=finalize, cluster=False, whole=True, table="measures",
              options=ComparisonOptions)
