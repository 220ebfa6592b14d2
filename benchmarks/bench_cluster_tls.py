"""What TLS costs the in-process cluster: start-up and per-task time, with and without it.

    python benchmarks/bench_cluster_tls.py [--tasks 500] [--repeats 3]

The LocalCluster of repspace.cluster speaks TLS with temporary credentials (mutual TLS), so that
no other local user can connect and run code on the workers. Printed: the start-up time of a
2-worker cluster and the time per tiny task, plain TCP (the baseline, measured in the same run)
and TLS, alternately, with their ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time


def inc(x: int) -> int:
    return x + 1


def measure(tls: bool, tasks: int) -> tuple[float, float]:
    from distributed import Client, LocalCluster
    from distributed.security import Security

    extra = {"security": Security.temporary()} if tls else {}
    t0 = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", worker_dashboard_address="127.0.0.1:0", **extra)
    client = Client(cluster, **extra)
    start = time.perf_counter() - t0
    client.gather(client.map(inc, range(20)))
    t1 = time.perf_counter()
    client.gather(client.map(inc, range(tasks), pure=False))
    per_task = (time.perf_counter() - t1) / tasks
    client.close()
    cluster.close()
    return start, per_task


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=500)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    got: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(a.repeats):
        for tls in (False, True):
            got[tls].append(measure(tls, a.tasks))
    for tls in (False, True):
        starts, tasks = zip(*got[tls])
        print(f"{'TLS' if tls else 'TCP'}: start-up {statistics.median(starts):.2f} s, "
              f"{statistics.median(tasks) * 1e3:.2f} ms per task (median of {a.repeats})")
    ratio_start = statistics.median(s for s, _ in got[True]) / statistics.median(s for s, _ in got[False])
    ratio_task = statistics.median(t for _, t in got[True]) / statistics.median(t for _, t in got[False])
    print(f"TLS / TCP: start-up {ratio_start:.2f}x, per task {ratio_task:.2f}x")


if __name__ == "__main__":
    main()
