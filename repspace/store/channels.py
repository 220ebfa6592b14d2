"""The ``channels`` group: what each channel carries, alone and about each ground-truth factor.

===================  ========================  =======  ==================================
variable             dims                      units    meaning
===================  ========================  =======  ==================================
information          (model, channel)          bits     I(U) about the fingerprint set
information_twice    (model, channel)          bits     I(U,U'): the channel read twice
nmi_factor           (model, channel, factor)  1        NMI with each ground-truth factor
vi_factor            (model, channel, factor)  bits     VI with each ground-truth factor
<name>_se            as <name>                  as it    its standard error (jackknife over images)
done                 (block,)                           stamps of finished blocks of models
===================  ========================  =======  ==================================

Chunks: (models_per_block, channel[, factor]); model coordinates as in
:mod:`repspace.store.models`; attrs ``images_id``, ``models_per_block``, ``complete``,
``error_groups`` (G of the jackknife; 0: no ``_se`` variables, as in runs with ``[errors] groups = 0``).
Failed models hold NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import zarr

from .core import require_array, write_coordinate
from .models import write_model_coords

__all__ = ["GROUP", "VARIABLES", "ERRORS", "MAX_BLOCK_CHUNKS", "layout", "write_block", "block_chunks", "chunk_block", "informative"]

GROUP = "channels"
_VARS = {
    "information": ("bits", "I(U), information about the fingerprint set"),
    "information_twice": ("bits", "I(U,U'), the channel read twice"),
    "nmi_factor": ("1", "NMI with each ground-truth factor"),
    "vi_factor": ("bits", "VI with each ground-truth factor"),
}


ERRORS = {f"{name}_se": (units, f"standard error of {name}: a delete-a-group jackknife over the images")
          for name, (units, _) in _VARS.items()}
VARIABLES = (*_VARS, *ERRORS)
"""Every variable a block writes, in the order verify records their chunks (the errors last, when present)."""
MAX_BLOCK_CHUNKS = 8
"""Chunks a block can write (the room verify keeps for each block's record)."""


def layout(group: zarr.Group, models: Sequence[dict], n_channels: int, factors: Sequence[str], block: int,
           errors: bool = False) -> None:
    """Create or grow the arrays and coordinates for ``models`` in blocks of ``block`` models (and the standard
    errors' beside them, with ``errors``)."""
    m, f = len(models), len(factors)
    for name, (units, long) in {**_VARS, **(ERRORS if errors else {})}.items():
        three = "_factor" in name
        require_array(group, name, shape=(m, n_channels, f) if three else (m, n_channels),
                      chunks=(block, n_channels, f) if three else (block, n_channels), dtype="float64",
                      dims=("model", "channel", "factor") if three else ("model", "channel"), fill_value=np.nan,
                      attrs={"units": units, "long_name": long})
    coords = write_model_coords(group, models)
    write_coordinate(group, "channel", "channel", np.arange(n_channels))
    write_coordinate(group, "factor", "factor", list(factors))
    for name in VARIABLES:
        if name in group:
            group[name].attrs["coordinates"] = " ".join(coords)


def write_block(group: zarr.Group, start: int, stop: int, values: dict[str, np.ndarray]) -> None:
    """Write the rows start:stop of every variable given (one chunk each)."""
    for name in VARIABLES:
        if name in values:
            group[name][start:stop] = values[name]


def block_chunks(marker: str, key: tuple[int, ...], present: Any = None) -> list[tuple[str, tuple[int, ...]]]:
    """(array, chunk coordinates) of every chunk block ``key`` (marker ``done``) writes, of the arrays in
    ``present`` when given (the standard errors are there only in runs that asked for them)."""
    (b,) = key
    return [(name, (b, 0, 0) if "_factor" in name else (b, 0)) for name in VARIABLES
            if present is None or name in present]


def chunk_block(array: str, chunk: tuple[int, ...]) -> tuple[str, tuple[int, ...]] | None:
    """The (marker, key) of the block that writes ``chunk`` of ``array`` (None: not a block's array)."""
    return ("done", (chunk[0],)) if array in VARIABLES else None


def informative(channels: Any, info_threshold: float) -> np.ndarray:
    """(model, channel) bool: the channels carrying at least ``info_threshold`` bits, I(U) >= threshold.

    channels : the ``channels`` group, as a zarr group or an xarray Dataset (anything whose
    ``["information"]`` reads as the (model, channel) array). Failed models (NaN) are never informative.

    >>> informative({"information": np.array([[0.5, 2.0], [np.nan, 1.0]])}, 1.0).tolist()
    [[False, True], [False, True]]
    """
    information = np.asarray(channels["information"][:])
    return np.isfinite(information) & (information >= info_threshold)
