"""scikit-learn's bundled handwritten digits (no download): 1,797 images of 8 x 8."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import ArrayDataset

__all__ = ["load_digits"]


def load_digits(data_dir: Path | None = None, image_size: int | None = None) -> ArrayDataset:
    """Digits, 8 x 8 x 1 (native size; ``image_size`` resizes), values / 16, factor ``label`` (10).

    Examples
    --------
    >>> ds = load_digits()
    >>> len(ds), ds.image_shape, ds.factor_sizes
    (1797, (8, 8, 1), (10,))
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = (bunch.images / 16.0).astype(np.float32)[..., None]
    return ArrayDataset("digits", images, bunch.target.reshape(-1, 1), ("label",), (10,), image_size=image_size)
