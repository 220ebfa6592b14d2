"""Bhattacharyya coefficients between diagonal-Gaussian posteriors.

For posteriors N(mu_i, diag(s2_i)) and N(mu_j, diag(s2_j)) with sb2 = (s2_i + s2_j) / 2,

    D_ij = 1/8 sum_k (mu_ik - mu_jk)^2 / sb2_k + 1/2 sum_k [log sb2_k - (log s2_ik + log s2_jk) / 2]
    BC_ij = exp(-D_ij)

Each dimension contributes a factor

    BC_ij,k = exp(-1/4 (mu_ik - mu_jk)^2 / (s2_ik + s2_jk)) * sqrt(2) (s2_ik s2_jk)^(1/4) / sqrt(s2_ik + s2_jk)

whose second part is invariant to a common scale of the variances. Variances are
therefore formed as exp(logvar - shift) with a shift per unit and dimension (the largest
log-variance), and the means scaled to match: no log or exp is taken per pair except one
exp, and log-variances far outside float range are harmless. (Variances more than
e^87 (float32) or e^708 (float64) below a unit's largest are floored there.)
"""

from __future__ import annotations

from typing import Any

from ._array import check_posteriors, float_dtype, namespace

__all__ = ["bhattacharyya_coefficients", "bhattacharyya_distance", "scaled_posteriors"]

_QUARTER_ROOT_2 = 2.0**0.25


def bhattacharyya_distance(mu_a: Any, logvar_a: Any, mu_b: Any, logvar_b: Any, *, var_a: Any = None,
                           var_b: Any = None, xp: Any = None) -> Any:
    """The Bhattacharyya distance D between diagonal-Gaussian posteriors, summed over the last axis.

    .. math::

        D = \\sum_k \\frac{(\\mu_{a,k} - \\mu_{b,k})^2}{8\\,\\bar\\sigma^2_k}
            + \\frac12\\Big[\\log\\bar\\sigma^2_k - \\frac{\\log\\sigma^2_{a,k} + \\log\\sigma^2_{b,k}}{2}\\Big],
        \\qquad \\bar\\sigma^2_k = \\frac{\\sigma^2_{a,k} + \\sigma^2_{b,k}}{2}

    evaluated as written (BC = exp(-D)), for the pairs the inputs broadcast to: ``mu_a[:, None]``
    against ``mu_b[None]`` gives every pair, equal shapes the pairs row by row. This is the form to
    differentiate and the one that stays finite where BC underflows; :func:`bhattacharyya_coefficients`
    computes exp(-D) for all pairs by the scaled product of the module docstring.

    Parameters
    ----------
    mu_a, logvar_a, mu_b, logvar_b : arrays broadcasting to (..., d)
    var_a, var_b : exp(logvar_a), exp(logvar_b), where already at hand (a graph that differentiates
        through one exp per item passes them); computed when left out.
    xp : the array module; default: the inputs' (numpy, cupy, array API). Any module with ``exp``,
        ``log``, ``square`` and ``sum(x, axis=...)`` works (TensorFlow's ops, for automatic
        differentiation: :mod:`repspace.models.fusion`).

    Returns
    -------
    array (...,) of D >= 0.

    >>> import numpy as np
    >>> float(bhattacharyya_distance(np.array([0.0]), np.array([0.0]), np.array([2.0]), np.array([0.0])))
    0.5
    """
    if xp is None:
        xp = namespace(mu_a, logvar_a, mu_b, logvar_b)
    var_a = xp.exp(logvar_a) if var_a is None else var_a
    var_b = xp.exp(logvar_b) if var_b is None else var_b
    sb2 = 0.5 * (var_a + var_b)
    terms = 0.125 * xp.square(mu_a - mu_b) / sb2 + 0.5 * (xp.log(sb2) - 0.5 * (logvar_a + logvar_b))
    return xp.sum(terms, axis=-1)


def scaled_posteriors(xp: Any, mu: Any, logvar: Any, shift: Any) -> tuple[Any, Any, Any]:
    """Per-image pieces of the BC factor of each dimension, from (mu, logvar) and a shift.

    Returns (m, v, q) with m = mu exp(-shift/2) / 2, v = exp(logvar - shift) (floored at the
    smallest normal number) and q = 2^(1/4) v^(1/4), so that

        BC_ij,k = exp(-(m_i - m_j)^2 / (v_i + v_j)) q_i q_j / sqrt(v_i + v_j)
    """
    tiny = xp.finfo(mu.dtype).smallest_normal
    v = xp.maximum(xp.exp(logvar - shift), xp.asarray(tiny, dtype=mu.dtype))
    m = mu * (0.5 * xp.exp(-0.5 * shift))
    q = _QUARTER_ROOT_2 * xp.sqrt(xp.sqrt(v))
    return m, v, q


def bc_factor(xp: Any, m_r: Any, v_r: Any, q_r: Any, m_c: Any, v_c: Any, q_c: Any) -> Any:
    """One dimension's BC factor from pieces broadcast against each other."""
    diff = m_r - m_c
    s = v_r + v_c
    return xp.exp(-(diff * diff) / s) / xp.sqrt(s) * q_r * q_c


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
        BC in [0, 1], in the inputs' float dtype.
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
    mu_r, lv_r = xp.astype(mu_rows, dtype, copy=False), xp.astype(logvar_rows, dtype, copy=False)
    mu_c, lv_c = xp.astype(mu_cols, dtype, copy=False), xp.astype(logvar_cols, dtype, copy=False)
    shift = xp.maximum(xp.max(lv_r, axis=-2, keepdims=True), xp.max(lv_c, axis=-2, keepdims=True))  # (..., 1, d)
    m_r, v_r, q_r = scaled_posteriors(xp, mu_r, lv_r, shift)
    m_c, v_c, q_c = scaled_posteriors(xp, mu_c, lv_c, shift)
    bc = None
    for k in range(mu_r.shape[-1]):  # d is small; one (n_rows, n_cols) block at a time
        factor = bc_factor(
            xp,
            m_r[..., :, k : k + 1], v_r[..., :, k : k + 1], q_r[..., :, k : k + 1],
            m_c[..., None, :, k], v_c[..., None, :, k], q_c[..., None, :, k],
        )
        bc = factor if bc is None else bc * factor
    return xp.minimum(bc, xp.asarray(1.0, dtype=dtype))  # rounding can leave the diagonal a hair above 1
