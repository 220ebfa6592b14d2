"""Dask clusters: the one place that makes a LocalCluster or connects to a scheduler.

Used by the pipeline's driver and by ensemble training. The in-process default binds the
scheduler, the workers and every dashboard to 127.0.0.1, and its scheduler and workers speak
TLS with temporary credentials that only this process holds (distributed's
``Security.temporary()``, mutual TLS): another local user cannot connect to it and run code on
the workers. It costs nothing measurable (benchmarks/README.md). The dashboards (HTTP, read
only) stay on loopback without authentication.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["local_cluster", "connect"]


def local_cluster(n_workers: int, threads_per_worker: int = 1) -> "Client":
    """A Client of a new in-process LocalCluster of worker processes on 127.0.0.1.

    Closing the client does not close the cluster: use :func:`connect`, or close
    ``client.cluster`` too.
    """
    from distributed import Client, LocalCluster
    from distributed.security import Security

    security = Security.temporary()  # credentials in this process only: no other local user gets in
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        processes=True,
        host="127.0.0.1",
        # the scheduler and workers serve HTTP even without a dashboard: keep it on loopback
        dashboard_address="127.0.0.1:0",
        worker_dashboard_address="127.0.0.1:0",
        security=security,
        # Ctrl-C reaches the workers too (one process group): this process closes them, without their tracebacks
        preload=[__name__],
    )
    return Client(cluster, security=security)


def dask_setup(worker: object) -> None:
    """Run by each worker process of :func:`local_cluster` as it starts (a preload, in its main thread, also
    when a worker is restarted): ignore SIGINT, which its parent answers by closing it."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def connect(
    *,
    scheduler_address: str | None = None,
    n_workers: int = 2,
    threads_per_worker: int = 1,
    dashboard: bool = True,
    log: Callable[[str], None] = lambda msg: None,
) -> Iterator["Client"]:
    """A Client to ``scheduler_address`` (or $DASK_SCHEDULER_ADDRESS), else to an in-process
    LocalCluster (:func:`local_cluster`); what is made here is closed on exit."""
    from distributed import Client

    address = scheduler_address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        client = Client(address)
        log(f"connected to the Dask scheduler at {address}; dashboard: {client.dashboard_link}")
        try:
            yield client
        finally:
            client.close()
        return
    client = local_cluster(n_workers, threads_per_worker)
    log(f"LocalCluster: {n_workers} workers x {threads_per_worker} thread(s)"
        + (f"; dashboard: {client.dashboard_link}" if dashboard else ""))
    try:
        yield client
    finally:
        cluster = client.cluster
        if isinstance(sys.exc_info()[1], KeyboardInterrupt):  # the gathers it cut short: no "never retrieved" noise
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        client.close()
        nanny = logging.getLogger("distributed.nanny")
        level = nanny.level
        nanny.setLevel(logging.ERROR)  # a worker slow to stop (TensorFlow) is killed: expected, not worth a warning
        try:
            cluster.close()
        finally:
            nanny.setLevel(level)
