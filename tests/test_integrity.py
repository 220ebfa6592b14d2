"""Content integrity: a chunk whose file keeps its size and still decodes, but to other values (a flipped
bit), is found by its checksum: by a rerun, by the stage that reads it, and by verify; repair restores it
bit for bit. A store written before checksums were kept is checked by size only, and says so."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import xarray as xr

from repspace import store
from repspace.jobs import verify as verify_job
from repspace.pipeline import run
from repspace.store.verify import chunk_path, find_damage

from .test_hardening import prepared
from .test_repair import truncate
from .test_sweep_e2e import config_for, model_dir  # noqa: F401  (four linear TF models the encode stage can encode again)

pytestmark = pytest.mark.distributed

WHOLE = ("embeddings", "channels", "pairs")


CHANGED = r"content changed: checksum [0-9a-f]{8} on disk, [0-9a-f]{8} recorded when its block was finished"


def read_chunk(store_path, group: str, array: str, chunk: tuple[int, ...]) -> np.ndarray:
    arr = store.open_group(store_path, group)[array]
    return np.asarray(arr[tuple(slice(c * k, (c + 1) * k) for c, k in zip(chunk, arr.chunks))])


def flip_a_byte(store_path, group: str, array: str, chunk: tuple[int, ...]) -> int:
    """Flip the lowest bit of one byte of the chunk's file: the first position at which the file still decodes
    through the array, to other values. Returns the position; the file keeps its size."""
    path = chunk_path(store_path, group, array, chunk)
    data = path.read_bytes()
    before = read_chunk(store_path, group, array, chunk)
    for pos in range(len(data)):
        changed = bytearray(data)
        changed[pos] ^= 0x01
        path.write_bytes(bytes(changed))
        try:
            after = read_chunk(store_path, group, array, chunk)
        except Exception:  # this byte breaks the codec: a damage any reader notices; look further
            continue
        if not np.array_equal(after, before, equal_nan=True):
            assert path.stat().st_size == len(data)
            assert after.shape == before.shape
            return pos
    path.write_bytes(data)
    raise AssertionError(f"no single flipped bit of {path} decodes to other values")


def assert_same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def group_values(store_path, groups=("channels", "pairs")) -> dict:
    out = {}
    for g in groups:
        ds = xr.open_zarr(store_path, group=g, consolidated=False).load()
        out.update({f"{g}/{n}": ds[n].values for n in ds.data_vars if not n.startswith("done")})
    return out


def test_a_rerun_recomputes_the_blocks_whose_chunks_changed_content(tmp_path, client):
    config = prepared(tmp_path, 6)  # blocks of two models: 3 channel blocks, 6 pair blocks
    run(config, client=client)
    before = group_values(config.store)
    flip_a_byte(config.store, "channels", "information", (1, 0))
    flip_a_byte(config.store, "pairs", "nmi", (2, 0, 1, 0))  # the transpose half of block (1, 2)
    said = []
    result = run(config, client=client, log=said.append)
    assert [(r.name, r.computed, r.skipped) for r in result.stages] == [("channels", 1, 2), ("pairs", 1, 5)]
    for where in ("channels/information chunk (1, 0) (models 2, 3)", "pairs/nmi chunk (2, 0, 1, 0) (models 2, 3, 4, 5)"):
        line = next((s for s in said if where in s), None)
        assert line is not None, said
        assert "content changed: checksum" in line and "recorded when its block was finished" in line, line
        assert "recomputing its block" in line, line
    assert_same(group_values(config.store), before)
    assert not find_damage(config.store)


def test_a_reading_stage_and_verify_name_changed_content_and_repair_restores_it(tmp_path, client, capsys):
    config = prepared(tmp_path, 4)
    run(config, client=client)
    before = group_values(config.store)
    flip_a_byte(config.store, "pairs", "nmi", (0, 0, 1, 0))
    with pytest.raises(store.StoreError, match=r"'structure' reads 'pairs', which is damaged: pairs/nmi chunk "
                                               r"\(0, 0, 1, 0\) \(models 0, 1, 2, 3\): " + CHANGED):
        run(config.replace(stages=("structure",)), client=client, log=lambda m: None)
    flip_a_byte(config.store, "channels", "nmi_factor", (0, 0, 0))
    for quick in ([], ["--quick"]):
        assert verify_job.main([config.run_dir, *quick]) == 1
        out = capsys.readouterr().out
        assert "every recorded block and chunk is intact" not in out and "2 damaged chunks" in out, out
        for where in ("pairs/nmi chunk (0, 0, 1, 0) (models 0, 1, 2, 3)", "channels/nmi_factor chunk (0, 0, 0) (models 0, 1)"):
            line = next((s for s in out.splitlines() if where in s), "")
            assert line.startswith("damaged: ") and "content changed: checksum" in line, out
    assert verify_job.main([config.run_dir, "--repair"]) == 0, capsys.readouterr()
    assert "repaired" in capsys.readouterr().out
    assert not find_damage(config.store, deep=True)
    assert_same(group_values(config.store), before)


def test_changed_posteriors_are_named_refused_and_encoded_again_bit_for_bit(tmp_path, model_dir, client, capsys):
    config = config_for(tmp_path, model_dir, stages=("fingerprint", "models", "encode", "channels", "pairs"),
                        pair_block_units=6)
    run(config, client=client)
    clean = tmp_path / "clean.zarr"
    shutil.copytree(config.store, clean)
    flip_a_byte(config.store, "embeddings", "mu", (1, 0, 0))
    assert verify_job.main([config.run_dir, "--quick"]) == 1
    line = next((s for s in capsys.readouterr().out.splitlines() if "embeddings/mu chunk (1, 0, 0)" in s), "")
    assert "(models 2, 3): content changed: checksum" in line and "recorded when it was written" in line, line
    with pytest.raises(store.StoreError, match=r"'channels' reads 'embeddings', which is damaged: embeddings/mu chunk "
                                               r"\(1, 0, 0\) \(models 2, 3\): content changed: checksum"):
        run(config.replace(stages=("channels",)), client=client, log=lambda m: None)
    assert verify_job.main([config.run_dir, "--repair"]) == 0, capsys.readouterr()
    capsys.readouterr()
    assert not find_damage(config.store, deep=True)
    assert_same(group_values(config.store, WHOLE), group_values(clean, WHOLE))

    # a rerun of the encode stage finds the changed chunk itself and encodes its models again
    flip_a_byte(config.store, "embeddings", "logvar", (0, 0, 0))
    said = []
    run(config.replace(stages=("encode", "channels", "pairs")), client=client, log=said.append)
    line = next((s for s in said if "embeddings/logvar chunk (0, 0, 0)" in s), "")
    assert "(models 0, 1): content changed: checksum" in line and "encoding its models again" in line, said
    assert_same(group_values(config.store, WHOLE), group_values(clean, WHOLE))


def test_a_store_written_before_checksums_resumes_and_verifies_by_size(tmp_path, client, capsys):
    config = prepared(tmp_path, 4)  # blocks of two models: 2 channel blocks, 3 pair blocks
    run(config, client=client)
    for group, name in (("channels", "done_crc32"), ("pairs", "done_crc32"), ("embeddings", "chunk_crc32")):
        del store.open_group(config.store, group, mode="r+")[name]  # as an earlier version wrote it
    assert verify_job.main([config.run_dir]) == 0
    out = capsys.readouterr().out
    assert "every recorded block and chunk is intact" in out
    assert "checked by size only (recorded before checksums were kept): channels 2 blocks, pairs 3 blocks, " \
           "embeddings 2 chunks" in out, out

    before = group_values(config.store)
    truncate(chunk_path(config.store, "channels", "information", (1, 0)))  # sizes are still checked
    said = []
    result = run(config, client=client, log=said.append)
    assert [(r.name, r.computed, r.skipped) for r in result.stages] == [("channels", 1, 1), ("pairs", 0, 3)]
    assert any("channels/information chunk (1, 0)" in s and "bytes on disk" in s for s in said), said
    assert_same(group_values(config.store), before)

    # the block finished now has its checksums; those finished before are still checked by size only
    assert verify_job.main([config.run_dir, "--quick"]) == 0
    assert "channels 1 blocks, pairs 3 blocks" in capsys.readouterr().out
    flip_a_byte(config.store, "channels", "information", (0, 0))  # a block recorded by size only: not seen
    flip_a_byte(config.store, "channels", "information", (1, 0))
    assert verify_job.main([config.run_dir, "--quick"]) == 1
    out = capsys.readouterr().out
    assert "channels/information chunk (1, 0) (models 2, 3): content changed: checksum" in out, out
    assert "chunk (0, 0)" not in out and "1 damaged chunks" in out, out
