"""Old name of :mod:`sinter4d.figures.metrics` (delete once the importers are rewritten)."""

from ..figures.metrics import plot_neck_vs_distance, plot_trajectories

__all__ = ["plot_neck_vs_distance", "plot_trajectories"]
