"""Fetch disentanglement_lib zoo models: resumable, verified, several at a time.

Each model ``n`` is a zip at ``<base_url>/<n>.zip`` holding ``[<n>/]model/tfhub/...``. It is
downloaded to ``dest/<n>.zip.part`` (resumed with an HTTP Range request when a part file is
left from an earlier attempt), checked (the zip opens, its CRCs match and it holds
``model/tfhub``), extracted into a temporary directory and renamed to ``dest/<n>`` in one
step. A model is done exactly when ``dest/<n>/model/tfhub`` exists; a partial download is
never taken for done.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

__all__ = ["DEFAULT_BASE_URL", "DownloadReport", "download_model", "download_models", "is_downloaded"]

DEFAULT_BASE_URL = "https://storage.googleapis.com/disentanglement_lib/unsupervised_study_v1"

_CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """A model could not be fetched or failed verification."""


@dataclasses.dataclass
class DownloadReport:
    """Outcome of :func:`download_models`.

    Attributes
    ----------
    downloaded : list of int
        Models fetched and extracted in this call.
    skipped : list of int
        Models already present in ``dest`` (not fetched again).
    failed : dict of int -> str
        Models that could not be fetched, or whose model could not be opened, with the reason.
    dropped : dict of int -> list of str
        Entries of a model's zip that were not extracted because their paths climb out of the
        model folder or are absolute.
    bytes_fetched : int
        Bytes received over the network in this call.
    """

    downloaded: list[int] = dataclasses.field(default_factory=list)
    skipped: list[int] = dataclasses.field(default_factory=list)
    failed: dict[int, str] = dataclasses.field(default_factory=dict)
    dropped: dict[int, list[str]] = dataclasses.field(default_factory=dict)
    bytes_fetched: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [
            f"{len(self.downloaded)} downloaded, {len(self.skipped)} already present, "
            f"{len(self.failed)} failed ({self.bytes_fetched / 1e6:.1f} MB fetched)"
        ]
        lines += [f"  model {n}: {why}" for n, why in sorted(self.failed.items())]
        lines += [f"  model {n}: {len(names)} zip entries not extracted (paths outside the model folder): "
                  f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''}" for n, names in sorted(self.dropped.items())]
        return "\n".join(lines)


def is_downloaded(dest: str | Path, n: int) -> bool:
    """True when model ``n`` is completely extracted in ``dest``."""
    return (Path(dest) / str(n) / "model" / "tfhub").is_dir()


def _fetch(
    url: str, part: Path, timeout: float, on_bytes: Callable[[int, int | None], None], counter: list[int]
) -> None:
    """Download ``url`` into ``part``, appending to what is there; ``counter[0]`` counts bytes received."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "repspace"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (URL given by the user)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # range not satisfiable: the part file is already whole
            return
        raise
    received = 0
    with resp:
        if have and resp.status != 206:
            have = 0  # the server ignored the range: start over
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        with open(part, "ab" if have else "wb") as f:
            while True:
                block = resp.read(_CHUNK)
                if not block:
                    break
                f.write(block)
                received += len(block)
                counter[0] += len(block)
                on_bytes(have + received, total)
        if total is not None and have + received < total:
            raise http.client.IncompleteRead(b"", total - have - received)


def _tfhub_prefix(names: list[str]) -> str:
    """The path inside the zip that holds ``model/`` (``""`` or ``"<n>/"``)."""
    for name in names:
        parts = PurePosixPath(name).parts
        for i in range(len(parts) - 1):
            if parts[i] == "model" and parts[i + 1] == "tfhub":
                return "/".join(parts[:i]) + ("/" if i else "")
    raise DownloadError("the zip holds no model/tfhub")


def _extract(zip_path: Path, target: Path, check: Callable[[Path], None] | None = None) -> list[str]:
    """Verify ``zip_path`` and extract the model into ``target`` (which must not exist); ``check(folder)``
    opens the extracted model before it counts (DownloadError when it cannot). Returns the entries that
    were not extracted because their paths climb out of the model folder."""
    dropped: list[str] = []
    try:
        with zipfile.ZipFile(zip_path) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise DownloadError(f"corrupt zip: CRC error in {bad}")
            names = zf.namelist()
            prefix = _tfhub_prefix(names)
            tmp = target.with_name(f".{target.name}.extracting")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            for info in zf.infolist():
                whole = PurePosixPath(info.filename)
                if whole.is_absolute() or ".." in whole.parts or "\\" in info.filename:
                    dropped.append(info.filename)  # would climb out of the model folder: never written
                    continue
                if not info.filename.startswith(prefix):
                    continue  # the zoo's zips hold more than the model (results, postprocessing)
                rel = PurePosixPath(info.filename[len(prefix):])
                if not rel.parts:
                    continue
                out = tmp.joinpath(*rel.parts)
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile as err:
        raise DownloadError(f"corrupt zip: {err}") from None
    if check is not None:
        try:
            check(tmp)
        except Exception as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DownloadError(f"the zip is whole, but its model cannot be opened ({type(err).__name__}: {err})") from None
    os.replace(tmp, target)
    return dropped


