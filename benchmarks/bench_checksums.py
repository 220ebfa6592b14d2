"""The cost of the chunk checksums: the pairs stage with and without recording and checking them.

A synthetic embeddings store of M models x C channels x N images (default 1,000 x 10 x 100: fewer
fingerprint images than a real run, so that each pairs stage takes well under a minute on 2 cores;
the checksums' work does not depend on N, so this overstates their share) goes through the channels
stage once, and the pairs stage once untimed (the workers compile the kernels). Then, in this one
process and on one in-process cluster (2 workers x 1 thread), the pairs stage runs from scratch and
once more over its finished blocks, the two cases alternated:

- with checksums: what a run does now. Its input groups (embeddings, channels) are checked by size
  and CRC-32, and every block's chunk files are read back and their CRC-32 recorded as it is marked;
  the rerun checks every finished block by size and CRC-32.
- without: the store as an earlier version wrote it (the inputs' checksum arrays removed), and
  ``checksums.file_crc32`` replaced by one that records nothing (-1), so every check is by size only.

Printed: each run's stage time, the best and median of each case, the ratio with / without, and the
bytes the checksums read.

    python benchmarks/bench_checksums.py [--models 1000] [--channels 10] [--images 100] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from repspace import store
from repspace.cluster import connect
from repspace.data import FingerprintConfig, build_fingerprint
from repspace.models import ModelEntry
from repspace.pipeline import RunConfig, run
from repspace.store import checksums, verify

REAL_CRC32 = checksums.file_crc32


def quiet(msg: str) -> None:
    pass


def build(config: RunConfig, models: int, channels: int, images: int) -> None:
    build_fingerprint(FingerprintConfig(dataset="dsprites_procedural", n=images, seed=0, image_size=32,
                                        store=config.store))
    rng = np.random.default_rng(0)
    for start in range(0, models, 100):  # in slices: never the whole synthetic ensemble in memory
        stop = min(models, start + 100)
        mu = rng.normal(size=(stop - start, channels, images)).astype(np.float32)
        logvar = rng.normal(-1.0, 0.5, size=(stop - start, channels, images)).astype(np.float32)
        entries = [ModelEntry(name=str(i), path="", family="synthetic", seed=i, source="benchmark")
                   for i in range(start, stop)]
        store.write_posteriors(config.store, mu, logvar, entries, models_per_chunk=50)


def set_checksums(store_path: Path, on: bool) -> None:
    """Record the inputs' checksums and use the real CRC-32 (``on``), or remove them and record none."""
    checksums.file_crc32 = REAL_CRC32
    embeddings = store.open_group(store_path, "embeddings", mode="r+")
    channels = store.open_group(store_path, "channels", mode="r+")
    if on:
        verify.record_embedding_chunks(store_path, embeddings)
        for b in range(channels["done"].shape[0]):
            verify.record_block(store_path, channels, "done", (b,))
        return
    for group, name in ((embeddings, "chunk_crc32"), (channels, "done_crc32")):
        if name in group:
            del group[name]
    checksums.file_crc32 = lambda path: checksums.NOT_RECORDED


def pairs_bytes(store_path: Path) -> int:
    return sum(p.stat().st_size for name in ("nmi", "vi") for p in (store_path / "pairs" / name).rglob("*")
               if p.is_file() and p.name != "zarr.json")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, default=1000)
    p.add_argument("--channels", type=int, default=10)
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--repeats", type=int, default=2, help="runs of each case, alternated")
    p.add_argument("--dir", help="where to put the store (default: a temporary folder)")
    args = p.parse_args()
    m, c, n = args.models, args.channels, args.images

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp, \
            connect(n_workers=2, threads_per_worker=1, dashboard=False) as client:
        config = RunConfig(run_dir=str(Path(tmp) / "run"), n_images=n, image_size=32, dashboard=False,
                           n_workers=2, stages=("channels",))
        build(config, m, c, n)
        run(config, client=client, log=quiet)
        print(f"synthetic store: {m} models x {c} channels x {n} images; pairs stage, blocks of "
              f"{config.pair_block_units} channels, 2 workers x 1 thread")
        run(config.replace(stages=("pairs",)), client=client, log=quiet)  # warm-up, untimed
        fresh: dict[bool, list[float]] = {True: [], False: []}
        again: dict[bool, list[float]] = {True: [], False: []}
        for k in range(args.repeats):
            for on in ((True, False) if k % 2 == 0 else (False, True)):
                set_checksums(config.store, on)
                root = store.open_run(config.store)
                if "pairs" in root:
                    del root["pairs"]
                t = time.perf_counter()
                run(config.replace(stages=("pairs",)), client=client, log=quiet)
                fresh[on].append(time.perf_counter() - t)
                t = time.perf_counter()
                report = run(config.replace(stages=("pairs",)), client=client, log=quiet)
                again[on].append(time.perf_counter() - t)
                assert report.stage("pairs").computed == 0
                name = "with checksums" if on else "without       "
                print(f"  {name}: pairs stage {fresh[on][-1]:7.2f} s; again over its finished blocks "
                      f"{again[on][-1]:6.2f} s")
        checksums.file_crc32 = REAL_CRC32
        size = pairs_bytes(config.store)
        t = time.perf_counter()
        for path in (q for name in ("nmi", "vi") for q in (config.store / "pairs" / name).rglob("*")
                     if q.is_file() and q.name != "zarr.json"):
            checksums.file_crc32(path)
        crc_s = time.perf_counter() - t
        print(f"pairs chunk files (nmi, vi): {size / 1e6:.0f} MB; their CRC-32 alone: {crc_s:.2f} s "
              f"({size / crc_s / 1e9:.2f} GB/s)")
        for label, times in (("pairs stage", fresh), ("rerun, every block finished", again)):
            best = {k: min(v) for k, v in times.items()}
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"{label}: with {best[True]:.2f} s (median {med[True]:.2f}), without {best[False]:.2f} s "
                  f"(median {med[False]:.2f}); ratio with / without {best[True] / best[False]:.3f} (best), "
                  f"{med[True] / med[False]:.3f} (median)")


if __name__ == "__main__":
    main()
