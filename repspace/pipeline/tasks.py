"""Work done inside Dask tasks: each reads the run store, computes one block, writes it back.

Every task is idempotent: it writes chunk-aligned regions that only it writes, then marks
its block done. A task that is killed and rerun writes the same values again.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import zarr

from .. import kernels, store
from ..kernels import BlockOptions

__all__ = ["encode_block", "channels_block", "pairs_block"]


def _group(path: str, name: str) -> zarr.Group:
    return zarr.open_group(path, path=name, mode="r+", zarr_format=3)


def _limit_threads() -> Any:
    """One BLAS thread per Dask thread: the cluster supplies the parallelism."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def encode_block(
    store_path: str, rows: list[tuple[int, str, str]], n_models: int, batch_size: int = 256
) -> dict[str, Any]:
    """Encode the fingerprint images with the models of one chunk of the embeddings.

    Parameters
    ----------
    rows : (model index, model name, model path) of each model to encode
    n_models : models in the run

    Returns
    -------
    {"encoded": [names], "failed": {name: reason}, "seconds": float}
    """
    from ..models import load_encoder

    start = time.perf_counter()
    fp = zarr.open_group(store_path, path="fingerprint", mode="r", zarr_format=3)
    images = np.asarray(fp["images"][:], dtype=np.float32)
    emb = _group(store_path, "embeddings")
    mu_arr, lv_arr, done = emb["mu"], emb["logvar"], emb["encoded"]
    n_channels = mu_arr.shape[1]
    encoded, failed = [], {}
    for index, name, path in rows:
        try:
            encoder = load_encoder(path)
            mu, logvar = encoder(images, batch_size=batch_size)
        except Exception as err:  # a model that cannot encode is reported, the others go on
            failed[name] = f"{type(err).__name__}: {err}"
            continue
        mu, logvar = np.asarray(mu, np.float32).T, np.asarray(logvar, np.float32).T  # (channel, image)
        if mu.shape != (n_channels, images.shape[0]):
            failed[name] = f"gives {mu.shape[0]} channels for {mu.shape[1]} images; the run expects {n_channels}"
            continue
        bad = ~(np.isfinite(mu) & np.isfinite(logvar))
        if bad.any():
            channels = sorted(set(np.nonzero(bad)[0].tolist()))
            failed[name] = f"NaN or infinite posteriors in channels {channels} ({int(bad.sum())} values)"
            done[index] = -1
            continue
        mu_arr[index] = mu
        lv_arr[index] = logvar
        done[index] = n_models
        encoded.append(name)
    return {"encoded": encoded, "failed": failed, "seconds": time.perf_counter() - start}


def _valid_posteriors(emb: zarr.Group, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mu, logvar (model, channel, image) of models start:stop with failed models zeroed, and validity."""
    mu = np.asarray(emb["mu"][start:stop])
    logvar = np.asarray(emb["logvar"][start:stop])
    valid = np.asarray(emb["encoded"][start:stop]) > 0
    mu[~valid] = 0.0
    logvar[~valid] = 0.0
    return mu, logvar, valid


def _to_device(a: np.ndarray, gpu: bool) -> Any:
    if not gpu:
        return a
    import cupy

    return cupy.asarray(a)


def channels_block(store_path: str, block: int, start: int, stop: int, n_models: int, gpu: bool = False) -> float:
    """I(U), I(U,U') of every channel of models start:stop, and their NMI and VI with every factor."""
    t0 = time.perf_counter()
    with _limit_threads():
        emb = zarr.open_group(store_path, path="embeddings", mode="r", zarr_format=3)
        labels = np.asarray(zarr.open_group(store_path, path="fingerprint", mode="r", zarr_format=3)["factors"][:])
        mu, logvar, valid = _valid_posteriors(emb, start, stop)
        m, c, n = mu.shape
        rows = kernels.PosteriorRows(_to_device(mu.reshape(m * c, n), gpu), _to_device(logvar.reshape(m * c, n), gpu))
        factors = kernels.LabelRows(_to_device(labels, gpu), rows.dtype)
        res = kernels.pairwise_information(rows, factors, options=BlockOptions(threads=1))
        nmi, vi = (kernels._array.to_numpy(x) for x in res.nmi_vi())
        info = kernels._array.to_numpy(res.info_a).reshape(m, c)
        self_info = kernels._array.to_numpy(res.self_info_a).reshape(m, c)
        nmi, vi = nmi.reshape(m, c, -1), vi.reshape(m, c, -1)
        for arr in (info, self_info, nmi, vi):
            arr[~valid] = np.nan
        grp = _group(store_path, "channels")
        grp["info"][start:stop] = info
        grp["self_info"][start:stop] = self_info
        grp["nmi_factor"][start:stop] = nmi
        grp["vi_factor"][start:stop] = vi
        store.mark_block(grp["done"], (block,), n_models)
    return time.perf_counter() - t0


def pairs_block(
    store_path: str,
    block_a: int,
    block_b: int,
    range_a: tuple[int, int],
    range_b: tuple[int, int],
    n_models: int,
    row_block_bytes: int,
    gpu: bool = False,
) -> float:
    """NMI and VI between every channel of models range_a and every channel of models range_b.

    Writes the (a, b) region and, off the diagonal, its transpose (b, a); then marks the block.
    """
    t0 = time.perf_counter()
    with _limit_threads():
        emb = zarr.open_group(store_path, path="embeddings", mode="r", zarr_format=3)
        mu_a, lv_a, valid_a = _valid_posteriors(emb, *range_a)
        ma, c, n = mu_a.shape
        rows_a = kernels.PosteriorRows(_to_device(mu_a.reshape(ma * c, n), gpu), _to_device(lv_a.reshape(ma * c, n), gpu))
        same = block_a == block_b
        if same:
            rows_b, mb, valid_b = None, ma, valid_a
        else:
            mu_b, lv_b, valid_b = _valid_posteriors(emb, *range_b)
            mb = mu_b.shape[0]
            rows_b = kernels.PosteriorRows(_to_device(mu_b.reshape(mb * c, n), gpu), _to_device(lv_b.reshape(mb * c, n), gpu))
        res = kernels.pairwise_information(rows_a, rows_b, options=BlockOptions(memory_bytes=row_block_bytes, threads=1))
        nmi, vi = (kernels._array.to_numpy(x).astype(np.float32).reshape(ma, c, mb, c) for x in res.nmi_vi())
        for arr in (nmi, vi):
            arr[~valid_a] = np.nan
            arr[:, :, ~valid_b] = np.nan
        grp = _group(store_path, "pairs")
        (a0, a1), (b0, b1) = range_a, range_b
        for name, arr in (("nmi", nmi), ("vi", vi)):
            grp[name][a0:a1, :, b0:b1, :] = arr
            if not same:
                grp[name][b0:b1, :, a0:a1, :] = arr.transpose(2, 3, 0, 1)
        store.mark_block(grp["done"], (block_a, block_b), n_models)
    return time.perf_counter() - t0
