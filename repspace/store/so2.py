"""The groups of the fusion experiment on the circle (the paper's Sec. 4.4).

``so2_learners``: the weak learners' posteriors on the fingerprint points

=============  ==================  ==================================================
variable       dims                meaning
=============  ==================  ==================================================
mu, logvar     (learner, item)     each learner's 1-D posterior at each point
reconstruction (learner,)          final reconstruction loss (trained learners; NaN for torn ones)
kl             (learner,)          final KL divergence to the prior (nats)
continuity     (learner,)          the learner's own continuity (large: it tears the circle)
done           (learner,)          done-markers
=============  ==================  ==================================================

``so2_fusion``: one fused space per similarity, ensemble size and repeat

=============  ======================================  ==================================
variable       dims                                    meaning
=============  ======================================  ==================================
mu, logvar     (similarity, size, repeat, item, dim)   the fused posteriors
continuity     (similarity, size, repeat)              the fused space's continuity
objective      (similarity, size, repeat)              the final mean similarity
nmi_mean       (similarity, size, repeat)              its mean NMI with the members
vi_mean        (similarity, size, repeat)              its mean VI with the members (bits)
done           (similarity, size, repeat)              done-markers
=============  ======================================  ==================================

Coordinates ``item`` with ``theta`` (the angle of each point), ``learner``, ``similarity``,
``size`` (ensemble sizes), ``repeat``, ``dim``. More learners or repeats grow the arrays; other
points, similarities or sizes make every value stale, and the arrays are laid out anew. Repeat r of size k fuses learners
``r * max(size) .. r * max(size) + k - 1``. Each task writes its own chunks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import zarr

from .core import StoreError, require_array, write_coordinate

__all__ = ["LEARNERS", "FUSION", "layout_learners", "layout_fusion", "members"]

LEARNERS = "so2_learners"
FUSION = "so2_fusion"


def members(repeat: int, size: int, sizes: Sequence[int]) -> list[int]:
    """The learners that repeat ``repeat`` of ensemble size ``size`` fuses."""
    start = repeat * max(sizes)
    return list(range(start, start + size))


def _clear_if_reshaped(group: zarr.Group, name: str, trailing: tuple[int, ...]) -> None:
    """Drop every array when ``name``'s trailing dims (points, dims) differ: other points, stale values.
    (More learners or repeats only grow the arrays.)"""
    if name in group and tuple(group[name].shape[-len(trailing):]) != trailing:
        for key in list(group.array_keys()):
            del group[key]


def _refuse_fewer(group: zarr.Group, name: str, axis: int, wanted: int, what: str) -> None:
    """Refuse, before anything is written, a run asking for fewer of ``what`` than the group holds."""
    if name in group and group[name].shape[axis] > wanted:
        raise StoreError(f"{group.path} holds {group[name].shape[axis]} {what}, this run asks for {wanted}: ask for "
                         f"{group[name].shape[axis]} or more (a larger so2.repeats or max(so2.sizes)), or use another "
                         "run directory")


def layout_learners(group: zarr.Group, theta: np.ndarray, n_learners: int) -> None:
    """Arrays of ``n_learners`` learners on the points ``theta`` (re-created when the points change)."""
    n = len(theta)
    _clear_if_reshaped(group, "mu", (n,))
    _refuse_fewer(group, "mu", 0, n_learners, "learners")
    if "theta" in group and not np.allclose(np.asarray(group["theta"][:]), theta):
        for key in list(group.array_keys()):
            del group[key]
    write_coordinate(group, "item", "item", np.arange(n))
    write_coordinate(group, "theta", "item", theta, attrs={"units": "radians"})
    write_coordinate(group, "learner", "learner", np.arange(n_learners))
    for name in ("mu", "logvar"):
        require_array(group, name, shape=(n_learners, n), chunks=(1, n), dtype="float64", dims=("learner", "item"),
                      fill_value=np.nan)
    for name in ("reconstruction", "kl", "continuity"):
        require_array(group, name, shape=(n_learners,), chunks=(1,), dtype="float64", dims=("learner",),
                      fill_value=np.nan)


def layout_fusion(group: zarr.Group, theta: np.ndarray, similarities: Sequence[str], sizes: Sequence[int],
                  repeats: int, dim: int) -> None:
    """Arrays of every fusion (re-created when the grid or the points change)."""
    n = len(theta)
    grid = (len(similarities), len(sizes), repeats)
    _clear_if_reshaped(group, "mu", (n, dim))
    for name, values in (("similarity", list(similarities)), ("size", list(sizes))):
        if name in group and [str(v) if name == "similarity" else int(v) for v in group[name][:]] != values:
            for key in list(group.array_keys()):
                del group[key]
    _refuse_fewer(group, "mu", 2, repeats, "repeats")
    write_coordinate(group, "item", "item", np.arange(n))
    write_coordinate(group, "theta", "item", theta, attrs={"units": "radians"})
    write_coordinate(group, "similarity", "similarity", list(similarities))
    write_coordinate(group, "size", "size", np.asarray(sizes, np.int64))
    write_coordinate(group, "repeat", "repeat", np.arange(repeats))
    write_coordinate(group, "dim", "dim", np.arange(dim))
    dims = ("similarity", "size", "repeat")
    for name in ("mu", "logvar"):
        require_array(group, name, shape=grid + (n, dim), chunks=(1, 1, 1, n, dim), dtype="float64",
                      dims=dims + ("item", "dim"), fill_value=np.nan)
    for name in ("continuity", "objective", "nmi_mean", "vi_mean"):
        require_array(group, name, shape=grid, chunks=(1, 1, 1), dtype="float64", dims=dims, fill_value=np.nan)
