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

__all__ = ["GROUP"]

GROUP = "fusion"
