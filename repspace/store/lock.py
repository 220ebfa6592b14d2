"""One run per store at a time: a lock file beside the store, ``<store>.lock``.

The lock holds the holder's pid, host, run id and start time. A second run on the store is
refused with a message naming the holder. A lock whose holder is gone (same host, no such
process, or a lock file left empty by a crash) is taken over with a message, so a killed run
never leaves a store stuck. A lock held on another host cannot be checked from here: remove
the file by hand once that run is surely gone. Within one process the lock is re-entrant (a
run's stages and the writes they make share it).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["StoreLocked", "run_lock", "lock_path", "holder"]

_HELD: dict[str, int] = {}
_EMPTY_GRACE_S = 30.0


class StoreLocked(RuntimeError):
    """Another run holds the store."""


def lock_path(store_path: str | Path) -> Path:
    store_path = Path(store_path)
    return store_path.with_name(store_path.name + ".lock")


def holder(store_path: str | Path) -> dict | None:
    """What the lock file says (None: no lock; {} : a lock file that is empty or unreadable)."""
    path = lock_path(store_path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process: alive
        return True
    return True


def _stale(info: dict, path: Path) -> str | None:
    """Why the lock ``info`` is stale, or None when its holder may be running."""
    if not info:
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return "it is gone"
        return f"the lock file is empty, {age:.0f} s old" if age > _EMPTY_GRACE_S else None
    if info.get("host") == socket.gethostname() and not _alive(int(info.get("pid", -1))):
        return f"pid {info.get('pid')} on {info.get('host')} is gone"
    return None


@contextlib.contextmanager
def run_lock(store_path: str | Path, run_id: str, *, log: Callable[[str], None] = lambda m: None) -> Iterator[None]:
    """Hold the store's lock for the duration; StoreLocked when another run holds it."""
    path = lock_path(store_path)
    key = str(path.resolve())
    if _HELD.get(key):
        _HELD[key] += 1
        try:
            yield
        finally:
            _HELD[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "run_id": run_id,
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            info = holder(store_path) or {}
            why = _stale(info, path)
            if why is None:
                raise StoreLocked(
                    f"{store_path} is in use by run {info.get('run_id', '?')} (pid {info.get('pid', '?')} on "
                    f"{info.get('host', '?')}, since {info.get('since', '?')}): one run per store at a time; wait for "
                    f"it to finish or stop it (a lock on another host whose run is gone: remove {path})") from None
            if (holder(store_path) or {}) == info:  # still the same stale holder: take it over
                log(f"taking over the lock of {store_path} from run {info.get('run_id', '?')} ({why})")
                path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(mine, f)
        break
    else:
        raise StoreLocked(f"could not take the lock {path}; another run keeps taking it")
    _HELD[key] = 1
    try:
        yield
    finally:
        _HELD.pop(key, None)
        if (holder(store_path) or {}).get("run_id") == run_id:
            path.unlink(missing_ok=True)
