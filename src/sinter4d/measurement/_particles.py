"""Split a binarised volume into particles: marker watershed on the distance map.

Cores are close to spheres of known size, so the Euclidean distance to the
background peaks once per core with a value near its radius, and dips at each
neck to about the neck radius. Markers are the h-maxima of that map (h
suppresses the shallow bumps of a rough surface) that are at least
``min_radius_nm`` deep, and markers closer than ``min_separation_nm`` are
joined (two real cores are about a diameter apart). Flooding ``-distance``
from the markers then cuts every neck at its narrowest place.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

from ..checks import as_binary_volume, as_label_volume, check_positive

DEFAULT_CORE_RADIUS_NM = 75.0
"""Expected core radius (nm) that sets the watershed's defaults: the NP-150 cores of the paper."""

_COARSE_RADIUS_VOX = 16
"""Markers are sought on the distance map reduced (block maximum) so that a
core spans about this many voxels in radius; the watershed runs at full size."""


def split_particles(
    binary: np.ndarray,
    *,
    voxel_size_nm: float,
    core_radius_nm: float = DEFAULT_CORE_RADIUS_NM,
    min_radius_nm: float | None = None,
    h_nm: float | None = None,
    min_separation_nm: float | None = None,
) -> np.ndarray:
    """Label the particles of a binarised volume.

    Each connected component of ``binary`` is processed in its own box: the
    Euclidean distance transform (nm) is flooded from markers by a watershed
    (``skimage.segmentation.watershed`` on ``-distance``, face connectivity),
    so touching particles are cut at their necks. Markers are the
    h-maxima of the distance map at least ``min_radius_nm`` deep, sought on
    the map reduced by block maxima to about 16 voxels per core radius (for
    speed; the watershed runs at full size); markers closer than
    ``min_separation_nm`` to a deeper one are joined to it.
    Components holding no marker (shell fragments, noise) are dropped, as are
    regions smaller than half the ball of radius ``min_radius_nm``.

    Parameters
    ----------
    binary : (Z, Y, X) ndarray of 0/1 or bool
        Binarised volume, axes ``(z, y, x)``.
    voxel_size_nm : float
        Edge of a cubic voxel in nm.
    core_radius_nm : float, optional
        Expected core radius in nm (default 75, the paper's NP-150); sets the
        defaults of the three options below.
    min_radius_nm : float, optional
        Smallest particle radius kept: a marker's distance value must reach
        it (default ``0.4 * core_radius_nm``).
    h_nm : float, optional
        Depth in nm by which a maximum must stand above the saddle joining it
        to a higher one to seed a particle (default ``0.1 * core_radius_nm``);
        a pair whose neck radius comes within ``h_nm`` of the smaller core's
        radius is read as one particle.
    min_separation_nm : float, optional
        Markers closer than this are one particle (default
        ``core_radius_nm``, half a diameter).

    Returns
    -------
    labels : (Z, Y, X) ndarray of int32
        0 for background, 1..N for the particles, numbered in the order of
        their first voxel in C order (z, then y, then x).

    Examples
    --------
    >>> import numpy as np
    >>> z, y, x = np.mgrid[:40, :40, :80]
    >>> ball = lambda cx: (z - 20) ** 2 + (y - 20) ** 2 + (x - cx) ** 2 <= 15**2
    >>> binary = (ball(22) | ball(50)).astype(np.uint8)
    >>> int(split_particles(binary, voxel_size_nm=1.0, core_radius_nm=15).max())
    2
    """
    mask = as_binary_volume(binary)
    vox = check_positive(voxel_size_nm, "voxel_size_nm")
    core = check_positive(core_radius_nm, "core_radius_nm")
    r_min = check_positive(0.4 * core if min_radius_nm is None else min_radius_nm, "min_radius_nm")
    h = check_positive(0.1 * core if h_nm is None else h_nm, "h_nm")
    sep = check_positive(core if min_separation_nm is None else min_separation_nm, "min_separation_nm", allow_zero=True)

    components, n_comp = ndi.label(mask)
    out = np.zeros(mask.shape, dtype=np.int32)
    if n_comp == 0:
        return out
    sizes = np.bincount(components.ravel(), minlength=n_comp + 1)
    min_voxels = 0.5 * (4.0 / 3.0) * np.pi * (r_min / vox) ** 3
    next_label = 1
    for comp, box in enumerate(ndi.find_objects(components), start=1):
        if box is None or sizes[comp] < min_voxels:
            continue
        box = _pad_box(box, mask.shape, 1)
        sub = components[box] == comp
        regions = _split_component(sub, vox=vox, r_min=r_min, h=h, sep=sep, core=core)
        n = int(regions.max())
        if n == 0:
            continue
        region_sizes = np.bincount(regions.ravel(), minlength=n + 1)
        keep = region_sizes >= min_voxels
        keep[0] = False
        new_ids = np.zeros(n + 1, dtype=np.int32)
        new_ids[keep] = np.arange(next_label, next_label + keep.sum(), dtype=np.int32)
        next_label += int(keep.sum())
        view = out[box]
        view[sub] = new_ids[regions[sub]]
    return _renumber_c_order(out)


