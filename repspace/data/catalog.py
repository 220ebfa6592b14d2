"""The catalogue of datasets: every loader by name, and :func:`load_dataset`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .base import Dataset, default_data_dir
from .cars3d import load_cars3d
from .digits import load_digits
from .dsprites import load_dsprites, load_dsprites_variant
from .procedural import ProceduralDSprites
from .smallnorb import load_smallnorb
from .tfds_loader import load_fashion_mnist, load_mnist

__all__ = ["DATASETS", "load_dataset"]


def _procedural(data_dir: Path, image_size: int | None = None) -> Dataset:
    return ProceduralDSprites(image_size)


def _variant(name: str) -> Callable[..., Dataset]:
    def load(data_dir: Path, image_size: int | None = None, **options: Any) -> Dataset:
        return load_dsprites_variant(name, data_dir, image_size, **options)

    load.__signature__ = inspect.signature(load_dsprites_variant).replace(  # type: ignore[attr-defined]
        parameters=list(inspect.signature(load_dsprites_variant).parameters.values())[1:]
    )
    return load


DATASETS: dict[str, Callable[..., Dataset]] = {
    "dsprites_procedural": _procedural,
    "dsprites": load_dsprites,
    "color_dsprites": _variant("color_dsprites"),
    "noisy_dsprites": _variant("noisy_dsprites"),
    "scream_dsprites": _variant("scream_dsprites"),
    "smallnorb": load_smallnorb,
    "cars3d": load_cars3d,
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
    "digits": load_digits,
}
"""Loaders by dataset name: ``loader(data_dir, image_size, **options) -> Dataset``."""


def _option_names(loader: Callable[..., Dataset]) -> tuple[set[str], bool]:
    params = list(inspect.signature(loader).parameters.values())[2:]
    names = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def load_dataset(
    name: str, *, data_dir: str | Path | None = None, image_size: int | None = None, **options: Any
) -> Dataset:
    """Open a dataset by name.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`: dsprites_procedural (offline default), dsprites,
        color_dsprites, noisy_dsprites, scream_dsprites, smallnorb, cars3d, mnist,
        fashion_mnist, digits.
    data_dir : path, optional
        Folder of dataset files (layout in data/README.md); default
        ``$REPSPACE_DATA_DIR`` or ``data``.
    image_size : int, optional
        Square output size; default 64 for the dSprites family, smallnorb and cars3d,
        the native size for the others.
    **options
        Loader options, e.g. ``path`` / ``source`` for dsprites, ``base`` /
        ``transform_seed`` / ``scream_path`` for the variants, ``split`` /
        ``tfds_data_dir`` for mnist and fashion_mnist.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones) or a malformed file.
    TypeError
        For an option the loader does not take.
    FileNotFoundError
        When a file is missing: the message names the path expected and where to get it.

    Examples
    --------
    >>> load_dataset("digits").image_shape
    (8, 8, 1)
    >>> load_dataset("mnistt")
    Traceback (most recent call last):
    ...
    ValueError: unknown dataset 'mnistt'; known datasets: dsprites_procedural, dsprites, color_dsprites, noisy_dsprites, scream_dsprites, smallnorb, cars3d, mnist, fashion_mnist, digits
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    if image_size is not None and (int(image_size) != image_size or image_size <= 0):
        raise ValueError(f"image_size must be a positive integer, got {image_size!r}")
    loader = DATASETS[name]
    accepted, open_ended = _option_names(loader)
    unknown = set(options) - accepted
    if unknown and not open_ended:
        raise TypeError(
            f"dataset {name!r} takes no option(s) {sorted(unknown)}; it takes {sorted(accepted) or 'none'}"
        )
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    return loader(folder, int(image_size) if image_size is not None else None, **options)
