"""A store at its limits: reached by several paths, read-only, on a full disk, damaged in place."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from repspace import store
from repspace.pipeline import run

from .test_hardening import prepared

pytestmark = pytest.mark.distributed


def hold_lock(path) -> subprocess.Popen:
    """A process holding the lock of the store at ``path`` (as a run does) until it is killed."""
    code = ("import sys, time\nfrom repspace.store import run_lock\n"
            f"with run_lock({str(path)!r}, 'busy0run'):\n    print('held', flush=True); time.sleep(120)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_every_path_to_one_store_meets_one_lock(tmp_path, monkeypatch):
    config = prepared(tmp_path, 2)
    (tmp_path / "alias_run").symlink_to(tmp_path / "run")  # a link to the run folder
    (tmp_path / "alias.zarr").symlink_to(config.store)  # a link to the store itself
    monkeypatch.chdir(tmp_path)
    holder = hold_lock(config.store)
    try:
        for reached in (tmp_path / "alias.zarr", tmp_path / "alias_run" / "store.zarr", "run/store.zarr",
                        "alias.zarr"):
            with pytest.raises(store.StoreLocked, match=rf"in use by run busy0run \(pid {holder.pid} on"):
                with store.run_lock(reached, "second"):
                    pass
        with pytest.raises(store.StoreLocked, match=rf"alias.zarr is in use by run busy0run \(pid {holder.pid} on"):
            run(config.replace(store_path="alias.zarr", stages=("channels",)), log=lambda m: None)
        with pytest.raises(store.StoreLocked, match=rf"in use by run busy0run \(pid {holder.pid} on"):
            run(config.replace(run_dir="alias_run", stages=("channels",)), log=lambda m: None)
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "alias.zarr.lock").exists()  # one lock file, beside the real store
    assert store.lock_path(tmp_path / "alias.zarr") == store.lock_path(config.store) == \
        store.lock_path("alias_run/store.zarr")

