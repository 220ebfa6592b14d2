"""smallNORB from small files written in the NORB binary matrix format (real magic numbers)."""

import struct

import numpy as np
import pytest
from PIL import Image

from repspace.data import load_dataset
from repspace.data.smallnorb import SPLITS, norb_header, read_norb, write_norb

MAGIC = {"u1": 0x1E3D4C55, "i4": 0x1E3D4C54, "f4": 0x1E3D4C51, "f8": 0x1E3D4C53}


def norb_bytes(array):
    """The NORB binary matrix format, written out by hand: magic, ndim, max(3, ndim) dims, data."""
    a = np.ascontiguousarray(array)
    dims = list(a.shape) + [1] * (3 - a.ndim)
    head = struct.pack("<ii", MAGIC[a.dtype.str[1:]], a.ndim) + struct.pack(f"<{len(dims)}i", *dims)
    return head + a.astype(a.dtype.newbyteorder("<")).tobytes()


def make_split(rng, n):
    dat = rng.integers(0, 256, size=(n, 2, 96, 96), dtype=np.uint8)
    cat = rng.integers(0, 5, size=n).astype(np.int32)
    info = np.column_stack(
        [rng.integers(0, 10, n), rng.integers(0, 9, n), 2 * rng.integers(0, 18, n), rng.integers(0, 6, n)]
    ).astype(np.int32)
    return dat, cat, info


@pytest.fixture(scope="module")
def norb(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    folder = root / "small_norb"
    folder.mkdir()
    rng = np.random.default_rng(0)
    splits = [make_split(rng, 7), make_split(rng, 5)]
    for split, arrays in zip(SPLITS, splits):
        for kind, a in zip(("dat", "cat", "info"), arrays):
            (folder / f"smallnorb-{split}-{kind}.mat").write_bytes(norb_bytes(a))
    return root, splits


def test_header_parsing(norb):
    root, splits = norb
    path = root / "small_norb" / f"smallnorb-{SPLITS[0]}-dat.mat"
    dtype, shape, offset = norb_header(path)
    assert (dtype, shape, offset) == (np.uint8, (7, 2, 96, 96), 24)
    cat = root / "small_norb" / f"smallnorb-{SPLITS[0]}-cat.mat"
    assert norb_header(cat)[1:] == ((7,), 20)  # ndim 1 still has three dims in the header
    np.testing.assert_array_equal(read_norb(cat), splits[0][1])


@pytest.mark.parametrize("dtype", ["u1", "i2", "i4", "f4", "f8"])
def test_write_read_roundtrip(tmp_path, dtype):
    a = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    write_norb(tmp_path / "a.mat", a)
    back = read_norb(tmp_path / "a.mat")
    assert back.dtype == np.dtype(dtype) and back.shape == a.shape
    np.testing.assert_array_equal(back, a)
    if dtype in MAGIC:
        assert (tmp_path / "a.mat").read_bytes() == norb_bytes(a)


def test_images_and_factors(norb):
    root, splits = norb
    ds = load_dataset("smallnorb", data_dir=root)
    assert ds.name == "smallnorb" and len(ds) == 12
    assert ds.factor_names == ("category", "elevation", "azimuth", "lighting")
    assert ds.factor_sizes == (5, 9, 18, 6)
    assert ds.image_shape == (64, 64, 1)
    idx = np.array([8, 0, 6, 7, 11])  # across the training/testing boundary, unsorted
    where = [(0, i) if i < 7 else (1, i - 7) for i in idx]  # (split, row in split)
    x = ds.images(idx)
    f = ds.factors(idx)
    assert x.dtype == np.float32 and x.shape == (5, 64, 64, 1) and f.dtype == np.int64
    for k, (s, i) in enumerate(where):
        dat, cat, info = splits[s]
        expected = np.asarray(Image.fromarray(dat[i, 0]).resize((64, 64), Image.Resampling.LANCZOS)) / 255.0
        np.testing.assert_allclose(x[k, :, :, 0], expected, atol=1e-6)
        assert f[k].tolist() == [cat[i], info[i, 1], info[i, 2] // 2, info[i, 3]]


def test_image_size(norb):
    root, splits = norb
    x = load_dataset("smallnorb", data_dir=root, image_size=96).images([0])
    np.testing.assert_allclose(x[0, :, :, 0], splits[0][0][0, 0] / 255.0, atol=1e-6)
    assert load_dataset("smallnorb", data_dir=root, image_size=32).images([0, 1]).shape == (2, 32, 32, 1)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"small_norb/smallnorb-5x46789x9x18x6x2x96x96-training-dat\.mat"):
        load_dataset("smallnorb", data_dir=tmp_path)


def _copy(norb, tmp_path):
    root, _ = norb
    dst = tmp_path / "small_norb"
    dst.mkdir()
    for p in (root / "small_norb").iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def test_bad_magic(norb, tmp_path):
    folder = _copy(norb, tmp_path)
    path = folder / f"smallnorb-{SPLITS[1]}-cat.mat"
    raw = bytearray(path.read_bytes())
    raw[0:4] = struct.pack("<i", 0x1E3D4C50)
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"testing-cat\.mat: bad magic number 0x1e3d4c50; expected one of 0x1e3d4c55"):
        load_dataset("smallnorb", data_dir=tmp_path)


def test_truncated_and_wrong_shapes(norb, tmp_path):
    folder = _copy(norb, tmp_path)
    dat = folder / f"smallnorb-{SPLITS[0]}-dat.mat"
    good = dat.read_bytes()
    dat.write_bytes(good[:-10])
    with pytest.raises(ValueError, match="bytes, but its header"):
        load_dataset("smallnorb", data_dir=tmp_path)
    dat.write_bytes(norb_bytes(np.zeros((7, 96, 96), np.uint8)))
    with pytest.raises(ValueError, match=r"training-dat\.mat: holds uint8 \(7, 96, 96\); expected shape \('n', 2, 96, 96\)"):
        load_dataset("smallnorb", data_dir=tmp_path)
    dat.write_bytes(good)
    info = folder / f"smallnorb-{SPLITS[0]}-info.mat"
    info.write_bytes(norb_bytes(np.zeros((6, 4), np.int32)))
    with pytest.raises(ValueError, match=r"info\.mat: holds int32 \(6, 4\); expected shape \(7, 4\)"):
        load_dataset("smallnorb", data_dir=tmp_path)
    odd = np.zeros((7, 4), np.int32)
    odd[0, 2] = 3
    info.write_bytes(norb_bytes(odd))
    with pytest.raises(ValueError, match="azimuth in 0, 2"):
        load_dataset("smallnorb", data_dir=tmp_path)


def test_pickles_without_its_images(norb):
    import pickle

    ds = load_dataset("smallnorb", data_dir=norb[0])
    x = ds.images([1, 9])
    blob = pickle.dumps(ds)
    assert len(blob) < 10_000
    np.testing.assert_array_equal(pickle.loads(blob).images([1, 9]), x)
