"""dSprites from small files in the official npz and HDF5 formats, and the variants."""

import h5py
import numpy as np
import pytest
from PIL import Image

from repspace.data import load_dataset, render_dsprites
from repspace.data.base import grid_factors
from repspace.data.dsprites import HDF5_NAME, NPZ_NAME
from repspace.data.procedural import DSPRITES_FACTOR_SIZES, ORIENTATIONS, POSITIONS, SCALES

N = 120


@pytest.fixture(scope="module")
def subset():
    """Rows of the grid, their (color, ...) classes and values, and rendered images."""
    rows = np.sort(np.random.default_rng(3).choice(737280, N, replace=False))
    f = grid_factors(rows, DSPRITES_FACTOR_SIZES)
    classes = np.column_stack([np.zeros(N, np.int64), f]).astype(np.int64)
    values = np.column_stack(
        [np.ones(N), f[:, 0] + 1.0, SCALES[f[:, 1]], ORIENTATIONS[f[:, 2]], POSITIONS[f[:, 3]], POSITIONS[f[:, 4]]]
    )
    return rows, classes, values, render_dsprites(f)


def _write_npz(path, classes, values, imgs, compressed=True, **extra):
    save = np.savez_compressed if compressed else np.savez
    metadata = np.array({"description": "pickled, never read"}, dtype=object)
    save(path, imgs=imgs, latents_classes=classes, latents_values=values, metadata=metadata, **extra)


def _write_hdf5(path, classes, values, imgs):
    with h5py.File(path, "w") as h5:
        h5.create_dataset("imgs", data=imgs, chunks=(16, 64, 64), compression="gzip")
        h5.create_dataset("latents/classes", data=classes)
        h5.create_dataset("latents/values", data=values)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, subset):
    _, classes, values, imgs = subset
    root = tmp_path_factory.mktemp("data")
    (root / "dsprites").mkdir()
    _write_npz(root / "dsprites" / NPZ_NAME, classes, values, imgs)
    _write_hdf5(root / "dsprites" / HDF5_NAME, classes, values, imgs)
    return root


def _check(ds, subset):
    rows, classes, _, imgs = subset
    assert ds.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert ds.factor_sizes == (3, 6, 40, 32, 32)
    assert len(ds) == N and ds.image_shape == (64, 64, 1)
    pick = np.array([5, 0, 77, 5, N - 1])  # unsorted, with a repeat
    x = ds.images(pick)
    assert x.dtype == np.float32 and x.shape == (5, 64, 64, 1)
    np.testing.assert_array_equal(x[..., 0], imgs[pick].astype(np.float32))
    f = ds.factors(pick)
    assert f.dtype == np.int64
    np.testing.assert_array_equal(f, classes[pick, 1:])
    np.testing.assert_array_equal(f, grid_factors(rows[pick], DSPRITES_FACTOR_SIZES))


def test_npz(data_dir, subset):
    ds = load_dataset("dsprites", data_dir=data_dir)
    assert ds.name == "dsprites"
    _check(ds, subset)
    assert ds._packed is not None  # compressed member: decompressed into packed bits


def test_npz_stored_uncompressed_is_memory_mapped(tmp_path, subset):
    _, classes, values, imgs = subset
    path = tmp_path / "plain.npz"
    _write_npz(path, classes, values, imgs, compressed=False)
    ds = load_dataset("dsprites", path=path)
    _check(ds, subset)
    assert ds._mapped is not None


def test_hdf5(data_dir, subset):
    _check(load_dataset("dsprites", data_dir=data_dir, source="hdf5"), subset)


def test_auto_prefers_npz_then_hdf5(tmp_path, subset):
    _, classes, values, imgs = subset
    (tmp_path / "dsprites").mkdir()
    _write_hdf5(tmp_path / "dsprites" / HDF5_NAME, classes, values, imgs)
    ds = load_dataset("dsprites", data_dir=tmp_path)
    assert ds.path.suffix == ".hdf5"
    _check(ds, subset)


