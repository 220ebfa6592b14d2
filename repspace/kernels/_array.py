"""Array-module plumbing shared by the kernels.

Kernels take the array module from their inputs (numpy, cupy, or any array-API
namespace), so the same code runs on the CPU and on a GPU. Only functions of the
array API standard are used on the hot paths.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["namespace", "to_numpy", "float_dtype", "check_posteriors", "contiguous"]


def namespace(*arrays: Any) -> Any:
    """Return the array namespace shared by ``arrays``.

    numpy arrays (and plain sequences) give numpy itself; anything else goes through
    ``array_api_compat``, whose cupy namespace supplies the standard's functions
    (``permute_dims``, ``concat``, ``astype``, ...) whatever the cupy version.
    """
    present = [a for a in arrays if a is not None]
    if all(isinstance(a, np.ndarray) or not hasattr(a, "__array_namespace__") for a in present):
        return np
    import array_api_compat

    try:
        return array_api_compat.array_namespace(*present)
    except TypeError as err:
        raise TypeError(f"arrays come from different array modules; move them to one module first ({err})") from None


def to_numpy(x: Any) -> np.ndarray:
    """Copy ``x`` (numpy, cupy or array-API array) to a numpy array on the host."""
    if isinstance(x, np.ndarray):
        return x
    get = getattr(x, "get", None)
    if callable(get):  # cupy
        return get()
    try:
        return np.from_dlpack(x)
    except (TypeError, BufferError, RuntimeError, AttributeError):
        return np.asarray(x)


def float_dtype(xp: Any, *arrays: Any) -> Any:
    """float32 when every array is float32, else float64 (rejecting non-float input)."""
    wide = False
    for a in arrays:
        if a.dtype == xp.float32:
            continue
        if a.dtype == xp.float64:
            wide = True
            continue
        raise TypeError(f"expected float32 or float64 arrays, got {a.dtype}")
    return xp.float64 if wide else xp.float32


def check_posteriors(mu: Any, logvar: Any, *, unit_axis: int | None, image_axis: int, what: str = "unit") -> None:
    """Validate a stack of diagonal-Gaussian posteriors.

    Raises ValueError for mismatched shapes, fewer than two images, or NaN/infinite
    values; the message names the offending ``what`` (unit, model, ...) by index.
    """
    if tuple(mu.shape) != tuple(logvar.shape):
        raise ValueError(f"mu and logvar shapes differ: {tuple(mu.shape)} vs {tuple(logvar.shape)}")
    if mu.shape[image_axis] < 2:
        raise ValueError(f"need at least 2 images to compare, got {mu.shape[image_axis]}")
    for name, arr in (("mu", mu), ("logvar", logvar)):
        finite = to_numpy(namespace(arr).isfinite(arr))
        if finite.all():
            continue
        if unit_axis is None:
            bad = np.argwhere(~finite)[0]
            raise ValueError(f"{name} has NaN or infinite values (first at index {tuple(int(i) for i in bad)})")
        axes = tuple(i for i in range(finite.ndim) if i != unit_axis % finite.ndim)
        bad_units = np.flatnonzero(~finite.all(axis=axes))
        listed = ", ".join(str(int(u)) for u in bad_units[:10]) + (" ..." if bad_units.size > 10 else "")
        raise ValueError(f"{name} has NaN or infinite values in {what} {listed}")


def contiguous(xp: Any, x: Any) -> Any:
    """A C-contiguous copy where the module can make one (numpy, cupy), else ``x``.

    Broadcasting against transposed views otherwise yields strided results that make
    every later elementwise pass slower.
    """
    make = getattr(xp, "ascontiguousarray", None)
    return make(x) if make is not None else x
