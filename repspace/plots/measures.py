"""The measure comparison's figures (the paper's Sec. 4.1), from a run's ``spaces`` and ``measures`` groups.

- ``spaces.png``: the spaces themselves (one- and two-dimensional ones), means with one-standard-
  deviation ellipses, coloured by item;
- ``measures_matrices.png``: one matrix per measure, every space against every other;
- ``measures_agreement.png``: the Spearman correlation of every two measures over the distinct pairs,
  with its bootstrap interval over the spaces;
- ``measures_scatter.png``: the scatter matrix behind those correlations.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["draw_measures_figures", "DISTANCES", "LABELS"]

DISTANCES = ("vi_bc", "vi_mc", "stochastic_shape", "jsd_classifier")
"""Measures that are distances (0 for equal spaces); drawn with the reversed colour map."""
LABELS = {"nmi_bc": "NMI (Bhattacharyya)", "vi_bc": "VI (Bhattacharyya), bits", "cka_bc": "CKA on BC matrices",
          "nmi_mc": "NMI (Monte Carlo)", "vi_mc": "VI (Monte Carlo), bits", "cka_linear": "linear CKA",
          "cka_rbf": "RBF CKA", "stochastic_shape": "stochastic shape distance", "jsd_classifier": "classifier JSD, nats"}
_ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI",
          "XVII", "XVIII", "XIX", "XX")


def _tick_names(names: list[str]) -> list[str]:
    return list(_ROMAN[: len(names)]) if len(names) <= len(_ROMAN) and max(map(len, names)) > 4 else names


def _draw_spaces(plt, sp, path: Path, dpi: int) -> Path | None:
    from matplotlib.patches import Ellipse

    names = [str(x) for x in sp["space"].values]
    dims = sp["n_dims"].values
    if len(names) > 12 or dims.max() > 2:
        return None
    ticks = _tick_names(names)
    cols = min(len(names), 5)
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.7 * rows), constrained_layout=True, squeeze=False)
    n = sp.sizes["item"]
    colours = plt.get_cmap("viridis")(np.linspace(0, 1, n))
    for k, ax in enumerate(axes.flat):
        if k >= len(names):
            ax.axis("off")
            continue
        mu, sd = sp["mu"].values[k, :, : dims[k]], np.exp(0.5 * sp["logvar"].values[k, :, : dims[k]])
        if dims[k] == 1:
            mu, sd = np.column_stack([mu[:, 0], np.zeros(n)]), np.column_stack([sd[:, 0], np.full(n, 0.05)])
        for i in range(n):
            ax.add_patch(Ellipse(mu[i], 2 * sd[i, 0], 2 * sd[i, 1], color=colours[i], alpha=0.25, lw=0))
        ax.scatter(mu[:, 0], mu[:, 1], c=colours, s=8)
        ax.autoscale_view()
        if dims[k] == 2:
            ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(f"{ticks[k]}: {names[k]}" if ticks[k] != names[k] else names[k], fontsize=9)
        ax.tick_params(labelsize=7)
        if dims[k] == 1:
            ax.set_yticks([])
    fig.suptitle("the spaces: posterior means and one standard deviation, coloured by item", fontsize=10)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _draw_matrices(plt, ds, measures: list[str], names: list[str], path: Path, dpi: int) -> Path:
    ticks = _tick_names(names)
    cols = min(len(measures), 3)
    rows = -(-len(measures) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.7 * cols, 3.2 * rows), constrained_layout=True, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(measures):
            ax.axis("off")
            continue
        m = measures[k]
        values = ds[m].values
        distance = m in DISTANCES
        finite = values[np.isfinite(values)]
        vmax = float(finite.max()) if distance and finite.size else 1.0
        im = ax.imshow(values, cmap="magma_r" if distance else "magma", vmin=0.0, vmax=vmax or 1.0)
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_title(LABELS.get(m, m), fontsize=10)
        if len(names) <= 30:
            ax.set_xticks(range(len(names)), ticks, fontsize=7, rotation=90 if ticks is names else 0)
            ax.set_yticks(range(len(names)), ticks, fontsize=7)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        ax.tick_params(length=0)
    key = "; ".join(f"{t} {n}" for t, n in zip(ticks, names)) if ticks is not names else ""
    fig.suptitle("every measure between every two spaces (light: similar)" + (f"\n{key}" if key else ""), fontsize=9)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _draw_agreement(plt, ds, path: Path, dpi: int) -> Path:
    """The Spearman matrix, each cell "rho" over "[low, high]", its bootstrap interval (where stored)."""
    rho = ds["spearman"]
    measures = [str(x) for x in rho["measure_a"].values]
    values = rho.values
    bounds = (ds["spearman_low"].values, ds["spearman_high"].values) if "spearman_low" in ds else None
    k = len(measures)
    cell = 0.95 if bounds is not None else 0.62
    fig, ax = plt.subplots(figsize=(1.6 + cell * k, 0.8 + 0.6 * k), constrained_layout=True)
    im = ax.imshow(values, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto" if bounds is not None else "equal")
    for a in range(k):
        for b in range(k):
            if not np.isfinite(values[a, b]):
                continue
            text = f"{values[a, b]:.2f}"
            if bounds is not None and a != b:
                text += f"\n[{bounds[0][a, b]:.2f}, {bounds[1][a, b]:.2f}]"
            ax.text(b, a, text, ha="center", va="center", fontsize=6 if bounds is not None else 7,
                    color="white" if abs(values[a, b]) > 0.6 else "black")
    ax.set_xticks(range(k), measures, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), measures, fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.8, label="Spearman")
    interval = ""
    if bounds is not None:
        a = ds["spearman_low"].attrs
        interval = (f"\n[low, high]: {float(a.get('level', 0.95)):.0%} bootstrap interval from "
                    f"{a.get('n_resamples', '?')} resamples of the spaces")
    ax.set_title(f"how the measures agree over {rho.attrs.get('pairs', '?')} pairs of spaces{interval}\n"
                 "(a distance against a similarity agrees when negative)", fontsize=9)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _draw_scatter(plt, ds, measures: list[str], path: Path, dpi: int) -> Path:
    s = ds.sizes["space_a"]
    iu = np.triu_indices(s, 1)
    cols = {m: ds[m].values[iu] for m in measures}
    k = len(measures)
    fig, axes = plt.subplots(k, k, figsize=(1.45 * k + 0.5, 1.45 * k + 0.5), constrained_layout=True, squeeze=False)
    for a in range(k):
        for b in range(k):
            ax = axes[a, b]
            if b > a:
                ax.axis("off")
                continue
            if a == b:
                ax.hist(cols[measures[a]][np.isfinite(cols[measures[a]])], bins=12, color="0.5")
            else:
                ax.scatter(cols[measures[b]], cols[measures[a]], s=6, color="C0")
            ax.tick_params(labelsize=5, length=2)
            if b == 0:
                ax.set_ylabel(measures[a], fontsize=7)
            if a == k - 1:
                ax.set_xlabel(measures[b], fontsize=7)
    fig.suptitle(f"every two measures over the {iu[0].size} distinct pairs of spaces", fontsize=9)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def draw_measures_figures(store: str | Path, out_dir: str | Path, *, dpi: int = 120) -> list[Path]:
    """Draw the comparison's figures into ``out_dir``; returns the paths drawn (the spaces only when
    they are few and at most two-dimensional, the agreement when it was computed)."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ..store import open_dataset

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = open_dataset(store, "measures").load()
    sp = open_dataset(store, "spaces").load()
    measures = [m for m in json.loads(ds.attrs["measures"]) if m in ds]
    names = [str(x) for x in ds["space_a"].values]
    drawn = [_draw_spaces(plt, sp, out_dir / "spaces.png", dpi)]
    drawn.append(_draw_matrices(plt, ds, measures, names, out_dir / "measures_matrices.png", dpi))
    if "spearman" in ds:
        drawn.append(_draw_agreement(plt, ds, out_dir / "measures_agreement.png", dpi))
        drawn.append(_draw_scatter(plt, ds, measures, out_dir / "measures_scatter.png", dpi))
    return [p for p in drawn if p is not None]
