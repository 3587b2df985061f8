"""ParallelProjector: adjointness, analytic projections, geometry convention, ASTRA agreement."""

from __future__ import annotations

import numpy as np
import pytest

from sinter4d.errors import InputError
from sinter4d.operators import ParallelProjector, dot_test


def _disk_fraction(nz, nx, h, radius, centre_zx=(0.0, 0.0), z_centre=0.0, sub=6):
    """Area fraction of each voxel of an (nz, nx) slice inside a disk (supersampled)."""
    off = (np.arange(sub) + 0.5) / sub - 0.5
    z = ((np.arange(nz) - (nz - 1) / 2)[:, None] + off[None, :]).ravel() * h + z_centre
    x = ((np.arange(nx) - (nx - 1) / 2)[:, None] + off[None, :]).ravel() * h
    inside = (z[:, None] - centre_zx[0]) ** 2 + (x[None, :] - centre_zx[1]) ** 2 <= radius**2
    return inside.reshape(nz, sub, nx, sub).mean(axis=(1, 3)).astype(np.float32)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(slab_shape=(24, 40), ny=70, voxel_size_nm=1.5, angles_deg=np.arange(-40, 41, 8)),
        dict(slab_shape=(17, 33), ny=3, voxel_size_nm=2.0, angles_deg=[-60, -7, 0, 13, 75], n_det=45,
             det_pixel_nm=1.3, z_centre_nm=9.0, axis_offset_px=2.7),
    ],
)
def test_dot_test(kwargs):
    op = ParallelProjector(**kwargs)
    assert dot_test(op, seed=1) < 1e-5
    assert dot_test(op, seed=2) < 1e-5


def test_disk_projects_to_chord_length():
    h, r = 2.0, 50.0
    op = ParallelProjector((80, 80), 2, voxel_size_nm=h, angles_deg=[-40, -10, 0, 25, 40])
    disk = _disk_fraction(80, 80, h, r)
    vol = np.repeat(disk[:, None, :], 2, axis=1)
    proj = op.direct(vol)
    u = (np.arange(80) - 39.5) * h
    chord = 2 * np.sqrt(np.clip(r**2 - u**2, 0, None))
    inner = np.abs(u) < 0.9 * r
    for a in range(5):
        np.testing.assert_allclose(proj[a, 0, inner], chord[inner], rtol=0.02)
        np.testing.assert_array_equal(proj[a, 0], proj[a, 1])


def test_sphere_projects_to_chord_length():
    h, r, n = 2.0, 24.0, 32
    op = ParallelProjector((n, n), n, voxel_size_nm=h, angles_deg=[-30, 0, 20])
    c = (np.arange(n) - (n - 1) / 2) * h
    off = (np.arange(4) + 0.5) / 4 - 0.5
    fine = (c[:, None] + off[None, :] * h).ravel()
    zz, yy, xx = np.meshgrid(fine, fine, fine, indexing="ij", sparse=True)
    vol = (zz**2 + yy**2 + xx**2 <= r**2).reshape(n, 4, n, 4, n, 4).mean(axis=(1, 3, 5)).astype(np.float32)
    proj = op.direct(vol)
    uu, yy2 = np.meshgrid(c, c, indexing="xy")  # (y, u)
    rho2 = uu**2 + yy2**2
    chord = 2 * np.sqrt(np.clip(r**2 - rho2, 0, None))
    inner = rho2 < (0.8 * r) ** 2
    for a in range(3):
        np.testing.assert_allclose(proj[a][inner], chord[inner], rtol=0.04)


@pytest.mark.parametrize("theta", [0.0, 20.0, 40.0, 60.0])
def test_thin_slab_scales_as_secant(theta):
    h, t = 1.0, 6.0
    nz, nx = 16, 200
    op = ParallelProjector((nz, nx), 1, voxel_size_nm=h, angles_deg=[theta], n_det=60)
    vol = np.zeros((nz, 1, nx), np.float32)
    vol[5:11] = 1.0  # 6 nm thick, wider than every ray's path
    centre = op.direct(vol)[0, 0, 20:40]
    np.testing.assert_allclose(centre, t / np.cos(np.deg2rad(theta)), rtol=1e-4)


@pytest.mark.parametrize("theta", [-55.0, -20.0, 0.0, 30.0, 41.0])
def test_point_lands_at_x_cos_plus_z_sin(theta):
    h, d, zc, off = 2.0, 1.5, -10.0, 3.25
    nz, nx, n_det = 21, 31, 64
    op = ParallelProjector((nz, nx), 1, voxel_size_nm=h, angles_deg=[theta], n_det=n_det,
                           det_pixel_nm=d, z_centre_nm=zc, axis_offset_px=off)
    k, j = 16, 7
    vol = np.zeros((nz, 1, nx), np.float32)
    vol[k, 0, j] = 1.0
    prof = op.direct(vol)[0, 0]
    u_pix = (np.arange(n_det) - (n_det - 1) / 2 - off) * d  # detector pixel centres, nm
    z = (k - (nz - 1) / 2) * h + zc
    x = (j - (nx - 1) / 2) * h
    th = np.deg2rad(theta)
    centroid = (prof * u_pix).sum() / prof.sum()
    assert centroid == pytest.approx(x * np.cos(th) + z * np.sin(th), abs=0.05 * d)
    assert prof.sum() * d == pytest.approx(h * h, rel=1e-5)  # mass: area h^2 per angle


