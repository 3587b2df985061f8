"""Core–shell Cu particle clusters on a Si3N4 film, and their voxelisation."""

from ._cluster import Cluster, Grid, radius_along, spheroid_semi_axes, surface_gap_nm
from .generate import find_contacts, make_cluster, make_shell
from .truth import NECK_METHODS, pair_silhouette_waist_nm, pair_truth
from .voxelize import NECK_SHAPES, Phantom, voxelize

__all__ = [
    "Cluster",
    "Grid",
    "NECK_METHODS",
    "NECK_SHAPES",
    "Phantom",
    "find_contacts",
    "make_cluster",
    "make_shell",
    "pair_silhouette_waist_nm",
    "pair_truth",
    "radius_along",
    "spheroid_semi_axes",
    "surface_gap_nm",
    "voxelize",
]
