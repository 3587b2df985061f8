"""Binarise a reconstruction: a global threshold, then a morphological opening.

The paper binarises with Otsu's method and then "erodes and dilates" to even
out the texture the reconstruction leaves (Ihara et al. 2023, Fig. 4). Erosion
followed by dilation with the same ball is an *opening*: it removes specks
and spurs thinner than the ball and keeps larger bodies; it does not fill
holes (that would be a closing, which this module does not apply).

The opening is computed exactly for a Euclidean ball from two distance
transforms (erosion keeps voxels farther than ``r`` from the background;
dilation grows the result by ``r``), so its cost does not grow with the
radius; the transforms are seung-lab's ``edt`` (exact, multithreaded;
Felzenszwalb & Huttenlocher's algorithm, doi:10.4086/toc.2012.v008a019) on
the specimen's bounding box only. Voxels outside the array count as neither
foreground nor background: a particle cut by the slab face is not eroded
from that face.
"""

from __future__ import annotations

import edt
import numpy as np

from .._cores import available_cores
from ..checks import check_choice, check_positive
from ..errors import InputError

__all__ = ["dice", "threshold_binary"]

THRESHOLD_METHODS = ("otsu", "li", "yen", "isodata")

#: Bins of the histogram that Otsu's, Yen's and the isodata threshold are computed on. They span
#: the volume's whole value range, which a few bright voxels can stretch to tens of times the
#: specimen's values; scikit-image's default of 256 then puts the threshold on a grid as coarse
#: as a third of it (docs/validation.md, "Binarisation threshold"). With 2**16 the grid is far
#: below the threshold's own spread; a histogram costs the same with any number of bins.
THRESHOLD_BINS = 2**16


def _threshold(values: np.ndarray, method: str) -> float:
    from skimage import filters

    if method == "li":  # iterative on the values themselves: no histogram
        return float(filters.threshold_li(values))
    func = {
        "otsu": filters.threshold_otsu,
        "yen": filters.threshold_yen,
        "isodata": filters.threshold_isodata,
    }[method]
    with np.errstate(divide="ignore", invalid="ignore"):  # isodata divides by empty bins' counts
        return float(func(values, nbins=THRESHOLD_BINS))


#: Voxels per block of the distance transforms (``edt`` keeps a float32 per voxel: ~0.5 GB).
BLOCK_VOXELS = 2**27


def _opening(mask: np.ndarray, radius_vox: float, *, threads: int | None = None) -> np.ndarray:
    """Opening of a boolean volume by a Euclidean ball of radius ``radius_vox`` voxels.

    Each transform runs on the bounding box of what it can change: the
    erosion on the foreground's box grown by one voxel (the nearest
    background of a voxel inside it lies in that box: clamping a point to a
    box holding the voxel brings it no farther), the dilation on the eroded
    set's box grown by the radius. Outside them the answer is known (no
    foreground; nothing within reach), so the result is that of the whole
    volume at the cost of the specimen's box.
    """
    if not mask.any() or mask.all():
        return mask
    threads = available_cores() if threads is None else threads
    out = np.zeros(mask.shape, bool)
    box = _box(mask, 1)
    # erosion: foreground voxels farther than radius_vox from every background voxel
    eroded = ~_within(~mask[box], radius_vox, threads)
    if not eroded.any():
        return out
    # dilation: voxels within radius_vox of the eroded set
    full = np.zeros(mask.shape, bool)
    full[box] = eroded
    box = _box(full, int(np.ceil(radius_vox)))
    out[box] = _within(full[box], radius_vox, threads)
    return out


def _box(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    """The bounding box of a non-empty mask's True voxels, grown by ``margin`` within the array."""
    box = []
    for axis in range(mask.ndim):
        hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(max(0, hit[0] - margin), min(mask.shape[axis], hit[-1] + 1 + margin)))
    return tuple(box)


