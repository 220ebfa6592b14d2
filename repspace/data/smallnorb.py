"""smallNORB from its binary ``.mat`` files (the NORB binary matrix format, not MATLAB).

Each file is: an int32 magic number naming the element type (0x1E3D4C55 uint8,
0x1E3D4C56 int16, 0x1E3D4C54 int32, 0x1E3D4C51 float32, 0x1E3D4C53 float64), an int32
number of dimensions ``ndim``, ``max(3, ndim)`` int32 dimensions (only the first
``ndim`` count), then the data in C order, all little-endian. Per split there is a
``dat`` file uint8 (24300, 2, 96, 96) (two cameras), ``cat`` int32 (24300,) and
``info`` int32 (24300, 4) (instance, elevation, azimuth 0, 2, ..., 34, lighting).

As in disentanglement_lib, the training split is followed by the testing split
(48,600 images), only the first camera is used, images are resized from 96 to 64
with LANCZOS, and the factors are ("category", "elevation", "azimuth", "lighting") with
sizes (5, 9, 18, 6), azimuth being the file's value / 2. The instance is not a factor.
Images are read from memory-mapped files by index.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Dataset, lanczos_uint8, missing_file_error

__all__ = ["NORB_MAGIC", "SPLITS", "read_norb", "norb_header", "write_norb", "SmallNORB", "load_smallnorb"]

NORB_MAGIC: dict[int, np.dtype] = {
    0x1E3D4C55: np.dtype("u1"),
    0x1E3D4C56: np.dtype("<i2"),
    0x1E3D4C54: np.dtype("<i4"),
    0x1E3D4C51: np.dtype("<f4"),
    0x1E3D4C53: np.dtype("<f8"),
}
SPLITS = ("5x46789x9x18x6x2x96x96-training", "5x01235x9x18x6x2x96x96-testing")
FACTOR_NAMES = ("category", "elevation", "azimuth", "lighting")
FACTOR_SIZES = (5, 9, 18, 6)
_GET_IT = (
    "Download the six smallnorb-*-{dat,cat,info}.mat files (unzipped) from "
    "https://cs.nyu.edu/~yann/data/norb-v1.0-small/ into <data_dir>/small_norb/."
)


def norb_header(path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """Parse a NORB binary matrix header.

    Returns
    -------
    (dtype, shape, offset) : the element type, the shape and the byte offset of the data.

    Raises
    ------
    ValueError
        For an unknown magic number, an implausible number of dimensions, or a file
        whose size does not match its header.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{path}: too short for a smallNORB header")
        magic, ndim = (int(v) for v in np.frombuffer(head, dtype="<i4"))
        if magic not in NORB_MAGIC:
            known = ", ".join(f"{m:#x}" for m in NORB_MAGIC)
            raise ValueError(f"{path}: bad magic number {magic & 0xFFFFFFFF:#x}; expected one of {known}")
        if not 0 <= ndim <= 16:
            raise ValueError(f"{path}: implausible number of dimensions {ndim}")
        count = max(3, ndim)
        raw = f.read(4 * count)
        if len(raw) < 4 * count:
            raise ValueError(f"{path}: truncated smallNORB header")
        shape = tuple(int(d) for d in np.frombuffer(raw, dtype="<i4")[:ndim])
    dtype = NORB_MAGIC[magic]
    offset = 8 + 4 * count
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        raise ValueError(f"{path}: {size} bytes, but its header {dtype} {shape} implies {expected}")
    return dtype, shape, offset


def read_norb(path: Path, mmap: bool = False) -> np.ndarray:
    """Read a NORB binary matrix file, optionally memory-mapped (read-only)."""
    dtype, shape, offset = norb_header(path)
    if mmap:
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    with open(path, "rb") as f:
        f.seek(offset)
        return np.fromfile(f, dtype=dtype).reshape(shape)


