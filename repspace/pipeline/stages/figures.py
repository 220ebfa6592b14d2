"""The figures stage: PNGs in ``<run_dir>/figures`` of every finished analysis of the store, and the
run report ``<run_dir>/report.html``. Reads only the store; writes no group.

What it draws comes from the registry: every stage that registers ``figures`` or ``report``
(:class:`repspace.pipeline.stage.Stage`) and whose group, and the groups it needs, are complete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...store import is_complete
from ..registry import STAGES
from ..stage import Plan, Stage, StageContext, resolve


def finalize(ctx: StageContext, plan: Plan, results: dict[str, Any]) -> str:
    from ...plots import write_report  # matplotlib

    out = ctx.config.figure_dir
    figures: list[Path] = []
    finished = []
    for stage in STAGES.values():
        if (stage.figures or stage.report) and stage.writes and all(
                is_complete(ctx.root, g) for g in (stage.writes, *stage.needs)):
            if stage.figures:
                figures += resolve(stage.figures)(ctx.store_path, out)
            if stage.report:
                finished.append(stage.report)
    by_name = {p.stem: p for p in figures}
    sections = [resolve(name)(str(ctx.store_path), by_name) for name in finished]
    ran = {s.table for s in STAGES.values() if s.table and s.writes and s.writes in ctx.root}
    report = write_report(ctx.store_path, Path(ctx.config.run_dir) / "report.html", figures, sections, tables=tuple(ran))
    ctx.root.attrs["figures"] = json.dumps([str(p) for p in figures])
    ctx.root.attrs["report"] = str(report)
    return f"{out}; report {report}" if figures else f"nothing finished to draw; report {report}"


STAGE = Stage(name="figures", finalize=finalize, cluster=False)
