"""The cost of the checks a run makes before any stage (each selected stage's ``check(config)`` and
``check_store``), against the models stage's own discovery of the same models.

A folder of M posterior files (default 1,000, each 100 images x 10 channels) and a run store whose models
group lists them, with a finished fingerprint set, are written once. Then, in this one process, each case
runs ``--repeats`` times, alternated:

- discovery (the baseline): the models stage's ``locate``, which finds the M models in the folder
  (``find_models``), as every run does;
- models check: the models stage's ``check`` (the same discovery, then each model's recorded path compared);
- the other checks: ``check_store``, the fingerprint stage's and the latents stage's (metadata reads).

Printed: the best and median time of each case and the ratio of each check to the discovery.

    python benchmarks/bench_checks.py [--models 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from repspace.data import FingerprintConfig, build_fingerprint
from repspace.models import write_posterior_file
from repspace.pipeline import load_config
from repspace.pipeline.checks import check_store
from repspace.pipeline.stages import fingerprint, latents, models
from repspace.store import open_run
from repspace.store.models import write_models


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run_dir, folder = tmp / "run", tmp / "posteriors"
        store = run_dir / "store.zarr"
        build_fingerprint(FingerprintConfig(dataset="dsprites_procedural", n=100, seed=0, store=store, image_size=32))
        paths = [write_posterior_file(folder / f"m{k}.npz", rng.normal(size=(100, 10)), rng.normal(size=(100, 10)),
                                      store=store) for k in range(a.models)]
        write_models(open_run(store).require_group("models"),
                     [{"name": q.stem, "path": str(q.resolve())} for q in paths])
        config = load_config(None, run_dir=run_dir, n_images=100, seed=0,
                             models={"source": "posteriors", "dir": str(folder)})
        ctx = SimpleNamespace(config=config, client=None)
        cases = {"discovery (locate)": lambda: models.locate(ctx),
                 "models check": lambda: models.check(config),
                 "other checks": lambda: (check_store(config), fingerprint.check(config), latents.check(config))}
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(a.repeats):
            for name, case in cases.items():
                start = time.perf_counter()
                case()
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["discovery (locate)"])
    print(f"{a.models} posterior files, {a.repeats} repeats")
    for name, t in times.items():
        print(f"  {name:<20} best {1e3 * min(t):8.2f} ms  median {1e3 * statistics.median(t):8.2f} ms  "
              f"ratio to discovery {statistics.median(t) / base:5.2f}")


if __name__ == "__main__":
    main()