def write_norb(path: Path, array: np.ndarray) -> None:
    """Write an array in the NORB binary matrix format (for tests and small subsets)."""
    a = np.asarray(array)
    magic = {np.dtype(v).str: k for k, v in NORB_MAGIC.items()}.get(a.dtype.newbyteorder("<").str)
    if magic is None:
        raise ValueError(f"no smallNORB magic number for dtype {a.dtype}")
    dims = list(a.shape) + [1] * max(0, 3 - a.ndim)
    with open(path, "wb") as f:
        np.array([magic, a.ndim, *dims], dtype="<i4").tofile(f)
        np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tofile(f)


def _expect(path: Path, array: np.ndarray, ndim_shape: tuple[int | None, ...], kinds: str) -> None:
    ok = array.ndim == len(ndim_shape) and all(e is None or e == s for e, s in zip(ndim_shape, array.shape))
    if not ok or array.dtype.kind not in kinds:
        shown = tuple("n" if e is None else e for e in ndim_shape)
        raise ValueError(f"{path}: holds {array.dtype} {array.shape}; expected shape {shown}")


class SmallNORB(Dataset):
    """smallNORB, training then testing split, first camera, lazily by index.

    Parameters
    ----------
    folder : folder holding the six ``smallnorb-<split>-{dat,cat,info}.mat`` files
    image_size : int, optional
        64 by default (resized from 96 with LANCZOS, straight to this size).
    """

    def __init__(self, folder: str | Path, image_size: int | None = None, name: str = "smallnorb") -> None:
        folder = Path(folder)
        self.name = name
        self.factor_names = FACTOR_NAMES
        self.factor_sizes = FACTOR_SIZES
        self._size = int(image_size or 64)
        self.image_shape = (self._size, self._size, 1)
        self.options = {}
        self._dat_paths: list[Path] = []
        self._dat: list[np.ndarray] | None = None
        factors = []
        lengths = []
        for split in SPLITS:
            paths = {kind: folder / f"smallnorb-{split}-{kind}.mat" for kind in ("dat", "cat", "info")}
            for p in paths.values():
                if not p.is_file():
                    raise missing_file_error(p, "smallnorb", _GET_IT)
            dat = read_norb(paths["dat"], mmap=True)
            _expect(paths["dat"], dat, (None, 2, 96, 96), "u")
            n = dat.shape[0]
            cat = read_norb(paths["cat"])
            _expect(paths["cat"], cat, (n,), "iu")
            info = read_norb(paths["info"])
            _expect(paths["info"], info, (n, 4), "iu")
            f = np.column_stack([cat, info[:, 1], info[:, 2] // 2, info[:, 3]]).astype(np.int64)
            if (f < 0).any() or (f >= np.array(FACTOR_SIZES)).any() or (info[:, 2] % 2).any():
                raise ValueError(
                    f"{paths['info']}: factor values outside category < 5, elevation < 9, "
                    f"azimuth in 0, 2, ..., 34, lighting < 6"
                )
            self._dat_paths.append(paths["dat"])
            lengths.append(n)
            factors.append(f)
        self._factor_array = np.concatenate(factors)
        self._split_start = np.cumsum([0] + lengths)

    def __getstate__(self) -> dict:
        # memory maps are reopened where the dataset is unpickled, not copied
        return {**self.__dict__, "_dat": None}

    def __len__(self) -> int:
        return int(self._factor_array.shape[0])

    def _factors(self, indices: np.ndarray) -> np.ndarray:
        return self._factor_array[indices]

    def _images(self, indices: np.ndarray) -> np.ndarray:
        if self._dat is None:
            self._dat = [read_norb(p, mmap=True) for p in self._dat_paths]
        out = np.empty((indices.size, self._size, self._size, 1), dtype=np.float32)
        split = np.searchsorted(self._split_start, indices, side="right") - 1
        for k, (s, i) in enumerate(zip(split, indices - self._split_start[split])):
            img = self._dat[s][i, 0]
            out[k, :, :, 0] = lanczos_uint8(img, self._size) if self._size != 96 else img
        out /= np.float32(255.0)
        return out


def load_smallnorb(data_dir: Path, image_size: int | None = None, *, folder: str | Path | None = None) -> SmallNORB:
    """smallNORB from ``<data_dir>/small_norb/`` (or ``folder``)."""
    return SmallNORB(Path(folder) if folder is not None else Path(data_dir) / "small_norb", image_size)
