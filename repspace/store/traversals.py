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

__all__ = ["GROUP"]

GROUP = "traversals"
