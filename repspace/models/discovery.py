"""Model discovery: the models in a folder, with what each one is.

Encoders (``kind="encoders"``): zoo-layout folders ``<n>/model/tfhub``, SavedModels, ``.keras``
files, ONNX models (``<name>.onnx``, or a folder holding ``encoder.onnx``). Posterior files
(``kind="posteriors"``): ``<name>.npz`` and ``<name>.zarr``. Folders named ``key=value`` are
searched too (the folder layout of :mod:`repspace.models.sidecar`), and a model's coordinates come
from its sidecar, else its train.gin (zoo layout), else the ``key=value`` parts of its path.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

from .sidecar import layout_coordinates, read_sidecar
from .zoo import read_model_info

__all__ = ["ModelEntry", "find_models", "is_model_dir"]


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One model of a run: its name (folder name), where it is, and what it is."""

    name: str
    path: str
    dataset: str = ""
    family: str = ""
    hyperparameter: str = ""
    hyperparameter_value: float = math.nan
    seed: int = -1
    source: str = ""


KINDS = ("encoders", "posteriors")


def is_model_dir(p: Path) -> bool:
    """A zoo-layout folder (``model/tfhub``), a SavedModel, a ``.keras`` file or an ONNX model (not a decoder)."""
    if p.suffix == ".onnx":
        return p.is_file() and not p.stem.endswith("_decoder")
    return (p / "model" / "tfhub").is_dir() or (p / "saved_model.pb").is_file() or p.suffix == ".keras" \
        or (p / "encoder.onnx").is_file()


def _is_model(p: Path, kind: str) -> bool:
    if kind == "posteriors":
        return (p.suffix == ".npz" and p.is_file()) or (p.suffix == ".zarr" and p.is_dir())
    return is_model_dir(p)


def _named(model_dir: Path, name: str, kind: str) -> Path | None:
    """The model called ``name``: the path itself, or with a file suffix of its kind."""
    suffixes = ("", ".npz", ".zarr") if kind == "posteriors" else ("", ".onnx", ".keras")
    for sfx in suffixes:
        p = model_dir / f"{name}{sfx}"
        if p.exists() and _is_model(p, kind):
            return p
    return None


def _walk(folder: Path, kind: str) -> list[Path]:
    """The models in ``folder``, and in its ``key=value`` folders below it."""
    found = []
    for p in folder.iterdir():
        if p.name.startswith("."):  # hidden files, and a posterior file being written
            continue
        if _is_model(p, kind):
            found.append(p)
        elif p.is_dir() and "=" in p.name:
            found.extend(_walk(p, kind))
    return found


def _name(model_dir: Path, p: Path) -> str:
    rel = p.relative_to(model_dir)
    return (rel.with_suffix("") if p.suffix in (".onnx", ".npz", ".zarr") else rel).as_posix()


def _sort_key(name: str) -> tuple:
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


EXPECTED = {
    "encoders": "folders <n>/model/tfhub (the zoo's layout, or python -m repspace.jobs.train_ensemble), "
                "SavedModels, .keras files or ONNX models (<name>.onnx, or <name>/encoder.onnx)",
    "posteriors": "posterior files <name>.npz or <name>.zarr (see repspace.models.write_posterior_file)",
}


def _entry(model_dir: Path, p: Path, kind: str) -> ModelEntry:
    name = _name(model_dir, p)
    coords, _ = read_sidecar(p)
    if not coords:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            info = read_model_info(p) if p.is_dir() and p.suffix != ".zarr" and not is_onnx(p) else None
        if info is not None:
            return ModelEntry(name=name, path=str(p.resolve()), dataset=info.dataset, family=info.family,
                              hyperparameter=info.hyperparameter_name,
                              hyperparameter_value=float(info.hyperparameter_value), seed=int(info.seed),
                              source=info.source)
        coords = layout_coordinates(p.relative_to(model_dir))
    default_source = "posteriors" if kind == "posteriors" else "onnx" if is_onnx(p) else ""
    return ModelEntry(name=name, path=str(p.resolve()), **{"source": default_source, **coords})


def is_onnx(p: Path) -> bool:
    return p.suffix == ".onnx" or (p.is_dir() and (p / "encoder.onnx").is_file())


def find_models(model_dir: str | Path, names: list[str] | list[int] | None = None, *,
                kind: str = "encoders") -> list[ModelEntry]:
    """The models in ``model_dir`` (all, in numeric then name order, or ``names`` in their order).

    ``kind``: "encoders" or "posteriors" (posterior files). Raises FileNotFoundError for a missing
    folder, no models, or a named model that is not there; ValueError for a sidecar it cannot read.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model directory {model_dir} does not exist")
    if names is not None:
        found = [_named(model_dir, str(n), kind) for n in names]
        missing = [str(n) for n, p in zip(names, found) if p is None]
        if missing:
            raise FileNotFoundError(f"{model_dir} lacks models {', '.join(missing[:20])} (expected {EXPECTED[kind]})")
        paths = [p for p in found if p is not None]
    else:
        paths = sorted(_walk(model_dir, kind), key=lambda p: _sort_key(_name(model_dir, p)))
    if not paths:
        raise FileNotFoundError(f"no models in {model_dir}: expected {EXPECTED[kind]}")
    return [_entry(model_dir, p, kind) for p in paths]
