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
=======================  ===========================  ========================================

Coordinates ``measure`` ("vi", "nmi"), ``unit`` with ``model``, ``model_index`` and
``channel`` along it (the kept channels: I(U) >= ``info_threshold_bits``), ``factor``,
``cluster``. The group is replaced whole (:func:`repspace.store.core.replace_group`).
"""

from __future__ import annotations

__all__ = ["GROUP"]

GROUP = "structure"
