"""The ``fusion`` group: a run's channels fused into one space (written whole).

=================  ====================  =============================================
variable           dims                  meaning
=================  ====================  =============================================
mu, logvar         (image, dim)          the fused space's posteriors on the fingerprint images
objective          (step,)               the mean similarity with the members during the ascent
nmi, vi            (member,)             the fused space's NMI and VI (bits) with each member
member_nmi_factor  (member, factor)      each member's NMI with each ground-truth factor
nmi_factor         (factor,)             the fused space's NMI with each factor
information        ()                    the fused space's I(U) (bits)
=================  ====================  =============================================

Coordinates ``image``, ``dim``, ``step``, ``member`` (names "model/channel", with ``model`` and
``channel`` along it), ``factor``. attrs: ``members`` (how they were chosen), ``left_out``,
``similarity``, ``extent_stamp`` (what the group was computed from: a rerun with the same members,
posteriors and options keeps it), ``complete``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .core import variables_dataset

__all__ = ["GROUP", "VARIABLES", "dataset"]

GROUP = "fusion"

VARIABLES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "mu": (("image", "dim"), {}),
    "logvar": (("image", "dim"), {}),
    "objective": (("step",), {"long_name": "mean similarity with the members (the attr similarity says which)"}),
    "nmi": (("member",), {"units": "1"}),
    "vi": (("member",), {"units": "bits"}),
    "member_nmi_factor": (("member", "factor"), {"units": "1"}),
    "nmi_factor": (("factor",), {"units": "1"}),
    "information": ((), {"units": "bits"}),
}
"""Every variable of the group: its dims and attrs."""


def dataset(values: Mapping[str, Any], coords: Mapping[str, Any], attrs: Mapping[str, Any]) -> Any:
    """The group's Dataset from the arrays the fusion stage computed (names of :data:`VARIABLES`)."""
    return variables_dataset(GROUP, VARIABLES, values, coords, attrs)
