"""Finished blocks that can be checked: what a block wrote is recorded when it is marked, and
checked cheaply (file sizes, then checksums of the files' bytes) when a stage reads its inputs, or
whole (every chunk decoded).

For a group with done-markers (channels, pairs, latents), each marker ``<m>`` has siblings
``<m>_bytes``: the bytes on disk of the chunks the block wrote, recorded as it was marked
(0: no chunk written, e.g. a block of failed models only, which zarr leaves out), and
``<m>_crc32``: the CRC-32 of each of those files (:mod:`repspace.store.checksums`). Which chunks
a block wrote follows from its key (:func:`block_chunks`). The embeddings groups record the
bytes of each (models, images) chunk of ``mu`` and ``logvar`` in ``chunk_bytes``, and their
checksums in ``chunk_crc32``. A store written before checksums is checked by sizes alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Container, Iterator, Sequence
from pathlib import Path

import numpy as np
import zarr

from . import channels as channels_schema
from . import checksums
from . import latents as latents_schema
from . import pairs as pairs_schema
from .core import open_group, open_run, require_array

__all__ = ["Damage", "discard", "discard_chunk", "require_sizes", "block_chunks", "chunk_block", "chunk_path", "chunks_bytes", "record_block", "damaged_blocks",
           "record_embedding_chunks", "damaged_embeddings", "undecodable", "find_damage", "size_only", "MARKED_GROUPS"]

_SCHEMAS = {schema.GROUP: schema for schema in (channels_schema, pairs_schema, latents_schema)}
MARKED_GROUPS = tuple(_SCHEMAS)
"""The groups whose blocks are marked done; each schema module says which chunks a block writes."""
_MARKERS = ("done", "information_done", "twice_done", "estimate_done")


@dataclasses.dataclass(frozen=True)
class Damage:
    """One damaged chunk: where it is, the models it covers, and what is wrong."""

    group: str
    array: str
    chunk: tuple[int, ...]
    models: tuple[str, ...]
    why: str
    marker: str | None = None
    key: tuple[int, ...] = ()

    def __str__(self) -> str:
        models = ", ".join(self.models[:8]) + (" ..." if len(self.models) > 8 else "")
        return f"{self.group}/{self.array} chunk {self.chunk} (models {models}): {self.why}"


def block_chunks(group: str, marker: str, key: tuple[int, ...], present: Container[str] | None = None
                 ) -> list[tuple[str, tuple[int, ...]]]:
    """(array, chunk coordinates) of every chunk the block ``key`` of ``group`` writes, as the group's schema
    module says (of the arrays in ``present``, the zarr group itself, when given)."""
    if group not in _SCHEMAS:
        raise ValueError(f"group {group!r} has no blockwise markers")
    return _SCHEMAS[group].block_chunks(marker, key, present)


def chunk_block(group: str, array: str, chunk: tuple[int, ...]) -> tuple[str, tuple[int, ...]] | None:
    """The (marker, key) of the block of ``group`` that writes ``chunk`` of ``array``, as the group's schema
    module says (None for a group without markers, coordinates, markers and arrays finalize derives)."""
    return _SCHEMAS[group].chunk_block(array, tuple(chunk)) if group in _SCHEMAS else None


def chunk_path(store_path: str | Path, group: str, array: str, coords: Sequence[int],
               cache: dict[str, zarr.Array] | None = None) -> Path:
    """The file of chunk ``coords`` of ``group/array`` (``cache``: arrays opened before, by name)."""
    arr = cache.get(array) if cache is not None else None
    if arr is None:
        arr = open_group(store_path, group)[array]
        if cache is not None:
            cache[array] = arr
    return Path(store_path) / group / array / arr.metadata.encode_chunk_key(tuple(int(c) for c in coords))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def chunks_bytes(store_path: str | Path, group: str, chunks: Sequence[tuple[str, tuple[int, ...]]]) -> int:
    """Bytes on disk of ``chunks`` (a chunk that is not there counts 0)."""
    return sum(_size(chunk_path(store_path, group, a, c)) for a, c in chunks)


def require_sizes(group: zarr.Group, marker: str) -> zarr.Array:
    """``<marker>_bytes``, created or grown with its marker (-1: nothing recorded), and ``<marker>_crc32``
    beside it; returns ``<marker>_bytes``."""
    done = group[marker]
    n = group[f"{marker}_bytes"].shape[-1] if f"{marker}_bytes" in group else _SCHEMAS[group.path].MAX_BLOCK_CHUNKS  # a store's own
    sizes = require_array(group, f"{marker}_bytes", shape=(*done.shape, n), chunks=(*done.chunks, n), dtype="int64",
                          dims=(*done.metadata.dimension_names, "block_chunk"), fill_value=-1,
                          attrs={"description": "bytes on disk of each chunk the block wrote, when it was marked "
                                                "(-1: no such chunk; chunks in the order of store.verify.block_chunks)"})
    checksums.require_checksums(group, marker, sizes)
    return sizes


def record_block(store_path: str | Path, group: zarr.Group, marker: str, key: tuple[int, ...]) -> None:
    """Record the bytes and the CRC-32 of each chunk block ``key`` wrote, in ``<marker>_bytes`` and
    ``<marker>_crc32`` (-1 past its chunks)."""
    sizes = require_sizes(group, marker)
    row = np.full(sizes.shape[-1], -1, dtype=np.int64)
    crc = np.full(sizes.shape[-1], checksums.NOT_RECORDED, dtype=np.int64)
    arrays: dict[str, zarr.Array] = {}
    for k, (array, coords) in enumerate(block_chunks(group.path, marker, key, group)[:len(row)]):
        path = chunk_path(store_path, group.path, array, coords, arrays)
        row[k], crc[k] = _size(path), checksums.file_crc32(path)
    group[f"{marker}{checksums.SUFFIX}"][key] = crc
    sizes[key] = row


def _block_models(group: zarr.Group, marker: str, key: tuple[int, ...]) -> tuple[str, ...]:
    names = [str(x) for x in group["model" if "model" in group else "model_a"][:]]
    if group.path == "latents":
        return tuple(names[i] for i in sorted(set(key[:2])))
    per = int(group.attrs.get("models_per_block", 1))
    return tuple(names[i] for b in sorted(set(key)) for i in range(b * per, min(len(names), (b + 1) * per)))


def damaged_blocks(store_path: str | Path, name: str,
                   blocks: Sequence[tuple[str, tuple[int, ...]]] | None = None) -> list[Damage]:
    """Chunks of blocks marked done in group ``name`` that are missing, not the size they were written with, or
    of the same size with other bytes (their CRC-32, where one was recorded) (every marked block, or those of
    ``blocks``: (marker, key) pairs)."""
    group = open_group(store_path, name)
    out = []
    arrays: dict[str, zarr.Array] = {}
    for marker in [m for m in _MARKERS if m in group]:
        if f"{marker}_bytes" not in group:
            continue
        crc_name = f"{marker}{checksums.SUFFIX}"
        try:
            done = np.asarray(group[marker][:])
            stored = np.asarray(group[f"{marker}_bytes"][:])
            stored_crc = np.asarray(group[crc_name][:]) if crc_name in group else None  # None: sizes only
        except Exception:  # a damaged marker itself: reading every chunk back (undecodable) names it
            continue
        shape = (*done.shape, stored.shape[-1])  # the marker may have grown since
        sizes = checksums.padded(stored, shape)
        crcs = checksums.padded(stored_crc, shape) if stored_crc is not None else np.full(shape, -1, np.int64)
        recorded = (done > 0) & (sizes[..., 0] >= 0)
        keys = ([tuple(k) for k in np.argwhere(recorded).tolist()] if blocks is None
                else [k for m, k in blocks if m == marker])
        for key in keys:
            if not recorded[key]:
                continue
            for k, (array, coords) in enumerate(block_chunks(name, marker, key, group)[:sizes.shape[-1]]):
                path = chunk_path(store_path, name, array, coords, arrays)
                now, then = _size(path), int(sizes[key][k])
                if now != then:
                    why = "missing" if not path.exists() else f"{now} bytes on disk"
                    out.append(Damage(name, array, coords, _block_models(group, marker, key),
                                      f"{why}, {then} bytes when its block was finished", marker, key))
                elif crcs[key][k] >= 0 and (crc := checksums.file_crc32(path)) != crcs[key][k]:
                    out.append(Damage(name, array, coords, _block_models(group, marker, key),
                                      checksums.content_changed(crc, int(crcs[key][k]), "when its block was finished"),
                                      marker, key))
    return out


def _embedding_grid(group: zarr.Group) -> tuple[int, int]:
    """(model chunks, image chunks) of an embeddings group."""
    mu = group["mu"]
    return -(-mu.shape[0] // mu.chunks[0]), -(-mu.shape[2] // mu.chunks[2])


def _embedding_chunks(group: zarr.Group) -> Iterator[tuple[int, int]]:
    models, images = _embedding_grid(group)
    for m in range(models):
        for i in range(images):
            yield m, i


def record_embedding_chunks(store_path: str | Path, group: zarr.Group) -> None:
    """Record the bytes of every (models, images) chunk of ``mu`` and ``logvar`` in ``chunk_bytes``, and the
    CRC-32 of each in ``chunk_crc32``."""
    grid = _embedding_grid(group)
    arrays: dict[str, zarr.Array] = {}
    sizes = np.full((*grid, 2), -1, dtype=np.int64)  # -1: no chunk yet (a model not encoded there), nothing to check
    crcs = np.full((*grid, 2), checksums.NOT_RECORDED, dtype=np.int64)
    for m, i in _embedding_chunks(group):
        for k, a in enumerate(("mu", "logvar")):
            path = chunk_path(store_path, group.path, a, (m, 0, i), arrays)
            if path.exists():
                sizes[m, i, k], crcs[m, i, k] = _size(path), checksums.file_crc32(path)
    described = {"chunk_bytes": "bytes on disk of each chunk of mu and logvar, when last written (-1: no chunk then)",
                 "chunk_crc32": "CRC-32 of the bytes of each chunk file of mu and logvar, when last written (-1: "
                                "nothing recorded, checked by its size only)"}
    for name, values in (("chunk_crc32", crcs), ("chunk_bytes", sizes)):
        if name in group and tuple(group[name].shape) != (*grid, 2):
            del group[name]
        arr = require_array(group, name, shape=(*grid, 2), chunks=(*grid, 2), dtype="int64",
                            dims=("model_chunk", "image_chunk", "mu_logvar"), fill_value=-1,
                            attrs={"description": described[name]})
        arr[...] = values


def damaged_embeddings(store_path: str | Path, name: str) -> list[Damage]:
    """Chunks of ``mu``/``logvar`` of group ``name`` missing, not the size they were written with, or of the
    same size with other bytes (their CRC-32, where one was recorded)."""
    group = open_group(store_path, name)
    if "chunk_bytes" not in group or "mu" not in group:
        return []
    try:
        recorded = np.asarray(group["chunk_bytes"][:])
        crcs = checksums.padded(np.asarray(group["chunk_crc32"][:]), recorded.shape) if "chunk_crc32" in group \
            else np.full(recorded.shape, checksums.NOT_RECORDED, dtype=np.int64)  # written before checksums
        names = [str(x) for x in group["model"][:]]
    except Exception:  # damaged bookkeeping: reading every chunk back (undecodable) names it
        return []
    per = int(group["mu"].chunks[0])
    out = []
    for m, i in _embedding_chunks(group):
        if m >= recorded.shape[0] or i >= recorded.shape[1]:
            continue
        for k, a in enumerate(("mu", "logvar")):
            path = chunk_path(store_path, name, a, (m, 0, i))
            now, then = _size(path), int(recorded[m, i, k])
            if then >= 0 and now != then:
                why = "missing" if not path.exists() else f"{now} bytes on disk"
                out.append(Damage(name, a, (m, 0, i), tuple(names[m * per:(m + 1) * per]),
                                  f"{why}, {then} bytes when it was written"))
            elif then >= 0 and crcs[m, i, k] >= 0 and (crc := checksums.file_crc32(path)) != crcs[m, i, k]:
                out.append(Damage(name, a, (m, 0, i), tuple(names[m * per:(m + 1) * per]),
                                  checksums.content_changed(crc, int(crcs[m, i, k]), "when it was written")))
    return out


def undecodable(store_path: str | Path, name: str) -> list[Damage]:
    """Every chunk of every array of group ``name`` read back; those that cannot be decoded."""
    group = open_group(store_path, name)
    out = []
    names = {}  # {model dimension: the names along it}
    for dim in ("model", "model_a", "model_b"):
        try:
            if dim in group:
                names[dim] = [str(x) for x in group[dim][:]]
        except Exception:  # the coordinate itself is damaged: found below like any other chunk
            pass
    for array_name, arr in group.arrays():
        if arr.ndim == 0 or arr.size == 0:
            continue
        grid = [range(-(-s // c)) for s, c in zip(arr.shape, arr.chunks)]
        dims = arr.metadata.dimension_names or (None,) * arr.ndim
        for coords in np.ndindex(*[len(g) for g in grid]):
            sel = tuple(slice(c * k, (c + 1) * k) for c, k in zip(coords, arr.chunks))
            try:
                arr[sel]
            except Exception as err:  # a codec or a truncated file: name the chunk, and the models it holds
                models = [m for dim, s_ in zip(dims, sel) for m in names.get(dim, [])[s_]]
                out.append(Damage(name, array_name, tuple(coords), tuple(dict.fromkeys(models)),
                                  f"cannot be read ({type(err).__name__}: {err})"))
    return out


def discard_chunk(store_path: str | Path, group: str, array: str, coords: Sequence[int]) -> None:
    """Remove one chunk's file: the array reads its fill value there."""
    chunk_path(store_path, group, array, coords).unlink(missing_ok=True)


