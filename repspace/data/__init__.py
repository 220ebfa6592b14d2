"""Datasets with ground-truth factors, and fingerprint sets drawn from them.

>>> from repspace.data import load_dataset, make_fingerprint
>>> ds = load_dataset("dsprites_procedural", image_size=32)
>>> ds.factor_names, ds.factor_sizes, ds.image_shape
(('shape', 'scale', 'orientation', 'posX', 'posY'), (3, 6, 40, 32, 32), (32, 32, 1))
>>> fp = make_fingerprint(ds, n=10, seed=0)
>>> fp["images"].shape, fp["factors"].dims
((10, 32, 32, 1), ('image', 'factor'))

Known datasets: see :data:`DATASETS` and docs/datasets.md; where their files go:
data/README.md.
"""

from __future__ import annotations

from .base import ArrayDataset, Dataset, default_data_dir, grid_factors, grid_index, resize_images
from .cars3d import load_cars3d
from .catalog import DATASETS, load_dataset
from .digits import load_digits
from .dsprites import load_dsprites, load_dsprites_variant
from .fingerprint import (
    FingerprintConfig,
    build_fingerprint,
    make_fingerprint,
    open_fingerprint,
    same_fingerprint,
    sample_indices,
    write_fingerprint,
)
from .procedural import ProceduralDSprites, render_dsprites
from .smallnorb import load_smallnorb
from .tfds_loader import load_fashion_mnist, load_mnist

__all__ = [
    "DATASETS",
    "ArrayDataset",
    "Dataset",
    "FingerprintConfig",
    "ProceduralDSprites",
    "build_fingerprint",
    "default_data_dir",
    "grid_factors",
    "grid_index",
    "load_cars3d",
    "load_dataset",
    "load_digits",
    "load_dsprites",
    "load_dsprites_variant",
    "load_fashion_mnist",
    "load_mnist",
    "load_smallnorb",
    "make_fingerprint",
    "open_fingerprint",
    "render_dsprites",
    "resize_images",
    "same_fingerprint",
    "sample_indices",
    "write_fingerprint",
]
