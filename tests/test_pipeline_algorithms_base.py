"""Algorithm machinery: tolerance, chained runs, the shared helpers of the solvers."""

import numpy as np
import pytest
from _spheres import sphere_counts

from sinter4d.errors import InputError
from sinter4d.operators import LinearOperator
from sinter4d.operators.projector import ParallelProjector
from sinter4d.pipeline.algorithms import SIRT, system_sums
from sinter4d.pipeline.algorithms.base import check_data, initial_iterate, inverse_sums, relative_norm


@pytest.fixture(scope="module")
def spheres():
    return sphere_counts()


def test_tol_stops_early(spheres):
    alg = SIRT(spheres["op"], spheres["counts"], tol=1e-2)
    alg.run(500)
    assert alg.iteration < 500
    assert alg.relative_change < 1e-2


class _Dense(LinearOperator):
    """A projector-like operator without row_sums/column_sums: same matrix on every y slice."""

    def __init__(self, op):
        self.op = op
        self.domain_shape, self.range_shape = op.domain_shape, op.range_shape

    def direct(self, x, out=None):
        return self.op.direct(x, out=out)

    def adjoint(self, y, out=None):
        return self.op.adjoint(y, out=out)


def test_system_sums_from_the_operator_or_from_ones():
    op = ParallelProjector((6, 10), 3, voxel_size_nm=2.0, angles_deg=[-30, 0, 45])
    rows, cols = system_sums(op)
    assert rows.shape == (3, 10) and cols.shape == (6, 10)
    # a voxel whose footprint stays on the detector adds h^2 / d = 2 nm per view: 3 views
    np.testing.assert_allclose(cols[2:4, 3:7], 6.0, rtol=1e-5)
    r2, c2 = system_sums(_Dense(op))
    np.testing.assert_allclose(r2, rows, rtol=1e-5)
    np.testing.assert_allclose(c2, cols, rtol=1e-5)


def test_helpers():
    assert relative_norm(4.0, 16.0) == 0.5
    assert relative_norm(0.0, 0.0) == 0.0 and relative_norm(1.0, 0.0) == np.inf
    inv = inverse_sums(np.array([2.0, 0.0, 1e-9, 4.0]))
    np.testing.assert_array_equal(inv, np.array([0.5, 0.0, 0.0, 0.25], np.float32))
    op = ParallelProjector((4, 6), 2, voxel_size_nm=1.0, angles_deg=[0.0])
    x0 = np.ones(op.domain_shape)
    x = initial_iterate(op, x0)
    assert x.dtype == np.float32 and x is not x0 and not initial_iterate(op, None).any()
    with pytest.raises(InputError, match="domain shape"):
        initial_iterate(op, np.zeros((4, 6, 2)))
    with pytest.raises(InputError, match="range shape"):
        check_data(op, np.zeros((2, 2, 6)))
    with pytest.raises(InputError, match="NaN"):
        check_data(op, np.full(op.range_shape, np.nan))


def test_bad_run_arguments():
    op = ParallelProjector((4, 6), 2, voxel_size_nm=1.0, angles_deg=[0.0])
    b = np.zeros(op.range_shape, np.float32)
    with pytest.raises(InputError, match="tol"):
        SIRT(op, b, tol=-1.0)
    with pytest.raises(InputError, match="n_iter"):
        SIRT(op, b).run(-1)
