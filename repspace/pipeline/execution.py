"""Dask plumbing: the client of a run, and a progress bar over a stage's tasks."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["run_client", "run_tasks", "TaskFailed"]


class TaskFailed(RuntimeError):
    """One or more tasks of a stage failed; finished blocks are kept in the store."""


@contextlib.contextmanager
def run_client(
    *, scheduler_address: str | None, n_workers: int, threads_per_worker: int, dashboard: bool, log: Callable[[str], None]
) -> Iterator[Any]:
    """A distributed Client: to ``scheduler_address`` (or $DASK_SCHEDULER_ADDRESS), else an
    in-process LocalCluster bound to 127.0.0.1. Closed on exit when made here."""
    from distributed import Client, LocalCluster

    address = scheduler_address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        client = Client(address)
        log(f"connected to the Dask scheduler at {address}; dashboard: {client.dashboard_link}")
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=True,
        host="127.0.0.1",
        # the scheduler and workers serve HTTP even without a dashboard: keep it on loopback
        dashboard_address="127.0.0.1:0",
        worker_dashboard_address="127.0.0.1:0",
    )
    client = Client(cluster)
    log(
        f"LocalCluster: {n_workers} workers x {threads_per_worker} thread(s)"
        + (f"; dashboard: {client.dashboard_link}" if dashboard else "")
    )
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _bar(label: str, done: int, total: int, start: float, width: int = 30) -> str:
    frac = done / total if total else 1.0
    filled = int(round(frac * width))
    elapsed = time.perf_counter() - start
    return f"{label:<10} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}  {elapsed:6.1f} s"


def run_tasks(
    client: Any,
    label: str,
    calls: Sequence[tuple[str, Callable[..., Any], tuple, dict]],
    *,
    stream: Any = None,
) -> dict[str, Any]:
    """Run ``(name, fn, args, kwargs)`` calls as Dask tasks, showing progress.

    Every call runs to the end even when some fail (their finished work is kept); then
    TaskFailed names every failed call.

    Returns
    -------
    {name: result}
    """
    from distributed import as_completed

    stream = stream or sys.stderr
    start = time.perf_counter()
    total = len(calls)
    if total == 0:
        stream.write(_bar(label, 0, 0, start) + "  (nothing to do)\n")
        return {}
    futures = {}
    for name, fn, args, kwargs in calls:
        fut = client.submit(fn, *args, **kwargs, pure=False, key=f"{label}-{name}-{os.urandom(4).hex()}")
        futures[fut] = name
    results: dict[str, Any] = {}
    errors: dict[str, BaseException] = {}
    tty = hasattr(stream, "isatty") and stream.isatty()
    last = 0.0
    for done, fut in enumerate(as_completed(futures), 1):
        name = futures[fut]
        try:
            results[name] = fut.result()
        except Exception as err:
            errors[name] = err
        now = time.perf_counter()
        if tty:
            stream.write("\r" + _bar(label, done, total, start))
        elif now - last > 5 or done == total:
            stream.write(_bar(label, done, total, start) + "\n")
            last = now
        stream.flush()
    if tty:
        stream.write("\n")
    if errors:
        listed = "; ".join(f"{n}: {type(e).__name__}: {e}" for n, e in list(errors.items())[:5])
        raise TaskFailed(f"{len(errors)} of {total} {label} tasks failed ({listed}); finished blocks are kept, rerun to retry")
    return results
