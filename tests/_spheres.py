"""Sphere phantoms shared by the reconstruction tests (solvers, callbacks, reconstruct())."""

import numpy as np

from sinter4d.operators.projector import ParallelProjector
from sinter4d.pipeline.binarize import dice, threshold_binary

LIMITED = np.arange(-40, 41, 2.0)  # the paper's tilt series


def sphere_volume(nz, n, centres):
    """``(nz, n, n)`` float32 volume, 1 inside the spheres ``(cz, cy, cx, r)`` (voxels from the middle)."""
    z = (np.arange(nz) - (nz - 1) / 2)[:, None, None]
    y = (np.arange(n) - (n - 1) / 2)[None, :, None]
    x = (np.arange(n) - (n - 1) / 2)[None, None, :]
    vol = np.zeros((nz, n, n), np.float32)
    for cz, cy, cx, r in centres:
        vol[(z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r * r] = 1.0
    return vol


def sphere_counts():
    """Five spheres (radius 6-10 voxels of 4 nm) in a 40 x 64 x 64 slab; +-40 deg, ~6 counts/px."""
    h = 4.0
    truth = sphere_volume(
        40, 64, [(-3, -14, -14, 9), (-5, 12, -10, 7), (-6, -10, 14, 6), (-2, 10, 13, 10), (-6, 0, 0, 6)]
    )
    op = ParallelProjector((40, 64), 64, voxel_size_nm=h, angles_deg=LIMITED)
    p = op.direct(truth)
    rng = np.random.default_rng(1)
    counts = rng.poisson(6.0 * p / (16 * h) + 0.3).astype(np.float32)  # 6 counts at a 16-voxel chord
    return {"h": h, "truth": truth > 0.5, "op": op, "counts": counts}


def sphere_dice(vol, s):
    """Dice of ``vol`` binarised against the true spheres of ``s`` (from :func:`sphere_counts`)."""
    return dice(threshold_binary(vol, radius_nm=s["h"], voxel_size_nm=s["h"]), s["truth"])
