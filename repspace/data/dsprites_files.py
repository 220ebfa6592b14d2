"""Readers of the real dSprites: its official npz and HDF5 files, and tensorflow-datasets.

The official npz (``imgs`` uint8 (737280, 64, 64) in {0, 1}; ``latents_classes`` int64
(737280, 6) over (color, shape, scale, orientation, posX, posY)) and its HDF5 twin
(``imgs``, ``latents/classes``) are read with their rows in file order, which is the
factor grid ``row = shape*245760 + scale*40960 + orientation*1024 + posX*32 + posY``.
The constant colour column is dropped: factors are ("shape", "scale", "orientation",
"posX", "posY") with sizes (3, 6, 40, 32, 32), as in :mod:`repspace.data.procedural`.
A file with fewer rows (a subset) is read as it is, with the factors it records.

The npz's ``metadata`` entry is a pickle and is never read. Images of the npz are
decompressed once, on first use, into a bit-packed array (about 380 MB for the full
file) unless the member is stored uncompressed, which is memory-mapped; the HDF5 file
is read by index.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .base import Dataset, grid_index, missing_file_error, resize_images
from .procedural import DSPRITES_FACTOR_NAMES, DSPRITES_FACTOR_SIZES

__all__ = ["NPZ_NAME", "HDF5_NAME", "DSpritesFile", "DSpritesTFDS"]

NPZ_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
HDF5_NAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.hdf5"
FULL_LENGTH = 737280
_FILE_FACTOR_SIZES = (1, *DSPRITES_FACTOR_SIZES)  # with the constant colour column
_STREAM_ROWS = 8192
_GET_IT = (
    "Download it from https://github.com/deepmind/dsprites-dataset "
    "into <data_dir>/dsprites/, or pass path=."
)


def _check_classes(classes: np.ndarray, path: Path) -> np.ndarray:
    """Validate latents classes (n, 6) and return the factor classes (n, 5) without colour."""
    if classes.ndim != 2 or classes.shape[1] != 6 or not np.issubdtype(classes.dtype, np.integer):
        raise ValueError(
            f"{path}: latents classes have shape {classes.shape} and dtype {classes.dtype}; "
            f"expected integers of shape (n, 6) over (color, shape, scale, orientation, posX, posY)"
        )
    if classes.size and ((classes < 0).any() or (classes >= np.array(_FILE_FACTOR_SIZES)).any()):
        raise ValueError(f"{path}: latents classes fall outside the dSprites sizes {_FILE_FACTOR_SIZES}")
    return np.ascontiguousarray(classes[:, 1:], dtype=np.int64)


def _check_images_header(shape: tuple[int, ...], dtype: np.dtype, n: int, path: Path) -> None:
    if tuple(shape) != (n, 64, 64) or np.dtype(dtype) != np.uint8:
        raise ValueError(
            f"{path}: imgs has shape {tuple(shape)} and dtype {dtype}; expected uint8 of shape "
            f"({n}, 64, 64) to match latents classes"
        )


def _npy_header(f: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    return np.lib.format.read_array_header_2_0(f)


class DSpritesFile(Dataset):
    """dSprites from the official npz or HDF5 file, lazily by index.

    Parameters
    ----------
    path : path to the ``.npz`` or ``.hdf5``/``.h5`` file
    image_size : int, optional
        Resize from 64 (32 averages 2 x 2 blocks).
    """

    def __init__(self, path: str | Path, image_size: int | None = None, name: str = "dsprites") -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise missing_file_error(self.path, "dsprites", _GET_IT)
        self.name = name
        self.factor_names = DSPRITES_FACTOR_NAMES
        self.factor_sizes = DSPRITES_FACTOR_SIZES
        self._size = image_size if image_size and image_size != 64 else None
        size = self._size or 64
        self.image_shape = (size, size, 1)
        self.options: dict[str, Any] = {"file": self.path.name}
        self._packed: np.ndarray | None = None
        self._mapped: np.ndarray | None = None
        suffix = self.path.suffix.lower()
        if suffix == ".npz":
            self._format = "npz"
            self._factor_array = self._open_npz()
        elif suffix in (".hdf5", ".h5"):
            self._format = "hdf5"
            self._factor_array = self._open_hdf5()
        else:
            raise ValueError(f"{self.path}: expected a dSprites .npz or .hdf5 file")

    # -- npz ---------------------------------------------------------------------------
    def _open_npz(self) -> np.ndarray:
        try:
            zf = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile as err:
            raise ValueError(f"{self.path}: not an npz (zip) file") from err
        with zf:
            names = set(zf.namelist())
            missing = {"imgs.npy", "latents_classes.npy"} - names
            if missing:
                found = sorted(n.removesuffix(".npy") for n in names)
                raise ValueError(
                    f"{self.path}: missing {sorted(m.removesuffix('.npy') for m in missing)}; "
                    f"a dSprites npz has imgs and latents_classes, this one has {found}"
                )
            with zf.open("latents_classes.npy") as f:
                classes = np.lib.format.read_array(f, allow_pickle=False)
            factors = _check_classes(classes, self.path)
            with zf.open("imgs.npy") as f:
                shape, fortran, dtype = _npy_header(f)
            _check_images_header(shape, dtype, factors.shape[0], self.path)
            if fortran:
                raise ValueError(f"{self.path}: imgs is stored in Fortran order; expected C order")
        return factors

    def _npz_images(self) -> None:
        """Memory-map imgs if stored uncompressed, else decompress it into packed bits."""
        n = self._factor_array.shape[0]
        with zipfile.ZipFile(self.path) as zf:
            info = zf.getinfo("imgs.npy")
            if info.compress_type == zipfile.ZIP_STORED:
                with open(self.path, "rb") as raw:
                    raw.seek(info.header_offset)
                    local = raw.read(30)
                    start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(
                        local[28:30], "little"
                    )
                    raw.seek(start)
                    _npy_header(raw)
                    offset = raw.tell()
                self._mapped = np.memmap(self.path, np.uint8, "r", offset=offset, shape=(n, 64, 64))
                return
            packed = np.empty((n, 64, 8), dtype=np.uint8)
            with zf.open("imgs.npy") as f:
                _npy_header(f)
                for start in range(0, n, _STREAM_ROWS):
                    rows = min(_STREAM_ROWS, n - start)
                    chunk = np.frombuffer(f.read(rows * 4096), dtype=np.uint8).reshape(rows, 64, 64)
                    if chunk.max(initial=0) > 1:
                        raise ValueError(f"{self.path}: imgs holds values other than 0 and 1")
                    packed[start : start + rows] = np.packbits(chunk, axis=-1)
        self._packed = packed

    # -- hdf5 --------------------------------------------------------------------------
    def _open_hdf5(self) -> np.ndarray:
        import h5py

        try:
            h5 = h5py.File(self.path, "r")
        except OSError as err:
            raise ValueError(f"{self.path}: not an HDF5 file") from err
        with h5:
            for key in ("imgs", "latents/classes"):
                if key not in h5:
                    raise ValueError(
                        f"{self.path}: missing {key!r}; a dSprites HDF5 has imgs and "
                        f"latents/classes, this one has {sorted(h5.keys())}"
                    )
            factors = _check_classes(h5["latents/classes"][()], self.path)
            imgs = h5["imgs"]
            _check_images_header(imgs.shape, imgs.dtype, factors.shape[0], self.path)
        return factors

    def _hdf5_rows(self, indices: np.ndarray) -> np.ndarray:
        import h5py

        unique, inverse = np.unique(indices, return_inverse=True)
        with h5py.File(self.path, "r") as h5:
            rows = h5["imgs"][unique]
        return rows[inverse]

    # -- Dataset -----------------------------------------------------------------------
    def __getstate__(self) -> dict:
        # images are reread from the file where the dataset is unpickled, not copied
        return {**self.__dict__, "_packed": None, "_mapped": None}

    def __len__(self) -> int:
        return int(self._factor_array.shape[0])

    def _factors(self, indices: np.ndarray) -> np.ndarray:
        return self._factor_array[indices]

    def _images(self, indices: np.ndarray) -> np.ndarray:
        if self._format == "hdf5":
            rows = self._hdf5_rows(indices)
        else:
            if self._packed is None and self._mapped is None:
                self._npz_images()
            if self._mapped is not None:
                rows = np.asarray(self._mapped[indices])
            else:
                rows = np.unpackbits(self._packed[indices], axis=-1)
        x = np.minimum(rows, 1).astype(np.float32)[..., None]
        return resize_images(x, self._size) if self._size else x


class DSpritesTFDS(Dataset):
    """dSprites through a prepared tensorflow-datasets ``dsprites``.

    All images are read once into a bit-packed array. When the split is the whole
    factor grid its rows are put into grid order, so that indices agree with the npz;
    otherwise they keep tfds' order. Nonzero pixels read as 1.
    """

    def __init__(
        self,
        data_dir: Path,
        image_size: int | None = None,
        tfds_data_dir: str | Path | None = None,
        name: str = "dsprites",
    ) -> None:
        from .tfds_loader import read_tfds, resolve_tfds_dir

        keys = ("image", "label_shape", "label_scale", "label_orientation", "label_x_position", "label_y_position")
        arrays = read_tfds("dsprites", "train", resolve_tfds_dir(data_dir, tfds_data_dir), keys)
        factors = np.stack([arrays[k].astype(np.int64) for k in keys[1:]], axis=1)
        images = np.packbits(arrays["image"].reshape(-1, 64, 64) > 0, axis=-1)
        rows = grid_index(factors, DSPRITES_FACTOR_SIZES)
        self.grid_order = rows.size == FULL_LENGTH and np.unique(rows).size == FULL_LENGTH
        if self.grid_order:
            order = np.argsort(rows)
            factors, images = factors[order], images[order]
        self.name = name
        self.factor_names = DSPRITES_FACTOR_NAMES
        self.factor_sizes = DSPRITES_FACTOR_SIZES
        self._factor_array = factors
        self._packed = images
        self._size = image_size if image_size and image_size != 64 else None
        size = self._size or 64
        self.image_shape = (size, size, 1)
        self.options = {"source": "tfds"}

    def __len__(self) -> int:
        return int(self._factor_array.shape[0])

    def _factors(self, indices: np.ndarray) -> np.ndarray:
        return self._factor_array[indices]

    def _images(self, indices: np.ndarray) -> np.ndarray:
        x = np.unpackbits(self._packed[indices], axis=-1).astype(np.float32)[..., None]
        return resize_images(x, self._size) if self._size else x
