"""The fusion experiment's figures (the paper's Sec. 4.4), from a run's ``so2_learners`` and ``so2_fusion`` groups.

- ``so2_circles.png``: the fused spaces of the first repeat, one row per similarity, one column per
  ensemble size: posterior means with one-standard-deviation ellipses, coloured by angle;
- ``so2_continuity.png``: continuity against ensemble size (mean and standard deviation over the
  repeats), one line per similarity, beside the members' own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["draw_so2_figures"]

_NAMES = {"information": "I(U;V)", "vi": "exp(-VI)", "nmi": "NMI"}


def _circles(plt, fu, path: Path, dpi: int) -> Path:
    from matplotlib.patches import Ellipse

    sims = [str(s) for s in fu["similarity"].values]
    sizes = [int(k) for k in fu["size"].values]
    fig, axes = plt.subplots(len(sims), len(sizes), figsize=(2.1 * len(sizes) + 0.4, 2.2 * len(sims) + 0.4),
                             constrained_layout=True, squeeze=False)
    theta = fu["theta"].values
    colours = plt.get_cmap("hsv")(theta / (2 * np.pi))
    for a, sim in enumerate(sims):
        for b, size in enumerate(sizes):
            ax = axes[a, b]
            mu, lv = fu["mu"].values[a, b, 0], fu["logvar"].values[a, b, 0]
            c = float(fu["continuity"].values[a, b, 0])
            if np.isfinite(mu).all() and mu.shape[1] >= 2:
                sd = np.exp(0.5 * lv)
                lo, hi = mu[:, :2].min(axis=0), mu[:, :2].max(axis=0)
                half = 0.65 * (hi - lo).max() + 1e-9  # framed by the means
                centre = (lo + hi) / 2
                wide = sd[:, :2].max(axis=1) > half
                for i in np.flatnonzero(~wide):
                    ax.add_patch(Ellipse(mu[i, :2], 2 * sd[i, 0], 2 * sd[i, 1], color=colours[i], alpha=0.3, lw=0))
                ax.scatter(mu[:, 0], mu[:, 1], c=colours, s=5)
                ax.set_xlim(centre[0] - half, centre[0] + half)
                ax.set_ylim(centre[1] - half, centre[1] + half)
                ax.set_aspect("equal")
                note = f"\n{int(wide.sum())} posteriors wider than the frame" if wide.any() else ""
                ax.set_title(f"{size} learners: C = {c:.3g}{note}", fontsize=8)
            else:
                ax.set_title(f"{size} learners: not fused", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
            if b == 0:
                ax.set_ylabel(_NAMES.get(sim, sim), fontsize=9)
    fig.suptitle("the fused spaces (first repeat), coloured by angle; C: continuity (1: unbroken)", fontsize=9)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _continuity(plt, fu, le, path: Path, dpi: int) -> Path:
    sizes = fu["size"].values.astype(float)
    fig, ax = plt.subplots(figsize=(5.6, 3.8), constrained_layout=True)
    for a, sim in enumerate(str(s) for s in fu["similarity"].values):
        c = fu["continuity"].values[a]
        ax.errorbar(sizes * 1.06 ** (a - 1), np.nanmean(c, axis=1), yerr=np.nanstd(c, axis=1), marker="dos"[a % 3],
                    capsize=3, lw=1.5, label=_NAMES.get(sim, sim))
    own = np.nanmedian(le["continuity"].values)
    if np.isfinite(own):
        ax.axhline(own, color="0.5", ls=":", lw=1)
        ax.text(sizes[0], own, " one learner (median)", va="bottom", fontsize=7, color="0.4")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes, [str(int(s)) for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("ensemble size")
    ax.set_ylabel("continuity (max / 90th percentile of\nneighbour distances)")
    ax.legend(title="fusion maximises", fontsize=8)
    ax.set_title(f"fusing more weak learners heals the circle ({fu.sizes['repeat']} repeats)", fontsize=9)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def draw_so2_figures(store: str | Path, out_dir: str | Path, *, dpi: int = 120) -> list[Path]:
    """Draw the fusion experiment's figures into ``out_dir``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ..store import open_dataset

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fu = open_dataset(store, "so2_fusion").load()
    le = open_dataset(store, "so2_learners").load()
    return [_circles(plt, fu, out_dir / "so2_circles.png", dpi), _continuity(plt, fu, le, out_dir / "so2_continuity.png",
                                                                             dpi)]
