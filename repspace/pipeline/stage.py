"""The stage skeleton: what every analysis declares, so that one driver can run it.

A stage names the groups it needs complete and the group it writes, and gives up to three
functions:

``plan(ctx) -> Plan``
    lays out its group (arrays, coordinates) and splits the work into :class:`Block` s;
``task(store_path, *block.args)``
    computes one block inside a Dask task and writes it to the store (module-level, so it
    pickles; idempotent, since a killed worker's tasks rerun);
``finalize(ctx, plan, results) -> str``
    runs once after every block, in the driving process, and returns a note for the report.

A stage also carries what the rest of the pipeline derives from it: the TOML table it reads
(``table``, parsed into its ``options`` class, which the run's configuration then holds as
``config.<table>``), the figures drawn from its group and its section of the run report
(``figures`` and ``report``: "module:function" names, imported only by the figures stage, so
that no compute process imports matplotlib). The configuration, the figures stage, the report
and repair all read the registry (:data:`repspace.pipeline.stages.STAGES`).

The driver (:func:`repspace.pipeline.driver.run_stages`) does the rest: it skips blocks
whose done-marker holds the stamp of their extent, runs the others, marks each as its task
finishes, records provenance and says what it did. A stage is one short module under
:mod:`repspace.pipeline.stages`; adding an analysis means adding one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zarr

if TYPE_CHECKING:
    from distributed import Client

    from .config import RunConfig

__all__ = ["Block", "Plan", "Stage", "StageContext", "resolve"]


@dataclasses.dataclass(frozen=True)
class Block:
    """One task's share of a stage.

    Attributes
    ----------
    name : shown in progress and errors.
    key : position in the marker ``marker`` of the stage's group.
    extent : what the block covers (repr-stable); a finished block is skipped while it is unchanged.
    args : arguments of the stage's task after the store path.
    marker : the marker array (None: no marker, the block always runs).
    cost : the block's expected seconds on one worker thread, from the work it has to do
        (0: not estimated); the driver adds them up to say how long a stage will take.
    """

    name: str
    key: tuple[int, ...] = ()
    extent: Any = None
    args: tuple[Any, ...] = ()
    marker: str | None = "done"
    cost: float = 0.0


@dataclasses.dataclass
class Plan:
    """A stage's blocks, the shapes and dims of its markers, and what finalize needs from planning."""

    blocks: list[Block] = dataclasses.field(default_factory=list)
    markers: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = dataclasses.field(default_factory=dict)
    state: Any = None
    note: str = ""


@dataclasses.dataclass
class StageContext:
    """What a stage's plan and finalize see."""

    config: RunConfig
    store_path: Path
    root: zarr.Group
    group: zarr.Group | None
    client: "Client | None"
    run_id: str
    log: Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Stage:
    """A stage: see the module docstring.

    Attributes
    ----------
    name : the stage's name, as ``--stages`` takes it.
    writes : the group it writes (None: files only, or nothing).
    needs : groups that must be complete before it runs.
    needs_when : more such groups, as the run's configuration asks (None: none).
    plan, task, finalize : the stage's functions (each optional).
    cluster : whether the stage needs the Dask client (tasks, or work submitted by finalize).
    whole : the stage replaces its group whole, atomically (or by a protocol of its own, as the
        fingerprint's), so the driver need not mark it incomplete while the stage runs.
    table, options : the TOML table the stage reads and the frozen dataclass it is parsed into
        (nested dataclass fields are sub-tables); stages that share a table name the same class.
    figures : "module:function" drawing the stage's figures, ``(store_path, out_dir) -> list[Path]``,
        once its group (and those it needs) are complete.
    report : "module:function" giving its section of the run report, ``(store_path, figures) -> str``
        (HTML; ``figures`` maps a figure's file stem to its path).
    check : refuses, before any stage of the run starts and before anything is written, options that the
        disk contradicts (raises :class:`~repspace.pipeline.checks.ConfigurationRefused`); None: nothing to check.
    """

    name: str
    writes: str | None = None
    needs: tuple[str, ...] = ()
    needs_when: Callable[[RunConfig], tuple[str, ...]] | None = None
    plan: Callable[[StageContext], Plan] | None = None
    task: Callable[..., Any] | None = None
    finalize: Callable[[StageContext, Plan, dict[str, Any]], str] | None = None
    cluster: bool = True
    whole: bool = False
    table: str | None = None
    options: type | None = None
    figures: str | None = None
    report: str | None = None
    check: Callable[[RunConfig], None] | None = None

    def needed(self, config: RunConfig) -> tuple[str, ...]:
        """Every group the stage needs complete under ``config``."""
        return (*self.needs, *(self.needs_when(config) if self.needs_when is not None else ()))


def resolve(name: str) -> Callable[..., Any]:
    """The function a "module:function" name stands for (a stage's ``figures`` or ``report``)."""
    import importlib

    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)
