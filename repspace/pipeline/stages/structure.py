"""The structure stage: which channels recur across the ensemble (OPTICS on VI and on -log NMI).

Channels carrying less than ``info_threshold`` bits are left out; OPTICS runs on a
precomputed distance (:func:`repspace.kernels.distance_matrix`) between the kept channels,
read from ``pairs`` as a submatrix, and every cluster is summarised: its size, how many models
it spans, its mean NMI with each ground-truth factor and its most central channel. Runs in
the driving process; the group is replaced whole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from ..._checks import check_types
from ...kernels import CLUSTER_MEASURES, distance_matrix, optics_ordering, similarity
from ...kernels.null import NullFloor, permutation_null
from ...kernels.stability import cluster_stability, perturbed
from ...store import embeddings as emb_schema
from ...store import StoreError, open_dataset, open_group, write_dataset
from ...store import pairs as pairs_schema
from ...store import structure as schema
from ...store.channels import informative
from ..stage import Plan, Stage, StageContext


STABILITY_STREAM = (3,)
"""Spawn key of the stability draws' generator (from the run's seed)."""
NULL_STREAM = (4,)
"""Spawn key of the null's sample of channels and permutation of the images."""


@dataclasses.dataclass(frozen=True)
class StructureOptions:
    """The ``[structure]`` table.

    Attributes
    ----------
    stability_draws : how many times the clusters are found again from the pairs' values redrawn within
        their standard errors (:mod:`repspace.kernels.stability`; 0: no stability, as without errors).
    null_channels : the kept channels (a seeded sample) whose NMI with each other, one side's images
        permuted, measures the floor of unrelated channels (:mod:`repspace.kernels.null`; 0: no null).
    null_level : the quantile of that null NMI a pair must exceed to count as above it.
    """

    stability_draws: int = 20
    null_channels: int = 64
    null_level: float = 0.95

    def __post_init__(self) -> None:
        check_types(self, "")
        if self.stability_draws < 0:
            raise ValueError(f"stability_draws must be 0 or more, got {self.stability_draws}")
        if self.null_channels != 0 and self.null_channels < 2:
            raise ValueError(f"null_channels must be 0 (no null) or at least 2, got {self.null_channels}")
        if not 0.5 <= self.null_level < 1.0:
            raise ValueError(f"null_level must be in [0.5, 1), got {self.null_level}")


