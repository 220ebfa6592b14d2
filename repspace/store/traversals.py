"""The ``traversals`` group: images decoded while one channel sweeps its range (written whole).

For each measure's clusters, the most central channel is swept over its range on the
fingerprint set (2nd to 98th percentile) with the other channels held at one image's values,
and decoded by its model's own decoder.

=========  ==================================================  ====================================
variable   dims                                                meaning
=========  ==================================================  ====================================
images     (measure, cluster, step, height, width, color)      decoded images in [0, 1] (NaN: none)
value      (measure, cluster, step)                            the channel's value at each step
decoded    (measure, cluster)                                  whether the model had a decoder
model      (measure, cluster)                                  the model of the swept channel
channel    (measure, cluster)                                  the swept channel
=========  ==================================================  ====================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .core import variables_dataset

__all__ = ["GROUP", "VARIABLES", "dataset"]

GROUP = "traversals"

VARIABLES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "images": (("measure", "cluster", "step", "height", "width", "color"),
               {"long_name": "decoded images in [0, 1] (NaN: none)"}),
    "value": (("measure", "cluster", "step"), {"long_name": "the swept channel's value"}),
    "decoded": (("measure", "cluster"), {}),
    "model": (("measure", "cluster"), {}),
    "channel": (("measure", "cluster"), {}),
    "note": (("measure", "cluster"), {"long_name": "why there is no traversal"}),
}
"""Every variable of the group: its dims and attrs."""


def dataset(values: Mapping[str, Any], coords: Mapping[str, Any], attrs: Mapping[str, Any]) -> Any:
    """The group's Dataset from the arrays the traversals stage computed (names of :data:`VARIABLES`)."""
    return variables_dataset(GROUP, VARIABLES, values, coords, attrs)
