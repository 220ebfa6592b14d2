"""A store under stress: two runs at once, locks left by killed runs, refused writes, lost workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import xarray as xr
import zarr

from repspace import store
from repspace.data import FingerprintConfig, build_fingerprint
from repspace.pipeline import RunConfig, run

from .test_pipeline import N_CHANNELS, N_IMAGES, entries, synthetic_posteriors

pytestmark = pytest.mark.distributed


def prepared(tmp_path, n_models: int, name: str = "run", models_per_block: int = 2) -> RunConfig:
    config = RunConfig(run_dir=str(tmp_path / name), n_images=N_IMAGES, image_size=32, dashboard=False,
                       pair_block_units=models_per_block * N_CHANNELS, stages=("channels", "pairs"))
    build_fingerprint(FingerprintConfig(dataset="dsprites_procedural", n=N_IMAGES, seed=0, image_size=32,
                                        store=config.store))
    mu, logvar, _ = synthetic_posteriors(n_models)
    store.write_posteriors(config.store, mu, logvar, entries(range(n_models)))
    return config


def structure_run(config: RunConfig) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "repspace.jobs.full_sweep", "--run-dir", config.run_dir, "--stages", "structure",
         "--n-images", str(N_IMAGES), "--pair-block-units", str(config.pair_block_units), "--no-dashboard"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_structure_runs_at_once_never_leave_a_broken_group(tmp_path, client):
    config = prepared(tmp_path, 12)
    run(config, client=client)
    run(config.replace(stages=("structure",)), client=client)
    reference = xr.open_zarr(config.store, group="structure", consolidated=False).load()
    refused = 0
    for _ in range(3):
        procs = [structure_run(config) for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        codes = [p.returncode for p in procs]
        assert 0 in codes, outs
        for code, (out, err) in zip(codes, outs):
            if code != 0:
                refused += 1
                assert "is in use by run" in err and "one run per store at a time" in err, err
        got = xr.open_zarr(config.store, group="structure", consolidated=False).load()
        assert got.attrs["complete"] is True
        xr.testing.assert_equal(got[["order", "label", "reachability", "cluster_size"]],
                                reference[["order", "label", "reachability", "cluster_size"]])
        assert store.lock.holder(config.store) is None  # the lock file names nobody once the runs are over
    assert refused >= 1  # at least once the two overlapped, and the second was refused


def test_a_lock_left_by_a_killed_run_is_taken_over(tmp_path, client):
    config = prepared(tmp_path, 2)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    store.lock_path(config.store).write_text(json.dumps(
        {"pid": int(gone.stdout), "host": socket.gethostname(), "run_id": "killed0run", "since": "earlier"}))
    said = []
    run(config.replace(stages=("channels",)), client=client, log=said.append)
    assert any("taking over the lock" in s and "killed0run" in s and "is gone" in s for s in said), said
    assert store.lock.holder(config.store) is None


def test_a_live_lock_refuses_with_its_holder_named(tmp_path, client):
    config = prepared(tmp_path, 2)
    path = store.lock_path(config.store)
    hold = ("import fcntl, json, os, socket, sys, time\n"
            f"f = open({str(path)!r}, 'a+'); fcntl.flock(f, fcntl.LOCK_EX)\n"
            "json.dump({'pid': os.getpid(), 'host': socket.gethostname(), 'run_id': 'busy0run', 'since': 'now'}, f)\n"
            "f.flush(); print('held', flush=True); time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(store.StoreLocked, match=rf"in use by run busy0run \(pid {holder.pid} on"):
            run(config.replace(stages=("channels",)), client=client, log=lambda m: None)
        with pytest.raises(store.StoreLocked):
            store.write_posteriors(config.store, *synthetic_posteriors(1)[:2], entries([9]))
    finally:
        holder.kill()
        holder.wait()
    said = []  # the holder was killed: the kernel released its lock, and the next run takes over
    run(config.replace(stages=("channels",)), client=client, log=said.append)
    assert any("taking over the lock" in s and "busy0run" in s for s in said), said


def test_a_refused_write_leaves_the_store_as_it_was(tmp_path):
    config = prepared(tmp_path, 3)
    before = {str(p.relative_to(config.store)): p.read_bytes() for p in config.store.rglob("*") if p.is_file()}
    mu, logvar, _ = synthetic_posteriors(2, seed=5)
    mu[1, 0, 3] = np.nan
    with pytest.raises(ValueError, match="model 11: NaN or infinite posteriors in channels \\[0\\]"):
        store.write_posteriors(config.store, mu, logvar, entries([10, 11]))
    after = {str(p.relative_to(config.store)): p.read_bytes() for p in config.store.rglob("*") if p.is_file()}
    assert after == before
    assert store.lock.holder(config.store) is None


def test_a_lost_worker_recomputes_no_finished_block(tmp_path):
    from collections import Counter

    from distributed import Client, LocalCluster
    from distributed.diagnostics.plugin import SchedulerPlugin

    class Finished(SchedulerPlugin):
        """How often each pairs task reached memory (a finished block whose result was lost runs again)."""

        def __init__(self):
            self.counts = Counter()

        def transition(self, key, start, finish, *args, **kwargs):
            if finish == "memory" and str(key).startswith("pairs-"):
                self.counts[key] += 1

    config = prepared(tmp_path, 12, models_per_block=1)
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0")
    finished = Finished()
    cluster.scheduler.add_plugin(finished)
    cl = Client(cluster)
    try:
        pids = list(cl.run(os.getpid).values())
        marker = zarr.open_group(str(config.store), mode="r")
        marked_before_kill: list = []

        def kill_when_started():
            deadline = time.time() + 60
            while time.time() < deadline:
                if "pairs" in marker and "done" in marker["pairs"]:
                    done = np.asarray(marker["pairs"]["done"][:]) > 0
                    if done.sum() >= 30:
                        marked_before_kill.extend(map(tuple, np.argwhere(done).tolist()))
                        os.kill(pids[0], signal.SIGKILL)
                        return
                time.sleep(0.005)

        killer = threading.Thread(target=kill_when_started)
        killer.start()
        run(config.replace(stages=("pairs",), pair_channels="all"), client=cl, log=lambda m: None)
        killer.join()
        assert pids[0] not in cl.run(os.getpid).values()  # the worker died and was replaced
    finally:
        cl.close()
        cluster.close()
    assert len(finished.counts) == 12 * 13 // 2 and len(marked_before_kill) >= 30
    again = {tuple(int(x) for x in k.split("-")[1][len("block"):].split("x")) for k, n in finished.counts.items()
             if n > 1}
    # a future is released before its block is marked, so no block marked done is ever recomputed; only results
    # that had not reached the driver yet can be lost with the worker (holding every future until the stage
    # ended lost every finished block whose result sat on the dead worker)
    assert not again & set(marked_before_kill), (again, marked_before_kill)
    got = xr.open_zarr(config.store, group="pairs", consolidated=False)
    assert (np.asarray(zarr.open_group(str(config.store), path="pairs")["done"][:]) > 0).sum() == 12 * 13 // 2
    assert np.isfinite(got["vi"].values).all()


@pytest.mark.parametrize("line,says", [
    ('n_images = "100"', "n_images must be int, got '100'"),
    ('info_threshold = "high"', "info_threshold must be float, got 'high'"),
    ('min_samples = "5"', "min_samples must be int or None, got '5'"),
    ("min_samples = 0", "min_samples must be at least 2"),
    ("min_samples = -3", "min_samples must be at least 2"),
    ('dataset = "mnistt"', "dataset must be one of dsprites_procedural"),
    ("pair_block_units = 0", "pair_block_units must be positive"),
    ("n_imgs = 3", "unknown keys ['n_imgs']"),
    ('[latents]\nn_samples = "2000"', "[latents] n_samples must be int"),
    ('[latents]\ndtype = "float16"', "[latents] dtype must be 'float64' or 'float32'"),
    ('[models]\nsource = "zooo"', "[models] source must be one of"),
    ('[models.train]\nsteps = "100"', "[models.train] steps must be int"),
    ("info_threshold = nan", "info_threshold must be at least 0 bits, got nan"),
    ("info_threshold = inf", "info_threshold must be at least 0 bits, got inf"),
    ("[models.train]\nlearning_rate = -1.0", "[models.train] learning_rate must be a positive number, got -1.0"),
])
def test_configuration_errors_name_key_and_file_before_any_stage(tmp_path, capsys, line, says):
    from repspace.jobs import full_sweep

    path = tmp_path / "bad.toml"
    path.write_text(f'run_dir = "{tmp_path / "run"}"\n{line}\n')
    assert full_sweep.main(["--config", str(path), "--no-dashboard"]) == 2
    err = capsys.readouterr().err
    assert says in err and str(path) in err, err
    assert not (tmp_path / "run").exists()  # nothing ran, nothing was written


def test_gpu_without_cupy_is_refused_before_any_stage(tmp_path, client):
    pytest.importorskip("distributed")
    try:
        import cupy  # noqa: F401

        pytest.skip("cupy is installed here")
    except ImportError:
        pass
    config = prepared(tmp_path, 2)
    with pytest.raises(RuntimeError, match="--gpu: the workers cannot run cupy"):
        run(config.replace(gpu=True), client=client, log=lambda m: None)
    assert "channels" not in zarr.open_group(str(config.store), mode="r")  # nothing ran
