"""Least squares: value and gradient against the operator applied by hand."""

import numpy as np
import pytest

from sinter4d.errors import InputError
from sinter4d.operators.projector import ParallelProjector
from sinter4d.pipeline.functions import LeastSquares


def test_value_and_gradient():
    op = ParallelProjector((6, 8), 3, voxel_size_nm=1.0, angles_deg=[-20, 10, 40])
    rng = np.random.default_rng(8)
    x = rng.random(op.domain_shape).astype(np.float32)
    b = rng.random(op.range_shape).astype(np.float32)
    f = LeastSquares(op, b)
    r = op.direct(x).astype(np.float64) - b
    assert f(x) == pytest.approx(0.5 * float((r * r).sum()), rel=1e-6)
    np.testing.assert_allclose(f.gradient(x), op.adjoint((op.direct(x) - b).astype(np.float32)), rtol=1e-6)
    # the gradient is the derivative: a central difference along a random direction
    d = rng.standard_normal(x.shape).astype(np.float32)
    t = 1e-2
    fd = (f(x + t * d) - f(x - t * d)) / (2 * t)
    assert fd == pytest.approx(float(np.vdot(f.gradient(x).astype(np.float64), d)), rel=1e-3)


def test_data_shape_is_checked():
    op = ParallelProjector((6, 8), 3, voxel_size_nm=1.0, angles_deg=[0.0])
    with pytest.raises(InputError, match="data must have shape"):
        LeastSquares(op, np.zeros((2, 3, 8)))
