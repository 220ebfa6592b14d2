"""The procedural dSprites renderer: factor grid, geometry, determinism, resizing."""

import numpy as np
import pytest

from repspace.data import load_dataset, render_dsprites
from repspace.data.base import grid_factors, grid_index
from repspace.data.procedural import DSPRITES_FACTOR_SIZES, ORIENTATIONS


@pytest.fixture(scope="module")
def ds():
    return load_dataset("dsprites_procedural")


def _row(shape=0, scale=5, orientation=0, x=16, y=16):
    return int(grid_index(np.array([[shape, scale, orientation, x, y]]), DSPRITES_FACTOR_SIZES)[0])


def _centroid(img):
    r, c = np.nonzero(img[..., 0] > 0.5)
    return r.mean() + 0.5, c.mean() + 0.5


def test_interface(ds):
    assert ds.name == "dsprites_procedural"
    assert len(ds) == 737280
    assert ds.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    assert ds.factor_sizes == (3, 6, 40, 32, 32)
    assert ds.image_shape == (64, 64, 1)
    x = ds.images([0, 737279])
    assert x.dtype == np.float32 and x.shape == (2, 64, 64, 1)
    assert set(np.unique(x)) <= {0.0, 1.0}
    f = ds.factors([0, 737279])
    assert f.dtype == np.int64 and f.tolist() == [[0, 0, 0, 0, 0], [2, 5, 39, 31, 31]]


def test_row_order_matches_the_npz(ds):
    rows = np.array([1, 32, 1024, 40960, 245760, 245760 + 2 * 40960 + 3 * 1024 + 4 * 32 + 5])
    expected = [[0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 1, 0, 0], [0, 1, 0, 0, 0], [1, 0, 0, 0, 0], [1, 2, 3, 4, 5]]
    assert ds.factors(rows).tolist() == expected
    all_rows = np.arange(0, 737280, 997)
    np.testing.assert_array_equal(grid_index(grid_factors(all_rows, ds.factor_sizes), ds.factor_sizes), all_rows)


def test_posx_moves_right_and_posy_moves_down(ds):
    for shape in range(3):
        xs = [_centroid(ds.images([_row(shape, x=x)])[0])[1] for x in range(32)]
        ys = [_centroid(ds.images([_row(shape, y=y)])[0])[0] for y in range(32)]
        np.testing.assert_allclose(np.diff(xs), 1.0, atol=1e-9)
        np.testing.assert_allclose(np.diff(ys), 1.0, atol=1e-9)


def test_square_centre_and_area(ds):
    img = ds.images([_row(0, scale=5, x=0, y=31)])[0]
    assert _centroid(img) == pytest.approx((47.0, 16.0))
    areas = [ds.images([_row(0, scale=s)])[0].sum() for s in range(6)]
    assert areas == [100, 144, 196, 256, 324, 400]  # side 2 * 10 * scale


def test_scale_grows_area_for_every_shape_and_angle(ds):
    for shape in range(3):
        for orientation in (0, 7, 25):
            areas = ds.images([_row(shape, s, orientation) for s in range(6)]).sum(axis=(1, 2, 3))
            assert np.all(np.diff(areas) > 0)


def test_shapes_differ(ds):
    for orientation in (0, 13):
        imgs = ds.images([_row(s, 5, orientation) for s in range(3)])
        for a in range(3):
            for b in range(a + 1, 3):
                assert np.abs(imgs[a] - imgs[b]).sum() > 20


def test_rotation_by_two_pi_is_the_identity(ds):
    assert ORIENTATIONS[-1] == pytest.approx(2 * np.pi)
    for shape in range(3):
        for scale in (0, 3, 5):
            a, b = ds.images([_row(shape, scale, 0, 5, 20), _row(shape, scale, 39, 5, 20)])
            np.testing.assert_array_equal(a, b)
            c = ds.images([_row(shape, scale, 3, 5, 20)])[0]
            assert not np.array_equal(a, c)


def test_rotation_turns_the_ellipse(ds):
    def extent(img):
        r, c = np.nonzero(img[..., 0])
        return r.max() - r.min(), c.max() - c.min()

    tall = extent(ds.images([_row(1, 5, 0)])[0])
    quarter = int(np.argmin(np.abs(ORIENTATIONS - np.pi / 2)))
    wide = extent(ds.images([_row(1, 5, quarter)])[0])
    assert tall[0] > tall[1] and wide[1] > wide[0]


def test_sprites_stay_inside_the_canvas(ds):
    rng = np.random.default_rng(0)
    corners = [(0, 0), (0, 31), (31, 0), (31, 31)]
    rows = [_row(s, 5, int(o), x, y) for s in range(3) for o in rng.integers(0, 40, 4) for x, y in corners]
    imgs = ds.images(rows)[..., 0]
    edge = imgs[:, 0, :].sum() + imgs[:, -1, :].sum() + imgs[:, :, 0].sum() + imgs[:, :, -1].sum()
    assert edge == 0


def test_deterministic_by_index(ds):
    rows = np.random.default_rng(1).choice(len(ds), 50, replace=False)
    together = ds.images(rows)
    alone = np.concatenate([ds.images([r]) for r in rows[::-1]])[::-1]
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(ds.images(rows), load_dataset("dsprites_procedural").images(rows))


def test_image_size_32_averages_2x2_blocks(ds):
    small = load_dataset("dsprites_procedural", image_size=32)
    assert small.image_shape == (32, 32, 1) and len(small) == len(ds)
    rows = np.arange(0, 737280, 36000)
    big = ds.images(rows)
    np.testing.assert_allclose(small.images(rows), big.reshape(-1, 32, 2, 32, 2, 1).mean(axis=(2, 4)))
    np.testing.assert_array_equal(small.factors(rows), ds.factors(rows))
    other = load_dataset("dsprites_procedural", image_size=48).images(rows[:3])
    assert other.shape == (3, 48, 48, 1) and other.min() >= 0 and other.max() <= 1


def test_bad_indices_and_factors(ds):
    with pytest.raises(IndexError, match="737280"):
        ds.images([737280])
    with pytest.raises(IndexError):
        ds.factors([-1])
    with pytest.raises(TypeError):
        ds.images([0.5])
    with pytest.raises(ValueError, match="factor classes"):
        render_dsprites(np.array([[3, 0, 0, 0, 0]]))
    assert ds.images(np.array([], dtype=np.int64)).shape == (0, 64, 64, 1)
