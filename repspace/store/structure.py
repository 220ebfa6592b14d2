"""The ``structure`` group: which channels recur across the ensemble (written whole).

=======================  ===========================  ========================================
variable                 dims                         meaning
=======================  ===========================  ========================================
information              (unit,)                      I(U) of each kept channel (bits)
nmi_factor               (unit, factor)               its NMI with each ground-truth factor
order                    (measure, position)          OPTICS ordering: the unit at each position
reachability             (measure, unit)              OPTICS reachability distance
label                    (measure, unit)              OPTICS cluster label (-1: noise)
cluster_size             (measure, cluster)           members of each cluster
cluster_models           (measure, cluster)           models the cluster spans
cluster_central_unit     (measure, cluster)           the member most similar to the others
cluster_coherence        (measure, cluster)           mean within-cluster similarity
cluster_nmi_factor       (measure, cluster, factor)   mean NMI of the members with each factor
cluster_best_factor      (measure, cluster)           the factor of highest mean NMI
cluster_nmi_factor_se    (measure, cluster, factor)   the members' mean standard error of it
cluster_stability        (measure, cluster)           member pairs clustered together over redraws
member_stability         (measure, unit)              redraws in which a unit stays with its cluster
above_null, null_*       (unit, unit_b), (null_bin,)  pairs above a permutation null; its floor
cluster_above_null       (measure, cluster)           share of the cluster's pairs above it
nmi_change_*             (fingerprint_size,)          NMI at nested subsets against NMI at N
cluster_agreement        (measure, fingerprint_size)  ARI of their clusters with those at N
=======================  ===========================  ========================================

Coordinates ``measure`` ("vi", "nmi"), ``unit`` with ``model``, ``model_index`` and
``channel`` along it (the kept channels: I(U) >= ``info_threshold_bits``), ``factor``,
``cluster``. The group is replaced whole (:func:`repspace.store.core.replace_group`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import xarray as xr

from .core import variables_dataset

__all__ = ["GROUP", "VARIABLES", "dataset"]

GROUP = "structure"

VARIABLES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "information": (("unit",), {"units": "bits", "long_name": "I(U) of the kept channels"}),
    "nmi_factor": (("unit", "factor"), {"units": "1"}),
    "order": (("measure", "position"), {"long_name": "OPTICS ordering: the unit at each position"}),
    "reachability": (("measure", "unit"), {"long_name": "OPTICS reachability distance of each unit",
                                            "units_vi": "bits", "units_nmi": "-log NMI"}),
    "label": (("measure", "unit"), {"long_name": "OPTICS cluster label (-1: noise)"}),
    "cluster_size": (("measure", "cluster"), {}),
    "cluster_models": (("measure", "cluster"), {"long_name": "number of models the cluster spans"}),
    "cluster_central_unit": (("measure", "cluster"),
                             {"long_name": "the unit most similar on average to the other members"}),
    "cluster_coherence": (("measure", "cluster"), {"long_name": "mean within-cluster similarity (exp(-VI) or NMI)"}),
    "cluster_nmi_factor": (("measure", "cluster", "factor"),
                           {"units": "1", "long_name": "mean NMI of the members with each factor"}),
    "cluster_nmi_factor_se": (("measure", "cluster", "factor"),
                              {"units": "1", "long_name": "mean of the members' standard errors of NMI with each "
                                                          "factor: a bound on the error of their mean"}),
    "cluster_best_factor": (("measure", "cluster"), {}),
    "cluster_stability": (("measure", "cluster"),
                          {"long_name": "fraction of the members' pairs clustered together again when the pairs' "
                                        "values are redrawn within their standard errors"}),
    "member_stability": (("measure", "unit"),
                         {"long_name": "fraction of redraws in which the channel stays with its cluster's majority "
                                       "(noise: stays noise)"}),
    "above_null": (("unit", "unit_b"), {"long_name": "1 where the pair's NMI is above the null floor (its level: "
                                                     "the attr null_level) of unrelated channels' NMI"}),
    "null_floor": (("null_bin",), {"units": "1", "long_name": "the null NMI's quantile"}),
    "null_information": (("null_bin",), {"units": "bits", "long_name": "sqrt(I(U) I(V)) of the null's bin (median)"}),
    "cluster_above_null": (("measure", "cluster"),
                           {"long_name": "fraction of the cluster's pairs whose NMI is above the null floor"}),
    "nmi_change_median": (("fingerprint_size",), {"long_name": "median |NMI at this size - NMI at N| over the kept "
                                                               "pairs"}),
    "nmi_change_max": (("fingerprint_size",), {"long_name": "largest |NMI at this size - NMI at N| over the kept "
                                                            "pairs"}),
    "cluster_agreement": (("measure", "fingerprint_size"),
                          {"long_name": "adjusted Rand index of the clusters at this size and at N"}),
}
"""Every variable of the group: its dims and attrs (those a run computes: the null, stability and subsets
only with the pairs' errors)."""


def dataset(values: Mapping[str, Any], coords: Mapping[str, Any], attrs: Mapping[str, Any]) -> xr.Dataset:
    """The group's Dataset from the arrays a structure computes (names of :data:`VARIABLES`)."""
    return variables_dataset(GROUP, VARIABLES, values, coords, attrs)
