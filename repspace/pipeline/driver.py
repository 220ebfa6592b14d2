"""The driver: runs a list of stages over one run store, on one Dask client.

For each stage it checks the groups the stage needs, plans its blocks, skips those whose
marker holds their stamp, runs the rest as Dask tasks (marking each as it finishes),
finalizes, and records provenance (config, package version, run id, timing) in the
stage's group. Failed tasks do not stop the others; their stage then fails naming them,
with every finished block kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import heapq
import json
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import store
from ..store import verify
from ..cluster import connect
from .config import RunConfig
from .checks import check_store
from .guards import DiskFull, translated
from .stage import Block, Plan, Stage, StageContext
from .sync import completed

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["RunReport", "StageReport", "TaskFailed", "makespan", "run_stages", "run_tasks"]


class TaskFailed(RuntimeError):
    """One or more tasks of a stage failed; finished blocks are kept in the store. ``errors``: {task: its error}."""

    def __init__(self, message: str, errors: dict[str, BaseException] | None = None) -> None:
        super().__init__(message)
        self.errors = dict(errors or {})


@dataclasses.dataclass
class StageReport:
    name: str
    seconds: float
    computed: int = 0
    skipped: int = 0
    note: str = ""


@dataclasses.dataclass
class RunReport:
    """What a run did: per stage, its blocks computed and skipped, and where the results are."""

    store: Path
    figure_dir: Path
    run_id: str
    stages: list[StageReport]
    failed_models: dict[str, str] = dataclasses.field(default_factory=dict)
    figures: list[Path] = dataclasses.field(default_factory=list)
    report: Path | None = None

    def stage(self, name: str) -> StageReport:
        return next(r for r in self.stages if r.name == name)

    def unusable(self) -> str | None:
        """Why the run produced nothing to analyse, or None: every model of an embeddings group it encoded was
        left out (a job then exits non-zero, however many stages finished)."""
        ran = {r.name for r in self.stages}
        for group, stage in (("embeddings", "encode"), ("dataset_embeddings", "encode_dataset")):
            if stage not in ran or not (self.store / group / "zarr.json").exists():
                continue
            models = [str(m) for m in store.open_group(self.store, group)["model"][:]]
            if models and all(m in self.failed_models for m in models):
                return (f"none of the {len(models)} models could be encoded (group {group}); the first: "
                        f"{models[0]}: {self.failed_models[models[0]]}")
        return None

    def summary(self) -> str:
        lines = ["", f"repspace run {self.run_id} finished", f"  store:   {self.store}"]
        if self.report is not None:
            lines.append(f"  report:  {self.report}   (open this first)")
        lines.append("")
        lines.append(f"  {'stage':<15}{'time':>9}  {'computed':>9}  {'skipped':>8}  note (computed, skipped: blocks)")
        for r in self.stages:
            blocks = r.computed + r.skipped > 0  # a stage without blocks does its work in finalize
            computed, skipped = (r.computed, r.skipped) if blocks else ("-", "-")
            lines.append(f"  {r.name:<15}{r.seconds:8.1f}s  {computed:>9}  {skipped:>8}  {r.note}")
        if self.failed_models:
            lines += ["", "  models left out (could not be encoded):"]
            lines.extend(f"    {k}: {v}" for k, v in self.failed_models.items())
        if self.figures:
            lines += ["", "  figures:"]
            lines.extend(f"    {p}" for p in self.figures)
        from .stages import STAGES  # every group a stage writes, in run order

        names = ["fingerprint", "models", "embeddings"] + [s.writes for s in STAGES.values() if s.writes]
        groups = [g for g in dict.fromkeys(names) if (self.store / g / "zarr.json").exists()]
        if groups:
            lines += ["", "  open the results in Python:", "    import xarray as xr"]
            lines.extend(f'    xr.open_zarr("{self.store}", group="{g}", consolidated=False)' for g in groups)
        return "\n".join(lines)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    """
    >>> _duration(42.4), _duration(754), _duration(7 * 3600 + 1800)
    ('42 s', '12.6 min', '7.5 h')
    """
    if seconds < 100:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 6000 else f"{seconds / 3600:.1f} h"


def makespan(costs: Sequence[float], threads: int) -> float:
    """Time until the last of ``costs`` finishes on ``threads`` threads, each starting the costliest task left
    when it comes free (as :func:`run_tasks` orders them): at least the mean load and the largest task.

    >>> makespan([25.0] * 9, 2), makespan([60, 1, 1], 2), makespan([], 4)
    (125.0, 60.0, 0.0)
    """
    free = [0.0] * max(1, min(int(threads), len(costs)))
    for c in sorted(costs, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + float(c))
    return max(free) if costs else 0.0


def _bar(label: str, done: int, total: int, start: float, width: int = 30, share: float | None = None,
         expected: float | None = None, threads: int = 1) -> str:
    """One progress line: tasks done of total, time so far, and what is left at the rate so far (``share``: the
    part of the work done, by the blocks' estimated costs; else the part of the tasks). ``expected``: the
    stage's estimated seconds, which the first tasks' rate (warming up, one per thread) is weighed against:
    the rate so far counts done / (done + threads) of the total time. Once the time so far passes the estimate,
    the estimate counts as the time so far, so with many threads and an estimate far too low the line reads
    low for a while (a heuristic: it is right where the estimate is)."""
    frac = done / total if total else 1.0
    filled = int(round(frac * width))
    elapsed = time.perf_counter() - start
    share = frac if share is None else share
    left = ""
    if 0 < done < total and share > 0:
        whole = elapsed / share
        if expected is not None:
            weight = done / (done + max(1, threads))
            whole = weight * whole + (1 - weight) * max(expected, elapsed)
        left = f", about {_duration(max(0.0, whole - elapsed))} left"
    return f"{label:<14} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}  {_duration(elapsed)}{left}"


def run_tasks(
    client: "Client",
    label: str,
    calls: Sequence[tuple[str, Callable[..., Any], tuple]],
    *,
    on_result: Callable[[str, Any], None] | None = None,
    stream: Any = None,
    costs: Sequence[float] | None = None,
    expected: float | None = None,
) -> dict[str, Any]:
    """Run ``(name, fn, args)`` calls as Dask tasks, started in the order given, showing progress;
    ``on_result(name, result)`` is called in this process as each one finishes. ``costs``: each call's estimated
    cost, so that the time left counts the work left, not the tasks (the costliest start first); ``expected``: the
    seconds estimated for them all, weighed against the rate of the first tasks.

    Every call runs to the end even when some fail (their finished work is kept); then
    TaskFailed names every failed call. Returns {name: result}.
    """
    stream = stream or sys.stderr
    start = time.perf_counter()
    total = len(calls)
    if total == 0:
        return {}
    # explicit priorities: the scheduler starts the calls in the order given
    futures = {client.submit(fn, *args, pure=False, key=f"{label}-{name}-{uuid.uuid4().hex[:8]}",
                             priority=total - k): name
               for k, (name, fn, args) in enumerate(calls)}
    results: dict[str, Any] = {}
    errors: dict[str, BaseException] = {}
    tty = hasattr(stream, "isatty") and stream.isatty()
    last = 0.0
    threads = max(1, sum(client.nthreads().values())) if expected is not None else 1
    cost_of = {name: float(c) for (name, _, _), c in zip(calls, costs)} if costs is not None else {}
    all_cost, done_cost = sum(cost_of.values()), 0.0
    for done, fut in enumerate(completed(futures), 1):
        name = futures.pop(fut)
        done_cost += cost_of.get(name, 0.0)
        share = done_cost / all_cost if all_cost > 0 else None
        try:
            results[name] = fut.result()
        except Exception as err:
            errors[name] = err
        fut.release()  # before the block is marked: a marked block's result is never held, so never recomputed
        if name in results and on_result is not None:
            on_result(name, results[name])
        now = time.perf_counter()
        if tty:
            stream.write("\r" + _bar(label, done, total, start, share=share, expected=expected, threads=threads))
        elif now - last > 5 or done == total:
            stream.write(_bar(label, done, total, start, share=share, expected=expected, threads=threads) + "\n")
            last = now
        stream.flush()
    if tty:
        stream.write("\n")
    if errors:
        listed = "; ".join(f"{n}: {type(e).__name__}: {e}" for n, e in list(errors.items())[:5])
        raise TaskFailed(f"{len(errors)} of {total} {label} tasks failed ({listed}); finished blocks are kept, "
                         "rerun to retry", errors)
    return results


def _check_input(stage: str, store_path: Path, need: str) -> None:
    """Refuse an input group whose finished chunks are missing or damaged (cheap: their sizes, then their
    checksums), naming each."""
    if need in verify.MARKED_GROUPS:
        damage = verify.damaged_blocks(store_path, need)
    elif need in ("embeddings", "dataset_embeddings"):
        damage = verify.damaged_embeddings(store_path, need)
    else:
        return
    if damage:
        listed = "; ".join(str(d) for d in damage[:5]) + (f"; and {len(damage) - 5} more" if len(damage) > 5 else "")
        raise store.StoreError(f"{stage!r} reads {need!r}, which is damaged: {listed}. Rerun the stage that writes "
                               f"it, or python -m repspace.jobs.verify {store_path.parent} --repair")


def _gpu_available() -> str:
    import cupy

    return str(cupy.cuda.runtime.getDeviceCount())


def _check_gpu(client: "Client") -> None:
    """``--gpu``: refuse at once, naming the workers, when cupy or a GPU is missing there."""
    try:
        client.run(_gpu_available)
    except Exception as err:
        raise RuntimeError(f"--gpu: the workers cannot run cupy ({type(err).__name__}: {err}); install cupy and "
                           "give the workers a GPU, or run without --gpu") from None


def _run_stage(stage: Stage, ctx: StageContext) -> StageReport:
    t0 = time.perf_counter()
    for need in stage.needed(ctx.config):
        store.require_complete(ctx.root, need, stage.name)
        _check_input(stage.name, ctx.store_path, need)
    group = ctx.group
    was_complete = group is not None and group.attrs.get("complete") is True
    if group is not None and not stage.whole:  # the group is being changed: never taken for complete meanwhile
        store.set_complete(group, False)  # through the handle the stage writes with, so no write brings it back
    try:
        plan = stage.plan(ctx) if stage.plan is not None else Plan()
    except Exception:
        if was_complete and not stage.whole:  # a refusal while planning changed nothing: complete as it was
            store.set_complete(store.open_group(ctx.store_path, stage.writes, mode="r+"), True)
        raise
    markers = {name: store.require_marker(group, shape, dims, name) for name, (shape, dims) in plan.markers.items()}
    if stage.writes in verify.MARKED_GROUPS:
        for name in markers:
            verify.require_sizes(group, name)

    def done(block: Block) -> bool:
        if block.marker is None:
            return False
        try:
            return store.is_done(markers[block.marker], block.key, store.stamp(block.extent))
        except Exception as err:  # a damaged marker chunk: the block is computed again
            ctx.log(f"{stage.name}: {stage.writes}/{block.marker} chunk {block.key} cannot be read "
                    f"({type(err).__name__}); computing block {block.name} again")
            verify.discard_chunk(ctx.store_path, stage.writes, block.marker, block.key)
            return False

    todo = [b for b in plan.blocks if not done(b)]
    if stage.writes in verify.MARKED_GROUPS and len(todo) < len(plan.blocks):  # finished blocks, checked cheaply
        pending = {b.name for b in todo}
        finished = {(b.marker, b.key): b for b in plan.blocks if b.name not in pending}
        damage = verify.damaged_blocks(ctx.store_path, stage.writes, list(finished))
        for d in damage[:10]:
            ctx.log(f"{stage.name}: {d}; recomputing its block")
        if len(damage) > 10:
            ctx.log(f"{stage.name}: ... {len(damage) - 10} more damaged chunks; recomputing their blocks")
        verify.discard(ctx.store_path, damage)
        broken = {(d.marker, d.key) for d in damage}
        todo += [b for k, b in finished.items() if k in broken]
    by_name = {b.name: b for b in todo}
    if len(by_name) != len(todo) or len({b.name for b in plan.blocks}) != len(plan.blocks):
        raise ValueError(f"stage {stage.name!r} planned blocks with the same name")

    def mark(name: str, result: Any) -> None:
        block = by_name[name]
        if block.marker is not None:
            if stage.writes in verify.MARKED_GROUPS:  # what the block wrote, recorded before it counts as done
                verify.record_block(ctx.store_path, group, block.marker, block.key)
            store.mark(markers[block.marker], block.key, store.stamp(block.extent))

    estimate = None
    if ctx.client is not None and any(b.cost > 0 for b in todo):
        threads = max(1, sum(ctx.client.nthreads().values()))
        estimate = makespan([b.cost for b in todo], threads)
        if estimate >= 10:
            ctx.log(f"{stage.name}: {len(todo)} of {len(plan.blocks)} blocks to compute, about {_duration(estimate)} "
                    f"on {threads} worker threads (estimated from the work; the progress line refines it)")
    results = {}
    if todo:
        if stage.task is None:
            raise TypeError(f"stage {stage.name!r} planned blocks but has no task")
        # the costliest blocks first (the scheduler starts tasks in the order they come): the workers finish
        # together instead of one running the last large block alone
        order = sorted(todo, key=lambda b: -b.cost)
        results = run_tasks(ctx.client, stage.name, [(b.name, stage.task, (str(ctx.store_path), *b.args)) for b in order],
                            costs=[b.cost for b in order], expected=estimate,
                            on_result=mark)
    note = stage.finalize(ctx, plan, results) if stage.finalize is not None else plan.note
    elapsed = time.perf_counter() - t0
    if group is not None:  # a fresh handle: finalize may have replaced the group, or written attrs elsewhere
        group = store.open_group(ctx.store_path, stage.writes, mode="r+")
        store.record_provenance(group, config=ctx.config.as_dict(), run_id=ctx.run_id, elapsed_s=elapsed,
                                stage=stage.name, computed=len(todo), skipped=len(plan.blocks) - len(todo),
                                estimated_s=None if estimate is None else round(estimate, 3))  # None: no costs
        store.set_complete(group, True)
    return StageReport(stage.name, elapsed, computed=len(todo), skipped=len(plan.blocks) - len(todo), note=note)


def run_stages(
    stages: Sequence[Stage],
    config: RunConfig,
    *,
    client: "Client | None" = None,
    log: Callable[[str], None] = _log,
) -> RunReport:
    """Run ``stages`` in order over ``config.store`` and report what each did.

    Parameters
    ----------
    stages : the stages, e.g. ``repspace.pipeline.stages.select(config.stages)``.
    config : RunConfig
    client : distributed.Client, optional
        Run the tasks here; otherwise one is made from the config (and closed at the end)
        when any stage needs it.
    """
    check_store(config)  # options the store or the disk contradicts: refused before anything is written
    for stage in stages:
        if stage.check is not None:
            stage.check(config)
    run_id = uuid.uuid4().hex[:12]
    store_path = config.store
    store_path.parent.mkdir(parents=True, exist_ok=True)
    with store.run_lock(store_path, run_id, log=log):
        return _run_locked(stages, config, client, log, run_id)


def _run_locked(stages: Sequence[Stage], config: RunConfig, client: "Client | None", log: Callable[[str], None],
                run_id: str) -> RunReport:
    store_path = config.store
    root = store.open_run(store_path)
    log(f"run {run_id} in {store_path.parent if config.store_path is None else store_path}: "
        f"stages {', '.join(s.name for s in stages)}")
    needs_client = client is None and any(s.cluster for s in stages)
    ctx_client = connect(scheduler_address=config.scheduler_address, n_workers=config.n_workers,
                         threads_per_worker=config.threads_per_worker, dashboard=config.dashboard,
                         log=log) if needs_client else contextlib.nullcontext(client)
    report = RunReport(store=store_path, figure_dir=config.figure_dir, run_id=run_id, stages=[])
    with ctx_client as cl:
        if config.gpu and cl is not None and any(s.task is not None for s in stages):
            _check_gpu(cl)
        for stage in stages:
            with translated(stage, config):  # a full disk, a read-only store, an unreadable chunk: one line
                group = root.require_group(stage.writes) if stage.writes is not None else None
                ctx = StageContext(config=config, store_path=store_path, root=root, group=group, client=cl,
                                   run_id=run_id, log=log)
                report.stages.append(_run_stage(stage, ctx))
    for name in ("embeddings", "dataset_embeddings"):
        if name in root:
            report.failed_models.update(json.loads(root[name].attrs.get("failed_models", "{}")))
    if any(s.name == "figures" for s in stages):
        report.figures = [Path(p) for p in json.loads(root.attrs.get("figures", "[]"))]
        report.report = Path(root.attrs["report"]) if "report" in root.attrs else None
    try:
        root.attrs["last_run"] = json.dumps({"run_id": run_id, **{r.name: round(r.seconds, 2) for r in report.stages}})
    except OSError as err:  # every stage finished and is kept: only the run's record is missing
        if err.errno != errno.ENOSPC:
            raise
        raise DiskFull(f"no space left on device writing the run's record (last_run) in {store_path / 'zarr.json'}: "
                       f"every stage finished and is kept; free space and rerun (finished blocks are not computed again)") from None
    return report
