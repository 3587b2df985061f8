"""Old name of :mod:`sinter4d.figures.sweep` (delete once the importers are rewritten)."""

from ..figures.sweep import plot_sweep

__all__ = ["plot_sweep"]
