"""python -m repspace.jobs.verify RUN_DIR [--repair] [--quick]: check a run store, and repair it.

Checks every finished block and chunk against the sizes and the checksums (CRC-32 of each chunk
file) recorded when they were written, and (unless --quick) reads every chunk of every group back.
Blocks recorded before checksums were kept (a store written by an earlier version) are checked by
their size only, and the output says how many. Names each damaged array, chunk and the
models it covers. With --repair, marks exactly those blocks as not done and reruns the stages
that write them (with the run's own configuration), then the structure, traversals and figures.
A read-only store (an archive) is checked without taking its lock; --repair needs write access.
Exit status: 0 when the store is intact (or was repaired), 1 when damage remains, 2 after an error.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from repspace._quiet import set_verbose
from repspace.pipeline.repair import repair
from repspace.store import StoreError, StoreLocked, StoreReadOnly, run_lock
from repspace.store.verify import find_damage, size_only


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m repspace.jobs.verify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="the run's folder (with store.zarr inside) or the store itself")
    p.add_argument("--repair", action="store_true", help="recompute the damaged blocks")
    p.add_argument("--quick", action="store_true", help="sizes and checksums only: do not read every chunk back")
    p.add_argument("--verbose", action="store_true", help="keep TensorFlow's start-up logging (silenced by default)")
    a = p.parse_args(argv)
    set_verbose(a.verbose)
    store_path = a.run / "store.zarr" if (a.run / "store.zarr").is_dir() else a.run
    try:
        with contextlib.ExitStack() as held:
            with contextlib.suppress(StoreReadOnly):  # a read-only store is checked without it: no run can write it
                held.enter_context(run_lock(store_path, "verify"))  # no run changes the store while it is checked
            damage = find_damage(store_path, deep=not a.quick)
            unchecked = size_only(store_path)
        for d in damage:
            print(f"damaged: {d}")
        if unchecked:
            print("checked by size only (recorded before checksums were kept): "
                  + ", ".join(f"{g} {n} {'chunks' if 'embeddings' in g else 'blocks'}" for g, n in unchecked.items()))
        if not damage:
            print(f"{store_path}: every recorded block and chunk is intact")
            return 0
        if not a.repair:
            print(f"{len(damage)} damaged chunks; rerun with --repair to recompute them")
            return 1
        result = repair(store_path, damage)
        with run_lock(store_path, "verify"):
            left = find_damage(store_path, deep=not a.quick)
    except (StoreError, StoreLocked, StoreReadOnly, FileNotFoundError, FileExistsError, RuntimeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if result is not None:
        print(result.summary())
    for d in left:
        print(f"still damaged: {d}")
    print("repaired" if not left else f"{len(left)} damaged chunks remain")
    return 0 if not left else 1


if __name__ == "__main__":
    sys.exit(main())
