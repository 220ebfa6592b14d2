"""Fingerprint sets: sampling, the store group, idempotence, the job; the dataset registry."""

import json

import numpy as np
import pytest
import xarray as xr
import zarr

from repspace.data import (
    DATASETS,
    load_dataset,
    make_fingerprint,
    open_fingerprint,
    sample_indices,
    write_fingerprint,
)
from repspace.jobs import fingerprint as job


@pytest.fixture(scope="module")
def procedural32():
    return load_dataset("dsprites_procedural", image_size=32)


def test_sample_indices():
    a = sample_indices(737280, 300, 0)
    assert a.dtype == np.int64 and a.shape == (300,)
    assert np.all(np.diff(a) > 0)  # sorted, without repeats
    np.testing.assert_array_equal(a, sample_indices(737280, 300, 0))
    assert not np.array_equal(a, sample_indices(737280, 300, 1))
    expected = np.sort(np.random.default_rng(7).choice(1000, 20, replace=False))
    np.testing.assert_array_equal(sample_indices(1000, 20, 7), expected)
    assert sample_indices(5, 5, 3).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("n, seed, match", [(6, 0, "n=6 is larger"), (0, 0, "positive"), (2.5, 0, "positive"), (2, -1, "seed")])
def test_sample_indices_errors(n, seed, match):
    with pytest.raises(ValueError, match=match):
        sample_indices(5, n, seed)


def test_make_fingerprint(procedural32):
    fp = make_fingerprint(procedural32, 40, 3)
    assert dict(fp.sizes) == {"image": 40, "height": 32, "width": 32, "color": 1, "factor": 5}
    assert fp["images"].dims == ("image", "height", "width", "color") and fp["images"].dtype == np.float32
    assert fp["factors"].dims == ("image", "factor") and fp["factors"].dtype == np.int64
    assert fp["index"].dims == ("image",) and fp["index"].dtype == np.int64
    assert fp["factor"].values.tolist() == ["shape", "scale", "orientation", "posX", "posY"]
    assert fp["factor_size"].values.tolist() == [3, 6, 40, 32, 32]
    assert fp.attrs["dataset"] == "dsprites_procedural"
    assert (fp.attrs["seed"], fp.attrs["n"], fp.attrs["image_size"]) == (3, 40, 32)
    assert fp.attrs["dataset_length"] == 737280 and json.loads(fp.attrs["options"]) == {}
    idx = fp["index"].values
    np.testing.assert_array_equal(idx, sample_indices(737280, 40, 3))
    np.testing.assert_array_equal(fp["images"].values, procedural32.images(idx))
    np.testing.assert_array_equal(fp["factors"].values, procedural32.factors(idx))
    assert (fp["factors"] < fp["factor_size"]).all()


def test_n_larger_than_the_dataset():
    with pytest.raises(ValueError, match="dataset 'digits': sample size n=1798 is larger than the dataset's 1797"):
        make_fingerprint(load_dataset("digits"), 1798, 0)


def test_store_roundtrip(tmp_path, procedural32):
    store = tmp_path / "run.zarr"
    fp = make_fingerprint(procedural32, 30, 0)
    write_fingerprint(store, fp)
    back = xr.open_zarr(store, group="fingerprint", consolidated=False)
    assert zarr.open_group(str(store), mode="r").metadata.zarr_format == 3
    for name in ("images", "factors", "index"):
        assert back[name].dims == fp[name].dims and back[name].dtype == fp[name].dtype
        np.testing.assert_array_equal(back[name].values, fp[name].values)
    assert back["factor"].values.tolist() == fp["factor"].values.tolist()
    np.testing.assert_array_equal(back["factor_size"].values, fp["factor_size"].values)
    for key, value in fp.attrs.items():
        assert back.attrs[key] == value
    opened = open_fingerprint(store)
    assert "complete" not in opened.attrs and opened.attrs == fp.attrs


def test_same_seed_same_set_and_idempotent_write(tmp_path, procedural32):
    store = tmp_path / "run.zarr"
    write_fingerprint(store, make_fingerprint(procedural32, 25, 4))
    before = {p.relative_to(store): p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}
    write_fingerprint(store, make_fingerprint(load_dataset("dsprites_procedural", image_size=32), 25, 4))
    after = {p.relative_to(store): p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}
    assert before == after  # nothing rewritten


def test_refuses_a_different_fingerprint(tmp_path, procedural32):
    store = tmp_path / "run.zarr"
    write_fingerprint(store, make_fingerprint(procedural32, 25, 4))
    for other in (make_fingerprint(procedural32, 25, 5), make_fingerprint(procedural32, 26, 4),
                  make_fingerprint(load_dataset("dsprites_procedural"), 25, 4)):
        with pytest.raises(FileExistsError, match="already holds a different fingerprint set"):
            write_fingerprint(store, other)
    assert open_fingerprint(store).attrs["seed"] == 4


