"""The structure stage: which channels recur across the ensemble (OPTICS on VI and -log NMI).

Channels carrying less than ``info_threshold`` bits are left out; OPTICS runs on a
precomputed distance (VI clipped at 0, or -log NMI) with its ordering, reachability and
cluster labels stored, and every cluster summarised: its size, how many models it spans,
its mean NMI with each ground-truth factor and its most central channel.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import xarray as xr
import zarr

from .. import store

__all__ = ["compute_structure", "distance_matrix", "MEASURES"]

MEASURES = ("vi", "nmi")


def distance_matrix(values: np.ndarray, measure: str) -> np.ndarray:
    """OPTICS distances from a square NMI or VI matrix: VI clipped at 0, or -log NMI.

    Undefined entries (NaN) get the largest finite distance; the result is symmetric
    with a zero diagonal.

    >>> distance_matrix(np.array([[1.0, 0.5], [0.5, 1.0]]), "nmi").round(3)
    array([[0.   , 0.693],
           [0.693, 0.   ]])
    >>> distance_matrix(np.array([[0.0, -0.01], [np.nan, 0.0]]), "vi")
    array([[0., 0.],
           [0., 0.]])
    """
    v = np.asarray(values, dtype=np.float64)
    if measure == "vi":
        d = np.clip(v, 0.0, None)
    elif measure == "nmi":
        with np.errstate(divide="ignore", invalid="ignore"):
            d = -np.log(np.clip(v, 1e-12, 1.0))
    else:
        raise ValueError(f"measure must be 'vi' or 'nmi', got {measure!r}")
    finite = np.isfinite(d)
    fill = d[finite].max() if finite.any() else 1.0
    d = np.where(finite, d, fill)
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, 0.0)
    return d


def similarity(values: np.ndarray, measure: str) -> np.ndarray:
    """What the figures show: exp(-VI) or NMI, in [0, 1]."""
    v = np.asarray(values, dtype=np.float64)
    return np.exp(-np.clip(v, 0.0, None)) if measure == "vi" else np.clip(v, 0.0, 1.0)


def _optics(d: np.ndarray, min_samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.cluster import OPTICS

    n = d.shape[0]
    if n < 2:
        return np.arange(n), np.full(n, np.inf), np.full(n, -1)
    fit = OPTICS(min_samples=max(2, min(min_samples, n)), metric="precomputed").fit(d)
    return fit.ordering_, fit.reachability_, fit.labels_


def compute_structure(config: Any) -> str:
    """Run OPTICS on the channels above threshold and write the ``structure`` group.

    Returns a one-line note for the run summary.
    """
    t0 = time.perf_counter()
    path = str(config.store)
    root = zarr.open_group(path, mode="a", zarr_format=3)
    for need in ("channels", "pairs"):
        if not store.is_complete(root, need):
            raise RuntimeError(f"the {need!r} stage of {path} is not complete; run it before 'structure'")
    channels = xr.open_zarr(path, group="channels", consolidated=False)
    pairs = xr.open_zarr(path, group="pairs", consolidated=False)
    info = channels["info"].values
    keep = np.isfinite(info) & (info >= config.info_threshold)
    model_idx, channel_idx = np.nonzero(keep)
    n_units = model_idx.size
    n_models = info.shape[0]
    min_samples = config.min_samples or max(2, min(20, n_models // 2))

    nmi_all = pairs["nmi"].values
    vi_all = pairs["vi"].values
    sub = {
        "nmi": nmi_all[model_idx, channel_idx][:, model_idx, channel_idx],
        "vi": vi_all[model_idx, channel_idx][:, model_idx, channel_idx],
    }
    nmi_factor = channels["nmi_factor"].values[model_idx, channel_idx]  # (unit, factor)
    factors = [str(f) for f in channels["factor"].values]

    orders, reach, labels = [], [], []
    summaries: list[dict[str, Any]] = []
    for measure in MEASURES:
        order, r, lab = _optics(distance_matrix(sub[measure], measure), min_samples)
        orders.append(order)
        reach.append(r)
        labels.append(lab)
        sim = similarity(sub[measure], measure)
        rows = []
        for k in range(int(lab.max()) + 1 if lab.size else 0):
            members = np.flatnonzero(lab == k)
            within = sim[np.ix_(members, members)]
            central = members[int(np.argmax(within.mean(axis=1)))]
            mean_nmi = np.nanmean(nmi_factor[members], axis=0) if members.size else np.full(len(factors), np.nan)
            rows.append(dict(size=members.size, models=len(set(model_idx[members].tolist())), central=central,
                             nmi_factor=mean_nmi, coherence=float(within.mean())))
        summaries.append(rows)
    n_clusters = max([len(s) for s in summaries] + [0])

    def cluster_array(key: str, fill: Any, dtype: Any) -> np.ndarray:
        out = np.full((len(MEASURES), n_clusters), fill, dtype=dtype)
        for m, rows in enumerate(summaries):
            for k, row in enumerate(rows):
                out[m, k] = row[key]
        return out

    cluster_nmi = np.full((len(MEASURES), n_clusters, len(factors)), np.nan)
    for m, rows in enumerate(summaries):
        for k, row in enumerate(rows):
            cluster_nmi[m, k] = row["nmi_factor"]
    best = np.full((len(MEASURES), n_clusters), "", dtype=object)
    for m, rows in enumerate(summaries):
        for k, row in enumerate(rows):
            if np.isfinite(row["nmi_factor"]).any():
                best[m, k] = factors[int(np.nanargmax(row["nmi_factor"]))]

    model_names = np.array([str(m) for m in channels["model"].values.tolist()], dtype=object)
    ds = xr.Dataset(
        {
            "info": ("unit", info[model_idx, channel_idx], {"units": "bits", "long_name": "I(U) of the kept channels"}),
            "nmi_factor": (("unit", "factor"), nmi_factor, {"units": "1"}),
            "order": (("measure", "position"), np.stack(orders) if n_units else np.zeros((2, 0), int),
                      {"long_name": "OPTICS ordering: the unit at each position"}),
            "reachability": (("measure", "unit"), np.stack(reach) if n_units else np.zeros((2, 0)),
                             {"long_name": "OPTICS reachability distance of each unit",
                              "units_vi": "bits", "units_nmi": "-log NMI"}),
            "label": (("measure", "unit"), np.stack(labels) if n_units else np.zeros((2, 0), int),
                      {"long_name": "OPTICS cluster label (-1: noise)"}),
            "cluster_size": (("measure", "cluster"), cluster_array("size", 0, np.int64)),
            "cluster_models": (("measure", "cluster"), cluster_array("models", 0, np.int64),
                               {"long_name": "number of models the cluster spans"}),
            "cluster_central_unit": (("measure", "cluster"), cluster_array("central", -1, np.int64),
                                     {"long_name": "the unit most similar on average to the other members"}),
            "cluster_coherence": (("measure", "cluster"), cluster_array("coherence", np.nan, np.float64),
                                  {"long_name": "mean within-cluster similarity (exp(-VI) or NMI)"}),
            "cluster_nmi_factor": (("measure", "cluster", "factor"), cluster_nmi,
                                   {"units": "1", "long_name": "mean NMI of the members with each factor"}),
            "cluster_best_factor": (("measure", "cluster"), best),
        },
        coords={
            "measure": np.array(MEASURES, dtype=object),
            "unit": np.arange(n_units),
            "model": ("unit", model_names[model_idx]),
            "model_index": ("unit", model_idx),
            "channel": ("unit", channel_idx),
            "factor": np.array(factors, dtype=object),
            "cluster": np.arange(n_clusters),
        },
        attrs={
            "info_threshold_bits": float(config.info_threshold),
            "min_samples": int(min_samples),
            "n_channels_total": int(info.size),
            "n_channels_kept": int(n_units),
            "distances": "vi: VI clipped at 0 (bits); nmi: -log NMI",
        },
    )
    if "structure" in root:
        del root["structure"]
    ds.to_zarr(path, group="structure", mode="w", consolidated=False, zarr_format=3)
    grp = zarr.open_group(path, path="structure", mode="r+", zarr_format=3)
    store.record_provenance(grp, config=config.as_dict(), elapsed_s=time.perf_counter() - t0)
    store.set_complete(grp, True)
    found = ", ".join(f"{m}: {len(s)} clusters" for m, s in zip(MEASURES, summaries))
    return f"{n_units} of {info.size} channels above {config.info_threshold} bits; {found}"
