"""Figures of a run's images: pure functions of arrays that return a Figure.

Every function here takes arrays (coordinates in nm) and returns a
:class:`matplotlib.figure.Figure` drawn on the Agg canvas (no pyplot, no
global backend, no display); none touches a file.

* :func:`tilt_montage` -- raw and denoised images of a tilt series;
* :func:`orthogonal_slices` -- xy, xz and yz sections of a reconstruction
  with its binary outline, beside the true cores;
* helpers to pick tilts (:func:`select_tilts`) and crop (:func:`crop_window`,
  :func:`bounding_box`, :func:`cluster_centre`).

3D surfaces are in :mod:`.surface`, PNG bytes of a figure in :mod:`.png`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..checks import check_angles, check_range
from ..errors import InputError

__all__ = [
    "RECON_OUTLINE",
    "bounding_box",
    "cluster_centre",
    "crop_window",
    "orthogonal_slices",
    "select_tilts",
    "tilt_montage",
]

RECON_OUTLINE = "#ff7f0e"


# --------------------------------------------------------------------------
# picking and cropping
# --------------------------------------------------------------------------


def select_tilts(angles_deg: np.ndarray, wanted_deg: Sequence[float] = (-40.0, -20.0, 0.0, 20.0, 40.0)) -> np.ndarray:
    """Indices of the tilts nearest to ``wanted_deg``, without repeats, in order of angle.

    Parameters
    ----------
    angles_deg : (n,) ndarray
        Tilt angles of a series (degrees).
    wanted_deg : sequence of float, optional

    Returns
    -------
    (k,) ndarray of int
        ``k <= len(wanted_deg)`` indices into ``angles_deg``.
    """
    angles = check_angles(angles_deg, "angles_deg")
    idx = {int(np.argmin(np.abs(angles - w))) for w in wanted_deg}
    return np.array(sorted(idx, key=lambda k: angles[k]), dtype=int)


def bounding_box(mask: np.ndarray, *, margin: int | Sequence[int] = 0) -> tuple[slice, ...]:
    """Slices of the smallest box holding every true voxel of ``mask``, grown by ``margin``.

    The whole array when ``mask`` holds no true value.

    Parameters
    ----------
    mask : ndarray of bool
    margin : int or sequence of int, optional
        Voxels added on each side (one per axis, or one for all), clipped to the array.

    Returns
    -------
    tuple of slice
    """
    mask = np.asarray(mask, dtype=bool)
    margins = np.broadcast_to(np.asarray(margin, dtype=int), (mask.ndim,))
    if not mask.any():
        return tuple(slice(0, n) for n in mask.shape)
    out = []
    for axis, (n, m) in enumerate(zip(mask.shape, margins, strict=True)):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        out.append(slice(max(int(hit[0]) - int(m), 0), min(int(hit[-1]) + int(m) + 1, n)))
    return tuple(out)


def crop_window(
    images: np.ndarray, *, margin_px: int = 8, min_px: int = 32, max_px: int = 160
) -> tuple[slice, slice]:
    """``(y, x)`` slices of the bright object common to a stack of images.

    The mean image is smoothed (Gaussian, 3 px), thresholded with Otsu's
    method and its foreground boxed with ``margin_px``; each side is then
    widened to at least ``min_px`` and cut to at most ``max_px`` around the
    box centre, within the image (BM3D's cost grows with the area, so the
    window bounds it).

    Parameters
    ----------
    images : (n, ny, nx) or (ny, nx) ndarray
    margin_px, min_px, max_px : int, optional

    Returns
    -------
    (slice, slice)
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    check_range((min_px, max_px), "(min_px, max_px)")
    stack = np.asarray(images, dtype=np.float64)
    mean = stack.reshape((-1,) + stack.shape[-2:]).mean(axis=0)
    smooth = ndimage.gaussian_filter(mean, 3.0)
    mask = smooth > threshold_otsu(smooth) if np.ptp(smooth) > 0 else np.ones_like(smooth, dtype=bool)
    box = bounding_box(mask, margin=margin_px)
    out = []
    for s, n in zip(box, mean.shape, strict=True):
        length = int(np.clip(s.stop - s.start, min(min_px, n), min(max_px, n)))
        start = int(np.clip((s.start + s.stop) // 2 - length // 2, 0, n - length))
        out.append(slice(start, start + length))
    return out[0], out[1]


def cluster_centre(mask: np.ndarray) -> tuple[int, ...]:
    """Voxel index nearest to the centre of mass of ``mask`` (the array's middle if it is empty)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return tuple(n // 2 for n in mask.shape)
    idx = np.nonzero(mask)
    return tuple(round(float(np.mean(i))) for i in idx)


# --------------------------------------------------------------------------
# tilt series
# --------------------------------------------------------------------------


def _limits(image: np.ndarray, low: float = 0.5, high: float = 99.5) -> tuple[float, float]:
    finite = np.asarray(image, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [low, high])
    return float(lo), float(hi if hi > lo else lo + 1.0)


def _scale_bar(ax, length_nm: float, extent: tuple[float, float, float, float], *, colour: str = "w") -> None:
    """A horizontal bar of ``length_nm`` in the lower left of an image drawn with ``extent`` (nm)."""
    x0, x1, y0, y1 = extent
    width, height = abs(x1 - x0), abs(y1 - y0)
    xs = min(x0, x1) + 0.06 * width
    ys = max(y0, y1) - 0.08 * height
    ax.plot([xs, xs + length_nm], [ys, ys], "-", color=colour, lw=3, solid_capstyle="butt")
    ax.text(xs + length_nm / 2, ys - 0.03 * height, f"{length_nm:g} nm", color=colour, ha="center", va="bottom",
            fontsize=8)


def _nice_length(span_nm: float) -> float:
    """A round length near a fifth of ``span_nm``."""
    target = max(span_nm / 5.0, 1e-9)
    p = 10.0 ** math.floor(math.log10(target))
    return float(min((1, 2, 5, 10), key=lambda m: abs(m * p - target)) * p)


def tilt_montage(
    raw: np.ndarray,
    denoised: np.ndarray,
    angles_deg: np.ndarray,
    *,
    pixel_size_nm: float,
    title: str | None = None,
) -> Figure:
    """Raw and denoised images of a tilt series, one column per tilt.

    Each image gets its own grey scale (0.5-99.5 percentiles) so shot noise
    and structure read alike at every tilt; a scale bar sits in the first
    panel of each row.

    Parameters
    ----------
    raw, denoised : (n, ny, nx) ndarray
        The same ``n`` images before and after denoising.
    angles_deg : (n,) ndarray
        Tilt angles (degrees).
    pixel_size_nm : float
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    raw = np.asarray(raw)
    denoised = np.asarray(denoised)
    if raw.ndim != 3 or raw.shape != denoised.shape or raw.shape[0] != len(angles_deg):
        raise InputError(
            f"raw and denoised must be (n, ny, nx) of one shape with n = len(angles_deg), "
            f"got {raw.shape}, {denoised.shape} and {len(angles_deg)} angles"
        )
    n, ny, nx = raw.shape
    panel_in = 2.3
    fig = Figure(figsize=(0.55 + panel_in * n, 0.5 + panel_in * 2 * ny / nx + (0.3 if title else 0.0)),
                 layout="constrained")
    axes = np.atleast_2d(fig.subplots(2, n, squeeze=False))
    extent = (0.0, nx * pixel_size_nm, ny * pixel_size_nm, 0.0)
    bar = _nice_length(nx * pixel_size_nm)
    for row, (stack, label) in enumerate(((raw, "raw counts"), (denoised, "BM3D"))):
        for k in range(n):
            ax = axes[row, k]
            lo, hi = _limits(stack[k])
            ax.imshow(stack[k], cmap="gray", vmin=lo, vmax=hi, extent=extent, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"{float(angles_deg[k]):+.0f}°", fontsize=10)
            if k == 0:
                ax.set_ylabel(label, fontsize=10)
                _scale_bar(ax, bar, extent)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


# --------------------------------------------------------------------------
# orthogonal slices
# --------------------------------------------------------------------------


def _extent(h_nm: np.ndarray, v_nm: np.ndarray) -> tuple[float, float, float, float]:
    """imshow extent (origin lower) of an image whose columns sit at ``h_nm`` and rows at ``v_nm``."""
    dh = float(h_nm[1] - h_nm[0]) if h_nm.size > 1 else 1.0
    dv = float(v_nm[1] - v_nm[0]) if v_nm.size > 1 else 1.0
    return (float(h_nm[0]) - dh / 2, float(h_nm[-1]) + dh / 2, float(v_nm[0]) - dv / 2, float(v_nm[-1]) + dv / 2)


def _section(ax, image, outline, h_nm, v_nm, *, grey_limits, hline=None, vline=None, invert_v=False):
    ax.imshow(image, cmap="gray", vmin=grey_limits[0], vmax=grey_limits[1], origin="lower",
              extent=_extent(h_nm, v_nm), interpolation="nearest", aspect="equal")
    if outline is not None and outline.any() and not outline.all() and min(outline.shape) > 1:
        ax.contour(h_nm, v_nm, outline.astype(float), levels=[0.5], colors=RECON_OUTLINE, linewidths=0.9)
    if hline is not None:
        ax.axhline(hline, color="c", lw=0.6, ls=":")
    if vline is not None:
        ax.axvline(vline, color="c", lw=0.6, ls=":")
    if invert_v:
        ax.invert_yaxis()
    ax.tick_params(labelsize=7, length=2)


def orthogonal_slices(
    volume: np.ndarray,
    binary: np.ndarray,
    truth: np.ndarray | None,
    *,
    z_nm: np.ndarray,
    y_nm: np.ndarray,
    x_nm: np.ndarray,
    centre: tuple[int, int, int] | None = None,
    margin_px: int = 10,
    title: str | None = None,
) -> Figure:
    """xy, xz and yz sections through a point of a reconstruction, beside the true cores.

    Left block: the reconstructed grey values with the outline of ``binary``
    (orange). Right block (when ``truth`` is given): the true cores (white)
    with the same outline. Each block is an orthoview: xy (y down, as an
    image), yz to its right sharing y, xz below sharing x; dotted cyan lines
    mark where the other sections cut. The view is cropped to the binary and
    true voxels plus ``margin_px``.

    Parameters
    ----------
    volume : (nz, ny, nx) ndarray
        Reconstructed grey values.
    binary : (nz, ny, nx) ndarray
        Its binarisation (non-zero = particle).
    truth : (nz, ny, nx) ndarray or None
        True mask on the same grid, or None.
    z_nm, y_nm, x_nm : 1D ndarray
        Coordinates of the grid (nm).
    centre : (iz, iy, ix) tuple of int, optional
        Voxel the sections go through; default :func:`cluster_centre` of ``binary``.
    margin_px : int, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    volume = np.asarray(volume)
    binary = np.asarray(binary) != 0
    if volume.ndim != 3 or binary.shape != volume.shape:
        raise InputError(f"volume and binary must be (z, y, x) of one shape, got {volume.shape} and {binary.shape}")
    if truth is not None:
        truth = np.asarray(truth) != 0
        if truth.shape != volume.shape:
            raise InputError(f"truth must be on the volume's grid {volume.shape}, got {truth.shape}")
    z_nm, y_nm, x_nm = (np.asarray(c, dtype=float) for c in (z_nm, y_nm, x_nm))
    if (z_nm.size, y_nm.size, x_nm.size) != volume.shape:
        raise InputError(f"coordinates of sizes {(z_nm.size, y_nm.size, x_nm.size)} do not fit volume {volume.shape}")
    both = binary | truth if truth is not None else binary
    box = bounding_box(both, margin=margin_px)
    centre = cluster_centre(binary if binary.any() else both) if centre is None else tuple(int(c) for c in centre)
    centre = tuple(int(np.clip(c - s.start, 0, s.stop - s.start - 1)) for c, s in zip(centre, box, strict=True))
    vol, bino = volume[box], binary[box]
    tru = truth[box] if truth is not None else None
    zc, yc, xc = z_nm[box[0]], y_nm[box[1]], x_nm[box[2]]
    iz, iy, ix = centre
    nz, ny, nx = vol.shape
    blocks = [("reconstruction + binary outline", vol, _limits(vol, 0.5, 99.8))]
    if tru is not None:
        blocks.append(("truth (true cores) + binary outline", tru.astype(np.float32), (0.0, 1.0)))
    gap = 0.12 * (nx + nz)
    widths = []
    for k in range(len(blocks)):
        widths += ([gap] if k else []) + [nx, nz]
    width_in = 12.5 if len(blocks) == 2 else 6.5
    height_in = round(width_in * (ny + nz) / sum(widths) + 0.6, 1)
    fig = Figure(figsize=(width_in, height_in))
    grid = fig.add_gridspec(2, len(widths), width_ratios=widths, height_ratios=[ny, nz],
                            left=0.06, right=0.99, bottom=0.07, top=0.9 if title else 0.94, wspace=0.04, hspace=0.04)
    for k, (label, grey, limits) in enumerate(blocks):
        col = 3 * k
        ax_xy = fig.add_subplot(grid[0, col])
        ax_yz = fig.add_subplot(grid[0, col + 1], sharey=ax_xy)
        ax_xz = fig.add_subplot(grid[1, col], sharex=ax_xy)
        _section(ax_xy, grey[iz], bino[iz], xc, yc, grey_limits=limits, hline=yc[iy], vline=xc[ix], invert_v=True)
        _section(ax_yz, grey[:, :, ix].T, bino[:, :, ix].T, zc, yc, grey_limits=limits, vline=zc[iz])
        _section(ax_xz, grey[:, iy, :], bino[:, iy, :], xc, zc, grey_limits=limits, hline=zc[iz])
        ax_xy.set_title(label, fontsize=9, loc="left")
        ax_xy.tick_params(labelbottom=False)
        ax_yz.tick_params(labelleft=False)
        ax_xz.set_xlabel("x (nm)", fontsize=8)
        ax_yz.set_xlabel("z (nm)", fontsize=8)
        if k == 0:
            ax_xy.set_ylabel("y (nm)", fontsize=8)
            ax_xz.set_ylabel("z (nm)", fontsize=8)
        else:
            ax_xz.tick_params(labelleft=False)
            ax_xy.tick_params(labelleft=False)
        note = fig.add_subplot(grid[1, col + 1])
        note.axis("off")
        note.text(0.02, 0.5, f"x = {xc[ix]:.0f}\ny = {yc[iy]:.0f}\nz = {zc[iz]:.0f} nm", fontsize=7,
                  va="center", ha="left", transform=note.transAxes)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
