"""The ``pairs`` group: NMI and VI between every two channels of the run.

=====  ==========================================  =======  ==================================
var    dims                                        units    meaning
=====  ==========================================  =======  ==================================
nmi    (model_a, channel_a, model_b, channel_b)    1        normalized mutual information
vi     (model_a, channel_a, model_b, channel_b)    bits     variation of information
cka_bc (model_a, channel_a, model_b, channel_b)    1        CKA of the BC matrices (on request)
nmi_se, vi_se  as nmi, vi                          as they  standard errors (jackknife over images)
nmi_subset,    (fingerprint_size, model_a, ...)    as they  nmi and vi on nested random subsets of the
vi_subset                                                   images (with the errors; coordinate: their sizes)
done   (block_a, block_b)                                   stamps of finished blocks (a <= b)
=====  ==========================================  =======  ==================================

float32, chunks (models_per_block, channel, models_per_block, channel), exactly symmetric
(block (a, b) writes its transpose (b, a) too); model coordinates with suffixes ``_a`` and
``_b``; attrs ``images_id``, ``models_per_block``, ``complete``, ``pair_channels`` ("informative":
only pairs of channels with I(U) >= ``info_threshold_bits`` were computed, every other pair is
NaN; "all": every pair). Failed models hold NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import zarr

from .core import StoreError, require_array, write_coordinate
from .models import write_model_coords

__all__ = ["GROUP", "PAIR_MEASURES", "ERRORS", "SUBSETS", "CHECKED", "MAX_BLOCK_CHUNKS", "layout", "block_chunks", "chunk_block", "write_block", "kept_submatrix", "kept_rows", "check_covers"]

GROUP = "pairs"
PAIR_MEASURES = {"nmi": ("1", "normalized mutual information between channels"),
            "vi": ("bits", "variation of information between channels"),
            "cka_bc": ("1", "CKA between the channels' Bhattacharyya matrices (on request)")}
ERRORS = {"nmi_se": ("1", "standard error of nmi: a delete-a-group jackknife over the images"),
          "vi_se": ("bits", "standard error of vi: a delete-a-group jackknife over the images")}
SUBSETS = {"nmi_subset": ("1", "nmi on a nested random subset of the fingerprint images"),
           "vi_subset": ("bits", "vi on a nested random subset of the fingerprint images")}
CHECKED = ("nmi", "vi", *ERRORS, *SUBSETS)
"""What verify records of each block, in this order (the errors when present; cka_bc is not checked)."""
MAX_BLOCK_CHUNKS = 16
"""Chunks a block can write (the room verify keeps for each block's record)."""
DEFAULT = ("nmi", "vi")
DIMS = ("model_a", "channel_a", "model_b", "channel_b")


def layout(group: zarr.Group, models: Sequence[dict], n_channels: int, block: int,
           measures: Sequence[str] = DEFAULT, errors: bool = False, subset_sizes: Sequence[int] = ()) -> None:
    """Create or grow the arrays of ``measures`` (and the standard errors of nmi and vi, with ``errors``, and
    their values on nested subsets of ``subset_sizes`` images)."""
    m = len(models)
    recorded = group.attrs.get("measures")
    if recorded is not None and list(recorded) != list(measures):
        raise StoreError(f"{group.path} holds the measures {list(recorded)}, this run asks for {list(measures)}; use "
                         "a new run directory (or the recorded measures)")
    group.attrs["measures"] = list(measures)
    variables = {**{name: PAIR_MEASURES[name] for name in measures}, **(ERRORS if errors else {})}
    for name, (units, long) in variables.items():
        require_array(group, name, shape=(m, n_channels, m, n_channels), chunks=(block, n_channels, block, n_channels),
                      dtype="float32", dims=DIMS, fill_value=np.nan, attrs={"units": units, "long_name": long})
    if subset_sizes:
        recorded = group.attrs.get("subset_sizes")
        if recorded is not None and list(recorded) != list(subset_sizes):
            raise StoreError(f"{group.path} holds subsets of {list(recorded)} images, this run asks for "
                             f"{list(subset_sizes)}; use a new run directory")
        group.attrs["subset_sizes"] = [int(x) for x in subset_sizes]
        s = len(subset_sizes)
        for name, (units, long) in SUBSETS.items():
            require_array(group, name, shape=(s, m, n_channels, m, n_channels),
                          chunks=(1, block, n_channels, block, n_channels), dtype="float32",
                          dims=("fingerprint_size", *DIMS), fill_value=np.nan, attrs={"units": units, "long_name": long})
        write_coordinate(group, "fingerprint_size", "fingerprint_size", np.asarray(subset_sizes, dtype=np.int64))
    coords = write_model_coords(group, models, ("_a", "_b"))
    for sfx in ("_a", "_b"):
        write_coordinate(group, f"channel{sfx}", f"channel{sfx}", np.arange(n_channels))
    for name in (*variables, *(SUBSETS if subset_sizes else ())):
        group[name].attrs["coordinates"] = " ".join(coords)


def write_block(group: zarr.Group, range_a: tuple[int, int], range_b: tuple[int, int],
                values: dict[str, np.ndarray]) -> None:
    """Write block (a, b) of each measure, (model_a, channel_a, model_b, channel_b), and its transpose."""
    (a0, a1), (b0, b1) = range_a, range_b
    for name in values:
        if name in SUBSETS:  # (fingerprint_size, model_a, channel_a, model_b, channel_b)
            group[name][:, a0:a1, :, b0:b1, :] = values[name]
            if range_a != range_b:
                group[name][:, b0:b1, :, a0:a1, :] = values[name].transpose(0, 3, 4, 1, 2)
            continue
        group[name][a0:a1, :, b0:b1, :] = values[name]
        if range_a != range_b:
            group[name][b0:b1, :, a0:a1, :] = values[name].transpose(2, 3, 0, 1)


def block_chunks(marker: str, key: tuple[int, ...], present: zarr.Group | None = None
                 ) -> list[tuple[str, tuple[int, ...]]]:
    """(array, chunk coordinates) of every chunk block ``key`` (marker ``done``) writes, its transpose's too,
    of the arrays in ``present`` when given (the errors and subsets are there only in runs that asked for them)."""
    a, b = key
    coords = [(a, 0, b, 0)] + ([(b, 0, a, 0)] if a != b else [])
    n_sub = int(present["nmi_subset"].shape[0]) if present is not None and "nmi_subset" in present else 0
    return [(name, (*((s,) if name in SUBSETS else ()), *c))
            for name in CHECKED if present is None or name in present
            for s in (range(n_sub) if name in SUBSETS else (None,)) for c in coords]


def chunk_block(array: str, chunk: tuple[int, ...]) -> tuple[str, tuple[int, ...]] | None:
    """The (marker, key) of the block that writes ``chunk`` of ``array`` (a block writes (a, b) and its
    transpose; None: not a checked array, e.g. cka_bc)."""
    if array not in CHECKED:
        return None
    a, b = chunk[1:4:2] if array in SUBSETS else chunk[0:3:2]
    return "done", (min(a, b), max(a, b))


def check_covers(group: zarr.Group, info_threshold: float, reader: str) -> None:
    """Refuse when the pairs were computed only among channels above a higher threshold than ``reader`` keeps."""
    if group.attrs.get("pair_channels", "all") != "informative":
        return
    computed = float(group.attrs["info_threshold_bits"])
    if info_threshold < computed:
        raise StoreError(f"{reader!r} keeps channels with I(U) >= {info_threshold} bits, but the pairs were computed "
                         f"only among channels with I(U) >= {computed} bits: rerun the pairs stage with this "
                         "threshold (only the blocks whose channels change are computed) or with all pairs")


def kept_submatrix(group: zarr.Group, name: str, model_index: np.ndarray, channel_index: np.ndarray,
                   dtype: type = np.float64, leading: int | None = None) -> np.ndarray:
    """``name`` between the channels u = (model_index[u], channel_index[u]): (unit, unit) in ``dtype``
    (float32 holds the stored values exactly, in half the memory); ``leading``: the index on a variable's
    leading dim (a subset's ``fingerprint_size``).

    Reads only the models that hold kept channels (zarr orthogonal selection), 512 rows at a time.
    """
    n = model_index.size
    out = np.empty((n, n), dtype=dtype)
    for u0 in range(0, n, 512):
        rows = slice(u0, min(n, u0 + 512))
        out[rows] = kept_rows(group, name, model_index, channel_index, rows, leading)
    return out


def kept_rows(group: zarr.Group, name: str, model_index: np.ndarray, channel_index: np.ndarray,
              rows: slice, leading: int | None = None) -> np.ndarray:
    """Rows ``rows`` of :func:`kept_submatrix`, as stored (float32): the units ``rows`` against every unit."""
    kept = np.unique(model_index)
    models = np.unique(model_index[rows])
    at = () if leading is None else (int(leading),)
    block = np.asarray(group[name].get_orthogonal_selection((*at, models, slice(None), kept, slice(None))))
    band = block[np.searchsorted(models, model_index[rows]), channel_index[rows]]
    return band[:, np.searchsorted(kept, model_index), channel_index]
