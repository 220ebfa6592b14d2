"""dSprites from its official files, and disentanglement_lib's colour, noisy and scream variants.

:func:`load_dsprites` opens the real dataset: the official npz or HDF5 file, or a
prepared tensorflow-datasets copy (the readers, and what the files hold, are in
:mod:`repspace.data.dsprites_files`). Factors are ("shape", "scale", "orientation",
"posX", "posY") with sizes (3, 6, 40, 32, 32), as in :mod:`repspace.data.procedural`.
:func:`load_dsprites_variant` wraps it, or the procedural renderer, in one of the
variants of :mod:`repspace.data.dsprites_variants`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import DATA_README, Dataset
from .dsprites_files import _GET_IT, FULL_LENGTH, HDF5_NAME, NPZ_NAME, DSpritesFile, DSpritesTFDS  # noqa: F401
from .dsprites_variants import ColorDSprites, NoisyDSprites, ScreamDSprites
from .procedural import ProceduralDSprites

__all__ = [
    "NPZ_NAME",
    "HDF5_NAME",
    "DSpritesFile",
    "DSpritesTFDS",
    "ColorDSprites",
    "NoisyDSprites",
    "ScreamDSprites",
    "load_dsprites",
    "load_dsprites_variant",
]


def load_dsprites(
    data_dir: Path,
    image_size: int | None = None,
    *,
    path: str | Path | None = None,
    source: str = "auto",
    tfds_data_dir: str | Path | None = None,
) -> Dataset:
    """The real dSprites.

    Parameters
    ----------
    data_dir : folder holding ``dsprites/<official file name>``
    image_size : int, optional
    path : explicit npz or HDF5 file (overrides ``data_dir`` and ``source``)
    source : "auto" (npz, then HDF5, then a prepared tfds dsprites), "npz", "hdf5" or "tfds"
    tfds_data_dir : tensorflow-datasets data folder, for ``source="tfds"``
    """
    if path is not None:
        return DSpritesFile(path, image_size)
    folder = Path(data_dir) / "dsprites"
    npz, hdf5 = folder / NPZ_NAME, folder / HDF5_NAME
    if source == "npz":
        return DSpritesFile(npz, image_size)
    if source == "hdf5":
        return DSpritesFile(hdf5, image_size)
    if source == "tfds":
        return DSpritesTFDS(Path(data_dir), image_size, tfds_data_dir)
    if source != "auto":
        raise ValueError(f"dsprites source must be 'auto', 'npz', 'hdf5' or 'tfds', got {source!r}")
    for candidate in (npz, hdf5):
        if candidate.is_file():
            return DSpritesFile(candidate, image_size)
    try:
        return DSpritesTFDS(Path(data_dir), image_size, tfds_data_dir)
    except (FileNotFoundError, ImportError):
        pass
    raise FileNotFoundError(
        f"dsprites: neither {str(npz)!r} nor {str(hdf5)!r} exists, and tensorflow-datasets has no "
        f"prepared dsprites. {_GET_IT} Without files, 'dsprites_procedural' renders the same "
        f"factor grid here. See {DATA_README}."
    )


def load_dsprites_variant(
    variant: str,
    data_dir: Path,
    image_size: int | None = None,
    *,
    base: str = "dsprites",
    transform_seed: int = 0,
    scream_path: str | Path | None = None,
    **base_options: Any,
) -> Dataset:
    """``color_dsprites``, ``noisy_dsprites`` or ``scream_dsprites``.

    Parameters
    ----------
    variant : the variant's name
    data_dir : the data folder
    image_size : int, optional
    base : "dsprites" (the real files, default, as disentanglement_lib's models saw) or
        "dsprites_procedural" (offline)
    transform_seed : seed of the per-image random colours, noise and crops
    scream_path : the scream image (default ``<data_dir>/scream/scream.jpg``)
    base_options : passed to :func:`load_dsprites` (path, source, tfds_data_dir)
    """
    if base == "dsprites":
        base_ds: Dataset = load_dsprites(data_dir, None, **base_options)
    elif base == "dsprites_procedural":
        if base_options:
            raise TypeError(f"{variant}: unexpected options {sorted(base_options)} for base 'dsprites_procedural'")
        base_ds = ProceduralDSprites()
    else:
        raise ValueError(f"{variant}: base must be 'dsprites' or 'dsprites_procedural', got {base!r}")
    if variant == "color_dsprites":
        return ColorDSprites(base_ds, variant, image_size, transform_seed)
    if variant == "noisy_dsprites":
        return NoisyDSprites(base_ds, variant, image_size, transform_seed)
    if variant == "scream_dsprites":
        path = Path(scream_path) if scream_path is not None else Path(data_dir) / "scream" / "scream.jpg"
        return ScreamDSprites(base_ds, variant, image_size, transform_seed, path)
    raise ValueError(f"unknown dSprites variant {variant!r}")
