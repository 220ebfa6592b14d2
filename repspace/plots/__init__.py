"""Figures, drawn from a run's store only (matplotlib is imported here, never by compute code)."""

from .fusion import draw_fusion_figure
from .latents import draw_latents_figure
from .measures import draw_measures_figures
from .so2 import draw_so2_figures
from .report import write_report
from .structure import draw_members_figure, draw_run_figures, draw_structure_figure, traversal_strip

__all__ = ["draw_fusion_figure", "draw_latents_figure", "draw_measures_figures", "draw_so2_figures", "draw_members_figure", "draw_run_figures", "draw_structure_figure",
           "traversal_strip", "write_report"]
