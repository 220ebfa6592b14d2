"""One run per store at a time: an exclusive ``flock`` on a file beside the store, ``<store>.lock``.

The file's text names the holder (pid, host, run id, start time) for the message a second run
gets when it is refused. The kernel releases the lock when its process ends, however it ends, so
a killed run never leaves a store stuck; the next run says that it takes over. Within one process
the lock is re-entrant (a run's stages and the writes they make share it). ``flock`` works on local
disks; on a network file system it depends on the mount. The lock file lies beside the store's
real path (symbolic links and relative paths resolved), so every way of reaching one store reaches
one lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["StoreLocked", "StoreReadOnly", "run_lock", "lock_path", "holder"]

_HELD: dict[str, int] = {}


class StoreLocked(RuntimeError):
    """Another run holds the store."""


class StoreReadOnly(RuntimeError):
    """The store cannot be written (a read-only file system or folder): no run can take its lock."""


def lock_path(store_path: str | Path) -> Path:
    """The lock file of a store: beside its real path, however the store is reached (a symbolic link to it or to
    a folder above it, a relative path)."""
    real = Path(os.path.realpath(store_path))
    return real.with_name(real.name + ".lock")


def holder(store_path: str | Path) -> dict | None:
    """Who the lock file names (None: nobody, or no lock file)."""
    try:
        text = lock_path(store_path).read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return None


@contextlib.contextmanager
def run_lock(store_path: str | Path, run_id: str, *, log: Callable[[str], None] = lambda m: None) -> Iterator[None]:
    """Hold the store's lock for the duration; StoreLocked when another run holds it.

    The lock is an exclusive ``flock`` on the lock file, held open for the run: the kernel frees it
    when the process ends, however it ends, so a killed run never leaves it stuck. The file stays
    (removing it would let two runs lock two different files); its text names the holder, and is
    emptied when the run ends.
    """
    path = lock_path(store_path)
    key = str(path)
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a+")
    except OSError as err:
        if err.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        raise StoreReadOnly(f"{store_path} is read-only ({err.strerror}: {err.filename}): a run writes its store; "
                            "copy the run folder somewhere writable to rerun it (python -m repspace.jobs.verify checks "
                            "a read-only store)") from None
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = holder(store_path) or {}
            raise StoreLocked(
                f"{store_path} is in use by run {info.get('run_id', '?')} (pid {info.get('pid', '?')} on "
                f"{info.get('host', '?')}, since {info.get('since', '?')}): one run per store at a time; wait for "
                "it to finish or stop it") from None
        left = holder(store_path)
        if left:  # the text of a run that ended without emptying it: killed
            log(f"taking over the lock of {store_path} from run {left.get('run_id', '?')} (pid {left.get('pid', '?')} "
                f"on {left.get('host', '?')} is gone)")
        f.seek(0)
        f.truncate()
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "run_id": run_id,
                   "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, f)
        f.flush()
        _HELD[key] = 1
        try:
            yield
        finally:
            _HELD.pop(key, None)
            f.seek(0)
            f.truncate()
            f.flush()
    finally:
        f.close()  # releases the flock
