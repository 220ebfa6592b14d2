"""The figures stage: PNGs in ``<run_dir>/figures`` of every finished analysis of the store
(structure, latents). Reads only the store; writes no group."""

from __future__ import annotations

import json
from typing import Any

from ...store import is_complete
from ..stage import Plan, Stage, StageContext


def finalize(ctx: StageContext, plan: Plan, results: dict[str, Any]) -> str:
    from ...plots import draw_latents_figure, draw_run_figures  # matplotlib only where figures are drawn

    out = ctx.config.figure_dir
    figures = draw_run_figures(ctx.store_path, out) if is_complete(ctx.root, "structure") else []
    if is_complete(ctx.root, "latents"):
        figures.append(draw_latents_figure(ctx.store_path, out / "latents.png"))
    ctx.root.attrs["figures"] = json.dumps([str(p) for p in figures])
    return str(out) if figures else "nothing finished to draw"


STAGE = Stage(name="figures", finalize=finalize, cluster=False)
