"""Cars3D from the ``car_XXX_mesh.mat`` files of Reed et al. (2015).

Each file holds ``im``: uint8 (128, 128, 3, 24, 4) = (height, width, RGB, azimuth,
elevation). Objects are numbered in the order of ``list.txt`` (one mesh name per line,
with or without ``.mat``); without a ``list.txt`` the files are taken in sorted name
order and a warning says so. Images are resized to 64 x 64 with LANCZOS (as
disentanglement_lib does) and the factors are ("elevation", "azimuth", "object") with
sizes (4, 24, number of objects, 183 for the full set), on a row-major grid:
``row = elevation * 24 * n_objects + azimuth * n_objects + object``. Meshes are read on
first use and kept resized in memory (about 1.2 MB each).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .base import IndexedFactorsDataset, grid_factors, lanczos_uint8, missing_file_error

__all__ = ["Cars3D", "check_mesh", "load_cars3d", "read_mesh"]

_GET_IT = (
    "Download nips2015-analogy-data.tar.gz (Reed et al. 2015, linked from "
    "http://www.scottreed.info) and put the contents of its data/cars/ folder "
    "(car_*_mesh.mat and list.txt) into <data_dir>/cars/."
)


def _bad_im(path: Path, dtype: object, shape: tuple[int, ...]) -> ValueError:
    return ValueError(f"{path}: im is {dtype} {shape}; expected uint8 (128, 128, 3, 24, 4)")


def check_mesh(path: Path) -> None:
    """Check a mesh file's header (without reading its data): ``im`` uint8 (s, s, 3, 24, 4)."""
    import scipy.io
    from scipy.io.matlab import MatReadError

    try:
        entries = {name: (shape, cls) for name, shape, cls in scipy.io.whosmat(path)}
    except (ValueError, OSError, TypeError, MatReadError) as err:
        raise ValueError(f"{path}: not a MATLAB .mat file ({err})") from err
    if "im" not in entries:
        raise ValueError(f"{path}: has no variable 'im'; a Cars3D mesh file holds im (128, 128, 3, 24, 4)")
    shape, cls = entries["im"]
    if len(shape) != 5 or tuple(shape[2:]) != (3, 24, 4) or shape[0] != shape[1] or cls != "uint8":
        raise _bad_im(path, cls, tuple(shape))


def read_mesh(path: Path) -> np.ndarray:
    """Read one mesh file's ``im`` as uint8 (elevation 4, azimuth 24, height, width, 3)."""
    import scipy.io
    from scipy.io.matlab import MatReadError

    try:
        mat = scipy.io.loadmat(path, variable_names=["im"])
    except (ValueError, OSError, MatReadError) as err:
        raise ValueError(f"{path}: not a MATLAB .mat file ({err})") from err
    if "im" not in mat:
        raise ValueError(f"{path}: has no variable 'im'; a Cars3D mesh file holds im (128, 128, 3, 24, 4)")
    im = mat["im"]
    if im.ndim != 5 or im.shape[2:] != (3, 24, 4) or im.shape[0] != im.shape[1] or im.dtype != np.uint8:
        raise _bad_im(path, im.dtype, im.shape)
    return np.transpose(im, (4, 3, 0, 1, 2))


class Cars3D(IndexedFactorsDataset):
    """Cars3D, lazily by object.

    Parameters
    ----------
    folder : folder with ``car_*_mesh.mat`` and ``list.txt``
    image_size : int, optional
        64 by default (resized from 128 with LANCZOS, straight to this size).
    """

    def __init__(self, folder: str | Path, image_size: int | None = None, name: str = "cars3d") -> None:
        folder = Path(folder)
        listing = folder / "list.txt"
        if listing.is_file():
            stems = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
            files = [folder / (s if s.endswith(".mat") else s + ".mat") for s in stems]
            for f in files:
                if not f.is_file():
                    raise missing_file_error(f, f"cars3d (listed in {listing})", _GET_IT)
        else:
            files = sorted(folder.glob("car_*_mesh.mat")) if folder.is_dir() else []
            if not files:
                raise missing_file_error(listing, "cars3d", _GET_IT)
            warnings.warn(
                f"{listing} not found: numbering the {len(files)} Cars3D objects in sorted file-name order",
                stacklevel=3,
            )
        for f in files:
            check_mesh(f)
        self.files = files
        self.name = name
        self.factor_names = ("elevation", "azimuth", "object")
        self.factor_sizes = (4, 24, len(files))
        self._size = int(image_size or 64)
        self.image_shape = (self._size, self._size, 3)
        self.options = {}
        self._cache: dict[int, np.ndarray] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cache": {}}

    def _object(self, k: int) -> np.ndarray:
        """uint8 (4, 24, size, size, 3), resized, cached."""
        if k not in self._cache:
            mesh = read_mesh(self.files[k])
            flat = mesh.reshape(-1, *mesh.shape[2:])
            self._cache[k] = np.stack([lanczos_uint8(im, self._size) for im in flat]).reshape(
                4, 24, self._size, self._size, 3
            )
        return self._cache[k]

    def _images(self, indices: np.ndarray) -> np.ndarray:
        f = grid_factors(indices, self.factor_sizes)
        out = np.empty((indices.size, *self.image_shape), dtype=np.float32)
        for k in np.unique(f[:, 2]):
            sel = f[:, 2] == k
            out[sel] = self._object(int(k))[f[sel, 0], f[sel, 1]]
        out /= np.float32(255.0)
        return out


def load_cars3d(data_dir: Path, image_size: int | None = None, *, folder: str | Path | None = None) -> Cars3D:
    """Cars3D from ``<data_dir>/cars/`` (or ``folder``)."""
    return Cars3D(Path(folder) if folder is not None else Path(data_dir) / "cars", image_size)
