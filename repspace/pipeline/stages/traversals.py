"""The traversals stage: for every cluster of the structure, its most central channel swept over its
range and decoded by its model's own decoder; stored (group ``traversals``) for the figures.

One task per cluster and measure; a model without a decoder (an ONNX encoder given none, a posterior
file) gives NaN images, ``decoded = False`` and the reason in ``note``, which the stage's report
line repeats. The group is replaced whole, and only when what it shows changed: the clusters' central
channels, their models' posteriors (their encoding stamps) or the encoder options; else a rerun keeps it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ...kernels import CLUSTER_MEASURES
from ...models import is_posterior_file, load_encoder
from ...store import is_complete, open_dataset, open_group, stamp, write_dataset
from ...store import embeddings as emb_schema
from ...store import traversals as schema
from ..stage import Block, Plan, Stage, StageContext

N_STEPS = 7


def traversal_latents(mu: np.ndarray, channel: int, n_steps: int = N_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """Latent vectors (step, channel) that sweep ``channel`` from its 2nd to 98th percentile over the
    images of ``mu`` (channel, image), the other channels held at the values of the image whose
    channel value is the median; and the swept values (step,).

    >>> mu = np.array([[0.0, 1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0, 9.0]])
    >>> z, v = traversal_latents(mu, 0, n_steps=3)
    >>> z.astype(float).round(2).tolist()
    [[0.08, 7.0], [2.0, 7.0], [3.92, 7.0]]
    """
    values = np.quantile(mu[channel], np.linspace(0.02, 0.98, n_steps))
    base_image = int(np.argsort(mu[channel])[mu.shape[1] // 2])
    latents = np.repeat(mu[:, base_image][None, :], n_steps, axis=0).astype(np.float32)
    latents[:, channel] = values
    return latents, values


def task(store_path: str, model_index: int, channel: int, n_steps: int,
         options: dict[str, Any] | None = None) -> dict[str, Any]:
    emb = open_group(store_path, emb_schema.FINGERPRINT)
    mu = np.asarray(emb["mu"][model_index])
    latents, values = traversal_latents(mu, channel, n_steps)
    try:
        path = str(emb["path"][model_index])
        if not path or is_posterior_file(path):
            return {"values": values, "images": None, "why": "posteriors from a file: no model to decode with"}
        enc = load_encoder(path, options=options)
    except Exception as err:  # a model that cannot be loaded gets no traversal; the figure says so
        return {"values": values, "images": None, "why": f"{type(err).__name__}: {err}"}
    if not enc.has_decoder:
        return {"values": values, "images": None, "why": enc.no_decoder}
    return {"values": values, "images": np.asarray(enc.decode(latents), np.float32), "why": ""}


def plan(ctx: StageContext) -> Plan:
    st = open_dataset(ctx.store_path, "structure")
    blocks = []
    for m, measure in enumerate(CLUSTER_MEASURES):
        sizes = st["cluster_size"].values[m]
        for k in np.flatnonzero(sizes > 0):
            unit = int(st["cluster_central_unit"].values[m, k])
            model, channel = int(st["model_index"].values[unit]), int(st["channel"].values[unit])
            blocks.append(Block(name=f"{measure}-cluster{k}", marker=None, extent=(m, int(k)),
                                args=(model, channel, N_STEPS, dataclasses.asdict(ctx.config.models.encoder))))
    status = emb_schema.Layout(ctx.root[emb_schema.FINGERPRINT]).status()
    shown = stamp((st.sizes["cluster"], N_STEPS, dataclasses.asdict(ctx.config.models.encoder),
                   [(b.extent, str(st["model"].values[int(st["cluster_central_unit"].values[b.extent])]), b.args[1],
                     status[b.args[0]].tolist()) for b in blocks]))
    if is_complete(ctx.root, schema.GROUP) and ctx.root[schema.GROUP].attrs.get("shown_stamp") == shown:
        return Plan(blocks=[], state=None, note=f"{len(blocks)} cluster traversals, unchanged")
    return Plan(blocks=blocks, state=(st, shown))


def finalize(ctx: StageContext, plan: Plan, results: dict[str, Any]) -> str:
    if plan.state is None:
        return plan.note
    st, shown = plan.state
    h, w, colors = (int(s) for s in ctx.root["fingerprint"]["images"].shape[1:])
    n_clusters = st.sizes["cluster"]
    shape = (len(CLUSTER_MEASURES), n_clusters)
    images = np.full(shape + (N_STEPS, h, w, colors), np.nan, np.float32)
    values = np.full(shape + (N_STEPS,), np.nan)
    decoded = np.zeros(shape, bool)
    model = np.full(shape, "", dtype=object)
    channel = np.full(shape, -1, np.int64)
    note = np.full(shape, "", dtype=object)
    for block in plan.blocks:
        m, k = block.extent
        r = results[block.name]
        values[m, k] = r["values"]
        model[m, k] = str(st["model"].values[int(st["cluster_central_unit"].values[m, k])])
        channel[m, k] = block.args[1]
        note[m, k] = r["why"]
        if r["images"] is not None:
            images[m, k] = np.asarray(r["images"]).reshape(N_STEPS, h, w, colors)
            decoded[m, k] = True
    ds = schema.dataset({"images": images, "value": values, "decoded": decoded, "model": model, "channel": channel,
                         "note": note},
                        coords={"measure": np.array(CLUSTER_MEASURES, dtype=object), "cluster": np.arange(n_clusters),
                                "step": np.arange(N_STEPS)},
                        attrs={"structure_run_id": str(st.attrs.get("run_id", "")), "shown_stamp": shown})
    write_dataset(ctx.store_path, schema.GROUP, ds)
    why = sorted({str(n) for n in note[~decoded & (model != "")]})
    reasons = f" (not decoded: {'; '.join(why[:3])}{' ...' if len(why) > 3 else ''})" if why else ""
    return f"{int(decoded.sum())} of {len(plan.blocks)} cluster traversals decoded{reasons}"


STAGE = Stage(name="traversals", writes=schema.GROUP, needs=("structure", "embeddings"), plan=plan, task=task,
              finalize=finalize, whole=True)
