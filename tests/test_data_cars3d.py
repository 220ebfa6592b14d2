"""Cars3D from small mesh files written with scipy.io.savemat, ordered by list.txt."""

import numpy as np
import pytest
import scipy.io

from repspace.data import load_dataset

N_OBJECTS = 3
NAMES = ["car_002_mesh", "car_000_mesh", "car_001_mesh"]  # list.txt order differs from name order


def mesh(tag):
    """im (128, 128, 3, 24, 4): red = tag, green = 10 * azimuth, blue = 60 * elevation."""
    im = np.zeros((128, 128, 3, 24, 4), dtype=np.uint8)
    im[:, :, 0] = tag
    im[:, :, 1] = (10 * np.arange(24))[:, None]
    im[:, :, 2] = (60 * np.arange(4))[None, :]
    return im


@pytest.fixture(scope="module")
def cars(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    folder = root / "cars"
    folder.mkdir()
    for name in NAMES:
        scipy.io.savemat(folder / f"{name}.mat", {"im": mesh(int(name[4:7]) * 50 + 20)})
    (folder / "list.txt").write_text("\n".join(NAMES) + "\n")
    return root


def test_factors_order_and_images(cars):
    ds = load_dataset("cars3d", data_dir=cars)
    assert ds.name == "cars3d"
    assert ds.factor_names == ("elevation", "azimuth", "object") and ds.factor_sizes == (4, 24, N_OBJECTS)
    assert len(ds) == 4 * 24 * N_OBJECTS and ds.image_shape == (64, 64, 3)
    idx = np.arange(len(ds))[::-7]
    f = ds.factors(idx)
    np.testing.assert_array_equal(idx, f[:, 0] * 24 * N_OBJECTS + f[:, 1] * N_OBJECTS + f[:, 2])
    x = ds.images(idx)
    assert x.dtype == np.float32 and x.shape == (idx.size, 64, 64, 3)
    for k in range(idx.size):
        elevation, azimuth, obj = f[k]
        tag = int(NAMES[obj][4:7]) * 50 + 20  # object number = line of list.txt
        np.testing.assert_allclose(x[k, 10, 20], np.array([tag, 10 * azimuth, 60 * elevation]) / 255.0, atol=1e-6)


def test_image_size(cars):
    ds = load_dataset("cars3d", data_dir=cars, image_size=32)
    assert ds.images([0, 5]).shape == (2, 32, 32, 3)


def test_without_list_txt_sorted_with_warning(cars, tmp_path):
    folder = tmp_path / "cars"
    folder.mkdir()
    for name in NAMES:
        (folder / f"{name}.mat").write_bytes((cars / "cars" / f"{name}.mat").read_bytes())
    with pytest.warns(UserWarning, match="sorted file-name order"):
        ds = load_dataset("cars3d", data_dir=tmp_path)
    assert [p.stem for p in ds.files] == sorted(NAMES)


def test_missing_files(tmp_path, cars):
    with pytest.raises(FileNotFoundError, match=r"cars/list\.txt") as err:
        load_dataset("cars3d", data_dir=tmp_path)
    assert "data/README.md" in str(err.value)
    folder = tmp_path / "cars"
    folder.mkdir()
    (folder / "list.txt").write_text("car_009_mesh\n")
    with pytest.raises(FileNotFoundError, match=r"car_009_mesh\.mat"):
        load_dataset("cars3d", data_dir=tmp_path)


def test_wrong_contents(tmp_path):
    folder = tmp_path / "cars"
    folder.mkdir()
    (folder / "list.txt").write_text("car_000_mesh.mat\n")
    scipy.io.savemat(folder / "car_000_mesh.mat", {"img": np.zeros((2, 2), np.uint8)})
    with pytest.raises(ValueError, match=r"car_000_mesh\.mat: has no variable 'im'"):
        load_dataset("cars3d", data_dir=tmp_path)
    scipy.io.savemat(folder / "car_000_mesh.mat", {"im": np.zeros((128, 128, 3, 4, 24), np.uint8)})
    with pytest.raises(ValueError, match=r"im is uint8 \(128, 128, 3, 4, 24\); expected uint8 \(128, 128, 3, 24, 4\)"):
        load_dataset("cars3d", data_dir=tmp_path)
    scipy.io.savemat(folder / "car_000_mesh.mat", {"im": np.zeros((128, 128, 3, 24, 4), np.float64)})
    with pytest.raises(ValueError, match="im is double"):
        load_dataset("cars3d", data_dir=tmp_path)
    (folder / "car_000_mesh.mat").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a MATLAB"):
        load_dataset("cars3d", data_dir=tmp_path)
