"""Model discovery: the models in a folder, with what each one is."""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path

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


def is_model_dir(p: Path) -> bool:
    """A zoo-layout folder (``model/tfhub``), a SavedModel or a ``.keras`` file."""
    return (p / "model" / "tfhub").is_dir() or (p / "saved_model.pb").is_file() or p.suffix == ".keras"


def _sort_key(p: Path) -> tuple:
    return (0, int(p.name), "") if p.name.isdigit() else (1, 0, p.name)


def find_models(model_dir: str | Path, names: list[str] | list[int] | None = None) -> list[ModelEntry]:
    """The models in ``model_dir`` (all, in numeric then name order, or ``names`` in their order).

    Raises FileNotFoundError for a missing folder, no models, or a named model that is not there.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model directory {model_dir} does not exist")
    if names is not None:
        paths = [model_dir / str(n) for n in names]
        missing = [p.name for p in paths if not is_model_dir(p)]
        if missing:
            raise FileNotFoundError(f"{model_dir} lacks models {', '.join(missing[:20])} (expected <n>/model/tfhub, "
                                    "a SavedModel or a .keras file)")
    else:
        paths = sorted((p for p in model_dir.iterdir() if is_model_dir(p)), key=_sort_key)
    if not paths:
        raise FileNotFoundError(
            f"no models in {model_dir}: expected folders <n>/model/tfhub (the zoo's layout, or "
            "python -m repspace.jobs.train_ensemble), SavedModels or .keras files"
        )
    entries = []
    for p in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            info = read_model_info(p) if p.is_dir() else None
        if info is None:
            entries.append(ModelEntry(name=p.name, path=str(p.resolve())))
        else:
            entries.append(ModelEntry(
                name=p.name, path=str(p.resolve()), dataset=info.dataset, family=info.family,
                hyperparameter=info.hyperparameter_name, hyperparameter_value=float(info.hyperparameter_value),
                seed=int(info.seed), source=info.source))
    return entries