def test_matches_astra_strip():
    astra = pytest.importorskip("astra")
    n = 64
    angles = np.arange(-40, 41, 2.0)
    img = np.random.default_rng(3).random((n, n)).astype(np.float32)
    op = ParallelProjector((n, n), 1, voxel_size_nm=1.0, angles_deg=angles)
    ours = op.direct(img[:, None, :])[:, 0, :]
    vg = astra.create_vol_geom(n, n)
    pg = astra.create_proj_geom("parallel", 1.0, n, np.deg2rad(angles))
    pid = astra.create_projector("strip", pg, vg)
    # ASTRA's image row 0 is the top (largest z): flip z to match u = x cos + z sin
    sid, theirs = astra.create_sino(img[::-1], pid)
    astra.data2d.delete(sid)
    astra.projector.delete(pid)
    assert np.linalg.norm(ours - theirs) / np.linalg.norm(theirs) < 1e-3


def test_all_slices_equal_per_slice_loop():
    rng = np.random.default_rng(4)
    kw = dict(voxel_size_nm=1.0, angles_deg=np.arange(-40, 41, 10), z_centre_nm=3.0, axis_offset_px=-1.5)
    ny = 70
    op = ParallelProjector((20, 36), ny, **kw)
    op1 = ParallelProjector((20, 36), 1, **kw)
    vol = rng.random(op.domain_shape).astype(np.float32)
    proj = rng.random(op.range_shape).astype(np.float32)
    fwd, bwd = op.direct(vol), op.adjoint(proj)
    for y in range(ny):
        np.testing.assert_array_equal(fwd[:, y : y + 1], op1.direct(vol[:, y : y + 1]))
        np.testing.assert_array_equal(bwd[:, y : y + 1], op1.adjoint(proj[:, y : y + 1]))
    # the sparse matrix is the operator
    np.testing.assert_allclose(fwd[:, 5].ravel(), op.matrix @ vol[:, 5].ravel(), rtol=1e-5, atol=1e-5)


def test_out_buffers_and_sums():
    op = ParallelProjector((10, 12), 5, voxel_size_nm=2.0, angles_deg=[0, 30])
    out = np.full(op.range_shape, np.nan, np.float32)
    res = op.direct(np.ones(op.domain_shape), out=out)
    assert res is out
    np.testing.assert_allclose(out[0, :, 3], 20.0, rtol=1e-6)  # 10 voxels of 2 nm
    np.testing.assert_allclose(op.row_sums()[0, 3], 20.0, rtol=1e-6)
    back = np.full(op.domain_shape, np.nan, np.float32)
    assert op.adjoint(out, out=back) is back and np.isfinite(back).all()
    assert op.column_sums().shape == (10, 12)
    with pytest.raises(ValueError, match="out"):
        op.direct(np.ones(op.domain_shape), out=np.empty(op.range_shape, np.float64))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(angles_deg=[0, 90]), "within"),
        (dict(angles_deg=[0, np.nan]), "within"),
        (dict(voxel_size_nm=-1.0), "voxel_size_nm"),
        (dict(det_pixel_nm=0.0), "det_pixel_nm"),
        (dict(axis_offset_px=np.inf), "axis_offset_px"),
        (dict(n_det=0), "n_det"),
        (dict(z_centre_nm=np.nan), "z_centre_nm"),
    ],
)
def test_bad_input_raises(kwargs, match):
    base = dict(voxel_size_nm=1.0, angles_deg=[0.0])
    base.update(kwargs)
    with pytest.raises(InputError, match=match):
        ParallelProjector((8, 8), 2, **base)


def test_wrong_shape_raises():
    op = ParallelProjector((8, 8), 2, voxel_size_nm=1.0, angles_deg=[0.0])
    with pytest.raises(InputError, match="shape"):
        op.direct(np.ones((8, 8)))
    with pytest.raises(InputError, match="shape"):
        op.adjoint(np.ones((1, 2, 7)))


def test_pickle_roundtrip():
    import pickle

    op = ParallelProjector((12, 16), 3, voxel_size_nm=1.0, angles_deg=[-20, 0, 20], axis_offset_px=0.5)
    clone = pickle.loads(pickle.dumps(op))
    vol = np.random.default_rng(0).random(op.domain_shape).astype(np.float32)
    np.testing.assert_array_equal(op.direct(vol), clone.direct(vol))