def optics(d: np.ndarray, min_samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OPTICS on a precomputed distance matrix: (ordering, reachability, labels).

    The ordering is :func:`repspace.kernels.optics_ordering`; the clusters come from
    scikit-learn's ``cluster_optics_xi`` on it (xi = 0.05, its default): together the same result as
    scikit-learn's ``OPTICS(min_samples, metric="precomputed")`` (tested equal).
    """
    from sklearn.cluster import cluster_optics_xi

    order = optics_ordering(d, min_samples)
    if d.shape[0] < 2:
        return order.ordering, order.reachability, np.full(d.shape[0], -1)
    labels, _ = cluster_optics_xi(reachability=order.reachability, predecessor=order.predecessor,
                                  ordering=order.ordering, min_samples=order.min_samples, min_cluster_size=None,
                                  xi=0.05, predecessor_correction=True)
    return order.ordering, order.reachability, labels


ENOUGH_ARI, ENOUGH_NMI_CHANGE = 0.9, 0.02
"""The fingerprint set is called large enough when, from its half to all of it, the clusters agree this well
(adjusted Rand index, by VI and by NMI) and NMI among the kept pairs moves this little (median)."""


def fingerprint_verdict(sizes: list[int], change: tuple[float, float], agreement: list[float]) -> str:
    """One sentence on whether the fingerprint set is large enough, from the largest subset (``sizes[-2]``
    images) to all of it (``sizes[-1]``): the NMI ``change`` among the kept pairs (median, largest) and the
    clusters' ``agreement`` (ARI by each of :data:`CLUSTER_MEASURES`).

    >>> fingerprint_verdict([60, 150, 300], (0.004, 0.03), [1.0, 1.0])
    'from 150 to 300 images NMI moved by 0.004 (median), at most 0.03, and the clusters stayed the same (ARI 1.00 by VI, 1.00 by NMI): N = 300 is enough for this ensemble'
    >>> fingerprint_verdict([60, 150, 300], (0.05, 0.3), [1.0, 1.0]).split(": ")[-1]
    'N = 300 is enough for the clusters but not yet for the values; try 600 or more'
    >>> fingerprint_verdict([60, 150, 300], (0.05, 0.3), [0.4, 0.9]).split(" clusters ")[1]
    'changed (ARI 0.40 by VI, 0.90 by NMI): N = 300 may be too small; try 600 or more'
    """
    half, n = sizes[-2], sizes[-1]
    ari = ", ".join(f"{a:.2f} by {m.upper()}" for a, m in zip(agreement, CLUSTER_MEASURES))
    moved = f"from {half} to {n} images NMI moved by {change[0]:.3f} (median), at most {change[1]:.2g}, and the clusters"
    if min(agreement) < ENOUGH_ARI:
        return f"{moved} changed (ARI {ari}): N = {n} may be too small; try {2 * n} or more"
    if change[0] > ENOUGH_NMI_CHANGE:
        return (f"{moved} stayed the same (ARI {ari}): N = {n} is enough for the clusters but not yet for the values; "
                f"try {2 * n} or more")
    return f"{moved} stayed the same (ARI {ari}): N = {n} is enough for this ensemble"


def cluster_labels(values: np.ndarray, measure: str, min_samples: int) -> np.ndarray:
    """The OPTICS labels of channels from their NMI or VI (unit, unit), as the structure clusters them."""
    return optics(distance_matrix(values, measure), min_samples)[2]


def _pairs_within(marks: np.ndarray, labels: np.ndarray, n_clusters: int) -> np.ndarray:
    """Per cluster, the fraction of its members' pairs (i != j) that ``marks`` (unit, unit; 0 or 1) marks."""
    out = np.full(n_clusters, np.nan)
    for k in range(n_clusters):
        members = np.flatnonzero(labels == k)
        if members.size > 1:
            block = marks[np.ix_(members, members)]
            out[k] = (block.sum() - np.trace(block)) / (members.size * (members.size - 1))
    return out


def _clusters(values: np.ndarray, measure: str, labels: np.ndarray, model_idx: np.ndarray,
              nmi_factor: np.ndarray, nmi_factor_se: np.ndarray | None = None) -> list[dict]:
    rows = []
    for k in range(int(labels.max()) + 1 if labels.size else 0):
        members = np.flatnonzero(labels == k)
        # each member's mean similarity to the cluster, 1,024 members at a time (a cluster may hold most channels)
        row_means = np.concatenate([similarity(values[np.ix_(members[r0:r0 + 1024], members)], measure).mean(axis=1)
                                    for r0 in range(0, members.size, 1024)])
        rows.append(dict(size=members.size, models=len(set(model_idx[members].tolist())),
                         central=members[int(np.argmax(row_means))],
                         nmi_factor=np.nanmean(nmi_factor[members], axis=0), coherence=float(row_means.mean()),
                         nmi_factor_se=(np.nanmean(nmi_factor_se[members], axis=0) if nmi_factor_se is not None
                                        else np.full(nmi_factor.shape[1], np.nan))))
    return rows


def structure_dataset(information: np.ndarray, nmi_factor_all: np.ndarray, factors: list[str], model_names: np.ndarray,
                      read: Callable[[str], np.ndarray], keep: np.ndarray, info_threshold: float,
                      min_samples: int, read_se: Callable[[str], np.ndarray | None] | None = None,
                      draws: int = 0, seed: int = 0, nmi_factor_se_all: np.ndarray | None = None,
                      read_subset: Callable[[str, int], np.ndarray] | None = None,
                      subset_sizes: tuple[int, ...] = (), n_images: int = 0,
                      null: NullFloor | None = None) -> xr.Dataset:
    """The ``structure`` group's Dataset from the kept channels' NMI and VI, ``read(measure)`` (unit, unit),
    read one measure at a time; with their standard errors (``read_se``) and ``draws`` > 0, each clustering's
    stability over that many draws of the values within their errors; with ``read_subset(measure, s)`` the
    same on nested subsets of ``subset_sizes`` of the ``n_images`` images, and how much of the structure moved
    between them; with a ``null`` floor, which kept pairs' NMI lies above it."""
    model_idx, channel_idx = np.nonzero(keep)
    n_units, n_f = model_idx.size, len(factors)
    nmi_factor = nmi_factor_all[model_idx, channel_idx]
    nmi_factor_se = None if nmi_factor_se_all is None else nmi_factor_se_all[model_idx, channel_idx]
    orders, reach, labels, summaries, stable = [], [], [], [], []
    above = None
    agreement: dict[str, list[float]] = {m: [] for m in CLUSTER_MEASURES}
    changes: list[tuple[float, float]] = []
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=STABILITY_STREAM))
    for measure in CLUSTER_MEASURES:
        v = read(measure)
        d = distance_matrix(v, measure)
        order, r, lab = optics(d, min_samples)
        del d
        orders.append(order)
        reach.append(r)
        labels.append(lab)
        summaries.append(_clusters(v, measure, lab, model_idx, nmi_factor, nmi_factor_se))
        se = read_se(measure) if read_se is not None and draws > 0 and n_units > 1 else None
        if se is not None:
            bounds = (0.0, 1.0) if measure == "nmi" else (0.0, None)

            def draw(g: np.random.Generator, v=v, se=se, bounds=bounds, measure=measure) -> np.ndarray:
                return cluster_labels(perturbed(v, se, g, *bounds), measure, min_samples)

            stable.append(cluster_stability(lab, draw, draws, rng))
        else:
            stable.append(None)
        if null is not None and measure == "nmi":
            geometric = np.sqrt(np.outer(information[model_idx, channel_idx], information[model_idx, channel_idx]))
            above = (v > null(geometric)).astype(np.int8)
        if read_subset is not None and subset_sizes and n_units > 1:
            from sklearn.metrics import adjusted_rand_score

            upper = np.triu_indices(n_units, 1)
            for k in range(len(subset_sizes)):
                w = read_subset(measure, k)
                agreement[measure].append(adjusted_rand_score(lab, cluster_labels(w, measure, min_samples)))
                if measure == "nmi":
                    change = np.abs(w[upper] - v[upper])
                    change = change[np.isfinite(change)]
                    changes.append((float(np.median(change)), float(change.max())) if change.size else (np.nan, np.nan))
                del w
        del v
    n_clusters = max([len(s) for s in summaries] + [0])
    shape = (len(CLUSTER_MEASURES), n_clusters)
    size, models, central = np.zeros(shape, np.int64), np.zeros(shape, np.int64), np.full(shape, -1, np.int64)
    coherence, cluster_nmi = np.full(shape, np.nan), np.full(shape + (n_f,), np.nan)
    cluster_nmi_se = np.full(shape + (n_f,), np.nan)
    best = np.full(shape, "", dtype=object)
    cluster_stable, member_stable = np.full(shape, np.nan), np.full((len(CLUSTER_MEASURES), n_units), np.nan)
    for m, st in enumerate(stable):
        if st is not None:
            cluster_stable[m, :st.cluster.size], member_stable[m] = st.cluster, st.member
    for m, rows in enumerate(summaries):
        for k, row in enumerate(rows):
            size[m, k], models[m, k], central[m, k] = row["size"], row["models"], row["central"]
            coherence[m, k], cluster_nmi[m, k] = row["coherence"], row["nmi_factor"]
            cluster_nmi_se[m, k] = row["nmi_factor_se"]
            if np.isfinite(row["nmi_factor"]).any():
                best[m, k] = factors[int(np.nanargmax(row["nmi_factor"]))]
    empty = np.zeros((len(CLUSTER_MEASURES), 0))
    sizes: list[int] = []
    extra: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    null_coords: dict[str, Any] = {}
    if above is not None:
        within = np.stack([_pairs_within(above, lab, n_clusters) for lab in labels])
        off = ~np.eye(n_units, dtype=bool)
        extra.update({"above_null": above, "null_floor": null.floor, "null_information": null.information,
                      "cluster_above_null": within})
        attrs.update({"null_level": null.level, "null_pairs": null.n_pairs,
                      "pairs_above_null": float(above[off].mean()) if off.any() else float("nan")})
        null_coords = {"unit_b": np.arange(n_units)}
    if changes:
        sizes = [*subset_sizes, n_images]
        extra |= {"nmi_change_median": [c[0] for c in changes] + [0.0],
                  "nmi_change_max": [c[1] for c in changes] + [0.0],
                  "cluster_agreement": [agreement[m] + [1.0] for m in CLUSTER_MEASURES]}
        attrs["fingerprint_verdict"] = fingerprint_verdict(sizes, changes[-1], [agreement[m][-1] for m in CLUSTER_MEASURES])
    values = {"information": information[model_idx, channel_idx], "nmi_factor": nmi_factor,
              "order": np.stack(orders) if n_units else empty.astype(int),
              "reachability": np.stack(reach) if n_units else empty,
              "label": np.stack(labels) if n_units else empty.astype(int),
              "cluster_size": size, "cluster_models": models, "cluster_central_unit": central,
              "cluster_coherence": coherence, "cluster_nmi_factor": cluster_nmi, "cluster_nmi_factor_se": cluster_nmi_se,
              "cluster_best_factor": best, "cluster_stability": cluster_stable, "member_stability": member_stable,
              **extra}
    coords = {"measure": np.array(CLUSTER_MEASURES, dtype=object), "unit": np.arange(n_units),
              "model": ("unit", model_names[model_idx]), "model_index": ("unit", model_idx),
              "channel": ("unit", channel_idx), "factor": np.array(factors, dtype=object),
              "cluster": np.arange(n_clusters),
              **({"fingerprint_size": np.asarray(sizes, dtype=np.int64)} if sizes else {}), **null_coords}
    return schema.dataset(values, coords, {
        "info_threshold_bits": float(info_threshold), "min_samples": int(min_samples),
        "n_channels_total": int(information.size), "n_channels_kept": int(n_units),
        "distances": "vi: VI clipped at 0 (bits); nmi: -log NMI",
        "stability_draws": int(draws) if any(st is not None for st in stable) else 0, **attrs})