def download_model(
    n: int,
    dest: str | Path,
    *,
    base_url: str = DEFAULT_BASE_URL,
    retries: int = 2,
    timeout: float = 60.0,
    keep_zip: bool = False,
    on_bytes: Callable[[int, int | None], None] | None = None,
    check: Callable[[Path], None] | None = None,
    on_dropped: Callable[[list[str]], None] | None = None,
) -> int:
    """Fetch and extract model ``n`` into ``dest/<n>``; returns bytes received.

    ``check(folder)`` opens the extracted model before it counts as downloaded; ``on_dropped`` is
    told the zip entries that were not extracted (paths outside the model folder).

    A dropped connection is resumed from the part file up to ``retries`` times. A corrupt
    zip is deleted (so the next attempt starts afresh) and raises :class:`DownloadError`;
    HTTP errors (e.g. 403, 404) raise ``urllib.error.HTTPError`` at once.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / str(n)
    if is_downloaded(dest, n):
        return 0
    zip_path = dest / f"{n}.zip"
    part = dest / f"{n}.zip.part"
    url = f"{base_url.rstrip('/')}/{n}.zip"
    received = [0]
    if not zip_path.exists():
        for attempt in range(retries + 1):
            try:
                _fetch(url, part, timeout, on_bytes or (lambda done, total: None), received)
                break
            except (http.client.IncompleteRead, ConnectionError, TimeoutError, urllib.error.URLError) as err:
                if isinstance(err, urllib.error.HTTPError) or attempt == retries:
                    raise
                time.sleep(min(0.2 * 2**attempt, 5.0))
        os.replace(part, zip_path)
    if target.exists():  # a directory without model/tfhub: left by something else
        raise DownloadError(f"{target} exists but holds no model/tfhub; move it away first")
    try:
        dropped = _extract(zip_path, target, check)
    except DownloadError:
        zip_path.unlink(missing_ok=True)
        raise
    if dropped and on_dropped is not None:
        on_dropped(dropped)
    if not keep_zip:
        zip_path.unlink(missing_ok=True)
    return received[0]


class _Progress:
    def __init__(self, total_models: int, enabled: bool, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.total = total_models
        self.finished = 0
        self.lock = threading.Lock()
        self._last: dict[int, float] = {}

    def bytes(self, n: int, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last.get(n, 0.0) < 2.0:
            return
        self._last[n] = now
        of = f" of {total / 1e6:.1f}" if total else ""
        with self.lock:
            print(f"  model {n}: {done / 1e6:.1f}{of} MB", file=self.stream, flush=True)

    def done(self, n: int, status: str) -> None:
        with self.lock:
            self.finished += 1
            if self.enabled:
                print(f"[{self.finished}/{self.total}] model {n}: {status}", file=self.stream, flush=True)


def download_models(
    numbers: Iterable[int],
    dest: str | Path,
    *,
    base_url: str = DEFAULT_BASE_URL,
    workers: int = 4,
    progress: bool = True,
    retries: int = 2,
    timeout: float = 60.0,
    keep_zip: bool = False,
    check_models: bool = True,
) -> DownloadReport:
    """Fetch zoo models ``numbers`` into ``dest/<n>/model/tfhub``, ``workers`` at a time.

    Models already in ``dest`` are skipped; a model that fails (HTTP error, connection lost
    more than ``retries`` times, corrupt zip) is reported by number in
    ``DownloadReport.failed`` and the others go on. Rerunning resumes part files.

    Parameters
    ----------
    numbers : iterable of int
        Model numbers (see :func:`repspace.models.zoo.parse_model_numbers`).
    dest : path
        Directory holding one subdirectory per model.
    base_url : str
        Where ``<n>.zip`` lives; the public bucket by default, any mirror works.
    workers : int
        Downloads at once.
    progress : bool
        Print progress to stderr.
    check_models : bool
        Open each extracted model (its ``gaussian_encoder`` signature) before it counts as
        downloaded; a whole zip that holds a broken model is reported as failed.
    """
    numbers = sorted(set(int(n) for n in numbers))
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    report = DownloadReport()
    prog = _Progress(len(numbers), progress)
    lock = threading.Lock()
    opening = threading.Lock()

    def open_model(folder: Path) -> None:
        from .encoders import load_encoder

        with opening:  # one TensorFlow load at a time
            load_encoder(folder)

    def dropped(n: int, names: list[str]) -> None:
        with lock:
            report.dropped[n] = names

    def one(n: int) -> None:
        if is_downloaded(dest, n):
            with lock:
                report.skipped.append(n)
            prog.done(n, "already present")
            return
        try:
            got = download_model(
                n, dest, base_url=base_url, retries=retries, timeout=timeout, keep_zip=keep_zip,
                on_bytes=lambda done, total: prog.bytes(n, done, total),
                check=open_model if check_models else None, on_dropped=lambda names: dropped(n, names),
            )
        except urllib.error.HTTPError as err:
            why = f"HTTP {err.code} {err.reason}"
        except (DownloadError, OSError, http.client.HTTPException) as err:
            why = f"{type(err).__name__}: {err}"
        else:
            with lock:
                report.downloaded.append(n)
                report.bytes_fetched += got
            prog.done(n, f"ok ({got / 1e6:.1f} MB)")
            return
        with lock:
            report.failed[n] = why
        prog.done(n, f"FAILED: {why}")

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(one, numbers))
    report.downloaded.sort()
    report.skipped.sort()
    return report
