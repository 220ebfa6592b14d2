"""The ``latents`` group: whole latent spaces compared by Monte Carlo over ``dataset_embeddings``.

Per model (dim ``model``): ``information``, ``information_se`` (I(U;X), bits),
``information_fraction``, ``information_fraction_se`` (I(U;X)/H(X), H(X) = log2 M), coordinate
``model_group`` (index of the model's group, -1 for a model left out).

Per pair (dims ``model_a``, ``model_b``; NaN between groups and on the diagonal): ``estimate``,
``estimate_se`` (model_a, model_b, term) with the five estimates of :data:`TERMS`; ``nmi``,
``nmi_se``, ``vi``, ``vi_se`` with propagated errors.

Per group of models sharing dataset, family and hyperparameter value (dim ``group``):
``information_mean``, ``information_fraction_mean``, ``nmi_mean``, ``vi_mean`` (inverse-variance
weighted) and their ``*_se``, ``n_models``, ``n_pairs``; coordinates ``group_dataset``,
``group_family``, ``group_hyperparameter``, ``group_hyperparameter_value``.

With the shared scheme (the default: :attr:`repspace.pipeline.LatentsOptions.scheme`) each model's
I(U,U') is estimated once too (``information_twice``, ``information_twice_se``, marker
``twice_done``) and a pair adds only its ``joint_information`` term of ``estimate``; the others
stay NaN. Per-group errors then count every shared estimate once
(:func:`repspace.kernels.combine_shared`).

Markers: ``information_done`` (model,), ``twice_done`` (model,; shared scheme) and ``estimate_done``
(model_a, model_b, term). attrs:
``estimates`` (the settings every estimate was made with: images, seed, samples, block, dtype;
a run with other settings is refused), ``n_images``, ``h_x``, ``failed_models``, ``complete``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import zarr

from .core import StoreError, require_array, write_coordinate, write_whole
from .models import MODEL_COORDS

__all__ = ["GROUP", "TERMS", "MAX_BLOCK_CHUNKS", "layout", "settings_refusal", "block_chunks", "chunk_block", "write_summary"]

GROUP = "latents"
TERMS = ("information_a", "information_b", "information_twice_a", "information_twice_b", "joint_information")
"""The five estimates of a pair, in the order of :func:`repspace.kernels.mc_compare`'s streams."""
BITS = "bits"
MAX_BLOCK_CHUNKS = 2
"""Chunks a block can write (the room verify keeps for each block's record)."""
_MARKED = {"information_done": ("information", "information_se"),
           "twice_done": ("information_twice", "information_twice_se"),
           "estimate_done": ("estimate", "estimate_se")}


def block_chunks(marker: str, key: tuple[int, ...], present: Any = None) -> list[tuple[str, tuple[int, ...]]]:
    """(array, chunk coordinates) of the chunks block ``key`` of ``marker`` writes (one element per chunk)."""
    return [(name, tuple(key)) for name in _MARKED[marker]]


def chunk_block(array: str, chunk: tuple[int, ...]) -> tuple[str, tuple[int, ...]] | None:
    """The (marker, key) of the block that writes ``chunk`` of ``array`` (None: not a block's array)."""
    marker = next((m for m, names in _MARKED.items() if array in names), None)
    return (marker, tuple(chunk)) if marker is not None else None


def settings_refusal(recorded: Mapping[str, Any], settings: Mapping[str, Any],
                     keys: Sequence[str] | None = None) -> str:
    """Why a store's estimates, made with ``recorded``, cannot take a run's ``settings`` (over ``keys``, default
    all): each setting that differs, named (empty: none differs).

    >>> settings_refusal({"seed": 0, "n_samples": 2000}, {"seed": 0, "n_samples": 1000})[:80]
    "the store's 'latents' estimates were made with n_samples = 2000 (this run: 1000)"
    >>> settings_refusal({"seed": 0}, {"seed": 0, "scheme": "pairs"})
    ''
    """
    keys = sorted(set(recorded) | set(settings)) if keys is None else keys
    get = lambda d, k: d.get(k, "pairs") if k == "scheme" else d.get(k)  # noqa: E731  per-pair stores record none
    differ = [k for k in keys if get(recorded, k) != get(settings, k)]
    if not differ:
        return ""
    said = ", ".join(f"{'the images (images_id)' if k == 'images_id' else k} = {get(recorded, k)!r} "
                     f"(this run: {get(settings, k)!r})" for k in differ)
    was = get(recorded, "scheme")
    hint = (f" (scheme {was!r}: set latents.scheme = {was!r}" + (", or --per-pair-estimates" if was == "pairs" else "")
            + ")") if "scheme" in differ else ""
    return f"the store's {GROUP!r} estimates were made with {said}; use a new store, or the recorded settings{hint}"


