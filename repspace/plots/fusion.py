"""The fusion figure of a run (group ``fusion``): the fused means of the fingerprint images coloured
by each ground-truth factor, and the fused space's NMI with each factor beside its members'."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["draw_fusion_figure"]


def draw_fusion_figure(store: str | Path, path: str | Path, *, dpi: int = 120) -> Path:
    """Draw the figure of a run's ``fusion`` group into ``path``; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ..store import open_dataset

    fu = open_dataset(store, "fusion").load()
    fp = open_dataset(store, "fingerprint")
    factors = [str(f) for f in fu["factor"].values]
    labels = fp["factors"].values
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_f = len(factors)
    fig, axes = plt.subplots(1, n_f + 1, figsize=(2.7 * n_f + 4.2, 3.0), constrained_layout=True,
                             gridspec_kw={"width_ratios": [1] * n_f + [1.6]}, squeeze=False)
    mu = fu["mu"].values
    x, y = (mu[:, 0], mu[:, 1]) if mu.shape[1] >= 2 else (mu[:, 0], np.zeros(len(mu)))
    for k, name in enumerate(factors):
        ax = axes[0, k]
        ax.scatter(x, y, c=labels[:, k], cmap="viridis", s=6)
        ax.set_title(f"coloured by {name}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = axes[0, -1]
    pos = np.arange(n_f)
    members = fu["member_nmi_factor"].values
    for m in range(members.shape[0]):
        ax.scatter(pos + 0.12, members[m], color="0.6", s=8, zorder=2, label="members" if m == 0 else None)
    ax.bar(pos - 0.12, fu["nmi_factor"].values, width=0.3, color="C3", label="fused space", zorder=3)
    ax.set_xticks(pos, factors, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("NMI with the factor")
    ax.legend(fontsize=7)
    fig.suptitle(f"{fu.sizes['member']} channels ({fu.attrs.get('members')}) fused into {mu.shape[1]} dimensions "
                 f"by {fu.attrs.get('similarity')}", fontsize=9)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def fusion_figures(store: str | Path, out_dir: str | Path) -> list[Path]:
    """The fusion stage's figures in ``out_dir``: ``fusion.png``."""
    return [draw_fusion_figure(store, Path(out_dir) / "fusion.png")]
