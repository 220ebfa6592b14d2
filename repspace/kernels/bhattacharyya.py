"""Bhattacharyya coefficients between diagonal-Gaussian posteriors.

For posteriors N(mu_i, diag(s2_i)) and N(mu_j, diag(s2_j)) with sb2 = (s2_i + s2_j) / 2,

    D_ij = 1/8 sum_k (mu_ik - mu_jk)^2 / sb2_k + 1/2 sum_k [log sb2_k - (log s2_ik + log s2_jk) / 2]
    BC_ij = exp(-D_ij)

Written with delta = (logvar_i - logvar_j) / 2 and m = (logvar_i + logvar_j) / 2 the
second term is log cosh(delta) and 1/sb2 = exp(-m) / cosh(delta): no variance is ever
exponentiated on its own, so extreme log-variances neither overflow nor underflow.
"""

from __future__ import annotations

import math
from typing import Any

from ._array import check_posteriors, float_dtype, namespace

__all__ = ["bhattacharyya_coefficients"]

_LOG2 = math.log(2.0)


def _log_cosh(xp: Any, x: Any) -> Any:
    ax = xp.abs(x)
    return ax + xp.log1p(xp.exp(-2.0 * ax)) - _LOG2


def _sech(xp: Any, x: Any) -> Any:
    e = xp.exp(-xp.abs(x))
    return 2.0 * e / (1.0 + e * e)


def bhattacharyya_coefficients(
    mu_rows: Any, logvar_rows: Any, mu_cols: Any | None = None, logvar_cols: Any | None = None, *, check: bool = True
) -> Any:
    """Bhattacharyya coefficients between two sets of diagonal-Gaussian posteriors.

    Parameters
    ----------
    mu_rows, logvar_rows : array, shape (..., n_rows, d)
        Posterior means and log-variances of the row images.
    mu_cols, logvar_cols : array, shape (..., n_cols, d), optional
        The column images; the row images again when omitted.
    check : bool
        Validate shapes and finiteness first.

    Returns
    -------
    array, shape (..., n_rows, n_cols)
        BC in (0, 1], in the inputs' float dtype.
    """
    if mu_cols is None:
        mu_cols, logvar_cols = mu_rows, logvar_rows
    elif logvar_cols is None:
        raise ValueError("logvar_cols is required with mu_cols")
    xp = namespace(mu_rows, logvar_rows, mu_cols, logvar_cols)
    dtype = float_dtype(xp, mu_rows, logvar_rows, mu_cols, logvar_cols)
    if check:
        for mu, lv in ((mu_rows, logvar_rows), (mu_cols, logvar_cols)):
            if mu.ndim < 2:
                raise ValueError(f"posteriors need shape (..., image, dim), got {tuple(mu.shape)}")
            check_posteriors(mu, lv, unit_axis=0 if mu.ndim > 2 else None, image_axis=-2)
        if mu_rows.shape[-1] != mu_cols.shape[-1]:
            raise ValueError(f"row and column posteriors differ in dimension: {mu_rows.shape[-1]} vs {mu_cols.shape[-1]}")
    d = mu_rows.shape[-1]
    distance = None
    for k in range(d):  # d is small; the loop keeps memory at one (n_rows, n_cols) block
        mi = xp.astype(mu_rows[..., :, k : k + 1], dtype)
        mj = xp.astype(mu_cols[..., None, :, k], dtype)
        li = xp.astype(logvar_rows[..., :, k : k + 1], dtype)
        lj = xp.astype(logvar_cols[..., None, :, k], dtype)
        delta = 0.5 * (li - lj)
        diff = mi - mj
        term = 0.125 * diff * diff * xp.exp(-0.5 * (li + lj)) * _sech(xp, delta) + 0.5 * _log_cosh(xp, delta)
        distance = term if distance is None else distance + term
    return xp.exp(-distance)
