"""Old name of :mod:`sinter4d.figures.assimilation` (delete once the importers are rewritten)."""

from ..figures.assimilation import corner_plot, predictive_plot

__all__ = ["corner_plot", "predictive_plot"]