def test_image_size_32(data_dir, subset):
    ds = load_dataset("dsprites", data_dir=data_dir, image_size=32)
    assert ds.image_shape == (32, 32, 1)
    x = ds.images([0, 1])
    np.testing.assert_allclose(x[..., 0], subset[3][:2].reshape(2, 32, 2, 32, 2).mean(axis=(2, 4)))


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=NPZ_NAME) as err:
        load_dataset("dsprites", data_dir=tmp_path, source="npz")
    assert "data/README.md" in str(err.value)
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        load_dataset("dsprites", path=tmp_path / "nowhere.npz")


def test_wrong_keys(tmp_path, subset):
    _, classes, values, imgs = subset
    np.savez(tmp_path / "a.npz", images=imgs, latents_classes=classes)
    with pytest.raises(ValueError, match=r"missing \['imgs'\].*this one has \['images', 'latents_classes'\]"):
        load_dataset("dsprites", path=tmp_path / "a.npz")
    with h5py.File(tmp_path / "a.hdf5", "w") as h5:
        h5["imgs"] = imgs
    with pytest.raises(ValueError, match="latents/classes"):
        load_dataset("dsprites", path=tmp_path / "a.hdf5")


def test_wrong_shapes_and_dtypes(tmp_path, subset):
    _, classes, values, imgs = subset
    cases = {
        "shape.npz": dict(imgs=imgs[:, :32], latents_classes=classes),
        "dtype.npz": dict(imgs=imgs.astype(np.float32), latents_classes=classes),
        "rows.npz": dict(imgs=imgs[:-1], latents_classes=classes),
    }
    for name, arrays in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(ValueError, match=r"imgs has shape .* expected uint8 of shape \(120, 64, 64\)"):
            load_dataset("dsprites", path=tmp_path / name)
    np.savez(tmp_path / "cls.npz", imgs=imgs, latents_classes=classes[:, 1:])
    with pytest.raises(ValueError, match=r"expected integers of shape \(n, 6\)"):
        load_dataset("dsprites", path=tmp_path / "cls.npz")
    bad = classes.copy()
    bad[0, 3] = 40
    np.savez(tmp_path / "range.npz", imgs=imgs, latents_classes=bad)
    with pytest.raises(ValueError, match="outside the dSprites sizes"):
        load_dataset("dsprites", path=tmp_path / "range.npz")
    np.savez_compressed(tmp_path / "gray.npz", imgs=imgs * 255, latents_classes=classes)
    ds = load_dataset("dsprites", path=tmp_path / "gray.npz")
    with pytest.raises(ValueError, match="other than 0 and 1"):
        ds.images([0])


def test_not_the_format(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an npz"):
        load_dataset("dsprites", path=tmp_path / "x.npz")
    (tmp_path / "x.hdf5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not an HDF5"):
        load_dataset("dsprites", path=tmp_path / "x.hdf5")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match=r"\.npz or \.hdf5"):
        load_dataset("dsprites", path=tmp_path / "x.txt")


# -- variants -------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["color_dsprites", "noisy_dsprites"])
def test_variants_over_real_files(variant, data_dir, subset):
    ds = load_dataset(variant, data_dir=data_dir)
    base = subset[3][:4].astype(np.float32)
    x = ds.images(np.arange(4))
    assert ds.image_shape == (64, 64, 3) and x.shape == (4, 64, 64, 3) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1
    np.testing.assert_array_equal(ds.factors(np.arange(4)), subset[1][:4, 1:])
    on = base[..., None].repeat(3, axis=-1) == 1
    if variant == "color_dsprites":
        assert np.all(x[~on] == 0)
        colours = x[0][on[0]].reshape(-1, 3)
        assert np.all(colours == colours[0]) and np.all((colours[0] >= 0.5) & (colours[0] <= 1))
    else:
        assert np.all(x[on] == 1)
        noise = x[0][~on[0]]
        assert 0.4 < noise.mean() < 0.6 and noise.std() > 0.25


