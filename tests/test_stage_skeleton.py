"""A new analysis is one stage: a toy stage defined here, with no change to any module of the
package, runs through the driver, resumably, with provenance."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from repspace import store
from repspace.pipeline import Block, Plan, RunConfig, Stage, StageContext, TaskFailed, run_stages

pytestmark = pytest.mark.distributed

N, CHUNK = 10, 4


def squares_task(store_path: str, start: int, stop: int, fail_flag: str) -> int:
    """Write i**2 for i in start:stop; fail while ``fail_flag`` exists and the block holds item 9."""
    if start <= 9 < stop and Path(fail_flag).exists():
        raise RuntimeError("planted failure")
    grp = store.open_group(store_path, "squares", mode="r+")
    grp["value"][start:stop] = np.arange(start, stop) ** 2
    with open(Path(store_path).parent / "calls.txt", "a") as f:
        f.write(f"{start}\n")
    return stop - start


def squares_plan(ctx: StageContext) -> Plan:
    store.require_array(ctx.group, "value", shape=(N,), chunks=(CHUNK,), dtype="int64", dims=("item",), fill_value=-1,
                        attrs={"long_name": "the square of the item"})
    ranges = store.block_ranges(N, CHUNK)
    flag = str(ctx.store_path.parent / "fail")
    return Plan(blocks=[Block(name=f"items{a}-{b - 1}", key=(k,), extent=(a, b), args=(a, b, flag))
                        for k, (a, b) in enumerate(ranges)],
                markers={"done": ((len(ranges),), ("block",))})


def squares_finalize(ctx: StageContext, plan: Plan, results: dict) -> str:
    return f"{sum(results.values())} items written"


SQUARES = Stage(name="squares", writes="squares", plan=squares_plan, task=squares_task, finalize=squares_finalize)


def calls(run_dir: Path) -> list[int]:
    path = run_dir / "calls.txt"
    return sorted(int(x) for x in path.read_text().split()) if path.exists() else []


def test_a_toy_stage_runs_resumably_through_the_driver(tmp_path, threads_client):
    config = RunConfig(run_dir=str(tmp_path), stages=(), dashboard=False)
    (tmp_path / "fail").touch()
    with pytest.raises(TaskFailed, match="1 of 3 squares tasks failed.*items8-9.*planted failure"):
        run_stages([SQUARES], config, client=threads_client, log=lambda msg: None)
    assert calls(tmp_path) == [0, 4]  # the other blocks finished and are kept
    grp = store.open_group(config.store, "squares")
    assert grp.attrs["complete"] is False and np.asarray(grp["done"][:]).tolist()[2] == 0

    (tmp_path / "fail").unlink()
    report = run_stages([SQUARES], config, client=threads_client, log=lambda msg: None)
    rep = report.stage("squares")
    assert (rep.computed, rep.skipped, rep.note) == (1, 2, "2 items written")
    assert calls(tmp_path) == [0, 4, 8]  # only the missing block ran
    ds = xr.open_zarr(config.store, group="squares", consolidated=False)
    np.testing.assert_array_equal(ds["value"].values, np.arange(N) ** 2)
    attrs = ds.attrs
    assert attrs["complete"] is True and attrs["run_id"] == report.run_id and attrs["stage"] == "squares"
    assert "repspace_version" in attrs and "elapsed_s" in attrs and '"run_dir"' in attrs["config"]

    again = run_stages([SQUARES], config, client=threads_client, log=lambda msg: None).stage("squares")
    assert (again.computed, again.skipped) == (0, 3) and calls(tmp_path) == [0, 4, 8]


def test_a_stage_that_needs_a_missing_group_says_which(tmp_path, threads_client):
    needy = Stage(name="needy", writes="needy", needs=("squares",), cluster=False)
    with pytest.raises(RuntimeError, match="'needy' needs the 'squares' group, which this store lacks"):
        run_stages([needy], RunConfig(run_dir=str(tmp_path), stages=()), client=threads_client, log=lambda m: None)


def one_item_task(store_path: str, item: int) -> int:
    store.open_group(store_path, "costly", mode="r+")["value"][item] = item
    return item


def costly_plan(ctx: StageContext) -> Plan:
    store.require_array(ctx.group, "value", shape=(9,), chunks=(1,), dtype="int64", dims=("item",), fill_value=-1)
    return Plan(blocks=[Block(name=f"item{k}", key=(k,), extent=(k,), args=(k,), cost=25.0) for k in range(9)],
                markers={"done": ((9,), ("block",))})


def test_the_announced_time_schedules_the_blocks_over_the_threads_and_is_recorded(tmp_path, threads_client, capsys):
    """Nine blocks of 25 s on two threads take five rounds: 125 s, not 9 x 25 / 2; the progress line starts from
    it; a rerun with nothing to compute records no estimate."""
    costly = Stage(name="costly", writes="costly", plan=costly_plan, task=one_item_task)
    config = RunConfig(run_dir=str(tmp_path), stages=(), dashboard=False)
    said = []
    run_stages([costly], config, client=threads_client, log=said.append)
    assert "costly: 9 of 9 blocks to compute, about 2.1 min on 2 worker threads" in "\n".join(said), said
    assert store.open_group(config.store, "costly").attrs["estimated_s"] == 125.0
    first = capsys.readouterr().err.splitlines()[0]
    # one task done in well under a second: by the rate alone about 0 s would be left; the estimate weighs 2/3
    assert re.search(r"costly +\[.*\] 1/9 .*, about 8\d s left$", first), first
    run_stages([costly], config, client=threads_client, log=said.append)
    assert store.open_group(config.store, "costly").attrs["estimated_s"] is None  # not the last run's