def discard(store_path: str | Path, damage: Sequence[Damage]) -> None:
    """Remove the damaged chunks' files, so that what rewrites them starts from the fill value instead of
    decoding a broken chunk (a write into part of a chunk reads the rest of it first)."""
    for d in damage:
        discard_chunk(store_path, d.group, d.array, d.chunk)


def size_only(store_path: str | Path) -> dict[str, int]:
    """{group: how many of its finished blocks (of embeddings: chunks) have a recorded size but no checksum}, for
    the groups with any: recorded before checksums, so checked by their size only."""
    root = open_run(store_path, create=False)
    out: dict[str, int] = {}
    for name in [n for n in (*MARKED_GROUPS, "embeddings", "dataset_embeddings") if n in root]:
        group = open_group(store_path, name)
        records = [("chunk_bytes", "chunk_crc32", None)] if name not in MARKED_GROUPS else \
            [(f"{m}_bytes", f"{m}{checksums.SUFFIX}", m) for m in _MARKERS if m in group]
        for sizes_name, crc_name, marker in [r for r in records if r[0] in group]:
            try:
                sizes = np.asarray(group[sizes_name][:])
                crcs = checksums.padded(np.asarray(group[crc_name][:]), sizes.shape) if crc_name in group else \
                    np.full(sizes.shape, checksums.NOT_RECORDED, dtype=np.int64)
                done = np.asarray(group[marker][:]) > 0 if marker else None
            except Exception:  # damaged bookkeeping: reading every chunk back (undecodable) names it
                continue
            if marker is None:
                n = int(((sizes >= 0) & (crcs < 0)).sum())
            else:
                common = tuple(slice(0, min(a, b)) for a, b in zip(done.shape, sizes.shape))
                n = int((done[common] & (sizes[common][..., 0] >= 0) & (crcs[common][..., 0] < 0)).sum())
            if n:
                out[name] = out.get(name, 0) + n
    return out


def find_damage(store_path: str | Path, *, deep: bool = False) -> list[Damage]:
    """Every damaged chunk of a run store: cheap checks of every recorded block and chunk (its size, then its
    checksum where one was recorded), and with ``deep`` every chunk of every group decoded."""
    root = open_run(store_path, create=False)
    out: list[Damage] = []
    for name in ("embeddings", "dataset_embeddings"):
        if name in root:
            out += damaged_embeddings(store_path, name)
    for name in MARKED_GROUPS:
        if name in root:
            out += damaged_blocks(store_path, name)
    if deep:
        seen = {(d.group, d.array, d.chunk) for d in out}
        for name in [n for n, _ in root.groups()]:
            out += [d for d in undecodable(store_path, name) if (d.group, d.array, d.chunk) not in seen]
    return out