def test_variants_are_deterministic_by_index_and_seed():
    ds = load_dataset("noisy_dsprites", base="dsprites_procedural")
    rows = np.array([10, 99999, 5])
    a = ds.images(rows)
    np.testing.assert_array_equal(a[1], ds.images([99999])[0])
    np.testing.assert_array_equal(a, load_dataset("noisy_dsprites", base="dsprites_procedural").images(rows))
    other = load_dataset("noisy_dsprites", base="dsprites_procedural", transform_seed=1).images(rows)
    assert not np.array_equal(a, other)
    assert ds.options["transform_seed"] == 0 and ds.options["base"] == "dsprites_procedural"
    assert load_dataset("color_dsprites", base="dsprites_procedural", image_size=32).images(rows).shape == (3, 32, 32, 3)


def test_scream(tmp_path):
    with pytest.raises(FileNotFoundError, match="scream.jpg") as err:
        load_dataset("scream_dsprites", data_dir=tmp_path, base="dsprites_procedural")
    assert "The Scream" in str(err.value)
    (tmp_path / "scream").mkdir()
    flat = np.full((400, 500, 3), 100, dtype=np.uint8)
    Image.fromarray(flat).save(tmp_path / "scream" / "scream.jpg", quality=100)
    ds = load_dataset("scream_dsprites", data_dir=tmp_path, base="dsprites_procedural")
    assert ds.scream.shape == (274, 342, 3)  # fitted within 350 x 274, aspect kept
    rows = np.array([0, 400000, 737279])
    x = ds.images(rows)
    assert x.shape == (3, 64, 64, 3) and x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    sprite = load_dataset("dsprites_procedural").images(rows)[..., 0] == 1
    for k in range(3):
        background = x[k][~sprite[k]]
        colour = background[0]
        np.testing.assert_allclose(background, np.broadcast_to(colour, background.shape), atol=1.5 / 255)
        assert np.all((colour >= 100 / 255 / 2 - 0.01) & (colour <= (100 / 255 + 1) / 2 + 0.01))
        np.testing.assert_allclose(x[k][sprite[k]], np.broadcast_to(1 - colour, x[k][sprite[k]].shape), atol=1.5 / 255)
    np.testing.assert_array_equal(x, ds.images(rows))
    # crops move with the index: a painting with a horizontal ramp gives different backgrounds
    ramp = np.broadcast_to(np.linspace(0, 255, 350).astype(np.uint8)[None, :, None], (274, 350, 3))
    Image.fromarray(np.ascontiguousarray(ramp)).save(tmp_path / "ramp.png")
    ds = load_dataset("scream_dsprites", base="dsprites_procedural", scream_path=tmp_path / "ramp.png")
    x = ds.images(np.arange(6))
    rise = 2 * (x[:, 0, -1, 0] - x[:, 0, 0, 0])  # across 63 pixels of the ramp, in every crop
    np.testing.assert_allclose(rise, 63 / 349, atol=0.01)
    assert np.ptp(2 * x[:, 0, 0, 0]) > 0.01


def test_variant_needs_base_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="dsprites_procedural"):
        load_dataset("color_dsprites", data_dir=tmp_path, source="auto", tfds_data_dir=tmp_path / "tfds")
    with pytest.raises(ValueError, match="base must be"):
        load_dataset("color_dsprites", base="smallnorb")


def test_pickles_without_its_images(data_dir, subset):
    import pickle

    ds = load_dataset("dsprites", data_dir=data_dir)
    ds.images([0])
    blob = pickle.dumps(ds)
    assert len(blob) < 20_000 + ds._factor_array.nbytes
    np.testing.assert_array_equal(pickle.loads(blob).images([3, 1]), ds.images([3, 1]))
