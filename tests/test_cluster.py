"""The in-process cluster: loopback only, and closed to other local clients (mutual TLS)."""

from __future__ import annotations

import pytest

from repspace.cluster import connect

pytestmark = pytest.mark.distributed


def inc(x):
    return x + 1


def sigint_handler():
    import signal

    return signal.getsignal(signal.SIGINT)


def _identity(address: str, **connection_args) -> dict:
    """The scheduler's answer to an ``identity`` request over a new connection (no Client: nothing is left behind
    for the garbage collector to close later, in whichever thread it runs)."""
    import asyncio

    from distributed.comm import connect as open_comm

    async def ask() -> dict:
        comm = await open_comm(address, timeout=5, **connection_args)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await asyncio.wait_for(comm.read(), 5)
        finally:
            comm.abort()

    return asyncio.run(ask())


def test_the_local_cluster_takes_only_its_own_client():
    """... and its workers ignore Ctrl-C (SIGINT reaches the whole process group): their parent closes them."""
    import signal
    import ssl

    from distributed.security import Security

    with connect(n_workers=1, dashboard=False) as client:
        address = client.scheduler.address
        assert address.startswith("tls://127.0.0.1:")
        assert client.submit(inc, 1).result() == 2  # its own client works, through TLS
        assert client.submit(sigint_handler).result(timeout=30) == signal.SIG_IGN
        assert _identity(address, **client.security.get_connection_args("client"))["type"] == "Scheduler"
        anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # TLS without a certificate of its own
        anonymous.check_hostname, anonymous.verify_mode = False, ssl.CERT_NONE
        others = [(address, Security.temporary().get_connection_args("client")),  # another user's credentials
                  (address, {"ssl_context": anonymous}), (address.replace("tls://", "tcp://"), {})]  # no TLS
        for other, args in others:
            with pytest.raises(OSError):  # refused: CommClosedError, a TLS error or a timeout, all OSErrors
                _identity(other, **args)


def _started() -> float:
    import time

    return time.perf_counter()


def test_tasks_start_in_the_order_given():
    """The driver hands the costliest blocks over first; on one thread they must run in that order."""
    import io

    from distributed import Client, LocalCluster

    from repspace.pipeline.driver import run_tasks

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        names = [f"t{k}" for k in (5, 1, 9, 0, 3, 7, 2, 8, 4, 6)]
        started = run_tasks(client, "order", [(n, _started, ()) for n in names], stream=io.StringIO())
    assert sorted(names, key=started.get) == names


def test_the_time_left_counts_the_work_left_not_the_tasks():
    """The costliest blocks start first: after the first of ten tasks that held half the work, half is left."""
    import time

    from repspace.pipeline.driver import _bar

    start = time.perf_counter() - 60.0
    assert _bar("pairs", 1, 10, start, share=0.5).endswith("about 60 s left")
    assert _bar("pairs", 1, 10, start).endswith("about 9.0 min left")  # by tasks, where no costs are known
    assert "left" not in _bar("pairs", 10, 10, start, share=1.0)


def test_the_time_left_weighs_the_stage_estimate_against_the_first_tasks_rate():
    """After one task per thread the rate so far counts half; the estimate the stage printed, the other half."""
    import time

    from repspace.pipeline.driver import _bar

    start = time.perf_counter() - 60.0  # one tenth of the work in 60 s: 600 s at that rate; 120 s estimated
    assert _bar("pairs", 2, 10, start, share=0.1, expected=120.0, threads=2).endswith("about 5.0 min left")
    assert _bar("pairs", 2, 10, start, share=0.1).endswith("about 9.0 min left")  # the rate alone
    # an estimate already passed counts as the time so far (60 s, not 10 s): half done in 60 s, the rate says 60 s
    # left and the estimate none, weighed 5:2
    assert _bar("pairs", 5, 10, start, share=0.5, expected=10.0, threads=2).endswith("about 43 s left")
