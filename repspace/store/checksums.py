"""Checksums of the content of finished chunks: what verification compares after their sizes.

Beside each ``<marker>_bytes`` of a marked group (channels, pairs, latents) lies ``<marker>_crc32``
of the same shape: the CRC-32 (``zlib.crc32``) of each chunk file the block wrote, recorded as the
block was marked. The embeddings groups keep ``chunk_crc32`` beside ``chunk_bytes``. A chunk that
was not there when it was recorded has the checksum of no bytes, 0.

-1 means nothing recorded: a store written before checksums has no ``_crc32`` arrays, and a rerun
adds them with -1 for the blocks it finished before. Those blocks and chunks are checked by their
size only; blocks finished from then on are checked by both.

>>> import tempfile, zlib
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = Path(tmp) / "0"
...     _ = path.write_bytes(b"abc")
...     file_crc32(path) == zlib.crc32(b"abc"), file_crc32(Path(tmp) / "missing")
(True, 0)
>>> content_changed(0x1234, 0xBEEF, "when its block was finished")
'content changed: checksum 00001234 on disk, 0000beef recorded when its block was finished'
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import zarr

from .core import require_array

__all__ = ["SUFFIX", "NOT_RECORDED", "file_crc32", "require_checksums", "content_changed", "padded"]

SUFFIX = "_crc32"
NOT_RECORDED = -1
_PIECE = 4 * 2**20


def file_crc32(path: Path) -> int:
    """CRC-32 of the bytes of the file at ``path``, read 4 MiB at a time (0, that of no bytes, when missing)."""
    crc = 0
    try:
        with open(path, "rb") as f:
            while piece := f.read(_PIECE):
                crc = zlib.crc32(piece, crc)
    except FileNotFoundError:
        return 0
    return crc


def require_checksums(group: zarr.Group, marker: str, sizes: zarr.Array) -> zarr.Array:
    """``<marker>_crc32`` of ``group``, created or grown with ``sizes`` (``<marker>_bytes``), -1 where nothing
    is recorded."""
    return require_array(group, f"{marker}{SUFFIX}", shape=sizes.shape, chunks=sizes.chunks, dtype="int64",
                         dims=tuple(sizes.metadata.dimension_names), fill_value=NOT_RECORDED,
                         attrs={"description": "CRC-32 of the bytes of each chunk file the block wrote, when it was "
                                               "marked (-1: nothing recorded, checked by its size only; chunks as "
                                               f"in {marker}_bytes)"})


def content_changed(now: int, then: int, when: str) -> str:
    """The damage message for a chunk of the same size whose bytes changed since ``when``."""
    return f"content changed: checksum {now:08x} on disk, {then:08x} recorded {when}"


def padded(stored: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``stored`` (a record of ``(*marker shape, chunks)``) cut or filled with -1 to ``shape``: the marker may
    have grown since it was recorded."""
    out = np.full(shape, NOT_RECORDED, dtype=np.int64)
    common = tuple(slice(0, min(a, b)) for a, b in zip(shape, stored.shape))
    out[common] = stored[common]
    return out
