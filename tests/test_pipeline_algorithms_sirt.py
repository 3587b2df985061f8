"""SIRT: monotone decrease of the weighted residual, non-negativity."""

import numpy as np
import pytest
from _spheres import LIMITED, sphere_volume

from sinter4d.errors import InputError
from sinter4d.operators.projector import ParallelProjector
from sinter4d.pipeline.algorithms import SIRT
from sinter4d.pipeline.callbacks import ObjectiveCallback


def test_sirt_converges_on_consistent_data():
    op = ParallelProjector((16, 32), 4, voxel_size_nm=2.0, angles_deg=LIMITED)
    truth = sphere_volume(16, 32, [(0, 0, -6, 5), (2, 0, 7, 4)])[:, 14:18, :].copy()
    b = op.direct(truth)
    rec = ObjectiveCallback()
    alg = SIRT(op, b)
    start = alg.objective()
    alg.run(100, callbacks=[rec])
    values = np.array([v for _, v in rec.values])
    assert np.all(np.diff(values) <= 1e-6 * values[:-1])  # monotone (up to float32 rounding)
    assert values[-1] < 1e-3 * start  # measured 4e-4
    assert alg.x.min() >= 0


def test_sirt_rejects_bad_relaxation():
    b = np.zeros((3, 4, 16), np.float32)
    op = ParallelProjector((4, 16), 4, voxel_size_nm=1.0, angles_deg=[-30, 0, 30])
    with pytest.raises(InputError, match="relaxation"):
        SIRT(op, b, relaxation=2.5)
