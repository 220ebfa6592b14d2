"""Posterior files: a model's posteriors computed elsewhere, as a model source (``source = "posteriors"``).

One file per model, ``<name>.npz`` or ``<name>.zarr`` (a zarr group), holding

==============  ================  ==========================================================
name            shape             meaning
==============  ================  ==========================================================
mean            (image, channel)  posterior mean
logvar          (image, channel)  posterior log-variance
dataset_index   (image,) int      row of each image in its dataset
images_id       str (npz: 0-d)    what identifies the images: the fingerprint set's hash
                (zarr: attr)      (:func:`fingerprint_identity`) or a dataset's
images          str (JSON)        the identity itself: the fingerprint's attributes, or
                                  {"dataset", "image_size"} of a dataset file
==============  ================  ==========================================================

The encode stage reads a file in the blocks of its images and refuses one made on other images
(naming both), one with NaN, or one whose arrays do not fit; such a model is left out with the
reason, and nothing of it is written. :func:`write_posterior_file` writes one (atomically).
npz files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..store import fingerprint as fp_schema
from ..store import identity_hash, open_run, real_array
from .sidecar import read_sidecar

__all__ = ["PosteriorFile", "is_posterior_file", "open_posteriors", "write_posterior_file", "fingerprint_identity"]

SUFFIXES = (".npz", ".zarr")


def is_posterior_file(path: str | Path) -> bool:
    p = Path(path)
    return (p.suffix == ".npz" and p.is_file()) or (p.suffix == ".zarr" and p.is_dir())


def _describe(images: Mapping[str, Any]) -> str:
    return json.dumps(dict(images), sort_keys=True, default=str)


class PosteriorFile:
    """One model's posteriors from a file. Attributes: ``path``, ``kind`` ("posteriors"), ``n_latents``,
    ``n_images``, ``images_id``, ``images`` (dict), ``dataset_index`` (image,), ``coordinates`` (sidecar)."""

    kind = "posteriors"
    input_shape = (None, None, None)
    has_decoder = False
    fixed_logvar = None

    def __init__(self, path: Path):
        self.path = path
        if path.suffix == ".npz":
            data = np.load(path, allow_pickle=False)
            self._arrays = {k: data[k] for k in data.files}
            meta = {k: str(self._arrays.pop(k)) for k in ("images_id", "images") if k in self._arrays}
        else:
            import zarr

            group = zarr.open_group(str(path), mode="r")
            self._arrays = {k: group[k] for k in ("mean", "logvar", "dataset_index") if k in group}
            meta = {k: group.attrs[k] for k in ("images_id", "images") if k in group.attrs}
        missing = [k for k in ("mean", "logvar", "dataset_index") if k not in self._arrays]
        if missing or "images_id" not in meta:
            raise ValueError(f"posterior file {path} lacks {', '.join(missing + ['images_id'] * ('images_id' not in meta))}"
                             " (see repspace.models.write_posterior_file)")
        mean, logvar, index = (self._arrays[k] for k in ("mean", "logvar", "dataset_index"))
        for name, arr in (("mean", mean), ("logvar", logvar), ("dataset_index", index)):
            kinds = "iu" if name == "dataset_index" else "fiu"
            if np.dtype(arr.dtype).kind not in kinds:
                raise ValueError(f"posterior file {path}: {name} has dtype {arr.dtype}; it must hold "
                                 f"{'integers' if name == 'dataset_index' else 'real numbers (float or integer)'}")
        if len(mean.shape) != 2 or tuple(mean.shape) != tuple(logvar.shape):
            raise ValueError(f"posterior file {path}: mean has shape {tuple(mean.shape)} and logvar "
                             f"{tuple(logvar.shape)}; both must be (image, channel)")
        if tuple(index.shape) != (mean.shape[0],):
            raise ValueError(f"posterior file {path}: dataset_index has shape {tuple(index.shape)} for "
                             f"{mean.shape[0]} images")
        self.dataset_index = np.asarray(index[:], np.int64)
        if np.unique(self.dataset_index).size != self.dataset_index.size:
            raise ValueError(f"posterior file {path}: dataset_index repeats images")
        self.n_images, self.n_latents = (int(s) for s in mean.shape)
        self.images_id = str(meta["images_id"])
        images = meta.get("images", "{}")
        self.images = json.loads(images) if isinstance(images, str) else dict(images)
        self.coordinates = read_sidecar(path)[0]

    def __repr__(self) -> str:
        return f"PosteriorFile({str(self.path)!r}, n_images={self.n_images}, n_latents={self.n_latents})"

    def _matches(self, images_id: str, images: Mapping[str, Any]) -> bool:
        if self.images_id == images_id:
            return True
        keys = ("dataset", "image_size")  # a dataset's file serves any subset of that dataset's images
        return "dataset" in images and all(self.images.get(k) == images.get(k) for k in keys)

    def posteriors(self, images_id: str, images: Mapping[str, Any], dataset_index: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """mean, logvar float32 (n, channel) of the images ``dataset_index`` of the set ``images_id``.

        Raises ValueError naming the file: made on other images (both named), images it lacks, NaN.
        """
        if not self._matches(images_id, images):
            raise ValueError(f"posterior file {self.path} was computed on images {self.images_id} "
                             f"({_describe(self.images)}); this run's are {images_id} ({_describe(images)})")
        want = np.asarray(dataset_index, np.int64)
        order = np.argsort(self.dataset_index)
        pos = np.searchsorted(self.dataset_index, want, sorter=order)
        found = (pos < self.n_images) & (self.dataset_index[order[np.minimum(pos, self.n_images - 1)]] == want) \
            if self.n_images else np.zeros(want.shape, bool)
        if not found.all():
            lacking = want[~found]
            raise ValueError(f"posterior file {self.path} lacks {lacking.size} of the {want.size} images asked for "
                             f"(dataset rows {', '.join(map(str, lacking[:5]))}{' ...' if lacking.size > 5 else ''})")
        rows = order[pos]
        lo = int(rows.min()) if rows.size else 0
        hi = int(rows.max()) + 1 if rows.size else 0
        mean = np.asarray(self._arrays["mean"][lo:hi], np.float32)[rows - lo]
        logvar = np.asarray(self._arrays["logvar"][lo:hi], np.float32)[rows - lo]
        bad = ~(np.isfinite(mean) & np.isfinite(logvar))
        if bad.any():
            raise ValueError(f"posterior file {self.path}: NaN or infinite values in channels "
                             f"{sorted(set(np.nonzero(bad)[1].tolist()))} ({int(bad.sum())} values)")
        return mean, logvar


def open_posteriors(path: str | Path) -> PosteriorFile:
    """The posterior file at ``path`` (checked: its arrays, their shapes, its identity)."""
    path = Path(path)
    if not is_posterior_file(path):
        raise FileNotFoundError(f"no posterior file (.npz or .zarr) at {path}")
    return PosteriorFile(path)


def fingerprint_identity(store_path: str | Path) -> tuple[np.ndarray, str, dict[str, Any]]:
    """(dataset_index, images_id, images) of a run store's fingerprint set: what a posterior file over it holds."""
    root = open_run(store_path)
    if fp_schema.GROUP not in root:
        raise FileNotFoundError(f"{store_path} has no fingerprint set; run the fingerprint stage first")
    fp = root[fp_schema.GROUP]
    images = {"fingerprint": {k: fp.attrs.get(k) for k in fp_schema.IDENTITY_ATTRS}}
    return np.asarray(fp["index"][:]), fp_schema.fingerprint_id(root), images


