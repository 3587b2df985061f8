"""Chambolle–Pock: the objective it decreases, and TV denoising when A = I."""

import numpy as np
import pytest
from _spheres import sphere_counts, sphere_volume

from sinter4d.operators import LinearOperator
from sinter4d.pipeline.algorithms import ChambollePock
from sinter4d.pipeline.callbacks import ObjectiveCallback
from sinter4d.pipeline.functions import LeastSquares, NonNegativity, TotalVariation, tv_value
from sinter4d.pipeline.reconstruct import tv_weight_rule


@pytest.fixture(scope="module")
def spheres():
    return sphere_counts()


def test_chambolle_pock_objective_decreases_and_nonneg(spheres):
    op, b = spheres["op"], spheres["counts"]
    lam = tv_weight_rule(b, op)
    alg = ChambollePock(op, b, tv_weight=lam)
    start = alg.objective()
    rec = ObjectiveCallback(interval=10)
    alg.run(150, callbacks=[rec])
    values = np.array([v for _, v in rec.values])
    assert values[0] < 0.5 * start
    assert np.all(np.diff(values) < 0)  # PDHG is not monotone per step, but is every 10 here
    assert alg.x.min() >= 0
    # the objective is what it says
    expected = LeastSquares(op, b)(alg.x) + TotalVariation(lam)(alg.x) + NonNegativity()(alg.x)
    assert alg.objective() == pytest.approx(expected, rel=1e-5)


class _Identity(LinearOperator):
    def __init__(self, shape):
        self.domain_shape = self.range_shape = shape

    def direct(self, x, out=None):
        return np.copyto(out, x) or out if out is not None else x.astype(np.float32, copy=True)

    def adjoint(self, y, out=None):
        return self.direct(y, out)


def test_chambolle_pock_solves_tv_denoising():
    """With A = I the problem is TV denoising: CP and the FGP proximal map agree."""
    rng = np.random.default_rng(4)
    clean = sphere_volume(8, 16, [(0, 0, 0, 5)])
    noisy = (clean + 0.3 * rng.standard_normal(clean.shape)).astype(np.float32)
    lam = 0.3
    u_prox = TotalVariation(lam, nonneg=True).proximal(noisy, 1.0, n_iter=200)
    u_cp = ChambollePock(_Identity(noisy.shape), noisy, tv_weight=lam, balance=1.0).run(300)
    assert np.abs(u_cp - u_prox).max() < 0.01  # measured 0.004 (both within 0.005 of the limit)
    assert u_cp.min() >= 0 and u_prox.min() >= 0
    assert tv_value(u_cp) < tv_value(noisy)


def test_chambolle_pock_rejects_bad_settings(spheres):
    with pytest.raises(ValueError, match="tv_weight"):
        ChambollePock(spheres["op"], spheres["counts"], tv_weight=-1.0)
    with pytest.raises(ValueError, match="balance"):
        ChambollePock(spheres["op"], spheres["counts"], tv_weight=1.0, balance=0.0)
