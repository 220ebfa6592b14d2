"""The times README.md quotes, and the time each stage announces before it starts against the time it takes.

Each run is a command README.md quotes (its default configuration, a fresh folder, an in-process
LocalCluster of 2 workers), timed from outside. Then every stage group of its store is read for what the
driver recorded: ``estimated_s`` (the estimate it printed, from the blocks' costs scheduled costliest first
over the worker threads) and ``elapsed_s`` (the whole stage: planning, tasks, finalize). Printed per stage:
both and their ratio (goal: between 0.5 and 2; a stage estimated under 10 s prints no estimate, and shows
no ratio: "-"); per run:
its wall time.

    python benchmarks/bench_estimates.py [--runs NAME ...] [--models-dir data/models/offline] [--keep DIR]

Runs (in this order; fusion and measures_latents add to full_sweep's run, so list full_sweep with them):
    full_sweep              python -m repspace.jobs.full_sweep (models written from the shipped weights)
    fusion                  full_sweep --stages fusion figures, on full_sweep's run
    measures_latents        compare_measures --store FULL_SWEEP/store.zarr --shape-restarts 0
    compare_measures        python -m repspace.jobs.compare_measures
    compare_latents         compare_latents --models-dir data/models/offline
    compare_latents_pairs   the same with --per-pair-estimates
    fusion_so2              python -m repspace.jobs.fusion_so2
    train                   train_ensemble --no-shipped (the ten models trained afresh)

Run it from the repository's root on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import zarr

RUNS = {
    "full_sweep": ["full_sweep", "--run-dir", "{folder}/full_sweep", "--models-dir", "{models}"],
    "fusion": ["full_sweep", "--run-dir", "{folder}/full_sweep", "--models-dir", "{models}",
               "--stages", "fusion", "figures"],
    "measures_latents": ["compare_measures", "--store", "{folder}/full_sweep/store.zarr", "--shape-restarts", "0"],
    "compare_measures": ["compare_measures", "--run-dir", "{folder}/compare_measures"],
    "compare_latents": ["compare_latents", "--run-dir", "{folder}/compare_latents", "--models-dir", "{models}"],
    "compare_latents_pairs": ["compare_latents", "--run-dir", "{folder}/compare_latents_pairs", "--models-dir",
                              "{models}", "--per-pair-estimates"],
    "fusion_so2": ["fusion_so2", "--run-dir", "{folder}/fusion_so2"],
    "train": ["train_ensemble", "--dest", "{folder}/train"],
}
"""Each run's job and arguments ({folder}: the benchmark's folder; {models}: --models-dir)."""
STORES = {"fusion": "full_sweep", "measures_latents": "full_sweep", "train": None}
"""Where a run's store is, when not in its own folder (None: it writes none)."""


def stage_times(store: Path) -> list[tuple[str, float, float | None]]:
    """(stage, elapsed_s, estimated_s or None) of every stage group of ``store`` that its last run wrote, in the
    order written."""
    root = zarr.open_group(str(store), mode="r")
    last = json.loads(root.attrs.get("last_run", "{}")).get("run_id")
    rows = []
    for _, group in root.groups():
        attrs = dict(group.attrs)
        if "elapsed_s" in attrs and "stage" in attrs and attrs.get("run_id") == last:
            rows.append((attrs.get("written_at", ""), attrs["stage"], float(attrs["elapsed_s"]),
                         attrs.get("estimated_s")))
    return [(stage, elapsed, estimate) for _, stage, elapsed, estimate in sorted(rows)]


def run(name: str, folder: Path, models: Path) -> tuple[float, int]:
    """Run ``name`` of :data:`RUNS`; (wall seconds, exit status)."""
    job, *args = (a.format(folder=folder, models=models) for a in RUNS[name])
    if job != "train_ensemble":
        args.append("--no-dashboard")
    else:
        args.append("--no-shipped")
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", f"repspace.jobs.{job}", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
    return time.perf_counter() - t, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    ap.add_argument("--models-dir", type=Path, default=Path("data/models/offline"),
                    help="the offline default's models (full_sweep writes them when they are missing)")
    ap.add_argument("--keep", type=Path, help="write the runs here and keep them (default: a temporary folder)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="repspace-estimates-") as tmp:
        folder = (a.keep or Path(tmp)).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        print(f"{'run':<24}{'stage':<16}{'estimate':>10}{'took':>10}{'took/est':>10}", flush=True)
        walls = {}
        for name in sorted(a.runs, key=list(RUNS).index):
            wall, rc = run(name, folder, a.models_dir.resolve())
            walls[name] = round(wall, 1)
            if rc != 0:
                print(f"{name:<24}exit status {rc}", flush=True)
                continue
            where = STORES.get(name, name)
            stages = stage_times(folder / where / "store.zarr") if where else []
            for stage, elapsed, estimate in stages:
                ratio = f"{elapsed / estimate:10.2f}" if estimate and estimate >= 10 else f"{'-':>10}"  # printed
                est = f"{estimate:10.1f}" if estimate else f"{'-':>10}"
                print(f"{name:<24}{stage:<16}{est}{elapsed:10.1f}{ratio}", flush=True)
            print(f"{name:<24}{'(whole run)':<16}{'':>10}{wall:10.1f}", flush=True)
        print(json.dumps({"wall_s": walls}))


if __name__ == "__main__":
    main()
