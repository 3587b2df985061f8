"""Neighbouring particles: those sharing a boundary (a neck) or closer than a gap."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ..checks import as_label_volume, check_positive
from ._particles import _pad_box

DEFAULT_MAX_GAP_NM = 20.0
"""Largest surface gap (nm) for two particles to be a pair: two shell thicknesses, which the NP-10
shell, invisible after binarisation, can already bridge (paper, Fig. 9)."""


def find_pairs(labels: np.ndarray, *, voxel_size_nm: float, max_gap_nm: float = DEFAULT_MAX_GAP_NM) -> np.ndarray:
    """Pairs of neighbouring particles.

    Two particles are neighbours when they share a face (the watershed cut
    through a neck) or when the gap between their surfaces, measured between
    voxel faces, is at most ``max_gap_nm``. The default 20 nm is two shell
    thicknesses: the NP-10 shell, invisible after binarisation, can already
    bridge such a gap (paper, Fig. 9).

    Parameters
    ----------
    labels : (Z, Y, X) ndarray of int
        Particle labels 1..N (0 = background), e.g. from
        :func:`~sinter4d.measurement.split_particles`.
    voxel_size_nm : float
        Edge of a cubic voxel in nm.
    max_gap_nm : float, optional
        Largest surface gap in nm for two particles to count as neighbours
        (0 keeps only touching ones).

    Returns
    -------
    (M, 2) ndarray of int64
        Label values ``(a, b)`` with ``a < b``, sorted by ``a`` then ``b``.
    """
    pairs, _ = neighbour_gaps(labels, voxel_size_nm=voxel_size_nm, max_gap_nm=max_gap_nm)
    return pairs


def neighbour_gaps(
    labels: np.ndarray, *, voxel_size_nm: float, max_gap_nm: float = DEFAULT_MAX_GAP_NM
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbouring pairs and the surface gap between them.

    Parameters
    ----------
    labels : (Z, Y, X) ndarray of int
        Particle labels 1..N (0 = background).
    voxel_size_nm : float
        Edge of a cubic voxel in nm.
    max_gap_nm : float, optional
        Largest gap kept, nm.

    Returns
    -------
    pairs : (M, 2) ndarray of int64
        As :func:`find_pairs`.
    gap_nm : (M,) ndarray
        Gap between the two particles' voxel faces in nm: 0 for particles
        that share a face, otherwise (shortest distance between voxel
        centres − one voxel), so a gap is exact along an axis.
    """
    lab = as_label_volume(labels)
    vox = check_positive(voxel_size_nm, "voxel_size_nm")
    gap_max = check_positive(max_gap_nm, "max_gap_nm", allow_zero=True)
    reach = int(np.ceil(gap_max / vox)) + 1
    found: dict[tuple[int, int], float] = {}
    for a, box in enumerate(ndi.find_objects(lab), start=1):
        if box is None:
            continue
        box = _pad_box(box, lab.shape, reach)
        sub = lab[box]
        others = (sub > a)
        if not others.any():
            continue
        dist = ndi.distance_transform_edt(sub != a)
        near = others & (dist <= gap_max / vox + 1.0 + 1e-9)
        if not near.any():
            continue
        b_vals = sub[near]
        d_vals = dist[near]
        order = np.lexsort((d_vals, b_vals))
        b_sorted, first = np.unique(b_vals[order], return_index=True)
        for b, d in zip(b_sorted, d_vals[order][first], strict=True):
            found[(a, int(b))] = max(float(d) - 1.0, 0.0) * vox
    if not found:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    keys = sorted(found)
    return np.asarray(keys, dtype=np.int64), np.asarray([found[k] for k in keys])
