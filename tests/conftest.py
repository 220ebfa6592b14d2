"""Shared fixtures."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of two single-threaded worker processes, HTTP on 127.0.0.1 only."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def threads_client():
    """An in-process LocalCluster (one worker, two threads; its dashboard on 127.0.0.1)."""
    import warnings

    from distributed import Client, LocalCluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address="127.0.0.1:0")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()
