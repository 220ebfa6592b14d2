"""The whole-latent-space figure, read only from the ``latents`` group of a run store.

Several hyperparameter values: I(U;X)/H(X), NMI and VI per value, one line per (dataset, family),
with error bars (standard errors of the groups' inverse-variance means).

One value per (dataset, family) (a single setting): I(U;X) per model with error bars and each
group's mean as a band, and the model-by-model NMI and VI matrices, each cell annotated with its
value and standard error, the group means with their errors in the panels' titles.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["draw_latents_figure", "latents_figure"]

_PANELS = (
    ("information_fraction_mean", "I(U;X) / H(X)"),
    ("nmi_mean", "NMI between models"),
    ("vi_mean", "VI between models (bits)"),
)
ANNOTATE_MAX_MODELS = 14
"""Matrices of at most this many models carry each cell's value and SE as text."""


def latents_figure(store: str | Path) -> Any:
    """The figure of a run's ``latents`` group, as a :class:`matplotlib.figure.Figure` (not saved).

    When every (dataset, family) has one hyperparameter value, the per-model view (axes labelled
    ``"information"``, ``"nmi"``, ``"vi"``); otherwise one panel per quantity against the value
    (axes labelled ``"information_fraction_mean"``, ``"nmi_mean"``, ``"vi_mean"``).
    """
    from ..store import open_dataset

    ds = open_dataset(store, "latents").load()
    run = Path(store).resolve()
    run_name = run.parent.name if run.name == "store.zarr" else run.name
    if one_setting(ds):
        return _per_model_figure(ds, run_name)
    return _per_setting_figure(ds, run_name)


def draw_latents_figure(store: str | Path, path: str | Path, *, dpi: int = 120) -> Path:
    """Draw :func:`latents_figure` into ``path`` (PNG, PDF or SVG by suffix). Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    latents_figure(store).savefig(path, dpi=dpi)
    return path


def latents_figures(store: str | Path, out_dir: str | Path) -> list[Path]:
    """The latents stage's figures in ``out_dir``: ``latents.png``."""
    return [draw_latents_figure(store, Path(out_dir) / "latents.png")]


def one_setting(ds: Any) -> bool:
    """Whether every (dataset, family) of the store's groups has a single hyperparameter value."""
    values: dict[tuple[str, str], set[str]] = {}
    for d, f, v in zip(ds["group_dataset"].values, ds["group_family"].values,
                       ds["group_hyperparameter_value"].values.astype(float)):
        values.setdefault((str(d), str(f)), set()).add(repr(float(v)))
    return all(len(v) == 1 for v in values.values())


def _labels(ds: Any) -> list[str]:
    """Each group's label: its family, with the dataset when the store holds several."""
    datasets = [str(v) for v in ds["group_dataset"].values]
    families = [str(v) or "(unknown family)" for v in ds["group_family"].values]
    many = len(set(datasets)) > 1
    return [f"{d}: {f}" if many else f for d, f in zip(datasets, families)]


def _setting(ds: Any) -> str:
    """The hyperparameter settings of the groups, e.g. ``beta = 16``."""
    pairs = sorted({(str(h), float(v)) for h, v in zip(ds["group_hyperparameter"].values,
                                                       ds["group_hyperparameter_value"].values)})
    return ", ".join(f"{h or 'hyperparameter'} = {v:g}" for h, v in pairs)


def _decimals(se: float, significant: int = 1) -> int:
    """Decimals that show ``se`` to ``significant`` figures (0 to 4)."""
    if not np.isfinite(se) or se <= 0:
        return 3
    return int(np.clip(significant - 1 - math.floor(math.log10(se)), 0, 4))


def with_error(value: float, se: float, significant: int = 1) -> str:
    """``value ± se`` rounded to the error's ``significant`` figures, e.g. ``0.912 ± 0.004``."""
    if not np.isfinite(value):
        return "n/a"
    k = _decimals(se, significant)
    return f"{value:.{k}f} ± {se:.{k}f}" if np.isfinite(se) else f"{value:.{k}f}"


