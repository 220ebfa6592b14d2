"""What a model file does not say about itself: its sidecar TOML file and the folder layout.

A model that is a file (``vae3.onnx``, ``vae3.npz``, ``vae3.zarr``) may have a sidecar
``vae3.toml`` next to it; a model that is a folder (``vae3/encoder.onnx``) may hold
``vae3/model.toml``. Both tables are optional::

    [model]                       # the model coordinates (what train.gin gives for the zoo)
    dataset = "dsprites_full"
    family = "infogan"
    hyperparameter = "lambda"
    hyperparameter_value = 0.5
    seed = 3

    [encoder]                     # how to read this encoder (keys of EncoderOptions), over the run's
    scale = "sigma"
    layout = "NHWC"

Without a sidecar the coordinates come from the folder layout: every folder name (and the
file's own name) of the form ``key=value`` between the model folder and the model, e.g.
``models/family=beta_vae/beta=4/seed=0.onnx``: ``dataset``, ``family``, ``source`` and ``seed``
by their names, any other key with a numeric value as the hyperparameter.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["COORDINATE_KEYS", "sidecar_path", "read_sidecar", "layout_coordinates"]

COORDINATE_KEYS = ("dataset", "family", "hyperparameter", "hyperparameter_value", "seed", "source")
MODEL_SUFFIXES = (".onnx", ".npz", ".zarr")


def sidecar_path(model: str | Path) -> Path:
    """Where the sidecar of ``model`` is: ``<folder>/model.toml`` for a folder model, else ``<stem>.toml``.

    >>> sidecar_path("models/vae3.onnx").as_posix(), sidecar_path("models/vae3.zarr").as_posix()
    ('models/vae3.toml', 'models/vae3.toml')
    """
    model = Path(model)
    if model.is_dir() and model.suffix != ".zarr":
        return model / "model.toml"
    return model.with_suffix(".toml")


def _coordinates(table: Mapping[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(table) - set(COORDINATE_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} in [model]; known: {list(COORDINATE_KEYS)}")
    coords = dict(table)
    try:
        if "seed" in coords:
            coords["seed"] = int(coords["seed"])
        if "hyperparameter_value" in coords:
            coords["hyperparameter_value"] = float(coords["hyperparameter_value"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: [model] {err}") from None
    for key in ("dataset", "family", "hyperparameter", "source"):
        if key in coords and not isinstance(coords[key], str):
            raise ValueError(f"{where}: [model] {key} must be a string, got {coords[key]!r}")
    return coords


def read_sidecar(model: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(coordinates, encoder options) of ``model``'s sidecar; both empty without one.

    Raises ValueError naming the file for invalid TOML, unknown tables or coordinate keys.
    """
    path = sidecar_path(model)
    if not path.is_file():
        return {}, {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid TOML ({err})") from None
    unknown = sorted(set(raw) - {"model", "encoder"})
    if unknown:
        raise ValueError(f"{path}: unknown tables {unknown}; a sidecar holds [model] and [encoder]")
    for name in ("model", "encoder"):
        if not isinstance(raw.get(name, {}), Mapping):
            raise ValueError(f"{path}: {name} must be a table")
    return _coordinates(raw.get("model", {}), str(path)), dict(raw.get("encoder", {}))


def layout_coordinates(relative: str | Path) -> dict[str, Any]:
    """The coordinates that the ``key=value`` parts of a model's path (relative to its model folder) give.

    >>> layout_coordinates("family=beta_vae/beta=4/seed=0.onnx")
    {'family': 'beta_vae', 'hyperparameter': 'beta', 'hyperparameter_value': 4.0, 'seed': 0}
    """
    coords: dict[str, Any] = {}
    parts = list(Path(relative).parts)
    if parts and Path(parts[-1]).suffix in MODEL_SUFFIXES:
        parts[-1] = Path(parts[-1]).stem
    for part in parts:
        key, eq, value = part.partition("=")
        if not eq or not key or not value:
            continue
        if key in ("dataset", "family", "source"):
            coords[key] = value
        elif key == "seed" and value.lstrip("-").isdigit():
            coords["seed"] = int(value)
        elif "hyperparameter" not in coords:
            try:
                number = float(value)
            except ValueError:
                continue
            if math.isfinite(number):
                coords["hyperparameter"], coords["hyperparameter_value"] = key, number
    return coords
