"""A store at its limits: reached by several paths, read-only, on a full disk, damaged in place."""

from __future__ import annotations

import os
import shutil
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



def read_only_shell(folder, script: str) -> str:
    """Run ``script`` (sh) with ``folder`` read-only and return its output: as root (where permissions do not
    stop writes) inside a private mount namespace holding a read-only bind mount of it, otherwise with the
    folder's write permissions taken away for the duration."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)}
    if os.geteuid() == 0:
        probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind {folder} {folder} && mount -o "
                                f"remount,ro,bind {folder} && ! touch {folder}/probe 2>/dev/null"],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            pytest.skip("running as root without a private mount namespace (unshare -m): no way to make a folder "
                        f"read-only here ({probe.stderr.strip()[:100]})")
        wrapped = f"mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} && {{\n{script}\n}}"
        return subprocess.run(["unshare", "-m", "sh", "-c", wrapped], capture_output=True, text=True, env=env,
                              timeout=600).stdout
    paths = [folder, *folder.rglob("*")]
    modes = {p: p.stat().st_mode for p in paths if not p.is_symlink()}
    try:
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env, timeout=600).stdout
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def outputs(text: str) -> dict[str, tuple[int, str]]:
    """{name: (exit status, output)} of a script made of :func:`step` s."""
    out = {}
    for part in text.split("=== ")[1:]:
        name, _, rest = part.partition("\n")
        body, _, code = rest.rpartition("rc=")
        out[name] = (int(code.split()[0]), body)
    return out


def step(name: str, *argv: str) -> str:
    args = " ".join(f"'{a}'" for a in argv)
    return f"echo '=== {name}'; {sys.executable} -m {args} 2>&1; echo rc=$?"


def test_a_read_only_store_is_verified_and_every_write_is_refused_in_one_line(tmp_path, client):
    config = prepared(tmp_path, 3)
    run(config, client=client, log=lambda m: None)
    chunk = [p for p in (config.store / "pairs" / "nmi" / "c").rglob("*") if p.is_file()][0]
    chunk.write_bytes(chunk.read_bytes()[:-7])  # damaged while the store was still writable
    before = {p: p.read_bytes() for p in config.store.rglob("*") if p.is_file()}
    run_dir, n = config.run_dir, str(config.n_images)
    sweep = ("repspace.jobs.full_sweep", "--n-images", n, "--no-dashboard", "--scheduler-address",
             client.scheduler.address, "--error-groups", "0", "--stages", "channels", "pairs")
    text = read_only_shell(tmp_path, "\n".join([
        step("verify", "repspace.jobs.verify", run_dir, "--quick"),
        step("repair", "repspace.jobs.verify", run_dir, "--repair", "--quick"),
        step("rerun", *sweep, "--run-dir", run_dir),
        step("new", *sweep, "--run-dir", str(tmp_path / "new")),
        step("measures", "repspace.jobs.compare_measures", "--store", str(config.store), "--n-items", "8",
             "--no-dashboard", "--scheduler-address", client.scheduler.address),
    ]))
    got = outputs(text)
    assert set(got) == {"verify", "repair", "rerun", "new", "measures"}, text
    code, out = got["verify"]  # checked without the lock, which a read-only store cannot take
    assert code == 1 and "damaged: pairs/nmi chunk" in out and "when its block was finished" in out, out
    for name in ("repair", "rerun", "measures"):
        code, out = got[name]
        assert code != 0 and "Traceback" not in out, (name, out)
        assert f"error: {config.store} is read-only (Read-only file system" in out or \
            f"error: {config.store} is read-only (Permission denied" in out, (name, out)
    code, out = got["new"]
    assert code == 1 and "Traceback" not in out and f"{tmp_path / 'new'} cannot be written" in out, out
    assert out.rstrip().splitlines()[-1] == "status: error (see the line above)"
    assert {p: p.read_bytes() for p in config.store.rglob("*") if p.is_file()} == before  # nothing was changed


def test_a_full_disk_names_the_group_and_the_rerun_keeps_finished_blocks(tmp_path, threads_client, monkeypatch,
                                                                         capsys):
    import errno

    from repspace.jobs import full_sweep
    from repspace.store import pairs as pairs_schema

    config = prepared(tmp_path, 3)
    write_block = pairs_schema.write_block

    def full(group, range_a, range_b, values):  # the disk fills as the blocks off the diagonal are written
        if range_a != range_b:
            raise OSError(errno.ENOSPC, "No space left on device", str(config.store / "pairs" / "nmi"))
        write_block(group, range_a, range_b, values)

    monkeypatch.setattr(pairs_schema, "write_block", full)
    argv = ["--run-dir", config.run_dir, "--n-images", str(config.n_images), "--pair-block-units", "3",
            "--error-groups", "0", "--scheduler-address", threads_client.scheduler.address, "--stages", "channels",
            "pairs"]
    assert full_sweep.main(argv) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err and out.rstrip().splitlines()[-1] == "status: error (see the line above)"
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"error: no space left on device writing group 'pairs' of {config.store}: its arrays "
                           "take up to "), line
    assert " uncompressed (" in line and " on disk now), " in line and " free: " in line
    assert line.endswith("free space and rerun: finished blocks are kept"), line
    monkeypatch.setattr(pairs_schema, "write_block", write_block)  # space freed
    again = run(config.replace(stages=("channels", "pairs"), pair_block_units=3,
                               errors={"groups": 0}), client=threads_client, log=lambda m: None)
    assert (again.stage("pairs").computed, again.stage("pairs").skipped) == (3, 3)  # the diagonal blocks were kept
    assert again.stage("channels").computed == 0


def test_a_chunk_damaged_in_place_is_named_with_the_repair_to_run(tmp_path, client):
    config = prepared(tmp_path, 3)
    run(config, client=client, log=lambda m: None)
    chunk = config.store / "pairs" / "nmi" / "c" / "0" / "0" / "1" / "0"  # off the diagonal: models 0, 1 by 2
    data = bytearray(chunk.read_bytes())
    data[:4] = bytes(4)  # the zstd header, overwritten in place: the size is unchanged, so no size check sees it
    chunk.write_bytes(bytes(data))
    with pytest.raises(store.StoreError) as caught:  # its block's checksum finds it before anything decodes it
        run(config.replace(stages=("structure",)), client=client, log=lambda m: None)
    said = str(caught.value)
    assert "pairs/nmi chunk (0, 0, 1, 0) (models 0, 1, 2): content changed: checksum" in said, said
    assert said.endswith(f"python -m repspace.jobs.verify {config.store.parent} --repair"), said
    shutil.rmtree(config.store / "pairs" / "done_crc32")  # as a store written before checksums: sizes only
    with pytest.raises(store.StoreError) as caught:
        run(config.replace(stages=("structure",)), client=client, log=lambda m: None)
    said = str(caught.value)
    # read back, the chunk still names the models of both its axes (model_a and model_b)
    assert said.startswith("'structure' cannot read the store: pairs/nmi chunk (0, 0, 1, 0) (models 0, 1, 2): "), said
    assert "cannot be read (RuntimeError: Zstd decompression error" in said
    assert said.endswith(f"run python -m repspace.jobs.verify {config.store.parent} --repair"), said


@pytest.mark.parametrize("damage,named", [
    ("embeddings/model/c/0", "embeddings/model chunk (0,)"),  # a coordinate: no size was recorded for it
    ("embeddings/mu/zarr.json", "{store}/embeddings/mu/zarr.json cannot be read (JSONDecodeError"),
])
def test_a_truncated_file_is_named(tmp_path, client, damage, named):
    config = prepared(tmp_path, 3)
    path = config.store / damage
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(store.StoreError) as caught:
        run(config.replace(stages=("channels",)), client=client, log=lambda m: None)
    said = str(caught.value)
    assert said.startswith("'channels' cannot read the store: ") and named.format(store=config.store) in said, said
    assert said.endswith("--repair"), said


@pytest.mark.tf
def test_a_model_whose_variables_file_is_truncated_is_named(tmp_path):
    pytest.importorskip("tensorflow")
    from repspace.models import load_encoder

    from .test_models_encoders import linear_weights, write_tf2_saved_model

    model = tmp_path / "m"
    write_tf2_saved_model(model, linear_weights())
    data = next((model / "variables").glob("variables.data-*"))
    data.write_bytes(data.read_bytes()[:8])
    with pytest.raises(ValueError) as caught:
        load_encoder(model)
    said = str(caught.value)
    assert said.startswith(f"model {model} cannot be loaded (") and str(data) in said, said


def test_a_full_disk_while_recording_the_run_says_every_stage_is_kept(tmp_path, threads_client, monkeypatch, capsys):
    import errno

    import zarr

    from repspace.jobs import full_sweep

    config = prepared(tmp_path, 3)
    setitem = zarr.core.attributes.Attributes.__setitem__

    def full(self, key, value):  # the disk fills after the last stage, as the run's record is written
        if key == "last_run":
            raise OSError(errno.ENOSPC, "No space left on device", str(config.store / "zarr.json"))
        setitem(self, key, value)

    monkeypatch.setattr(zarr.core.attributes.Attributes, "__setitem__", full)
    argv = ["--run-dir", config.run_dir, "--n-images", str(config.n_images), "--error-groups", "0",
            "--scheduler-address", threads_client.scheduler.address, "--stages", "channels"]
    assert full_sweep.main(argv) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err and out.rstrip().splitlines()[-1] == "status: error (see the line above)"
    line = err.strip().splitlines()[-1]
    assert line == (f"error: no space left on device writing the run's record (last_run) in {config.store / 'zarr.json'}"
                    ": every stage finished and is kept; free space and rerun (finished blocks are not computed again)"), line
    monkeypatch.undo()  # space freed: the rerun computes nothing
    assert full_sweep.main(argv) == 0
    assert zarr.open_group(str(config.store), mode="r")["channels"].attrs["computed"] == 0