def _per_model_figure(ds: Any, run_name: str) -> Any:
    """I(U;X) per model with error bars and the NMI and VI matrices, each group's mean in the titles."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    model_group = ds["model_group"].values.astype(int)
    shown = np.flatnonzero(model_group >= 0)
    shown = shown[np.argsort(model_group[shown], kind="stable")]
    n, groups = shown.size, _labels(ds)
    names = [str(v) for v in ds["model"].values[shown]]
    h_x = float(ds.attrs.get("h_x", np.nan))
    m_images = int(ds.attrs.get("n_images", 0))
    side, first = max(3.8, 0.42 * n + 1.6), 4.6 + max(0.0, 0.25 * n - 2.5)  # inches: a matrix, the first panel
    fig = Figure(figsize=(first + 2 * (side + 0.9), side + 0.6), layout="constrained")
    ax_i, ax_n, ax_v = fig.subplots(1, 3, width_ratios=[first, side + 0.9, side + 0.9])
    colors = [f"C{g % 10}" for g in range(len(groups))]
    x = np.arange(n)
    info, info_se = ds["information"].values, ds["information_se"].values
    titles = []
    for g, label in enumerate(groups):
        at = np.flatnonzero(model_group[shown] == g)
        if at.size == 0:
            continue
        members = shown[at]
        ax_i.errorbar(x[at], info[members], yerr=info_se[members], fmt="o", ms=5, capsize=3, color=colors[g],
                      label=label if len(groups) > 1 else None)
        mean, se = float(ds["information_mean"].values[g]), float(ds["information_mean_se"].values[g])
        frac, frac_se = (float(ds["information_fraction_mean"].values[g]),
                         float(ds["information_fraction_mean_se"].values[g]))
        if np.isfinite(mean):
            lo, hi = x[at].min() - 0.4, x[at].max() + 0.4
            ax_i.plot([lo, hi], [mean, mean], color=colors[g], lw=1)
            ax_i.add_patch(Rectangle((lo, mean - se), hi - lo, 2 * se, color=colors[g], alpha=0.2, lw=0))
        prefix = f"{label}: " if len(groups) > 1 else "mean "
        titles.append(f"{prefix}{with_error(mean, se)} bits ({with_error(frac, frac_se)} of H(X))")
    ax_i.set_label("information")
    slanted = max(map(len, names), default=0) > 3
    ax_i.set_xticks(x, names, rotation=45 if slanted else 0, ha="right" if slanted else "center", fontsize="small")
    ax_i.set_xlim(-0.6, n - 0.4)
    ax_i.set_xlabel("model")
    ax_i.set_ylabel("I(U;X) (bits)")
    ax_i.set_title("I(U;X) per model\n" + "\n".join(titles), fontsize="medium")
    if np.isfinite(h_x) and h_x > 0:
        right = ax_i.secondary_yaxis("right", functions=(lambda b: b / h_x, lambda f: f * h_x))
        right.set_ylabel(f"I(U;X) / H(X),  H(X) = log2 {m_images} = {h_x:.2f} bits")
    ax_i.grid(alpha=0.3)
    if len(groups) > 1:
        ax_i.legend(fontsize="small")
    for ax, var, label, units in ((ax_n, "nmi", "NMI between models", ""), (ax_v, "vi", "VI between models", " bits")):
        _matrix(fig, ax, ds, var, shown, names, groups, label, units)
    fig.suptitle(f"Whole latent spaces of run {run_name}, one setting ({_setting(ds)}): Monte Carlo over "
                 f"M = {m_images} images; error bars, bands and ±: 1 SE", fontsize="medium")
    return fig


def _matrix(fig: Any, ax: Any, ds: Any, var: str, shown: np.ndarray, names: list[str], groups: list[str],
            label: str, units: str) -> None:
    """Heatmap of ``var`` over the shown models (model_a, model_b), cells annotated with ± SE."""
    import matplotlib as mpl

    sel = np.ix_(shown, shown)
    values, errors = ds[var].values[sel], ds[f"{var}_se"].values[sel]
    n = shown.size
    cmap = mpl.colormaps["viridis"].with_extremes(bad="0.92")
    finite = values[np.isfinite(values)]
    norm = mpl.colors.Normalize(*(finite.min(), finite.max()) if finite.size else (0, 1))
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm)
    fig.colorbar(image, ax=ax, shrink=0.8, label=f"{var.upper()}{' (bits)' if units else ''}")
    if n <= ANNOTATE_MAX_MODELS:
        size = 7 if n <= 8 else 6 if n <= 11 else 5
        for a, b in zip(*np.nonzero(np.isfinite(values))):
            k = _decimals(errors[a, b])
            dark = sum(cmap(norm(values[a, b]))[:3]) < 1.5
            ax.text(b, a, f"{values[a, b]:.{k}f}\n±{errors[a, b]:.{k}f}", ha="center", va="center",
                    fontsize=size, color="white" if dark else "black")
    ax.set_xticks(np.arange(n), names, rotation=90, fontsize="small")
    ax.set_yticks(np.arange(n), names, fontsize="small")
    ax.set_xlabel("model_b")
    ax.set_ylabel("model_a")
    ax.set_label(var)
    lines = []
    for g, group in enumerate(groups):
        mean, se = float(ds[f"{var}_mean"].values[g]), float(ds[f"{var}_mean_se"].values[g])
        pairs = int(ds["n_pairs"].values[g])
        prefix = f"{group}: " if len(groups) > 1 else "mean "
        lines.append(f"{prefix}{with_error(mean, se)}{units} over {pairs} pairs")
    pair_se = errors[np.isfinite(errors)]
    if pair_se.size:
        lines.append(f"pairs' SE {pair_se.min():.2g} to {pair_se.max():.2g}{units}")
    ax.set_title(f"{label}\n" + "\n".join(lines), fontsize="medium")


def _per_setting_figure(ds: Any, run_name: str) -> Any:
    """One panel per quantity, x = hyperparameter value (log scale when all values are positive
    and span more than a factor of 10), one line per (dataset, family)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(_PANELS), 3.6), layout="constrained")
    axes = fig.subplots(1, len(_PANELS))
    datasets, families, names = (np.asarray([str(v) for v in ds[k].values], dtype=object)
                                 for k in ("group_dataset", "group_family", "group_hyperparameter"))
    values = ds["group_hyperparameter_value"].values.astype(float)
    lines = sorted(set(zip(datasets, families)))
    many_datasets = len(set(datasets)) > 1
    positive = values[np.isfinite(values)]
    log_x = positive.size > 0 and (positive > 0).all() and positive.max() / positive.min() > 10
    for ax, (var, label) in zip(axes, _PANELS):
        for dataset, family in lines:
            sel = np.flatnonzero((datasets == dataset) & (families == family))
            sel = sel[np.argsort(values[sel])]
            y, e = ds[var].values[sel], ds[f"{var}_se"].values[sel]
            if not np.isfinite(y).any():
                continue
            name = family or "(unknown family)"
            ax.errorbar(values[sel], y, yerr=e, marker="o", ms=4, capsize=3,
                        label=f"{dataset}: {name}" if many_datasets else name)
        ax.set_label(var)
        ax.set_ylabel(label)
        hyper = sorted(set(names))
        ax.set_xlabel(" / ".join(h for h in hyper if h) or "hyperparameter value")
        if log_x:
            ax.set_xscale("log")
        if var == "nmi_mean":
            ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
    handles, labels = axes[1].get_legend_handles_labels()
    if handles:
        axes[1].legend(fontsize="small")
    m = int(ds.attrs.get("n_images", 0))
    fig.suptitle(f"Whole latent spaces of run {run_name}, Monte Carlo over M = {m} images (error bars: 1 SE)",
                 fontsize="medium")
    return fig
