"""What a run checks around its stages so that its errors and its exit status tell the truth.

* :func:`translated`: a stage's failure that is about the disk or the store, said in one line:
  a full disk (the group being written, about how much room it needs, "free space and rerun:
  finished blocks are kept"), a read-only store (its path), or a chunk or metadata file that
  cannot be read back (named as ``python -m repspace.jobs.verify`` names it, with the repair to run).
* :func:`nothing_written`: the stages of a finished run that wrote nothing they should have
  (no channel's information, no informative channel to pair or order, no figure).
* :func:`models_left_out`: how many of the run's models were left out, of how many.
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import zarr

from .. import store
from ..store import verify
from ..store.channels import informative
from ..store.lock import StoreReadOnly

if TYPE_CHECKING:
    from .config import RunConfig
    from .driver import RunReport
    from .stage import Stage

__all__ = ["DROPPED", "DiskFull", "StoreReadOnly", "translated", "nothing_written", "models_left_out", "READ_ONLY_ERRNOS"]

DROPPED = "dropped from the run"
"""The reason recorded for a model taken out on request (``--drop-models``): not a model left out."""
READ_ONLY_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)
_UNREADABLE_WORDS = ("decompress", "decod", "codec", "corrupt", "truncat", "bytes than requested", "buffer")


class DiskFull(OSError):
    """The disk filled while a stage wrote its group or the run wrote its record; the finished blocks are kept
    (``errno``: ENOSPC)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.errno = errno.ENOSPC


def _size(n: float) -> str:
    """
    >>> _size(512), _size(3 * 2**20), _size(5.5 * 2**30)
    ('512 B', '3.0 MiB', '5.5 GiB')
    """
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def _causes(err: BaseException) -> list[BaseException]:
    """``err`` and, for a stage whose tasks failed, each task's error."""
    return [err, *getattr(err, "errors", {}).values()]


def _group_bytes(store_path: Path, name: str) -> tuple[int, int]:
    """(bytes the arrays of group ``name`` hold uncompressed, bytes of its files on disk)."""
    full = 0
    with contextlib.suppress(Exception):
        for _, arr in store.open_group(store_path, name).arrays():
            with contextlib.suppress(TypeError, ValueError):
                full += int(np.prod(arr.shape)) * np.dtype(arr.dtype).itemsize
    written = sum(p.stat().st_size for p in (store_path / name).rglob("*") if p.is_file())
    return full, written


def _disk_full(stage: "Stage", store_path: Path, figure_dir: Path) -> DiskFull:
    where = figure_dir if stage.writes is None else store_path
    free = shutil.disk_usage(where if where.exists() else store_path.parent).free
    if stage.writes is None:
        what = f"the {stage.name} stage's files in {figure_dir}"
        need = ""
    else:
        full, written = _group_bytes(store_path, stage.writes)
        what = f"group {stage.writes!r} of {store_path}"
        need = f": its arrays take up to {_size(full)} uncompressed ({_size(written)} on disk now)"
    return DiskFull(f"no space left on device writing {what}{need}, {_size(free)} free: free space and rerun: "
                    "finished blocks are kept")


def _read_only(store_path: Path, err: OSError) -> StoreReadOnly:
    where = err.filename or store_path
    return StoreReadOnly(f"{where} cannot be written ({err.strerror or err}): the store {store_path} is read-only; a "
                         "run writes its store: copy the run folder somewhere writable to rerun it (python -m "
                         "repspace.jobs.verify checks a read-only store)")


def _unreadable(err: BaseException) -> bool:
    if isinstance(err, (json.JSONDecodeError, UnicodeDecodeError, IndexError, EOFError)):
        return True
    text = str(err).lower()
    return any(w in text for w in _UNREADABLE_WORDS)


def _metadata_damage(store_path: Path, groups: Sequence[str]) -> list[str]:
    """The zarr.json files of ``groups`` (and their arrays) that are not valid JSON, by path."""
    out = []
    for name in groups:
        for meta in sorted((store_path / name).rglob("zarr.json")):
            try:
                json.loads(meta.read_bytes())
            except (ValueError, OSError) as err:
                out.append(f"{meta} cannot be read ({type(err).__name__}: {err})")
    return out


def _locate(store_path: Path, groups: Sequence[str]) -> list[str]:
    """Where a read failed: damaged metadata files, else chunks of ``groups`` that cannot be decoded."""
    groups = [g for g in dict.fromkeys(groups) if (store_path / g).is_dir()]
    found = _metadata_damage(store_path, groups)
    if not found:
        for name in groups:
            with contextlib.suppress(Exception):
                found += [str(d) for d in verify.undecodable(store_path, name)]
    return found


@contextlib.contextmanager
def translated(stage: "Stage", config: "RunConfig") -> Iterator[None]:
    """Run a stage's work, turning a full disk, a read-only store and an unreadable chunk into one-line errors.

    Raises DiskFull (an OSError), StoreReadOnly (a RuntimeError) or StoreError (a ValueError) naming the group,
    the path or the chunk; any other error passes unchanged.
    """
    store_path = Path(config.store)
    try:
        yield
    except (DiskFull, StoreReadOnly, store.StoreLocked):
        raise
    except Exception as err:
        causes = _causes(err)
        oserrors = [c for c in causes if isinstance(c, OSError)]
        if any(c.errno == errno.ENOSPC for c in oserrors):
            raise _disk_full(stage, store_path, config.figure_dir) from None
        ro = [c for c in oserrors if c.errno in READ_ONLY_ERRNOS]
        if ro:
            raise _read_only(store_path, ro[0]) from None
        if not any(_unreadable(c) for c in causes):
            raise
        found = _locate(store_path, [*stage.needed(config), *([stage.writes] if stage.writes else [])])
        if not found:
            raise
        listed = "; ".join(found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
        raise store.StoreError(f"{stage.name!r} cannot read the store: {listed}; run python -m repspace.jobs.verify "
                               f"{store_path.parent} --repair") from None


def nothing_written(report: "RunReport", config: "RunConfig") -> list[str]:
    """One line for each stage of ``report`` that finished but wrote nothing it should have."""
    ran = {r.name for r in report.stages}
    path = Path(report.store)
    out = []
    root = zarr.open_group(str(path), mode="r") if (path / "zarr.json").exists() else None
    channels = root["channels"] if root is not None and "channels" in root else None
    information = np.asarray(channels["information"][:]) if channels is not None else None
    if "channels" in ran and information is not None and not np.isfinite(information).any():
        out.append("channels: no channel's information could be computed")
    elif "pairs" in ran and information is not None and config.pair_channels != "all" and \
            not informative(channels, config.info_threshold).any():
        out.append(f"pairs: no channel carries {config.info_threshold} bits or more (info_threshold): no pair computed")
    if "structure" in ran and root is not None and "structure" in root and \
            int(root["structure"].attrs.get("n_channels_kept", 1)) == 0:
        out.append(f"structure: no channel above {config.info_threshold} bits to order")
    if "figures" in ran and root is not None and not json.loads(root.attrs.get("figures", "[]")):
        out.append("figures: nothing finished to draw")
    return out


def models_left_out(report: "RunReport") -> tuple[int, int]:
    """(models left out, models of the run) over its embeddings groups; models dropped on request count in
    neither."""
    names: set[str] = set()
    for group in ("embeddings", "dataset_embeddings"):
        if (Path(report.store) / group / "zarr.json").exists():
            names.update(str(m) for m in store.open_group(report.store, group)["model"][:])
    dropped = {m for m, why in report.failed_models.items() if why == DROPPED}
    left = set(report.failed_models) - dropped
    return len(left), len((names | left) - dropped)
