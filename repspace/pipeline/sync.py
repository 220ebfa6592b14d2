"""A synchronous stand-in for a Dask client: every task runs at once, in this process, in the order given.

For unit and property tests of stages (as flox tests its reductions with ``scheduler="sync"``): the
driver runs a stage's blocks through it exactly as through a cluster (planning, markers, provenance,
finalize), without processes, sockets or threads, so that a test can run a stage many times.

    >>> client = SyncClient()
    >>> future = client.submit(pow, 2, 10, key="two-to-the-ten")
    >>> future.result(), client.nthreads()
    (1024, {'sync': 1})
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["SyncClient", "SyncFuture", "completed"]


class SyncFuture:
    """The outcome of a call made at once: its result, or the exception it raised."""

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._result: Any = None
        self._error: BaseException | None = None
        try:
            self._result = fn(*args, **kwargs)
        except Exception as err:  # kept, raised by result() as a Dask future would
            self._error = err

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._result

    def release(self) -> None:
        """Nothing to release (the same call as on a Dask future)."""


class SyncClient:
    """What the driver and the stages ask of a ``distributed.Client``, run synchronously."""

    def submit(self, fn: Callable[..., Any], *args: Any, key: Any = None, pure: bool = True, priority: int = 0,
               **kwargs: Any) -> SyncFuture:
        return SyncFuture(fn, args, kwargs)

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any], key: Any = None, pure: bool = True,
            **kwargs: Any) -> list[SyncFuture]:
        return [SyncFuture(fn, args, kwargs) for args in zip(*iterables)]

    def gather(self, futures: Iterable[SyncFuture]) -> list[Any]:
        return [f.result() for f in futures]

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {"sync": fn(*args, **kwargs)}

    def nthreads(self) -> dict[str, int]:
        return {"sync": 1}

    def close(self) -> None:
        """Nothing to close."""


def completed(futures: Iterable[Any]) -> Iterable[Any]:
    """``futures`` as they finish: :func:`distributed.as_completed` for Dask futures, in order for synchronous ones."""
    futures = list(futures)
    if all(isinstance(f, SyncFuture) for f in futures):
        return iter(futures)
    from distributed import as_completed

    return as_completed(futures)