def test_other_groups_survive_and_incomplete_group_is_replaced(tmp_path, procedural32):
    store = tmp_path / "run.zarr"
    xr.Dataset({"mu": ("x", np.arange(3.0))}).to_zarr(store, group="embeddings", zarr_format=3, consolidated=False)
    write_fingerprint(store, make_fingerprint(procedural32, 10, 0))
    zarr.open_group(str(store), path="fingerprint", mode="r+").attrs["complete"] = False
    with pytest.raises(ValueError, match="incomplete"):
        open_fingerprint(store)
    write_fingerprint(store, make_fingerprint(procedural32, 12, 1))
    assert open_fingerprint(store).attrs["n"] == 12
    np.testing.assert_array_equal(xr.open_zarr(store, group="embeddings", consolidated=False)["mu"], [0, 1, 2])


def test_open_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no run store at"):
        open_fingerprint(tmp_path / "absent.zarr")
    (tmp_path / "plain.txt").write_text("hello")
    with pytest.raises(FileNotFoundError, match="has no 'fingerprint' group"):
        open_fingerprint(tmp_path / "plain.txt")
    foreign = tmp_path / "foreign.zarr"
    xr.Dataset({"a": ("x", [1, 2])}).to_zarr(foreign, zarr_format=3, consolidated=False)
    with pytest.raises(FileNotFoundError, match="has no 'fingerprint' group"):
        open_fingerprint(foreign)
    xr.Dataset({"a": ("x", [1, 2])}, attrs={"complete": True}).to_zarr(
        foreign, group="fingerprint", zarr_format=3, consolidated=False
    )
    with pytest.raises(ValueError, match=r"lacks \['factors', 'images', 'index'\]"):
        open_fingerprint(foreign)


def test_job(tmp_path, capsys):
    store = tmp_path / "runs" / "x.zarr"
    args = ["--dataset", "dsprites_procedural", "-n", "20", "--seed", "2", "--store", str(store), "--image-size", "32"]
    assert job.main(args) == 0
    assert "20 images 32x32x1 of dsprites_procedural" in capsys.readouterr().out
    fp = xr.open_zarr(store, group="fingerprint", consolidated=False)
    np.testing.assert_array_equal(fp["index"].values, sample_indices(737280, 20, 2))
    assert job.main(args) == 0  # rerun: nothing to do
    assert job.main(args[:3] + ["21"] + args[4:]) == 2
    assert "already holds a different fingerprint" in capsys.readouterr().err
    assert job.main(["--dataset", "smallnorb", "--store", str(tmp_path / "y.zarr"), "--data-dir", str(tmp_path)]) == 2
    assert "small_norb/smallnorb-" in capsys.readouterr().err
    assert not (tmp_path / "y.zarr").exists()


def test_job_options(tmp_path):
    config = job.parse_args(["--store", "s.zarr", "--option", "base=dsprites_procedural", "--option", "transform_seed=3"])
    assert config.options == {"base": "dsprites_procedural", "transform_seed": 3}
    assert (config.dataset, config.n, config.seed, config.image_size) == ("dsprites_procedural", 300, 0, None)
    with pytest.raises(SystemExit):
        job.parse_args(["--store", "s.zarr", "--option", "novalue"])


# -- registry -----------------------------------------------------------------------------------


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown dataset 'dsprite'; known datasets: dsprites_procedural, dsprites,"):
        load_dataset("dsprite")
    assert {"dsprites_procedural", "dsprites", "color_dsprites", "noisy_dsprites", "scream_dsprites",
            "smallnorb", "cars3d", "mnist", "fashion_mnist", "digits"} == set(DATASETS)


def test_unknown_option_and_bad_image_size():
    with pytest.raises(TypeError, match=r"takes no option\(s\) \['colour'\]"):
        load_dataset("dsprites_procedural", colour=1)
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("digits", image_size=0)


def test_digits():
    ds = load_dataset("digits")
    assert len(ds) == 1797 and ds.factor_names == ("label",) and ds.factor_sizes == (10,)
    x = ds.images(np.arange(10))
    assert x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1 and x.max() == 1
    assert ds.factors(np.arange(10))[:, 0].tolist() == list(range(10))
    assert load_dataset("digits", image_size=16).images([0]).shape == (1, 16, 16, 1)


def test_data_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSPACE_DATA_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="elsewhere/small_norb"):
        load_dataset("smallnorb")
