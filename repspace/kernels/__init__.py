"""Pure array kernels: Bhattacharyya coefficients, information, all pairs, Monte Carlo, distances,
the measures between spaces and their agreement, the OPTICS ordering and the continuity of a loop.

Nothing here knows about Dask or xarray; every function takes its array module from
its inputs (numpy, cupy, or another array-API namespace).
"""

from . import fused
from ._array import to_numpy
from .agreement import space_resample_weights, spearman_interval, weighted_spearman
from .bhattacharyya import bhattacharyya_coefficients, bhattacharyya_distance
from .continuity import continuity
from .distances import CLUSTER_MEASURES, distance_matrix, similarity, uniform_entropy
from .measures import (
    bures_squared,
    center_gram,
    cka,
    classifier_information,
    cka_all_pairs,
    hsic,
    jensen_shannon,
    jensen_shannon_matrix,
    linear_cka_all_pairs,
    linear_kernel,
    mean_posterior_std,
    rbf_kernel,
    stochastic_shape_distance,
)
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
from .jackknife import ImageGroups, jackknife_groups, jackknife_se
from .optics import OpticsOrdering, optics_ordering
from .rows import rows_and_sums
from .montecarlo import (
    MCComparison,
    MCEstimate,
    MCOptions,
    SharedGroup,
    combine_shared,
    inverse_variance_mean,
    log_mean_likelihood,
    mc_compare,
    mc_information,
    propagate_nmi_vi,
)

__all__ = [
    "fused",
    "to_numpy",
    "space_resample_weights",
    "spearman_interval",
    "weighted_spearman",
    "CLUSTER_MEASURES",
    "distance_matrix",
    "similarity",
    "uniform_entropy",
    "center_gram",
    "cka",
    "cka_all_pairs",
    "linear_cka_all_pairs",
    "hsic",
    "jensen_shannon",
    "jensen_shannon_matrix",
    "classifier_information",
    "linear_kernel",
    "mean_posterior_std",
    "rbf_kernel",
    "bures_squared",
    "stochastic_shape_distance",
    "bhattacharyya_coefficients",
    "bhattacharyya_distance",
    "continuity",
    "OpticsOrdering",
    "optics_ordering",
    "BlockOptions",
    "LabelRows",
    "MatrixRows",
    "PairwiseInformation",
    "PosteriorRows",
    "RowSource",
    "label_coefficients",
    "nmi_vi",
    "pairwise_information",
    "ImageGroups",
    "jackknife_groups",
    "jackknife_se",
    "rows_and_sums",
    "MCComparison",
    "MCEstimate",
    "MCOptions",
    "SharedGroup",
    "combine_shared",
    "inverse_variance_mean",
    "log_mean_likelihood",
    "mc_compare",
    "mc_information",
    "propagate_nmi_vi",
]
