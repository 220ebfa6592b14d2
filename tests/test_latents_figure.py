"""The latents figure: one setting gets I(U;X) per model and the NMI and VI matrices; several
settings keep the panels against the hyperparameter value. Checked on what the axes hold."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from matplotlib.container import ErrorbarContainer
from matplotlib.patches import Rectangle

from repspace.pipeline import RunConfig, run
from repspace.plots.latents import draw_latents_figure, latents_figure, one_setting, with_error

from .test_latents_job import toy_store

pytestmark = pytest.mark.distributed


@pytest.fixture(scope="module")
def client(threads_client):
    return threads_client


def latents_store(tmp_path, client, **toy):
    """A toy store with ``toy_store(**toy)``'s models, the latents stage run on it: (path, latents group)."""
    path = tmp_path / "store.zarr"
    toy_store(path, **toy)
    run(RunConfig(run_dir=str(tmp_path), store_path=str(path), stages=("latents",), latents={"n_samples": 300},
                  dashboard=False), client=client)
    return path, xr.open_zarr(path, group="latents", consolidated=False).load()


def axes_by_label(fig):
    return {ax.get_label(): ax for ax in fig.axes if ax.get_label()}


def error_bars(container: ErrorbarContainer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, y and the half-length of each vertical error bar of an errorbar call."""
    line, _, (bars,) = container.lines
    segments = np.asarray(bars.get_segments())  # (point, 2 ends, xy)
    half = (segments[:, 1, 1] - segments[:, 0, 1]) / 2
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float), half


def test_with_error_rounds_to_the_error():
    assert with_error(0.91234, 0.0042) == "0.912 ± 0.004"
    assert with_error(4.6123, 0.031, 2) == "4.612 ± 0.031"
    assert with_error(2.75, 0.05) == "2.75 ± 0.05"
    assert with_error(float("nan"), 0.1) == "n/a"


def test_one_setting_is_read_per_dataset_and_family():
    def groups(*rows):
        d, f, v = zip(*rows)
        return xr.Dataset(coords={"group_dataset": ("group", list(d)), "group_family": ("group", list(f)),
                                  "group_hyperparameter_value": ("group", np.asarray(v, float))})

    assert one_setting(groups(("toy", "beta_vae", 16.0)))
    assert one_setting(groups(("toy", "beta_vae", 16.0), ("toy", "factor_vae", 4.0), ("dsprites", "beta_vae", 1.0)))
    assert not one_setting(groups(("toy", "beta_vae", 1.0), ("toy", "beta_vae", 4.0)))


def test_one_setting_shows_each_model_and_the_matrices(client, tmp_path):
    path, ds = latents_store(tmp_path, client, families=("beta_vae",), values=(16.0,), per_group=4, m=80)
    fig = latents_figure(path)
    axes = axes_by_label(fig)
    assert {"information", "nmi", "vi"} <= set(axes) and "nmi_mean" not in axes
    names = [str(v) for v in ds.model.values]

    ax = axes["information"]
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    x, y, e = error_bars(bars)
    np.testing.assert_array_equal(x, np.arange(4))
    np.testing.assert_allclose(y, ds["information"].values)
    np.testing.assert_allclose(e, ds["information_se"].values)
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert ax.get_ylabel() == "I(U;X) (bits)" and ax.get_xlabel() == "model"
    mean, se = float(ds.information_mean[0]), float(ds.information_mean_se[0])
    (band,) = [p for p in ax.patches if isinstance(p, Rectangle)]
    np.testing.assert_allclose([band.get_y(), band.get_height()], [mean - se, 2 * se])
    frac = with_error(float(ds.information_fraction_mean[0]), float(ds.information_fraction_mean_se[0]))
    assert with_error(mean, se) in ax.get_title() and frac in ax.get_title()

    for var in ("nmi", "vi"):
        ax = axes[var]
        shown = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
        np.testing.assert_array_equal(np.isnan(shown), np.eye(4, dtype=bool))  # the diagonal left blank
        np.testing.assert_allclose(shown, ds[var].values)
        cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
        assert len(cells) == 12
        value, err = float(ds[var][0, 1]), float(ds[f"{var}_se"][0, 1])
        k = -int(np.floor(np.log10(err)))  # decimals that show the error to one figure
        assert cells[0, 1] == f"{value:.{k}f}\n±{err:.{k}f}" == cells[1, 0]
        title = ax.get_title()
        assert with_error(float(ds[f"{var}_mean"][0]), float(ds[f"{var}_mean_se"][0])) in title
        assert "over 6 pairs" in title
        assert ax.get_xlabel() == "model_b" and [t.get_text() for t in ax.get_yticklabels()] == names
    assert "one setting (beta = 16)" in fig.get_suptitle()

    out = draw_latents_figure(path, tmp_path / "figures" / "latents.png")
    assert out == tmp_path / "figures" / "latents.png" and out.stat().st_size > 10_000


def test_one_setting_of_two_families_shows_both_groups(client, tmp_path):
    path, ds = latents_store(tmp_path, client, families=("beta_vae", "factor_vae"), values=(16.0,), per_group=3, m=80)
    axes = axes_by_label(latents_figure(path))
    bars = [c for c in axes["information"].containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2
    for g, c in enumerate(bars):
        members = np.flatnonzero(ds.model_group.values == g)
        _, y, e = error_bars(c)
        np.testing.assert_allclose(y, ds["information"].values[members])
        np.testing.assert_allclose(e, ds["information_se"].values[members])
        assert f"{ds.group_family.values[g]}: {with_error(float(ds.nmi_mean[g]), float(ds.nmi_mean_se[g]))}" in \
            axes["nmi"].get_title()
    shown = np.ma.filled(axes["vi"].images[0].get_array().astype(float), np.nan)
    assert np.isnan(shown[:3, 3:]).all() and np.isfinite(shown[:3, :3][~np.eye(3, dtype=bool)]).all()
    assert len(axes["vi"].texts) == 2 * 6


def test_several_settings_keep_the_panels_against_the_value(client, tmp_path):
    path, ds = latents_store(tmp_path, client, families=("beta_vae",), values=(1.0, 4.0), per_group=2, m=80)
    axes = axes_by_label(latents_figure(path))
    assert set(axes) == {"information_fraction_mean", "nmi_mean", "vi_mean"}
    order = np.argsort(ds.group_hyperparameter_value.values)
    for var, ax in axes.items():
        (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        x, y, e = error_bars(bars)
        np.testing.assert_array_equal(x, [1.0, 4.0])
        np.testing.assert_allclose(y, ds[var].values[order])
        np.testing.assert_allclose(e, ds[f"{var}_se"].values[order])
        assert ax.get_xlabel() == "beta" and not ax.images
    assert axes["information_fraction_mean"].get_ylabel() == "I(U;X) / H(X)"
