"""The ``measures`` group: every similarity measure between every two stored spaces.

======================  =========================  =============================================
variable                dims                       meaning
======================  =========================  =============================================
<measure>               (space_a, space_b)         one per measure of :data:`repspace.measures.MEASURES`
                                                   that was asked for (NaN where undefined)
nmi_mc_se, vi_mc_se     (space_a, space_b)         standard errors of the Monte Carlo measures
classifier_predictions  (space, item, outcome)     each space's mean predicted distributions
classifier_information  (space,)                   bits its classifier recovers (log2 N - cross-entropy)
spearman                (measure_a, measure_b)     the measures' agreement over the distinct pairs
spearman_low,           (measure_a, measure_b)     its percentile bootstrap interval over the spaces
spearman_high                                      (attrs ``method``, ``n_resamples``, ``level``,
                                                   ``undefined_resamples``)
family_done             (family,)                  done-markers of the families' tasks
mc_done, shape_done     (space,)                   done-markers of the Monte Carlo and shape rows
classifier_done         (space,)                   done-markers of the classifiers' tasks
======================  =========================  =============================================

Coordinates ``space_a``, ``space_b`` and ``space`` (the names of :mod:`repspace.store.spaces`),
``family``, ``measure_a``, ``measure_b``. attrs: ``spaces_id`` of the spaces compared,
``measures`` (JSON list), ``options`` (JSON of the options of each family), ``complete``.
Each family's task writes its own arrays whole; the Monte Carlo and shape measures are computed
a row of pairs (a, b >= a) per task into row chunks, and made symmetric by finalize; each
classifier task writes its own chunk.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import zarr

from .core import require_array, write_coordinate

__all__ = ["GROUP", "layout", "clear"]

GROUP = "measures"


def clear(group: zarr.Group) -> None:
    """Drop every array of the group (its spaces changed: every value is stale)."""
    for name in list(group.array_keys()):
        del group[name]


def layout(group: zarr.Group, names: Sequence[str], families: Sequence[str], variables: Sequence[str],
           n_items: int, classifier: bool, units: dict[str, str], by_rows: Sequence[str] = ()) -> None:
    """Create the arrays of a comparison of ``names`` (or check those there); ``by_rows``: variables
    chunked by rows, written a row at a time by tasks and made symmetric by finalize."""
    s = len(names)
    write_coordinate(group, "space_a", "space_a", list(names))
    write_coordinate(group, "space_b", "space_b", list(names))
    write_coordinate(group, "space", "space", list(names))
    write_coordinate(group, "family", "family", list(families))
    for name in variables:
        require_array(group, name, shape=(s, s), chunks=(1, s) if name in by_rows else (s, s), dtype="float64",
                      dims=("space_a", "space_b"),
                      fill_value=np.nan, attrs={"units": units[name.removesuffix("_se")]})
    if classifier:
        require_array(group, "classifier_predictions", shape=(s, n_items, n_items), chunks=(1, n_items, n_items),
                      dtype="float64", dims=("space", "item", "outcome"), fill_value=np.nan,
                      attrs={"long_name": "mean predicted distribution over the items, per item"})
        require_array(group, "classifier_information", shape=(s,), chunks=(1,), dtype="float64", dims=("space",),
                      fill_value=np.nan, attrs={"units": "bits", "long_name": "log2 N minus the cross-entropy of the "
                                                "mean predicted distributions"})
