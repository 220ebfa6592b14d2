"""The paper's channel-structure figure, from the ``structure``, ``pairs``, ``embeddings`` and
``traversals`` groups of a run store (nothing else is read).

Per measure (VI and NMI): the OPTICS reachability profile on top, each channel's NMI with
the ground-truth factors as a strip at the left (and, left of it, the NMI with its best factor with a 95%
interval from the jackknife's standard error, where the run has errors), the similarity matrix (exp(-VI) or NMI,
magma_r, 0..1) in OPTICS order; beside it, for each cluster, the stored traversal of its
most central channel, frames apart with the channel's value under each. A second figure
counts each cluster's members per hyperparameter value, with the spread the cluster stability gives the counts.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib import gridspec  # noqa: E402

from ..kernels import CLUSTER_MEASURES, similarity  # noqa: E402
from ..store import is_complete, open_dataset, open_group, open_run  # noqa: E402
from ..store.pairs import kept_rows, kept_submatrix  # noqa: E402

__all__ = ["draw_fingerprint_size_figure", "draw_run_figures", "draw_structure_figure", "draw_members_figure", "traversal_strip",
           "best_factor_nmi", "member_count_spread"]

GAP = 3


def traversal_strip(images: np.ndarray, *, gap: int = GAP, fill: float = 1.0) -> np.ndarray:
    """Frames (step, H, W, C) side by side with ``gap`` columns of ``fill`` between them: (H, W', C).

    >>> traversal_strip(np.zeros((3, 2, 2, 1)), gap=1)[..., 0]
    array([[0., 0., 1., 0., 0., 1., 0., 0.],
           [0., 0., 1., 0., 0., 1., 0., 0.]])
    """
    n, h, w, c = images.shape
    out = np.full((h, n * w + (n - 1) * gap, c), fill, dtype=np.float64)
    for k in range(n):
        out[:, k * (w + gap):k * (w + gap) + w] = images[k]
    return out


def _cluster_colors(n: int) -> list:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def _run_name(store_path: str) -> str:
    p = Path(store_path).resolve()
    return p.parent.name if p.name == "store.zarr" else p.name


def _draw_traversal(ax, trav: xr.Dataset | None, measure: str, k: int, title: str, color) -> None:
    ax.set_title(title, fontsize=7, color=color)
    ax.set_xticks([])
    ax.set_yticks([])
    if trav is None or not bool(trav["decoded"].sel(measure=measure).values[k]):
        why = "" if trav is None else str(trav["note"].sel(measure=measure).values[k])
        ax.text(0.5, 0.5, why or "no traversal", ha="center", va="center", transform=ax.transAxes, fontsize=7)
        return
    imgs = trav["images"].sel(measure=measure).values[k]
    strip = traversal_strip(imgs)
    ax.imshow(strip.squeeze(-1) if strip.shape[-1] == 1 else strip, cmap="gray", vmin=0, vmax=1)
    h, w = imgs.shape[1:3]
    values = trav["value"].sel(measure=measure).values[k]
    ax.set_xticks([j * (w + GAP) + w / 2 - 0.5 for j in range(len(values))])
    ax.set_xticklabels([f"{v:.2g}" for v in values], fontsize=6)
    ax.tick_params(length=0, pad=1)
    ax.set_ylabel(f"model {trav['model'].sel(measure=measure).values[k]}\n"
                  f"ch. {int(trav['channel'].sel(measure=measure).values[k])}", fontsize=6)


def draw_structure_figure(store_path: str | Path, measure: str, out: str | Path, *, traversals: bool = True) -> Path:
    """Draw the structure figure of ``measure`` ('vi' or 'nmi') into ``out`` (PNG)."""
    path = str(store_path)
    st = open_dataset(path, "structure").sel(measure=measure)
    model_idx, channel_idx = st["model_index"].values, st["channel"].values
    n = model_idx.size
    order = st["order"].values.astype(int)
    labels = st["label"].values.astype(int)
    n_clusters = int((st["cluster_size"].values > 0).sum())
    colors = _cluster_colors(max(n_clusters, 1))
    factors = [str(f) for f in st["factor"].values]
    sim = ordered_similarity(path, measure, model_idx[order], channel_idx[order]) if n else np.zeros((0, 0))
    strip = st["nmi_factor"].values[order] if n else np.zeros((0, len(factors)))
    best_nmi, best_se = best_factor_nmi(strip, _factor_se(path, model_idx[order], channel_idx[order], strip.shape))
    root = open_run(path, create=False)
    trav = open_dataset(path, "traversals").load() if traversals and is_complete(root, "traversals") else None

    show_trav = traversals and n_clusters > 0
    fig = plt.figure(figsize=(14 if show_trav else 8.5, 8))
    outer = gridspec.GridSpec(1, 2 if show_trav else 1, width_ratios=[3, 2.3] if show_trav else [1], wspace=0.06,
                              figure=fig)
    left = gridspec.GridSpecFromSubplotSpec(2, 3, subplot_spec=outer[0],
                                            width_ratios=[0.2, 0.05 * max(len(factors), 1), 1],
                                            height_ratios=[1, 4], wspace=0.03, hspace=0.03)
    ax_r = fig.add_subplot(left[0, 2])
    ax_b = fig.add_subplot(left[1, 0])
    ax_s = fig.add_subplot(left[1, 1])
    ax_m = fig.add_subplot(left[1, 2])
    _draw_best_factor(ax_b, best_nmi, best_se)

    reach = st["reachability"].values[order] if n else np.zeros(0)
    finite = np.isfinite(reach)
    top = reach[finite].max() * 1.1 if finite.any() else 1.0
    bar_colors = [colors[labels[u]] if labels[u] >= 0 else (0.6, 0.6, 0.6, 1.0) for u in order]
    ax_r.bar(np.arange(n), np.where(finite, reach, top), width=1.0, color=bar_colors)
    ax_r.set_xlim(-0.5, n - 0.5)
    ax_r.set_xticks([])
    ax_r.set_ylabel("reachability\n" + ("VI (bits)" if measure == "vi" else "-log NMI"))
    ax_r.set_title(
        f"{'exp(-VI)' if measure == 'vi' else 'NMI'} between the {n} channels above "
        f"{st.attrs.get('info_threshold_bits')} bits, in OPTICS order"
        + (f"\n(means of {-(-n // MATRIX_PIXELS)} x {-(-n // MATRIX_PIXELS)} blocks of channels)" if n > MATRIX_PIXELS else "")
        + (f"\ngrey veil: NMI not above the null floor ({float(st.attrs['null_level']):.0%} of unrelated channels)"
           if measure == "nmi" and "above_null" in st and 0 < n <= MATRIX_PIXELS else "")
    )

    ax_s.imshow(strip, aspect="auto", cmap="magma_r", vmin=0, vmax=1, interpolation="nearest")
    ax_s.set_xticks(range(len(factors)))
    ax_s.set_xticklabels(factors, rotation=90, fontsize=8)
    ax_s.set_yticks([])
    ax_s.set_ylabel("NMI with factors")

    im = ax_m.imshow(sim, cmap="magma_r", vmin=0, vmax=1, interpolation="nearest", aspect="auto",
                     extent=(-0.5, n - 0.5, n - 0.5, -0.5))  # in channel positions, however coarse the pixels
    veil = measure == "nmi" and "above_null" in st and 0 < n <= MATRIX_PIXELS
    if veil:  # pairs whose NMI is not above the null floor, under a grey veil
        below = st["above_null"].values[np.ix_(order, order)] == 0
        ax_m.imshow(np.where(below, 1.0, np.nan), cmap="Greys", vmin=0, vmax=2, alpha=0.55, interpolation="nearest",
                    aspect="auto", extent=(-0.5, n - 0.5, n - 0.5, -0.5))
    ax_m.set_xticks([])
    ax_m.set_yticks([])
    for k, (start, stop) in _label_runs(labels[order]):  # outline each cluster's run in the ordering
        ax_m.add_patch(plt.Rectangle((start - 0.5, start - 0.5), stop - start, stop - start, fill=False,
                                     edgecolor=colors[k], linewidth=1.5))
    cax = ax_m.inset_axes([0.0, -0.05, 0.35, 0.02])  # a horizontal colour bar under the matrix
    fig.colorbar(im, cax=cax, orientation="horizontal")
    cax.tick_params(labelsize=7)
    cax.set_xlabel("exp(-VI)" if measure == "vi" else "NMI", fontsize=8)

    if show_trav:
        right = gridspec.GridSpecFromSubplotSpec(n_clusters, 1, subplot_spec=outer[1], hspace=0.55)
        for k in range(n_clusters):
            best = str(st["cluster_best_factor"].values[k])
            nmi_best = np.nanmax(st["cluster_nmi_factor"].values[k]) if best else np.nan
            stable = float(st["cluster_stability"].values[k]) if "cluster_stability" in st else float("nan")
            title = (f"cluster {k}: {int(st['cluster_size'].values[k])} ch., {int(st['cluster_models'].values[k])} "
                     f"models; {best} (NMI {nmi_best:.2f})" + (f"; stability {stable:.2f}" if stable == stable else ""))
            _draw_traversal(fig.add_subplot(right[k]), trav, measure, k, title, colors[k])
    fig.suptitle(f"Channel structure of run {_run_name(path)} ({measure.upper()} clustering)", fontsize=11)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


MATRIX_PIXELS = 1500
"""Side of the largest similarity matrix a figure draws; more channels are averaged in square
blocks (a figure has no more pixels than this across the matrix anyway)."""


def ordered_similarity(path: str, measure: str, model_index: np.ndarray, channel_index: np.ndarray,
                       pixels: int = MATRIX_PIXELS) -> np.ndarray:
    """exp(-VI) or NMI between the channels (model_index[u], channel_index[u]) in that order, float32,
    averaged in blocks of ceil(n / pixels) channels when there are more than ``pixels``: at most
    pixels^2 values plus one row band of the stored matrix are held at a time."""
    pairs = open_group(path, "pairs")
    n = model_index.size
    step = -(-n // pixels)
    if step == 1:
        return similarity(kept_submatrix(pairs, measure, model_index, channel_index, dtype=np.float32),
                          measure).astype(np.float32)
    size = -(-n // step)
    out = np.empty((size, size), dtype=np.float32)
    starts = np.arange(0, n, step)
    band_rows = step * max(1, 512 // step)  # about 512 rows of the stored matrix at a time
    for u0 in range(0, n, band_rows):
        rows = slice(u0, min(n, u0 + band_rows))
        sims = similarity(kept_rows(pairs, measure, model_index, channel_index, rows), measure)
        finite = np.isfinite(sims)
        sums = np.add.reduceat(np.add.reduceat(np.where(finite, sims, 0.0), starts, axis=1),
                               np.arange(0, sims.shape[0], step), axis=0)
        counts = np.add.reduceat(np.add.reduceat(finite.astype(np.float64), starts, axis=1),
                                 np.arange(0, sims.shape[0], step), axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[u0 // step:u0 // step + sums.shape[0]] = sums / counts
    return out


def _factor_se(path: str, model_index: np.ndarray, channel_index: np.ndarray, shape: tuple) -> np.ndarray | None:
    """The channels' standard errors of NMI with the factors, (unit, factor) in the given order; None without errors."""
    channels = open_dataset(path, "channels")
    if "nmi_factor_se" not in channels or not model_index.size:
        return None
    se = channels["nmi_factor_se"].values[model_index, channel_index]
    return se if se.shape == shape else None


def best_factor_nmi(nmi_factor: np.ndarray, nmi_factor_se: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's NMI with its best-matching factor and that value's standard error (NaN without errors).

    >>> best_factor_nmi(np.array([[0.1, 0.7], [np.nan, np.nan]]), np.array([[0.01, 0.05], [0.1, 0.1]]))
    (array([0.7, nan]), array([0.05, nan]))
    """
    units = nmi_factor.shape[0]
    if units == 0 or nmi_factor.shape[1] == 0:
        return np.full(units, np.nan), np.full(units, np.nan)
    finite = np.isfinite(nmi_factor).any(axis=1)
    best = np.argmax(np.where(np.isfinite(nmi_factor), nmi_factor, -np.inf), axis=1)
    rows = np.arange(units)
    value = np.where(finite, nmi_factor[rows, best], np.nan)
    se = np.full(units, np.nan) if nmi_factor_se is None else np.where(finite, nmi_factor_se[rows, best], np.nan)
    return value, se


def _draw_best_factor(ax, value: np.ndarray, se: np.ndarray) -> None:
    """The best factor's NMI per channel (rows as the strip's), with +-1.96 SE where the run has errors."""
    n = value.size
    y = np.arange(n)
    errors = np.isfinite(se).any()
    ax.errorbar(value, y, xerr=1.96 * se if errors else None, fmt="o", ms=2, color="k", ecolor="0.45", elinewidth=0.8,
                capsize=0)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(0, 1)
    ax.set_yticks([])
    ax.tick_params(labelsize=7)
    ax.set_xlabel(best_factor_label(se), fontsize=7)


def best_factor_label(se: np.ndarray) -> str:
    """The best-factor strip's label: with errors, the 95% intervals' median half-width, which the label says
    since intervals as narrow as the dots cannot be seen.

    >>> best_factor_label(np.array([0.01, 0.012, np.nan]))
    "best factor's NMI\\n95% interval:\\nmedian ±0.022"
    >>> best_factor_label(np.full(2, np.nan))
    "best factor's NMI"
    """
    finite = se[np.isfinite(se)]
    if finite.size == 0:
        return "best factor's NMI"
    return f"best factor's NMI\n95% interval:\nmedian ±{1.96 * float(np.median(finite)):.2g}"


def member_count_spread(stability: np.ndarray) -> tuple[float, float]:
    """Expected number of members that stay in their cluster over redraws of the fingerprint set, and its standard
    deviation, if each member stays with its own probability ``stability`` (NaNs: unknown, left out).

    >>> member_count_spread(np.array([1.0, 1.0, 0.5, 0.5]))
    (3.0, 0.7071067811865476)
    """
    p = np.asarray(stability, dtype=np.float64)
    p = p[np.isfinite(p)]
    return float(p.sum()), float(np.sqrt(np.sum(p * (1.0 - p))))


def _label_runs(seq: np.ndarray) -> list[tuple[int, tuple[int, int]]]:
    """Maximal runs of one non-negative label in ``seq``: [(label, (start, stop))]."""
    runs = []
    start = 0
    for i in range(1, len(seq) + 1):
        if i == len(seq) or seq[i] != seq[start]:
            if seq[start] >= 0:
                runs.append((int(seq[start]), (start, i)))
            start = i
    return runs


def draw_members_figure(store_path: str | Path, measure: str, out: str | Path) -> Path:
    """Cluster members per hyperparameter value (and family), as grouped bars."""
    path = str(store_path)
    st = open_dataset(path, "structure").sel(measure=measure)
    emb = open_dataset(path, "embeddings")
    labels = st["label"].values.astype(int)
    model_idx = st["model_index"].values
    hp = np.asarray([f"{f} {h}={v:g}" for f, h, v in zip(emb["family"].values, emb["hyperparameter"].values,
                                                        emb["hyperparameter_value"].values)])
    settings = sorted(set(hp.tolist()))
    stability = st["member_stability"].values if "member_stability" in st else None
    n_clusters = int((st["cluster_size"].values > 0).sum())
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * max(n_clusters, 1) + 2), 3.2))
    width = 0.8 / max(len(settings), 1)
    for s_i, setting in enumerate(settings):
        models_with = np.flatnonzero(hp == setting)
        members = [(labels == k) & np.isin(model_idx, models_with) for k in range(n_clusters)]
        counts = [int(m.sum()) for m in members]
        x = np.arange(n_clusters) + s_i * width
        ax.bar(x, counts, width=width, label=setting)
        if stability is not None and n_clusters:
            kept, sd = np.array([member_count_spread(stability[m]) for m in members]).T
            ax.errorbar(x, kept, yerr=sd, fmt="_", ms=8, color="k", elinewidth=0.9, capsize=2)
    ax.set_xticks(np.arange(n_clusters) + 0.4 - width / 2)
    ax.set_xticklabels([f"{k}\n{st['cluster_best_factor'].values[k]}" for k in range(n_clusters)], fontsize=8)
    ax.set_xlabel("cluster (best-matching factor)")
    ax.set_ylabel("member channels")
    ax.legend(fontsize=7)
    ax.set_title(f"Cluster members per setting, run {_run_name(path)} ({measure.upper()} clustering)"
                 + ("\nblack: members expected to stay over redraws of the fingerprint set, +- 1 sd" if stability is not None
                    else ""), fontsize=9)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def draw_run_figures(store_path: str | Path, figure_dir: str | Path, *, traversals: bool = True) -> list[Path]:
    """Every structure figure of a finished run, as PNGs in ``figure_dir``."""
    root = open_run(store_path, create=False)
    if not is_complete(root, "structure"):
        raise RuntimeError(f"the structure stage of {store_path} is not complete; run it before 'figures'")
    figure_dir = Path(figure_dir)
    outs = []
    for measure in CLUSTER_MEASURES:
        outs.append(draw_structure_figure(store_path, measure, figure_dir / f"structure_{measure}.png",
                                          traversals=traversals))
        outs.append(draw_members_figure(store_path, measure, figure_dir / f"members_{measure}.png"))
    if "cluster_agreement" in open_dataset(str(store_path), "structure"):
        outs.append(draw_fingerprint_size_figure(store_path, figure_dir / "fingerprint_size.png"))
    return outs


def draw_fingerprint_size_figure(store_path: str | Path, out: str | Path) -> Path:
    """How the structure moves with the fingerprint set's size: NMI among the kept pairs against its value at N
    (median and largest change), and the clusters' agreement with those at N (adjusted Rand index)."""
    st = open_dataset(str(store_path), "structure").load()
    sizes = st["fingerprint_size"].values
    fig, (ax_n, ax_a) = plt.subplots(1, 2, figsize=(8.5, 3.2))
    ax_n.plot(sizes, st["nmi_change_median"].values, "o-", label="median")
    ax_n.plot(sizes, st["nmi_change_max"].values, "s--", label="largest")
    ax_n.set_xlabel("fingerprint images")
    ax_n.set_ylabel("|NMI - NMI at N|, kept pairs")
    ax_n.legend(frameon=False, fontsize=8)
    for measure, style in zip(CLUSTER_MEASURES, ("o-", "s--")):  # markers and dashes show both where they coincide
        ax_a.plot(sizes, st["cluster_agreement"].sel(measure=measure).values, style, label=f"by {measure.upper()}",
                  markerfacecolor="none" if style == "s--" else None, markersize=8 if style == "s--" else 6)
    ax_a.set_ylim(-0.05, 1.05)
    ax_a.set_xlabel("fingerprint images")
    ax_a.set_ylabel("clusters' ARI with those at N")
    ax_a.legend(frameon=False, fontsize=8)
    verdict = str(st.attrs.get("fingerprint_verdict", ""))
    fig.suptitle(verdict[0].upper() + verdict[1:] if verdict else "", fontsize=8, wrap=True)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out
