"""repspace: compare the information content of probabilistic representation spaces.

The public API::

    bhattacharyya(mu, logvar)              BC matrices (..., image, image)
    compare(bc) / compare(bc_a, bc_b)      information, NMI and VI of units from BC matrices
    compare_channels(mu, logvar)           the same, blockwise from posteriors
    compare_factors(mu, logvar, labels)    units against ground-truth factors
    label_coefficients(labels)             factors as BC matrices
    mc_information(mu, logvar, ...)        Monte Carlo I(U;X) of a whole space
    mc_compare(mu_a, logvar_a, mu_b, logvar_b, ...)
    compare_spaces(mus, logvars, measures)  NMI/VI beside CKA, shape and classifier measures
    measure_agreement(ds)                  how those measures agree (Spearman)
    fuse(mu, logvar, dim=...)              one space from an ensemble, by the information it shares
"""

from .api import (
    bhattacharyya,
    compare,
    compare_channels,
    compare_factors,
    label_coefficients,
    mc_compare,
    mc_information,
)
from .fusion import fuse
from .measures import compare_spaces, measure_agreement
from .kernels import BlockOptions, MCOptions, inverse_variance_mean

from ._version import __version__

__all__ = [
    "bhattacharyya",
    "compare",
    "compare_channels",
    "compare_factors",
    "label_coefficients",
    "mc_compare",
    "mc_information",
    "compare_spaces",
    "measure_agreement",
    "fuse",
    "inverse_variance_mean",
    "BlockOptions",
    "MCOptions",
    "__version__",
]
