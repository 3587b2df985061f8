"""The fine projection grid (``oversample``): projections converge to the closed form as the sub-voxel halves.

A sphere's projection is known exactly: its chord ``2 sqrt(r^2 - rho^2)``
at distance ``rho`` from the centre, here averaged over each detector pixel
on 16 x 16 points. The phantom is voxelised with partial volumes on a grid
``oversample`` times finer than the pixels, projected with the strip
projector, and binned to the pixels, as ``simulate_tilt_series`` does.
"""

import numpy as np
import pytest

from sinter4d.acquisition._tiltseries import _bin_sum
from sinter4d.operators.projector import ParallelProjector
from sinter4d.phantom import Cluster, Grid, voxelize

PIXEL = 4.0  # nm, the quick run's pixel
N, NZ = 24, 16  # output pixels across, along z
RADIUS = 27.3  # nm
CENTRE = np.array([1.3, -2.1, 3.7])  # z, y, x (nm), off the voxel centres
ANGLES = np.array([-40.0, -12.0, 0.0, 25.0, 40.0])


def _sphere() -> Cluster:
    one = lambda v: np.asarray([v], dtype=float)  # noqa: E731
    return Cluster(
        centre_nm=CENTRE[None, :], radius_nm=one(RADIUS), initial_radius_nm=one(RADIUS), aspect_ratio=one(1.0),
        axis=np.array([[0.0, 0.0, 1.0]]), contact=np.zeros((0, 2), int), neck_radius_nm=np.zeros(0),
        shell_centre_nm=np.zeros((0, 3)), shell_radius_nm=np.zeros(0), shell_owner=np.zeros(0, int),
        film_top_nm=-200.0, film_thickness_nm=30.0,
    )


def _projection(oversample: int) -> np.ndarray:
    grid = Grid((NZ * oversample, N * oversample, N * oversample), PIXEL / oversample)
    core = voxelize(_sphere(), grid).core
    fine = ParallelProjector.from_grid(grid, ANGLES).direct(core)
    return np.stack([_bin_sum(p.astype(np.float64), oversample) / oversample**2 for p in fine])


def _closed_form() -> np.ndarray:
    """Pixel-averaged chord length (nm) of the sphere, u = x cos(theta) + z sin(theta)."""
    sub = (np.arange(16) + 0.5) / 16 - 0.5
    centres = (np.arange(N) - (N - 1) / 2) * PIXEL
    y = (centres[:, None] + sub[None, :] * PIXEL).ravel()
    u = y.copy()
    out = np.empty((ANGLES.size, N, N))
    for i, theta in enumerate(np.deg2rad(ANGLES)):
        u0 = CENTRE[2] * np.cos(theta) + CENTRE[0] * np.sin(theta)
        rho2 = (y[:, None] - CENTRE[1]) ** 2 + (u[None, :] - u0) ** 2
        chord = 2.0 * np.sqrt(np.clip(RADIUS**2 - rho2, 0.0, None))
        out[i] = chord.reshape(N, 16, N, 16).mean(axis=(1, 3))
    return out


def test_projection_converges_to_the_closed_form_as_the_sub_voxel_halves():
    exact = _closed_form()
    peak = exact.max()  # 54.6 nm, the diameter
    errors = {ov: np.sqrt(np.mean((_projection(ov) - exact) ** 2)) / peak for ov in (1, 2, 4)}
    # second order: each halving cuts the RMS error ~4x (measured 0.65 %, 0.18 %, 0.05 % of the diameter)
    assert errors[1] / errors[2] > 3.0 and errors[2] / errors[4] > 3.0
    assert errors[2] < 2.5e-3  # the default, oversample 2: RMS 0.25 % of the diameter
    change = np.abs(_projection(2) - _projection(4)).max() / peak
    assert change < 0.015  # halving the default's sub-voxel moves no pixel by 1.5 % of the diameter (measured 1.0 %)


@pytest.mark.parametrize("oversample", [1, 2])
def test_every_oversample_keeps_the_sphere_volume(oversample):
    """Each tilt's image integrates to the sphere's volume (nm^3 / pixel area), the binning keeps it."""
    volume = 4.0 / 3.0 * np.pi * RADIUS**3
    p = _projection(oversample)
    np.testing.assert_allclose(p.sum(axis=(1, 2)) * PIXEL**2, volume, rtol=2e-3)
