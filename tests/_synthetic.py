"""Analytic tilt series shared by the alignment and tilt-axis tests.

Independent of the package's projector: the projection of a sphere is its
chord length, so these tests do not lean on the code they check.
"""

from __future__ import annotations

import numpy as np


def sphere_series(angles_deg, *, shape=(96, 96), drift=None, axis_offset_px=0.0, centre=(0.0, 0.0), seed=0):
    """Noise-free HAADF-like tilt series of 7 spheres: background + chord lengths (analytic).

    Spheres have radii 5-11 px.

    The spheres' mass centre is at ``centre`` = (x, z) px from the tilt axis,
    which projects to column ``(nx - 1) / 2 + axis_offset_px``; image k's
    content is displaced by ``drift[k]`` = (dy, dx) px. Mean ~5.5 e-/px.
    """
    ny, nx = shape
    c, r = sphere_layout(seed, centre)
    theta = np.deg2rad(angles_deg)
    drift = np.zeros((theta.size, 2)) if drift is None else np.asarray(drift)
    yy, xx = np.mgrid[:ny, :nx]
    out = np.zeros((theta.size, ny, nx))
    for k, t in enumerate(theta):
        for (x, y, z), rad in zip(c, r):
            u = x * np.cos(t) + z * np.sin(t) + (nx - 1) / 2 + axis_offset_px + drift[k, 1]
            v = y + (ny - 1) / 2 + drift[k, 0]
            out[k] += 2 * np.sqrt(np.clip(rad**2 - (xx - u) ** 2 - (yy - v) ** 2, 0, None))
    return 4.0 + 0.6 * out


def sphere_layout(seed=0, centre=(0.0, 0.0)):
    """The spheres of :func:`sphere_series`: centres ``(x, y, z)`` px (x and z from the tilt axis, y from
    the middle row) and radii px."""
    rng = np.random.default_rng(seed)
    r = rng.uniform(5, 11, 7)
    c = np.column_stack([rng.uniform(-28, 28, 7), rng.uniform(-28, 28, 7), rng.uniform(-14, 14, 7)])  # x, y, z
    c -= (r**3 / (r**3).sum()) @ c * np.array([1, 0, 1])
    c[:, 0] += centre[0]
    c[:, 2] += centre[1]
    return c, r
