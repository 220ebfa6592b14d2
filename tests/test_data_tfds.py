"""Datasets through tensorflow-datasets, with its mock-data facility (no files, no download)."""

import numpy as np
import pytest

from repspace.data import load_dataset

pytestmark = pytest.mark.tf


@pytest.fixture
def tfds_mock(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    # mock_data fakes the examples but not the prepared files the loaders check for first
    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)

    def mock(n):
        return tfds.testing.mock_data(num_examples=n)

    return mock


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_classification(name, tfds_mock, tmp_path):
    with tfds_mock(11):
        ds = load_dataset(name, data_dir=tmp_path)
    assert ds.name == name and len(ds) == 11
    assert ds.factor_names == ("label",) and ds.factor_sizes == (10,) and ds.image_shape == (28, 28, 1)
    x = ds.images(np.arange(11))
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    np.testing.assert_allclose(x * 255, np.round(x * 255), atol=1e-3)  # uint8 / 255
    f = ds.factors(np.arange(11))
    assert f.dtype == np.int64 and f.shape == (11, 1) and f.min() >= 0 and f.max() < 10
    assert ds.options == {"split": "train"}
    with tfds_mock(4):
        assert load_dataset(name, data_dir=tmp_path, image_size=14).images([0, 3]).shape == (2, 14, 14, 1)


def test_dsprites_through_tfds(tfds_mock, tmp_path):
    with tfds_mock(9):
        ds = load_dataset("dsprites", data_dir=tmp_path, source="tfds")
    assert len(ds) == 9 and not ds.grid_order  # a partial grid keeps tfds' order
    assert ds.factor_names == ("shape", "scale", "orientation", "posX", "posY")
    f = ds.factors(np.arange(9))
    assert (f >= 0).all() and (f < np.array(ds.factor_sizes)).all()
    x = ds.images(np.arange(9))
    assert x.shape == (9, 64, 64, 1) and set(np.unique(x)) <= {0.0, 1.0}


def test_unprepared_dataset_is_refused_without_download(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(FileNotFoundError, match=r"no prepared 'mnist'.*No download is started"):
        load_dataset("mnist", tfds_data_dir=tmp_path / "tfds")
    with pytest.raises(FileNotFoundError, match="dsprites_procedural"):
        load_dataset("dsprites", data_dir=tmp_path, tfds_data_dir=tmp_path / "tfds")
