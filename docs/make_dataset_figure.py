"""Draw a grid of procedural dSprites samples: docs/dsprites_procedural.png.

    python docs/make_dataset_figure.py [--out docs/dsprites_procedural.png]

Rows: each of the three shapes at the six scales and then at four orientations, all at
the centre of the canvas; then a row across posX and a row across posY.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def sample_rows() -> tuple[np.ndarray, list[str]]:
    """Grid rows of the figure, shape (n_rows, 10), and one label per figure row."""
    from repspace.data.base import grid_index
    from repspace.data.procedural import DSPRITES_FACTOR_SIZES, SHAPES

    positions = (0, 3, 7, 10, 14, 17, 21, 24, 28, 31)
    rows, labels = [], []
    for shape, name in enumerate(SHAPES):
        rows.append([(shape, s, 0, 16, 16) for s in range(6)] + [(shape, 5, o, 16, 16) for o in (5, 10, 15, 20)])
        labels.append(f"{name}: scale 0-5, then orientation 5, 10, 15, 20 (of 40)")
    rows.append([(k % 3, 3, 0, x, 16) for k, x in enumerate(positions)])
    labels.append("posX " + ", ".join(map(str, positions)))
    rows.append([(k % 3, 3, 0, 16, y) for k, y in enumerate(positions)])
    labels.append("posY " + ", ".join(map(str, positions)))
    grid = np.array(rows).reshape(-1, 5)
    return grid_index(grid, DSPRITES_FACTOR_SIZES).reshape(len(rows), 10), labels


def main(argv: list[str] | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from repspace.data import load_dataset

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("dsprites_procedural.png"))
    out = p.parse_args(argv).out
    ds = load_dataset("dsprites_procedural")
    rows, labels = sample_rows()
    images = ds.images(rows.ravel()).reshape(*rows.shape, 64, 64)
    fig, axes = plt.subplots(*rows.shape, figsize=(rows.shape[1] * 0.9, rows.shape[0] * 1.1))
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9, wspace=0.06, hspace=0.3)
    for r in range(rows.shape[0]):
        for c in range(rows.shape[1]):
            ax = axes[r, c]
            ax.imshow(images[r, c], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_title(labels[r], loc="left", fontsize=8)
    fig.suptitle("dsprites_procedural: 64 x 64, rendered by index", fontsize=10)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


if __name__ == "__main__":
    print(main())
