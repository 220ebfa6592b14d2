"""The structure stage and its figures at many kept channels, each alone in a fresh process.

A store of M models x C channels (default 1,000 x 10) whose every channel is kept gets
``channels`` from the real stage and a ``pairs`` group written directly (no all-pairs
computation: VI grows with the distance between points drawn around five centres, NMI is
exp(-VI)), marked done as the pairs stage marks it. Then the structure stage, and the figures,
each run in a fresh process whose RSS is sampled every 0.1 s (the peak printed is that
process's own; ``ru_maxrss`` would carry the parent's across exec).

    python benchmarks/bench_structure.py [--models 1000] [--channels 10] [--images 300]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from repspace import store
from repspace.data import FingerprintConfig, build_fingerprint
from repspace.models import ModelEntry
from repspace.pipeline import RunConfig, run
from repspace.store import verify
from repspace.store.models import read_models
from repspace.store import pairs as schema


def alone(fields: dict, stage: str) -> tuple[float, int]:
    """Run one stage in a fresh process: (seconds, its peak RSS in bytes, sampled)."""
    code = ("import json, sys; from repspace.pipeline import RunConfig, run; "
            "run(RunConfig(**json.loads(sys.argv[1])), log=lambda m: None)")
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps({**fields, "stages": [stage]})])
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.1)
    if proc.returncode:
        raise SystemExit(f"{stage} failed ({proc.returncode})")
    return time.perf_counter() - t, peak


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", type=int, default=1000)
    p.add_argument("--channels", type=int, default=10)
    p.add_argument("--images", type=int, default=300)
    args = p.parse_args()
    m, c, n = args.models, args.channels, args.images
    with tempfile.TemporaryDirectory() as tmp:
        fields = {"run_dir": str(Path(tmp) / "run"), "n_images": n, "image_size": 32, "dashboard": False,
                  "pair_block_units": 2000}
        config = RunConfig(**fields, stages=("channels",))
        build_fingerprint(FingerprintConfig(dataset="dsprites_procedural", n=n, seed=0, image_size=32, store=config.store))
        rng = np.random.default_rng(0)
        mu = rng.normal(size=(m, c, n)).astype(np.float32)
        logvar = rng.normal(-1.0, 0.5, size=(m, c, n)).astype(np.float32)
        models = [ModelEntry(name=str(i), path="", family="synthetic", seed=i, source="benchmark") for i in range(m)]
        store.write_posteriors(config.store, mu, logvar, models, models_per_chunk=50)
        run(config, log=lambda msg: None)
        # the pairs, written as the pairs stage writes them
        units = m * c
        centres = rng.normal(scale=3.0, size=(5, 2))
        points = centres[rng.integers(0, 5, units)] + rng.normal(size=(units, 2))
        root = store.open_run(config.store)
        group = root.require_group(schema.GROUP)
        block = 2000 // c
        schema.layout(group, read_models(root["embeddings"]), c, block)
        group.attrs.update({"models_per_block": block, "images_id": root["embeddings"].attrs["images_id"],
                            "pair_channels": "informative", "info_threshold_bits": config.info_threshold})
        ranges = store.block_ranges(m, block)
        done = store.require_marker(group, (len(ranges), len(ranges)), ("block_a", "block_b"), "done")
        for a, (a0, a1) in enumerate(ranges):
            for b, (b0, b1) in enumerate(ranges[a:], start=a):
                pa, pb = points[a0 * c:a1 * c], points[b0 * c:b1 * c]
                vi = np.sqrt(((pa[:, None] - pb[None]) ** 2).sum(-1)).astype(np.float32)
                values = {"vi": vi.reshape(a1 - a0, c, b1 - b0, c), "nmi": np.exp(-vi).reshape(a1 - a0, c, b1 - b0, c)}
                schema.write_block(group, (a0, a1), (b0, b1), values)
                verify.record_block(config.store, group, "done", (a, b))
                store.mark(done, (a, b), 1)
        store.set_complete(group, True)
        print(f"{units} channels, all kept; pairs written directly")
        for stage in ("structure", "figures"):
            seconds, peak = alone(fields, stage)
            print(f"{stage} alone: {seconds:.1f} s, peak RSS {peak / 2**30:.2f} GiB")
        st = store.open_dataset(config.store, "structure")
        print(f"clusters found: vi {int((st['cluster_size'].sel(measure='vi') > 0).sum())}, "
              f"nmi {int((st['cluster_size'].sel(measure='nmi') > 0).sum())}")


if __name__ == "__main__":
    main()
