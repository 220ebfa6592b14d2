"""The in-process cluster: loopback only, and closed to other local clients (mutual TLS)."""

from __future__ import annotations

import pytest

from repspace.cluster import connect

pytestmark = pytest.mark.distributed


def inc(x):
    return x + 1


def test_the_local_cluster_takes_only_its_own_client():
    from distributed import Client

    with connect(n_workers=1, dashboard=False) as client:
        address = client.scheduler.address
        assert address.startswith("tls://127.0.0.1:")
        assert client.submit(inc, 1).result() == 2  # its own client works, through TLS
        for other in (address, address.replace("tls://", "tcp://")):  # another local client, without the credentials
            with pytest.raises((OSError, TimeoutError, ValueError, TypeError)):
                Client(other, timeout=3)
