"""The run store: one zarr (format 3) store per run, a group per stage, each group's layout in one module.

=====================  ===========================================  ====================================
group                  module                                       written by
=====================  ===========================================  ====================================
fingerprint            :mod:`repspace.store.fingerprint`            the fingerprint stage
models                 :mod:`repspace.store.models`                 the models stage
embeddings             :mod:`repspace.store.embeddings`             the encode stage (or write_posteriors)
dataset_embeddings     :mod:`repspace.store.embeddings`             the encode_dataset stage
channels               :mod:`repspace.store.channels`               the channels stage
pairs                  :mod:`repspace.store.pairs`                  the pairs stage
structure              :mod:`repspace.store.structure`              the structure stage
traversals             :mod:`repspace.store.traversals`             the traversals stage
latents                :mod:`repspace.store.latents`                the latents stage
spaces                 :mod:`repspace.store.spaces`                 the spaces stage
measures               :mod:`repspace.store.measures`               the measures stage
=====================  ===========================================  ====================================

:mod:`repspace.store.core` holds what every group shares: opening a run, arrays and
coordinates, done-markers, provenance and the atomic replacement of a group;
:mod:`repspace.store.lock` keeps one run per store at a time.
"""

from .core import (
    FORMAT,
    FORMAT_VERSION,
    StoreError,
    block_ranges,
    identity_hash,
    is_complete,
    is_done,
    mark,
    open_dataset,
    open_group,
    open_run,
    real_array,
    record_provenance,
    replace_group,
    require_array,
    require_complete,
    require_marker,
    set_complete,
    stamp,
    write_coordinate,
    write_dataset,
    write_whole,
)
from .embeddings import write_posteriors
from .lock import StoreLocked, StoreReadOnly, lock_path, run_lock

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "StoreError",
    "block_ranges",
    "identity_hash",
    "is_complete",
    "is_done",
    "mark",
    "open_dataset",
    "open_group",
    "open_run",
    "real_array",
    "record_provenance",
    "replace_group",
    "require_array",
    "require_complete",
    "require_marker",
    "set_complete",
    "stamp",
    "write_coordinate",
    "write_dataset",
    "write_whole",
    "write_posteriors",
    "StoreLocked",
    "StoreReadOnly",
    "lock_path",
    "run_lock",
]
