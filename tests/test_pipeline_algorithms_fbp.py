"""Filtered back-projection: a uniform disk reconstructs to its value over 180 degrees."""

import numpy as np
import pytest

from sinter4d.errors import InputError
from sinter4d.operators.projector import ParallelProjector
from sinter4d.pipeline.algorithms import fbp


@pytest.mark.parametrize("filter, tol", [("ram-lak", 0.01), ("shepp-logan", 0.01), ("hann", 0.02)])
def test_fbp_uniform_disk(filter, tol):
    angles = np.arange(-89.5, 90, 1.0)  # 180 views over 180 deg
    op = ParallelProjector((64, 64), 2, voxel_size_nm=2.0, angles_deg=angles)
    z = (np.arange(64) - 31.5)[:, None, None]
    x = (np.arange(64) - 31.5)[None, None, :]
    r = np.sqrt(z**2 + x**2) * np.ones((1, 2, 1))
    disk = np.where(r <= 20, 2.5, 0.0).astype(np.float32)
    v = fbp(op.direct(disk), op, angles_deg=angles, filter=filter)
    assert v[r < 15].mean() == pytest.approx(2.5, rel=tol)
    assert v[r < 15].std() < 0.05 * 2.5
    assert abs(v[(r > 24) & (r < 30)].mean()) < 0.02 * 2.5


def test_fbp_rejects_bad_input():
    b = np.zeros((3, 4, 16), np.float32)
    op = ParallelProjector((4, 16), 4, voxel_size_nm=1.0, angles_deg=[-30, 0, 30])
    with pytest.raises(InputError, match="filter='x' is not a known choice"):
        fbp(b, op, angles_deg=[0, 1, 2], filter="x")
    with pytest.raises(InputError, match="2 angles but the sinogram 3 views"):
        fbp(b, op, angles_deg=[0, 1])
