"""Datasets read through tensorflow-datasets, only when already prepared on disk.

tensorflow-datasets downloads on first use, and offline that attempt retries for
minutes before it fails. These loaders never start one: when the dataset is not
prepared under the tfds data folder they raise FileNotFoundError saying where it is
looked for and how to prepare it elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .base import DATA_README, ArrayDataset

__all__ = ["import_tfds", "read_tfds", "resolve_tfds_dir", "load_mnist", "load_fashion_mnist"]

_BATCH = 4096


def import_tfds() -> Any:
    """Import tensorflow_datasets, or say how to install it."""
    from .._quiet import import_tfds as _import_quietly

    try:
        tfds = _import_quietly()
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "this dataset is read through tensorflow-datasets, which is not installed: "
            "pip install -e '.[tf]'"
        ) from err
    return tfds


def resolve_tfds_dir(data_dir: Path, tfds_data_dir: str | Path | None) -> str | None:
    """The tfds data folder: the one given, else ``<data_dir>/tensorflow_datasets`` if it
    exists, else None (tfds' own default, ``$TFDS_DATA_DIR`` or ~/tensorflow_datasets)."""
    if tfds_data_dir is not None:
        return str(tfds_data_dir)
    local = Path(data_dir) / "tensorflow_datasets"
    return str(local) if local.is_dir() else None


def read_tfds(
    name: str, split: str, tfds_data_dir: str | None, keys: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Read the features ``keys`` of a prepared tfds dataset split into numpy arrays.

    Returns
    -------
    dict of str to array, each with the examples along axis 0, in tfds' order.

    Raises
    ------
    FileNotFoundError
        If the dataset is not prepared in ``tfds_data_dir``.
    """
    tfds = import_tfds()
    builder = tfds.builder(name, data_dir=tfds_data_dir)
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"tensorflow-datasets has no prepared {name!r} at {builder.data_dir!r}. "
            f"No download is started from here: prepare it on a machine with internet "
            f"(`tfds build {name} --data_dir DIR`) and copy DIR to this folder, or pass "
            f"tfds_data_dir=DIR. See {DATA_README}."
        )
    ds = builder.as_dataset(split=split).batch(_BATCH)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for batch in tfds.as_numpy(ds):
        for k in keys:
            parts[k].append(np.asarray(batch[k]))
    if not parts[keys[0]]:
        raise ValueError(f"tensorflow-datasets {name!r} split {split!r} holds no examples")
    return {k: np.concatenate(v, axis=0) for k, v in parts.items()}


def _classification(
    name: str, data_dir: Path, image_size: int | None, split: str, tfds_data_dir: str | Path | None
) -> ArrayDataset:
    arrays = read_tfds(name, split, resolve_tfds_dir(data_dir, tfds_data_dir), ("image", "label"))
    return ArrayDataset(
        name,
        arrays["image"],
        arrays["label"].reshape(-1, 1),
        ("label",),
        (10,),
        image_size=image_size,
        options={"split": split},
    )


def load_mnist(
    data_dir: Path,
    image_size: int | None = None,
    *,
    split: str = "train",
    tfds_data_dir: str | Path | None = None,
) -> ArrayDataset:
    """MNIST through tensorflow-datasets: 28 x 28 x 1 (native size), factor ``label`` (10).

    ``split`` is any tfds split string ("train", "test", "train+test"); examples keep
    tfds' order.
    """
    return _classification("mnist", data_dir, image_size, split, tfds_data_dir)


def load_fashion_mnist(
    data_dir: Path,
    image_size: int | None = None,
    *,
    split: str = "train",
    tfds_data_dir: str | Path | None = None,
) -> ArrayDataset:
    """Fashion-MNIST through tensorflow-datasets: 28 x 28 x 1, factor ``label`` (10)."""
    return _classification("fashion_mnist", data_dir, image_size, split, tfds_data_dir)
