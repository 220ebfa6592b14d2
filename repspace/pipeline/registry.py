"""The stage registry: every analysis by name, in run order.

:mod:`repspace.pipeline.stages` registers the package's stages here when it is imported; a plug-in
or a test adds its own with :func:`register`. The configuration's tables, the figures stage, the
report and repair all read :data:`STAGES`.
"""

from __future__ import annotations

from .stage import Stage

__all__ = ["STAGES", "register", "unregister", "stage_names"]

STAGES: dict[str, Stage] = {}
"""Every registered stage by name, in the order a run takes them."""


def register(stage: Stage, before: str = "figures") -> Stage:
    """Add an analysis: ``stage`` joins the registry (run before ``before``), and with it its table, figures and
    report section (the package's own stages register when :mod:`repspace.pipeline.stages` is imported)."""
    if stage.name in STAGES:
        raise ValueError(f"a stage named {stage.name!r} is registered already")
    items = list(STAGES.items())
    at = [n for n, _ in items].index(before) if before in STAGES else len(items)
    items.insert(at, (stage.name, stage))
    STAGES.clear()
    STAGES.update(items)
    return stage


def unregister(name: str) -> None:
    """Take a stage registered by :func:`register` out of the registry."""
    STAGES.pop(name)


def stage_names() -> tuple[str, ...]:
    """Every registered stage, in run order."""
    return tuple(STAGES)
