"""dSprites rendered here: the offline default dataset.

Every image of the dSprites factor grid is drawn on demand from its index, so the
737,280 images are never held in memory unless asked for. The grid is dSprites' own:

============  =====  ==========================================
factor        size   values
============  =====  ==========================================
shape         3      square, ellipse, heart
scale         6      linspace(0.5, 1, 6)
orientation   40     linspace(0, 2 pi, 40) (the first and last are the same angle)
posX          32     linspace(0, 1, 32), left to right
posY          32     linspace(0, 1, 32), top to bottom
============  =====  ==========================================

and row ``r`` of the dataset has the classes of row ``r`` of the dSprites npz:
``r = shape*245760 + scale*40960 + orientation*1024 + posX*32 + posY``. dSprites'
constant colour factor is left out.

Geometry (in pixels of the 64 x 64 canvas, whose pixel ``j`` covers ``[j, j + 1)``):
the sprite's centre is at ``16 + 31 * pos`` on each axis, so the 32 positions are one
pixel apart and every sprite stays inside the canvas; a sprite of scale ``s`` has
half-size ``R = 10 s`` (a square of side ``2R``; an ellipse with semi-axes ``0.7 R``
and ``1.3 R``; a heart of the curve ``(x^2 + y^2 - 1)^3 = x^2 y^3`` scaled by ``R``),
rotated counter-clockwise by the orientation angle about its centre. A pixel is 1 when
its centre lies inside the shape. The sprites resemble dSprites' but are not
pixel-identical to them: models trained on the real dSprites should be given the real
files (:mod:`repspace.data.dsprites`).

With ``image_size=32`` the 64 x 64 binary image is averaged over 2 x 2 blocks, so
pixels take values in {0, 1/4, 1/2, 3/4, 1}; other sizes are resampled with LANCZOS
(:func:`repspace.data.base.resize_images`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import IndexedFactorsDataset, grid_factors, resize_images

__all__ = [
    "DSPRITES_FACTOR_NAMES",
    "DSPRITES_FACTOR_SIZES",
    "SHAPES",
    "SCALES",
    "ORIENTATIONS",
    "POSITIONS",
    "ProceduralDSprites",
    "render_dsprites",
]

DSPRITES_FACTOR_NAMES: tuple[str, ...] = ("shape", "scale", "orientation", "posX", "posY")
DSPRITES_FACTOR_SIZES: tuple[int, ...] = (3, 6, 40, 32, 32)
SHAPES: tuple[str, ...] = ("square", "ellipse", "heart")
SCALES: np.ndarray = np.linspace(0.5, 1.0, 6)
ORIENTATIONS: np.ndarray = np.linspace(0.0, 2 * np.pi, 40)
POSITIONS: np.ndarray = np.linspace(0.0, 1.0, 32)

CANVAS = 64
_HALF_SIZE = 10.0  # pixels, at scale 1
_CENTRE_MIN = 16.0  # pixels
_CENTRE_SPAN = 31.0  # pixels, from posX = 0 to posX = 1
_ELLIPSE_AXES = (0.7, 1.3)
_HEART_SHIFT = 0.12  # centres the heart curve's vertical extent [-1, 1.24]
_BLOCK = 1024  # images rendered at a time, bounding temporary memory


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether canonical coordinates (u right, v up, unit half-size) fall inside ``shape``."""
    if shape == 0:
        return np.maximum(np.abs(u), np.abs(v)) <= 1.0
    if shape == 1:
        a, b = _ELLIPSE_AXES
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    y = v + _HEART_SHIFT
    r = u * u + y * y - 1.0
    return r * r * r - u * u * y * y * y <= 0.0


def render_dsprites(factors: np.ndarray) -> np.ndarray:
    """Render dSprites images from factor classes.

    Parameters
    ----------
    factors : int array, shape (n, 5)
        Classes of (shape, scale, orientation, posX, posY), sizes (3, 6, 40, 32, 32).

    Returns
    -------
    uint8 array, shape (n, 64, 64), values in {0, 1}

    Examples
    --------
    >>> img = render_dsprites(np.array([[0, 5, 0, 16, 16]]))[0]
    >>> int(img.sum())  # a 20 x 20 square
    400
    """
    f = np.asarray(factors, dtype=np.int64).reshape(-1, 5)
    if f.size and ((f < 0).any() or (f >= np.array(DSPRITES_FACTOR_SIZES)).any()):
        raise ValueError(f"factor classes must lie in [0, {DSPRITES_FACTOR_SIZES}) per column")
    n = f.shape[0]
    out = np.zeros((n, CANVAS, CANVAS), dtype=np.uint8)
    centres = np.arange(CANVAS, dtype=np.float32) + np.float32(0.5)
    for start in range(0, n, _BLOCK):
        fb = f[start : start + _BLOCK]
        half = (_HALF_SIZE * SCALES[fb[:, 1]]).astype(np.float32)[:, None, None]
        theta = np.mod(ORIENTATIONS[fb[:, 2]], 2 * np.pi)
        cos = np.cos(theta).astype(np.float32)[:, None, None]
        sin = np.sin(theta).astype(np.float32)[:, None, None]
        cx = (_CENTRE_MIN + _CENTRE_SPAN * POSITIONS[fb[:, 3]]).astype(np.float32)
        cy = (_CENTRE_MIN + _CENTRE_SPAN * POSITIONS[fb[:, 4]]).astype(np.float32)
        x = (centres[None, :] - cx[:, None])[:, None, :]  # (b, 1, W), right
        y_up = (cy[:, None] - centres[None, :])[:, :, None]  # (b, H, 1), up
        # rotate the canvas clockwise by theta = rotate the sprite counter-clockwise
        u = (x * cos + y_up * sin) / half
        v = (y_up * cos - x * sin) / half
        block = out[start : start + _BLOCK]
        for shape in range(len(SHAPES)):
            sel = fb[:, 0] == shape
            if sel.any():
                block[sel] = _inside(shape, u[sel], v[sel])
    return out


class ProceduralDSprites(IndexedFactorsDataset):
    """dSprites rendered on demand by index (see the module docstring for the geometry).

    Parameters
    ----------
    image_size : int, optional
        64 by default; 32 averages 2 x 2 blocks of the 64 x 64 rendering.

    Examples
    --------
    >>> ds = ProceduralDSprites()
    >>> len(ds), ds.image_shape
    (737280, (64, 64, 1))
    >>> ds.factors([245760 + 40960 + 1024 + 32 + 1]).tolist()
    [[1, 1, 1, 1, 1]]
    """

    def __init__(self, image_size: int | None = None, name: str = "dsprites_procedural") -> None:
        self.name = name
        self.factor_names = DSPRITES_FACTOR_NAMES
        self.factor_sizes = DSPRITES_FACTOR_SIZES
        self._size = image_size if image_size and image_size != CANVAS else None
        size = self._size or CANVAS
        self.image_shape = (size, size, 1)
        self.options: dict[str, Any] = {}

    def _images(self, indices: np.ndarray) -> np.ndarray:
        x = render_dsprites(grid_factors(indices, self.factor_sizes))
        if self._size and CANVAS % self._size == 0:  # block mean, summed in integers
            f = CANVAS // self._size
            sums = x.reshape(-1, self._size, f, self._size, f).sum(axis=(2, 4), dtype=np.uint16)
            return (sums.astype(np.float32) / np.float32(f * f))[..., None]
        x = x[..., None].astype(np.float32)
        return resize_images(x, self._size) if self._size else x
