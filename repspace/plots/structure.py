"""The paper's channel-structure figure, from the ``structure``, ``pairs`` and ``channels`` groups.

Per measure (VI and NMI): the OPTICS reachability profile on top, each channel's NMI with
the ground-truth factors as a strip at the left, the similarity matrix (exp(-VI) or NMI,
magma_r, 0..1) in OPTICS order; beside it, for each cluster, a latent traversal of its
most central channel decoded by that model's own decoder. A second figure counts each
cluster's members per hyperparameter value.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib import gridspec  # noqa: E402

from ..pipeline.structure import MEASURES, similarity  # noqa: E402

__all__ = ["draw_run_figures", "draw_structure_figure", "traversal"]

N_STEPS = 7


def _open(path: str, group: str) -> xr.Dataset:
    return xr.open_zarr(path, group=group, consolidated=False)


def traversal(model_path: str, mu: np.ndarray, channel: int, *, n_steps: int = N_STEPS) -> np.ndarray | None:
    """Images decoded while one channel sweeps its range over the fingerprint set.

    mu : (channel, image) posterior means of the model on the fingerprint set. The other
    channels stay at the values of the image whose channel value is the median.
    Returns (n_steps, H, W, C) or None when the model has no decoder.
    """
    from ..models import load_encoder

    try:
        enc = load_encoder(model_path)
    except Exception:
        return None
    if not getattr(enc, "has_decoder", False):
        return None
    values = np.quantile(mu[channel], np.linspace(0.02, 0.98, n_steps))
    base_image = int(np.argsort(mu[channel])[mu.shape[1] // 2])
    latents = np.repeat(mu[:, base_image][None, :], n_steps, axis=0).astype(np.float32)
    latents[:, channel] = values
    return np.asarray(enc.decode(latents))


def _cluster_colors(n: int) -> list:
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def draw_structure_figure(store_path: str | Path, measure: str, out: str | Path, *, traversals: bool = True) -> Path:
    """Draw the structure figure of ``measure`` ('vi' or 'nmi') into ``out`` (PNG)."""
    path = str(store_path)
    st = _open(path, "structure").sel(measure=measure)
    pairs = _open(path, "pairs")
    emb = _open(path, "embeddings")
    model_idx, channel_idx = st["model_index"].values, st["channel"].values
    n = model_idx.size
    order = st["order"].values.astype(int)
    labels = st["label"].values.astype(int)
    n_clusters = int((st["cluster_size"].values > 0).sum())
    colors = _cluster_colors(max(n_clusters, 1))
    factors = [str(f) for f in st["factor"].values]

    values = pairs[measure].values[model_idx, channel_idx][:, model_idx, channel_idx] if n else np.zeros((0, 0))
    sim = similarity(values, measure)[np.ix_(order, order)] if n else np.zeros((0, 0))
    strip = st["nmi_factor"].values[order] if n else np.zeros((0, len(factors)))

    show_trav = traversals and n_clusters > 0
    fig = plt.figure(figsize=(13 if show_trav else 8.5, 8))
    outer = gridspec.GridSpec(1, 2 if show_trav else 1, width_ratios=[3, 2] if show_trav else [1], wspace=0.06, figure=fig)
    left = gridspec.GridSpecFromSubplotSpec(2, 2, subplot_spec=outer[0], width_ratios=[0.05 * max(len(factors), 1), 1],
                                            height_ratios=[1, 4], wspace=0.03, hspace=0.03)
    ax_r = fig.add_subplot(left[0, 1])
    ax_s = fig.add_subplot(left[1, 0])
    ax_m = fig.add_subplot(left[1, 1])

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
    )

    ax_s.imshow(strip, aspect="auto", cmap="magma_r", vmin=0, vmax=1, interpolation="nearest")
    ax_s.set_xticks(range(len(factors)))
    ax_s.set_xticklabels(factors, rotation=90, fontsize=8)
    ax_s.set_yticks([])
    ax_s.set_ylabel("NMI with factors")

    im = ax_m.imshow(sim, cmap="magma_r", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
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
        right = gridspec.GridSpecFromSubplotSpec(n_clusters, 1, subplot_spec=outer[1], hspace=0.35)
        for k in range(n_clusters):
            ax = fig.add_subplot(right[k])
            central = int(st["cluster_central_unit"].values[k])
            m_i, c_i = int(model_idx[central]), int(channel_idx[central])
            imgs = traversal(str(emb["path"].values[m_i]), emb["mu"].values[m_i], c_i)
            best = str(st["cluster_best_factor"].values[k])
            nmi_best = np.nanmax(st["cluster_nmi_factor"].values[k]) if best else np.nan
            title = (f"cluster {k}: {int(st['cluster_size'].values[k])} ch., {int(st['cluster_models'].values[k])} models; "
                     f"{best} (NMI {nmi_best:.2f})")
            ax.set_title(title, fontsize=7, color=colors[k])
            ax.set_xticks([])
            ax.set_yticks([])
            if imgs is None:
                ax.text(0.5, 0.5, "no decoder", ha="center", va="center", transform=ax.transAxes)
                continue
            strip_img = np.concatenate(list(imgs), axis=1)
            ax.imshow(strip_img.squeeze(-1) if strip_img.shape[-1] == 1 else strip_img, cmap="gray", vmin=0, vmax=1)
            ax.set_ylabel(f"model {emb['model'].values[m_i]}\nch. {c_i}", fontsize=6)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


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
    st = _open(path, "structure").sel(measure=measure)
    emb = _open(path, "embeddings")
    labels = st["label"].values.astype(int)
    model_idx = st["model_index"].values
    hp = np.asarray([f"{f} {h}={v:g}" for f, h, v in zip(emb["family"].values, emb["hyperparameter"].values,
                                                        emb["hyperparameter_value"].values)])
    settings = sorted(set(hp.tolist()))
    n_clusters = int((st["cluster_size"].values > 0).sum())
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * max(n_clusters, 1) + 2), 3.2))
    width = 0.8 / max(len(settings), 1)
    for s_i, setting in enumerate(settings):
        models_with = np.flatnonzero(hp == setting)
        counts = [int(np.isin(model_idx[labels == k], models_with).sum()) for k in range(n_clusters)]
        ax.bar(np.arange(n_clusters) + s_i * width, counts, width=width, label=setting)
    ax.set_xticks(np.arange(n_clusters) + 0.4 - width / 2)
    ax.set_xticklabels([f"{k}\n{st['cluster_best_factor'].values[k]}" for k in range(n_clusters)], fontsize=8)
    ax.set_xlabel("cluster (best-matching factor)")
    ax.set_ylabel("member channels")
    ax.legend(fontsize=7)
    ax.set_title(f"cluster members per setting ({measure.upper()} clustering)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


def draw_run_figures(store_path: str | Path, figure_dir: str | Path, *, traversals: bool = True) -> list[Path]:
    """Every figure of a finished run, as PNGs in ``figure_dir``."""
    import zarr

    group = zarr.open_group(str(store_path), mode="r")
    if "structure" not in group or group["structure"].attrs.get("complete") is not True:
        raise RuntimeError(f"the structure stage of {store_path} is not complete; run it before 'figures'")
    figure_dir = Path(figure_dir)
    outs = []
    for measure in MEASURES:
        outs.append(draw_structure_figure(store_path, measure, figure_dir / f"structure_{measure}.png", traversals=traversals))
        outs.append(draw_members_figure(store_path, measure, figure_dir / f"members_{measure}.png"))
    return outs