def _pad_box(box: tuple[slice, ...], shape: tuple[int, ...], pad: int) -> tuple[slice, ...]:
    """A bounding box grown by ``pad`` voxels on every side, clipped to ``shape``."""
    return tuple(slice(max(s.start - pad, 0), min(s.stop + pad, n)) for s, n in zip(box, shape, strict=True))


def _split_component(sub: np.ndarray, *, vox: float, r_min: float, h: float, sep: float, core: float) -> np.ndarray:
    """Watershed of one connected component; returns int32 region ids 0..n."""
    dist = ndi.distance_transform_edt(sub, sampling=vox)
    f = max(int(core / vox / _COARSE_RADIUS_VOX), 1)
    coarse = _markers(_block_max(dist, f), r_min=r_min, h=h, sep=sep / (vox * f))
    if coarse.max() == 0:
        return np.zeros(sub.shape, dtype=np.int32)
    markers = coarse.repeat(f, 0).repeat(f, 1).repeat(f, 2)[: sub.shape[0], : sub.shape[1], : sub.shape[2]]
    markers = np.where(sub, markers, 0)
    return watershed(-dist, markers, mask=sub, connectivity=1).astype(np.int32)


def _block_max(arr: np.ndarray, f: int) -> np.ndarray:
    """Maximum over blocks of ``f`` voxels a side (the array is zero-padded to fit)."""
    if f == 1:
        return arr
    pad = [(0, (-n) % f) for n in arr.shape]
    a = np.pad(arr, pad)
    nz, ny, nx = (n // f for n in a.shape)
    return a.reshape(nz, f, ny, f, nx, f).max(axis=(1, 3, 5))


def _markers(dist: np.ndarray, *, r_min: float, h: float, sep: float) -> np.ndarray:
    """Marker image from the h-maxima of ``dist``, deep enough, joined when close.

    ``sep`` is in voxels of ``dist``. Returns int32 marker ids 1..n (0 elsewhere).
    """
    peaks, n = ndi.label(h_maxima(dist, h))
    if n == 0:
        return np.zeros(dist.shape, dtype=np.int32)
    index = np.arange(1, n + 1)
    height = np.asarray(ndi.maximum(dist, peaks, index))
    where = np.asarray(ndi.center_of_mass(np.ones_like(dist), peaks, index)).reshape(n, 3)
    order = np.argsort(-height, kind="stable")
    final = np.zeros(n + 1, dtype=np.int32)
    kept: list[int] = []
    for i in order:
        if height[i] < r_min:
            continue
        near = [k for k in kept if np.linalg.norm(where[k] - where[i]) < sep]
        if near:
            final[i + 1] = final[near[0] + 1]
        else:
            kept.append(i)
            final[i + 1] = len(kept)
    return final[peaks]


def _renumber_c_order(labels: np.ndarray) -> np.ndarray:
    """Renumber labels 1..N by the C-order position of their first voxel."""
    boxes = ndi.find_objects(labels)
    present, first = [], []
    for k, box in enumerate(boxes, start=1):
        if box is None:
            continue
        z0 = box[0].start
        plane = labels[z0, box[1], box[2]] == k
        iy, ix = np.unravel_index(int(np.argmax(plane)), plane.shape)
        present.append(k)
        first.append(np.ravel_multi_index((z0, iy + box[1].start, ix + box[2].start), labels.shape))
    if not present:
        return labels
    lut = np.zeros(len(boxes) + 1, dtype=np.int32)
    lut[np.asarray(present)[np.argsort(first)]] = np.arange(1, len(present) + 1, dtype=np.int32)
    return lut[labels]


def particle_centres_nm(
    labels: np.ndarray,
    *,
    voxel_size_nm: float,
    origin_nm: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> np.ndarray:
    """Centre of mass of each labelled particle (constant density).

    Parameters
    ----------
    labels : (Z, Y, X) ndarray of int
        Particle labels 1..N (0 = background), e.g. from :func:`split_particles`.
    voxel_size_nm : float
        Edge of a cubic voxel in nm.
    origin_nm : (3,) tuple of float, optional
        ``(z, y, x)`` in nm of the centre of voxel ``(0, 0, 0)``; with a
        :class:`~sinter4d.phantom.Grid` use ``[c[0] for c in grid.coords_nm()]``.

    Returns
    -------
    (N, 3) ndarray
        Row ``k - 1`` holds ``(z, y, x)`` in nm of label ``k``; NaN for a
        label with no voxel.
    """
    lab = as_label_volume(labels)
    vox = check_positive(voxel_size_nm, "voxel_size_nm")
    n = int(lab.max()) if lab.size else 0
    if n == 0:
        return np.zeros((0, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        com = np.asarray(ndi.center_of_mass(lab > 0, lab, np.arange(1, n + 1)), dtype=float)
    return com.reshape(n, 3) * vox + np.asarray(origin_nm, dtype=float)
