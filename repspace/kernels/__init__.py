"""Pure array kernels: Bhattacharyya coefficients, information, all pairs, Monte Carlo.

Nothing here knows about Dask or xarray; every function takes its array module from
its inputs (numpy, cupy, or another array-API namespace).
"""

from .bhattacharyya import bhattacharyya_coefficients
from .information import (
    BlockOptions,
    LabelRows,
    MatrixRows,
    PairwiseInformation,
    PosteriorRows,
    RowSource,
    label_coefficients,
    nmi_vi,
    pairwise_information,
)
from .montecarlo import (
    MCComparison,
    MCEstimate,
    MCOptions,
    inverse_variance_mean,
    log_mean_likelihood,
    mc_compare,
    mc_information,
    propagate_nmi_vi,
)

__all__ = [
    "bhattacharyya_coefficients",
    "BlockOptions",
    "LabelRows",
    "MatrixRows",
    "PairwiseInformation",
    "PosteriorRows",
    "RowSource",
    "label_coefficients",
    "nmi_vi",
    "pairwise_information",
    "MCComparison",
    "MCEstimate",
    "MCOptions",
    "inverse_variance_mean",
    "log_mean_likelihood",
    "mc_compare",
    "mc_information",
    "propagate_nmi_vi",
]