def write_posterior_file(path: str | Path, mean: Any, logvar: Any, *, store: str | Path | None = None,
                         dataset_index: Any = None, images_id: str | None = None,
                         images: Mapping[str, Any] | None = None) -> Path:
    """Write one model's posteriors (mean, logvar: (image, channel)) as a posterior file (``.npz`` or ``.zarr``).

    Over a run's fingerprint set: give ``store`` (its identity is read from there). Over a dataset: give
    ``dataset_index`` and ``images={"dataset": name, "image_size": size}`` (``images_id`` defaults to
    their hash). The file appears whole or not at all.
    """
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise ValueError(f"{path}: a posterior file ends in .npz or .zarr")
    if store is not None:
        dataset_index, images_id, images = fingerprint_identity(store)
    if dataset_index is None or not images:
        raise ValueError("give store (the fingerprint set's run store), or dataset_index and images")
    index = np.asarray(dataset_index)
    if index.dtype.kind not in "iu":
        raise ValueError(f"posterior file {path}: dataset_index has dtype {index.dtype}; it must hold integers")
    index = index.astype(np.int64)
    images_id = images_id or identity_hash(dict(images), index)
    where = f"posterior file {path}"
    mean, logvar = real_array(mean, "mean", where), real_array(logvar, "logvar", where)
    if mean.ndim != 2 or mean.shape != logvar.shape or index.shape != (mean.shape[0],):
        raise ValueError(f"mean {mean.shape}, logvar {logvar.shape} and dataset_index {index.shape} must be "
                         "(image, channel), (image, channel) and (image,)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    if path.suffix == ".npz":
        np.savez(tmp, mean=mean, logvar=logvar, dataset_index=index, images_id=np.str_(images_id),
                 images=np.str_(_describe(images)))
        os.replace(tmp, path)
        return path
    import zarr

    group = zarr.open_group(str(tmp), mode="w")
    for name, arr in (("mean", mean), ("logvar", logvar), ("dataset_index", index)):
        group.create_array(name, data=arr)
    group.attrs.update({"images_id": images_id, "images": _describe(images)})
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path
