"""The figures stage: PNGs in ``<run_dir>/figures`` of every finished analysis of the store
(structure, latents, measures, fusion on the circle), and the run report ``<run_dir>/report.html``. Reads only the store;
writes no group."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...store import is_complete
from ..stage import Plan, Stage, StageContext


def finalize(ctx: StageContext, plan: Plan, results: dict[str, Any]) -> str:
    from ...plots import (draw_fusion_figure, draw_latents_figure, draw_measures_figures, draw_run_figures, draw_so2_figures,  # matplotlib
                          write_report)

    out = ctx.config.figure_dir
    figures = draw_run_figures(ctx.store_path, out) if is_complete(ctx.root, "structure") else []
    if is_complete(ctx.root, "latents"):
        figures.append(draw_latents_figure(ctx.store_path, out / "latents.png"))
    if is_complete(ctx.root, "measures") and is_complete(ctx.root, "spaces"):
        figures += draw_measures_figures(ctx.store_path, out)
    if is_complete(ctx.root, "fusion"):
        figures.append(draw_fusion_figure(ctx.store_path, out / "fusion.png"))
    if is_complete(ctx.root, "so2_fusion") and is_complete(ctx.root, "so2_learners"):
        figures += draw_so2_figures(ctx.store_path, out)
    report = write_report(ctx.store_path, Path(ctx.config.run_dir) / "report.html", figures)
    ctx.root.attrs["figures"] = json.dumps([str(p) for p in figures])
    ctx.root.attrs["report"] = str(report)
    return f"{out}; report {report}" if figures else f"nothing finished to draw; report {report}"


STAGE = Stage(name="figures", finalize=finalize, cluster=False)
