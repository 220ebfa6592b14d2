"""Figures, drawn from a run's store only (matplotlib is imported here, never by compute code)."""

from .structure import draw_run_figures, draw_structure_figure

__all__ = ["draw_run_figures", "draw_structure_figure"]