def _within(seeds: np.ndarray, radius_vox: float, threads: int = 1) -> np.ndarray:
    """Voxels within ``radius_vox`` of a ``seeds`` voxel (Euclidean; the array's faces are no seed).

    The squared distance transform (``edt``, exact, multithreaded) runs
    block by block along the longest axis, each block with
    ``ceil(radius_vox) + 1`` slices of its neighbours: a seed nearer than
    the radius is always inside that margin, so the result is that of one
    transform of the whole volume at a fraction of its memory.
    """
    axis = int(np.argmax(seeds.shape))
    n = seeds.shape[axis]
    per_slice = seeds.size // n
    block = max(1, BLOCK_VOXELS // max(per_slice, 1))
    halo = int(np.ceil(radius_vox)) + 1
    r2 = float(radius_vox) ** 2
    out = np.empty(seeds.shape, bool)
    for start in range(0, n, block):
        stop = min(start + block, n)
        lo, hi = max(0, start - halo), min(n, stop + halo)
        part = np.ascontiguousarray(np.take(seeds, np.arange(lo, hi), axis=axis))
        if part.any():
            near = edt.edtsq(~part, parallel=threads) <= r2
        else:  # no seed in reach
            near = np.zeros(part.shape, bool)
        near = np.take(near, np.arange(start - lo, stop - lo), axis=axis)
        index = [slice(None)] * seeds.ndim
        index[axis] = slice(start, stop)
        out[tuple(index)] = near
    return out


def threshold_binary(
    volume: np.ndarray,
    *,
    method: str = "otsu",
    radius_nm: float = 0.0,
    voxel_size_nm: float = 1.0,
    threshold: float | None = None,
    level: float = 1.0,
) -> np.ndarray:
    """Binarise a grey-value volume: global threshold, then opening by a ball.

    Parameters
    ----------
    volume : (nz, ny, nx) ndarray
        Reconstructed grey values (any real dtype).
    method : {'otsu', 'li', 'yen', 'isodata'}, optional
        Global threshold from ``skimage.filters`` (the paper: Otsu).
        Ignored when ``threshold`` is given.
    radius_nm : float, optional
        Radius of the ball for the opening (erosion then dilation), nm;
        a radius below half a voxel means no opening.
    voxel_size_nm : float, optional
        Voxel edge, nm.
    threshold : float, optional
        Use this grey value instead of computing one.
    level : float, optional
        Scale of the computed threshold (1: the method's own; the
        setting ``binarize_level``). Ignored when ``threshold`` is given.

    Returns
    -------
    (nz, ny, nx) uint8 ndarray
        1 inside the specimen, 0 outside.

    References
    ----------
    .. [1] N. Otsu, "A threshold selection method from gray-level
       histograms", IEEE Trans. Syst. Man Cybern. 9, 62–66 (1979).
       doi:10.1109/TSMC.1979.4310076

    Examples
    --------
    >>> import numpy as np
    >>> v = np.zeros((8, 8, 8), np.float32); v[2:6, 2:6, 2:6] = 1.0
    >>> int(threshold_binary(v).sum())
    64
    >>> int(threshold_binary(v, radius_nm=1.0, voxel_size_nm=1.0).sum())  # corners and edges go
    32
    """
    check_choice(method, "method", THRESHOLD_METHODS)
    radius = check_positive(radius_nm, "radius_nm", allow_zero=True)
    scale = check_positive(level, "level")
    voxel = check_positive(voxel_size_nm, "voxel_size_nm")
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise InputError(f"volume must be (nz, ny, nx), got shape {vol.shape}")
    if not np.all(np.isfinite(vol)):
        raise InputError("volume holds NaN or infinite values")
    if threshold is None:
        if float(vol.min()) == float(vol.max()):
            return np.zeros(vol.shape, np.uint8)
        threshold = scale * _threshold(vol, method)
    mask = vol > threshold
    r = radius / voxel
    if r >= 0.5:
        mask = _opening(mask, r)
    return mask.astype(np.uint8)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Sørensen–Dice coefficient ``2 |a & b| / (|a| + |b|)`` of two binary volumes.

    Parameters
    ----------
    a, b : ndarray
        Same shape; non-zero means foreground.

    Returns
    -------
    float
        In [0, 1]; 1 when both are empty.
    """
    a = np.asarray(a) != 0
    b = np.asarray(b) != 0
    if a.shape != b.shape:
        raise InputError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(a & b)) / total
