"""The whole-latent-space figure: I(U;X)/H(X), NMI and VI per hyperparameter value, one line
per family, with error bars (standard errors of the groups' inverse-variance means).

Reads only the ``latents`` group of a run store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["draw_latents_figure"]

_PANELS = (
    ("information_fraction_mean", "I(U;X) / H(X)"),
    ("nmi_mean", "NMI between models"),
    ("vi_mean", "VI between models (bits)"),
)


def draw_latents_figure(store: str | Path, path: str | Path, *, dpi: int = 120) -> Path:
    """Draw the figure of a run's ``latents`` group into ``path`` (PNG, PDF or SVG by suffix).

    One panel per quantity, x = hyperparameter value (log scale when all values are positive
    and span more than a factor of 10), one line per (dataset, family). Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ..store import open_dataset

    ds = open_dataset(store, "latents").load()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(_PANELS), figsize=(4.2 * len(_PANELS), 3.6), constrained_layout=True)
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
    run = Path(store).resolve()
    run_name = run.parent.name if run.name == "store.zarr" else run.name
    fig.suptitle(f"Whole latent spaces of run {run_name}, Monte Carlo over M = {m} images (error bars: 1 SE)",
                 fontsize="medium")
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def latents_figures(store: str | Path, out_dir: str | Path) -> list[Path]:
    """The latents stage's figures in ``out_dir``: ``latents.png``."""
    return [draw_latents_figure(store, Path(out_dir) / "latents.png")]