def null_floor(store_path: Any, model_idx: np.ndarray, channel_idx: np.ndarray, options: StructureOptions,
               seed: int) -> NullFloor | None:
    """The null floor (:func:`repspace.kernels.null.permutation_null`) from a seeded sample of the kept channels
    (None without a null, or with fewer than two kept channels)."""
    if options.null_channels == 0 or model_idx.size < 2:
        return None
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=NULL_STREAM))
    pick = np.sort(rng.choice(model_idx.size, size=min(options.null_channels, model_idx.size), replace=False))
    emb = open_group(store_path, emb_schema.FINGERPRINT)
    mu = np.stack([np.asarray(emb["mu"][model_idx[u], channel_idx[u]]) for u in pick])
    logvar = np.stack([np.asarray(emb["logvar"][model_idx[u], channel_idx[u]]) for u in pick])
    return permutation_null(mu, logvar, rng, level=options.null_level)


def finalize(ctx: StageContext, plan: Plan, results: dict[str, Any]) -> str:
    c = ctx.config
    channels = open_dataset(ctx.store_path, "channels")
    information = channels["information"].values
    keep = informative(channels, c.info_threshold)
    model_idx, channel_idx = np.nonzero(keep)
    min_samples = c.min_samples or max(2, min(20, information.shape[0] // 2))
    pairs = open_group(ctx.store_path, pairs_schema.GROUP)
    pairs_schema.check_covers(pairs, c.info_threshold, "structure")

    model_names = np.array([str(m) for m in channels["model"].values.tolist()], dtype=object)

    def values(measure: str) -> np.ndarray:  # one measure at a time, as stored (float32)
        matrix = pairs_schema.kept_submatrix(pairs, measure, model_idx, channel_idx, dtype=np.float32)
        # a channel's VI with itself (0) exists whenever the pairs stage kept the channel too
        missing = np.flatnonzero(np.isnan(np.diagonal(matrix))) if measure == "vi" else np.empty(0, int)
        if missing.size:
            named = ", ".join(f"model {model_names[model_idx[u]]} channel {channel_idx[u]}" for u in missing[:3])
            raise StoreError(f"the pairs stage left out {missing.size} of the {model_idx.size} channels the structure "
                             f"keeps ({named}{', ...' if missing.size > 3 else ''}): the channels changed after the "
                             "pairs were computed; rerun the pairs stage (only the blocks whose channels changed "
                             "are computed)")
        return matrix
    null = null_floor(ctx.store_path, model_idx, channel_idx, c.structure, c.seed)
    errors = {m: f"{m}_se" for m in CLUSTER_MEASURES if f"{m}_se" in pairs}
    subsets = tuple(int(x) for x in pairs.attrs.get("subset_sizes", ())) if "nmi_subset" in pairs else ()

    def subset_of(measure: str, s: int) -> np.ndarray:
        return pairs_schema.kept_submatrix(pairs, f"{measure}_subset", model_idx, channel_idx, dtype=np.float32,
                                           leading=s)

    def errors_of(measure: str) -> np.ndarray | None:
        name = errors.get(measure)
        return None if name is None else pairs_schema.kept_submatrix(pairs, name, model_idx, channel_idx,
                                                                     dtype=np.float32)
    ds = structure_dataset(information, channels["nmi_factor"].values, [str(f) for f in channels["factor"].values],
                           model_names, values, keep, c.info_threshold, min_samples, errors_of,
                           c.structure.stability_draws, c.seed,
                           channels["nmi_factor_se"].values if "nmi_factor_se" in channels else None,
                           subset_of if subsets else None, subsets,
                           int(open_group(ctx.store_path, "fingerprint")["index"].shape[0]), null)
    write_dataset(ctx.store_path, schema.GROUP, ds)
    found = ", ".join(f"{m}: {int((ds['cluster_size'].sel(measure=m) > 0).sum())} clusters" for m in CLUSTER_MEASURES)
    if "pairs_above_null" in ds.attrs:
        found += (f"; {ds.attrs['pairs_above_null']:.0%} of the kept pairs' NMI above the null floor "
                  f"({ds.attrs['null_level']:.0%})")
    if "fingerprint_verdict" in ds.attrs:
        found += "; " + ds.attrs["fingerprint_verdict"]
    if ds.attrs["stability_draws"]:
        found += (f"; stability over {ds.attrs['stability_draws']} redraws: "
                  + ", ".join(f"{m} {np.nanmin(ds['cluster_stability'].sel(measure=m).values):.2f}-"
                              f"{np.nanmax(ds['cluster_stability'].sel(measure=m).values):.2f}"
                              for m in CLUSTER_MEASURES if np.isfinite(ds['cluster_stability'].sel(measure=m).values).any()))
    return f"{model_idx.size} of {information.size} channels above {c.info_threshold} bits; {found}"


STAGE = Stage(name="structure", writes=schema.GROUP, needs=("channels", "pairs", "embeddings"), finalize=finalize, cluster=False,
              whole=True, table="structure", options=StructureOptions, figures="repspace.plots.structure:draw_run_figures",
              report="repspace.plots.report:structure_section")
