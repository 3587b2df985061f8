"""Core–shell Cu particle clusters on a Si3N4 film, and their voxelisation."""

from ._cluster import Cluster, Grid, radius_along, spheroid_semi_axes, surface_gap_nm

__all__ = ["Cluster", "Grid", "radius_along", "spheroid_semi_axes", "surface_gap_nm"]
