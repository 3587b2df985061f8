"""Total variation: exact values, the fused kernels against their composition, the proximal map."""

import math

import numpy as np
import pytest

from sinter4d.errors import InputError
from sinter4d.operators import Gradient
from sinter4d.pipeline.functions.total_variation import (
    TotalVariation,
    dual_ball_step,
    primal_divergence_step,
    tv_gradient,
    tv_value,
)


def test_tv_of_piecewise_constant():
    # a step of height c across a full (nz, ny) face: TV = c * nz * ny
    x = np.zeros((3, 5, 8), np.float32)
    x[:, :, 4:] = 2.0
    assert tv_value(x) == pytest.approx(2.0 * 3 * 5)
    # one bright interior voxel: sqrt(3) at itself, 1 at each of its 3 lower neighbours
    x = np.zeros((5, 5, 5), np.float32)
    x[2, 2, 2] = 1.0
    assert tv_value(x) == pytest.approx(math.sqrt(3) + 3, rel=1e-6)
    # a cube of side 4: the 3 low faces give 16 unit differences each; on the high side a
    # voxel with m of its indices on the last layer combines m unit differences into sqrt(m)
    x = np.zeros((8, 8, 8), np.float32)
    x[2:6, 2:6, 2:6] = 1.0
    expected = 3 * 16 + 27 * 1 + 9 * math.sqrt(2) + math.sqrt(3)
    assert tv_value(x) == pytest.approx(expected, rel=1e-6)
    assert tv_value(3 * x) == pytest.approx(3 * expected, rel=1e-6)


def test_tv_gradient_matches_composition():
    rng = np.random.default_rng(1)
    for shape in [(6, 7, 8), (1, 9, 5), (3, 1, 4)]:
        x = rng.random(shape).astype(np.float32)
        out = np.empty_like(x)
        eps = 0.05
        n2 = tv_gradient(x, out, eps=eps)
        op = Gradient(shape)
        g = op.direct(x)
        ref = op.adjoint((g / np.sqrt((g**2).sum(0) + eps**2)).astype(np.float32))
        np.testing.assert_allclose(out, ref, atol=2e-6)
        assert n2 == pytest.approx(float((ref.astype(np.float64) ** 2).sum()), rel=1e-5)
    # it is the derivative of the smoothed TV: check a finite difference
    x = rng.random((4, 5, 6)).astype(np.float64).astype(np.float32)
    out = np.empty_like(x)
    tv_gradient(x, out, eps=0.1)
    d = rng.standard_normal(x.shape).astype(np.float32)
    t = 1e-2
    fd = (tv_value(x + t * d, eps=0.1) - tv_value(x - t * d, eps=0.1)) / (2 * t)
    assert fd == pytest.approx(float(np.vdot(out, d)), rel=1e-3)


def test_tv_gradient_rejects_aliasing_and_bad_dtype():
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="different array"):
        tv_gradient(x, x, eps=0.1)
    with pytest.raises(ValueError, match="float32"):
        tv_gradient(x.astype(np.float64), np.empty_like(x), eps=0.1)


def test_dual_ball_and_primal_step():
    rng = np.random.default_rng(2)
    x = rng.random((3, 4, 5)).astype(np.float32)
    p = np.zeros((3, *x.shape), np.float32)
    dual_ball_step(p, x, sigma=10.0, radius=0.5)
    mag = np.sqrt((p**2).sum(0))
    assert mag.max() <= 0.5 + 1e-6
    g = Gradient(x.shape).direct(x)
    small = np.sqrt((10 * g) ** 2).sum(0) <= 0.5
    np.testing.assert_allclose(p[:, small], 10 * g[:, small], atol=1e-6)
    # primal step with tau: x_new = max(x - tau (A^T q + grad^T p), 0), x_bar = 2 x_new - x
    atq = rng.standard_normal(x.shape).astype(np.float32)
    tau = np.full((x.shape[0], x.shape[2]), 0.1, np.float32)
    expect = np.maximum(x - 0.1 * (atq + Gradient(x.shape).adjoint(p)), 0)
    x_old = x.copy()
    gbuf = atq.copy()
    d2, n2 = primal_divergence_step(x, gbuf, p, tau, theta=1.0, nonneg=True)
    np.testing.assert_allclose(x, expect, atol=1e-6)
    np.testing.assert_allclose(gbuf, 2 * expect - x_old, atol=1e-6)
    assert d2 == pytest.approx(float(((expect - x_old) ** 2).sum()), rel=1e-5)
    assert n2 == pytest.approx(float((expect**2).sum()), rel=1e-5)


def test_functional_value_and_gradient_scale_with_the_weight():
    x = np.zeros((1, 4, 4), np.float32)
    x[:, :, 2:] = 1.0
    assert TotalVariation(1.0)(x) == 4.0  # a unit step across 4 rows
    assert TotalVariation(2.5)(x.astype(np.float64)) == pytest.approx(10.0)
    rng = np.random.default_rng(6)
    v = rng.random((3, 4, 5)).astype(np.float32)
    ref = np.empty_like(v)
    tv_gradient(v, ref, eps=1e-3)
    np.testing.assert_allclose(TotalVariation(2.0).gradient(v), 2 * ref, rtol=1e-6)


def test_proximal_map():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 6, 5)).astype(np.float32)
    # a zero weight is the identity (and the projection onto x >= 0 with nonneg)
    np.testing.assert_array_equal(TotalVariation(0.0).proximal(x, 1.0), x)
    np.testing.assert_array_equal(TotalVariation(0.0, nonneg=True).proximal(x, 1.0), np.maximum(x, 0))
    # a constant volume has no variation to remove
    c = np.full((3, 4, 5), 1.5, np.float32)
    np.testing.assert_allclose(TotalVariation(1.0).proximal(c, 1.0), c, atol=1e-6)
    # the minimiser of 1/2 ||u - x||^2 + tau w TV(u): lower than at x and at nearby points
    tv = TotalVariation(0.2)
    u = tv.proximal(x, 1.0, n_iter=300)

    def energy(v):
        return 0.5 * float(((v - x).astype(np.float64) ** 2).sum()) + tv(v)

    assert energy(u) < energy(x)
    for seed in range(3):
        d = np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)
        assert energy(u) <= energy(u + 1e-2 * d) + 1e-4
    # the mean is kept (the divergence of the dual sums to zero)
    assert float(u.mean()) == pytest.approx(float(x.mean()), abs=1e-5)


def test_bad_settings_and_volumes():
    with pytest.raises(InputError, match="weight"):
        TotalVariation(-1.0)
    with pytest.raises(InputError, match="smoothing"):
        TotalVariation(1.0, smoothing=0.0)
    with pytest.raises(InputError, match="volume"):
        TotalVariation(1.0)(np.zeros((4, 4)))
