"""3D surfaces of binary volumes: marching-cubes meshes and shaded views of them (Agg canvas, no display)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..checks import check_int, check_positive
from ..errors import InputError
from .run import bounding_box

__all__ = ["RECON_SURFACE", "TRUTH_SURFACE", "surface_figure", "surface_mesh"]

RECON_SURFACE = "#c87533"  # copper
TRUTH_SURFACE = "#7f9fbf"


def surface_mesh(
    mask: np.ndarray,
    *,
    spacing_nm: Sequence[float] = (1.0, 1.0, 1.0),
    origin_nm: Sequence[float] = (0.0, 0.0, 0.0),
    smooth_px: float = 1.0,
    max_faces: int = 30000,
) -> tuple[np.ndarray, np.ndarray]:
    """Triangulated surface of a binary volume (marching cubes), coarsened to about ``max_faces``.

    For display only: the mask is padded with empty voxels (so every surface
    closes), blurred with a Gaussian of ``smooth_px`` voxels (so the surface
    does not show the voxel staircase) and cut at 0.5; the marching-cubes step
    grows until the estimated face count (two per boundary voxel face, over
    the step squared) is at most ``max_faces``.

    Parameters
    ----------
    mask : (nz, ny, nx) ndarray
        Non-zero = inside.
    spacing_nm : (3,) sequence of float, optional
        Voxel size along z, y, x (nm).
    origin_nm : (3,) sequence of float, optional
        Coordinates of voxel (0, 0, 0) (nm).
    smooth_px : float, optional
        Standard deviation of the blur (voxels); 0 for the raw staircase.
    max_faces : int, optional

    Returns
    -------
    verts : (V, 3) ndarray of float
        Vertex coordinates (z, y, x) in nm.
    faces : (F, 3) ndarray of int
        Vertex indices of each triangle; ``(0, 3)`` when the mask is empty.
    """
    from scipy import ndimage
    from skimage.measure import marching_cubes

    mask = np.asarray(mask) != 0
    if mask.ndim != 3:
        raise InputError(f"mask must be a (z, y, x) volume, got shape {mask.shape}")
    check_int(max_faces, "max_faces", minimum=100)
    check_positive(smooth_px, "smooth_px", allow_zero=True)
    if not mask.any():
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=int)
    pad = 1 + math.ceil(3 * smooth_px)
    box = bounding_box(mask, margin=0)
    sub = np.pad(mask[box], pad).astype(np.float32)
    boundary = sum(int(np.count_nonzero(np.diff(sub, axis=a))) for a in range(3))
    if smooth_px > 0:
        sub = ndimage.gaussian_filter(sub, smooth_px)
    step = max(1, math.ceil(math.sqrt(2.0 * boundary / max_faces)))
    verts, faces, _, _ = marching_cubes(sub, level=0.5, spacing=tuple(float(s) for s in spacing_nm),
                                        step_size=step, allow_degenerate=False)
    start = np.array([s.start - pad for s in box], dtype=float) * np.asarray(spacing_nm, dtype=float)
    return verts + start + np.asarray(origin_nm, dtype=float), faces


def surface_figure(
    meshes: Sequence[tuple[str, np.ndarray, np.ndarray]],
    *,
    colours: Sequence[str] | None = None,
    ncols: int = 2,
    elev_deg: float = 28.0,
    azim_deg: float = -60.0,
    title: str | None = None,
) -> Figure:
    """Shaded 3D views of triangulated surfaces, one panel each, on common axis limits.

    Parameters
    ----------
    meshes : sequence of (title, verts, faces)
        ``verts`` (V, 3) in nm as (z, y, x), ``faces`` (F, 3) (see :func:`surface_mesh`).
    colours : sequence of str, optional
        One colour per mesh (default copper for all).
    ncols : int, optional
    elev_deg, azim_deg : float, optional
        Viewing angles.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import LightSource

    if not meshes:
        raise InputError("meshes is empty: give at least one (title, verts, faces)")
    colours = list(colours) if colours is not None else [RECON_SURFACE] * len(meshes)
    if len(colours) != len(meshes):
        raise InputError(f"{len(colours)} colours for {len(meshes)} meshes")
    ncols = max(1, min(ncols, len(meshes)))
    nrows = math.ceil(len(meshes) / ncols)
    fig = Figure(figsize=(6.2 * ncols, 4.6 * nrows + (0.3 if title else 0.0)), layout="constrained")
    every = [v for _, v, f in meshes if len(f)]
    lo = np.min([v.min(axis=0) for v in every], axis=0) if every else np.zeros(3)
    hi = np.max([v.max(axis=0) for v in every], axis=0) if every else np.ones(3)
    span = np.maximum(hi - lo, 1.0)
    light = LightSource(azdeg=315, altdeg=45)
    for k, ((label, verts, faces), colour) in enumerate(zip(meshes, colours, strict=True)):
        ax = fig.add_subplot(nrows, ncols, k + 1, projection="3d")
        if len(faces):
            ax.plot_trisurf(verts[:, 2], verts[:, 1], faces, verts[:, 0], color=colour, shade=True,
                            lightsource=light, linewidth=0.0, antialiased=False)
        else:
            ax.text2D(0.5, 0.5, "empty volume", transform=ax.transAxes, ha="center")
        ax.set_xlim(lo[2], hi[2])
        ax.set_ylim(lo[1], hi[1])
        ax.set_zlim(lo[0], hi[0])
        ax.set_box_aspect((span[2], span[1], span[0]), zoom=1.15)
        ax.view_init(elev=elev_deg, azim=azim_deg)
        ax.set_xlabel("x (nm)", fontsize=7, labelpad=-2)
        ax.set_ylabel("y (nm)", fontsize=7, labelpad=-2)
        ax.set_zlabel("z (nm)", fontsize=7, labelpad=-2)
        ax.tick_params(labelsize=6, pad=0)
        ax.set_title(label, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