def layout(group: zarr.Group, models: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> None:
    """Create or grow the estimate arrays and their markers; refuse estimates made otherwise."""
    recorded = group.attrs.get("estimates")
    if recorded is not None and json.loads(recorded) != dict(settings):
        raise StoreError(settings_refusal(json.loads(recorded), settings))
    group.attrs["estimates"] = json.dumps(dict(settings), sort_keys=True)
    m = len(models)
    bits = {"units": BITS}
    require_array(group, "information", shape=(m,), chunks=(1,), dtype="float64", dims=("model",), fill_value=np.nan,
                  attrs={**bits, "long_name": "I(U;X), information the latent space carries about the images"})
    require_array(group, "information_se", shape=(m,), chunks=(1,), dtype="float64", dims=("model",),
                  fill_value=np.nan, attrs={**bits, "long_name": "standard error of I(U;X)"})
    if settings.get("scheme") == "shared":  # each model's I(U,U') once, for all its pairs
        require_array(group, "information_twice", shape=(m,), chunks=(1,), dtype="float64", dims=("model",),
                      fill_value=np.nan, attrs={**bits, "long_name": "I(U,U';X), the latent space read twice"})
        require_array(group, "information_twice_se", shape=(m,), chunks=(1,), dtype="float64", dims=("model",),
                      fill_value=np.nan, attrs={**bits, "long_name": "standard error of I(U,U';X)"})
    shape3, dims3 = (m, m, len(TERMS)), ("model_a", "model_b", "term")
    require_array(group, "estimate", shape=shape3, chunks=(1, 1, 1), dtype="float64", dims=dims3, fill_value=np.nan,
                  attrs={**bits, "long_name": "the five Monte Carlo estimates of a pair"})
    require_array(group, "estimate_se", shape=shape3, chunks=(1, 1, 1), dtype="float64", dims=dims3,
                  fill_value=np.nan, attrs={**bits, "long_name": "standard errors of the five estimates"})
    names = [m_["name"] for m_ in models]
    for dim in ("model", "model_a", "model_b"):
        write_coordinate(group, dim, dim, names)
    for key in MODEL_COORDS:
        if key == "path":
            continue
        values = np.asarray([m_[key] for m_ in models])
        write_coordinate(group, key, "model", values)
        if key in ("dataset", "family", "hyperparameter_value"):
            write_coordinate(group, f"{key}_a", "model_a", values)
            write_coordinate(group, f"{key}_b", "model_b", values)
    write_coordinate(group, "term", "term", list(TERMS))


_LONG = {
    "nmi": ("1", "normalized mutual information between latent spaces"),
    "nmi_se": ("1", "standard error of NMI (propagated)"),
    "vi": (BITS, "variation of information between latent spaces"),
    "vi_se": (BITS, "standard error of VI (propagated)"),
    "information_fraction": ("1", "I(U;X)/H(X), H(X) = log2 M"),
    "information_fraction_se": ("1", "standard error of I(U;X)/H(X)"),
    "information_mean": (BITS, "inverse-variance-weighted mean I(U;X) of the group's models"),
    "information_fraction_mean": ("1", "inverse-variance-weighted mean I(U;X)/H(X)"),
    "nmi_mean": ("1", "inverse-variance-weighted mean NMI over the group's pairs"),
    "vi_mean": (BITS, "inverse-variance-weighted mean VI over the group's pairs"),
    "n_models": ("1", "models in the group"),
    "n_pairs": ("1", "pairs compared"),
}


def write_summary(group: zarr.Group, pairs: Mapping[str, np.ndarray], per_model: Mapping[str, np.ndarray],
                  per_group: Mapping[str, np.ndarray], group_labels: Sequence[tuple[str, str, str, float]],
                  model_group: np.ndarray) -> None:
    """Write the derived arrays whole: per pair, per model and per group (see the module docstring)."""
    pair_coords = "dataset_a family_a hyperparameter_value_a dataset_b family_b hyperparameter_value_b"
    model_coords = "dataset family hyperparameter hyperparameter_value seed source model_group"
    group_coords = "group_dataset group_family group_hyperparameter group_hyperparameter_value"

    def attrs(name: str, coords: str) -> dict[str, Any]:
        base = name[:-3] if name.endswith("_se") and name not in _LONG else name
        units, long = _LONG.get(name, (_LONG[base][0], f"standard error of {base}"))
        return {"units": units, "long_name": long, "coordinates": coords}

    for name, values in pairs.items():
        write_whole(group, name, values, ("model_a", "model_b"), attrs(name, pair_coords))
    for name, values in per_model.items():
        write_whole(group, name, values, ("model",), attrs(name, model_coords))
    for name in ("information", "information_se", "information_twice", "information_twice_se"):
        if name in group:
            group[name].attrs["coordinates"] = model_coords
    for name, values in per_group.items():
        write_whole(group, name, values, ("group",), attrs(name, group_coords))
    write_coordinate(group, "group", "group", np.arange(len(group_labels)))
    for x, key in enumerate(("dataset", "family", "hyperparameter")):
        write_coordinate(group, f"group_{key}", "group", [str(lab[x]) for lab in group_labels])
    write_coordinate(group, "group_hyperparameter_value", "group",
                     np.asarray([lab[3] for lab in group_labels], np.float64))
    write_coordinate(group, "model_group", "model", model_group,
                     attrs={"long_name": "index of the model's group (-1: left out)"})
