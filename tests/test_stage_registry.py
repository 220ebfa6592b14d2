"""One registration per analysis: a toy stage with options, a figure and a report section, defined in
this file alone (no module of the package changes), gets its TOML table, its checks, its figure
in the figures stage and its section in the run report."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from repspace import store
from repspace.pipeline import Plan, RunConfig, Stage, StageContext, load_config, run
from repspace.pipeline.stages import STAGES, register, unregister

pytestmark = pytest.mark.distributed


@dataclasses.dataclass(frozen=True)
class PowerOptions:
    """The ``[powers]`` table: which power of the items to store."""

    exponent: int = 2
    items: int = 5

    def __post_init__(self) -> None:
        if self.exponent < 1:
            raise ValueError(f"exponent must be positive, got {self.exponent}")


def finalize(ctx: StageContext, plan: Plan, results: dict) -> str:
    o = ctx.config.powers
    ds = xr.Dataset({"value": ("item", np.arange(o.items) ** o.exponent)}, attrs={"exponent": o.exponent})
    store.write_dataset(ctx.store_path, "powers", ds)
    return f"{o.items} powers of {o.exponent}"


def draw(store_path: str, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = xr.open_zarr(store_path, group="powers", consolidated=False)
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot(ds["value"].values)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "powers.png"
    fig.savefig(path)
    plt.close(fig)
    return [path]


def section(store_path: str, figures: dict[str, Path]) -> str:
    ds = xr.open_zarr(store_path, group="powers", consolidated=False)
    return (f"<h2>Powers</h2><p>powers of {ds.attrs['exponent']}: {ds['value'].values.tolist()}; "
            f"figure {figures['powers'].name}</p>")


POWERS = Stage(name="powers", writes="powers", finalize=finalize, cluster=False, whole=True, table="powers",
               options=PowerOptions, figures=f"{__name__}:draw", report=f"{__name__}:section")


@pytest.fixture
def registered():
    register(POWERS)
    try:
        yield POWERS
    finally:
        unregister(POWERS.name)
    assert "powers" not in STAGES


def test_a_registered_stage_brings_its_table_figure_and_report_section(tmp_path, registered, threads_client):
    path = tmp_path / "run.toml"
    path.write_text(f'run_dir = "{tmp_path / "run"}"\nstages = ["powers", "figures"]\ndashboard = false\n\n'
                    "[powers]\nexponent = 3\n")
    config = load_config(path)
    assert config.stages == ("powers", "figures") and config.powers == PowerOptions(exponent=3)
    assert RunConfig().powers == PowerOptions()  # the class's defaults when the file has no table

    report = run(config, client=threads_client, log=lambda msg: None)
    assert report.stage("powers").note == "5 powers of 3"
    ds = xr.open_zarr(config.store, group="powers", consolidated=False)
    np.testing.assert_array_equal(ds["value"].values, np.arange(5) ** 3)
    assert (config.figure_dir / "powers.png").is_file()
    page = (Path(config.run_dir) / "report.html").read_text()
    assert "<h2>Powers</h2><p>powers of 3: [0, 1, 8, 27, 64]; figure powers.png</p>" in page
    assert '"exponent": 3' in page  # the configuration section shows the table of a stage that ran


def test_a_registered_table_refuses_bad_values_naming_the_key(tmp_path, registered):
    path = tmp_path / "run.toml"
    path.write_text("[powers]\nexponent = 0\n")
    with pytest.raises(ValueError, match=r"\[powers\] exponent must be positive, got 0"):
        load_config(path)
    path.write_text("[powers]\nexponnt = 2\n")
    with pytest.raises(ValueError, match=r"\[powers\]: unknown keys \['exponnt'\]"):
        load_config(path)


def test_without_the_registration_the_table_is_unknown(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("[powers]\nexponent = 3\n")
    with pytest.raises(ValueError, match=r"unknown keys \['powers'\]"):
        load_config(path)
    with pytest.raises(ValueError, match="unknown stages"):
        RunConfig(stages=("powers",))


def test_stages_that_share_a_table_must_share_its_class(registered):
    from repspace.pipeline.options import table_classes

    other = dataclasses.replace(POWERS, name="powers_again", options=dict)
    register(other)
    try:
        with pytest.raises(TypeError, match=r"reads table \[powers\] as dict, another stage as PowerOptions"):
            table_classes()
    finally:
        unregister(other.name)
