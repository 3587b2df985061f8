"""The fillet neck drawn by voxelize, against its closed forms; the cylinder kept bit for bit."""

import hashlib

import numpy as np
import pytest

from sinter4d.errors import InputError, SpecError
from sinter4d.experiments.spec import PhantomSpec, parse_spec
from sinter4d.phantom import Cluster, Grid, make_cluster, pair_truth, voxelize
from sinter4d.sintering import fillet_neck_distance_ratio, fillet_volume_nm3

P = np.array([[0, 1]])


def _pair(ri, rj, d, x, direction=(0.0, 0.0, 1.0)) -> Cluster:
    n = np.asarray(direction, dtype=float)
    n /= np.linalg.norm(n)
    radius = np.array([ri, rj], dtype=float)
    return Cluster(
        centre_nm=np.stack([-n * d / 2, n * d / 2]),
        radius_nm=radius,
        initial_radius_nm=radius.copy(),
        aspect_ratio=np.ones(2),
        axis=np.tile([0.0, 0.0, 1.0], (2, 1)),
        contact=P,
        neck_radius_nm=np.array([x], dtype=float),
        shell_centre_nm=np.zeros((0, 3)),
        shell_radius_nm=np.zeros(0),
        shell_owner=np.zeros(0, dtype=int),
        film_top_nm=-200.0,
        film_thickness_nm=30.0,
    )


def _volume(cluster, grid) -> float:
    return float(voxelize(cluster, grid).core.sum(dtype=np.float64)) * grid.voxel_size_nm**3


@pytest.mark.parametrize(
    "ri, rj, d, x, direction",
    [
        (40.0, 40.0, 80.0, 12.0, (0.0, 0.0, 1.0)),  # touching
        (35.0, 45.0, 78.0, 15.0, (0.3, 0.5, 0.8)),  # unequal, overlapping, oblique
        (40.0, 40.0, 86.0, 12.0, (0.3, 0.5, 0.8)),  # across a 6 nm gap
    ],
)
def test_voxelised_fillet_adds_its_closed_form_volume(ri, rj, d, x, direction):
    grid = Grid((128, 128, 128), 1.0)
    c = _pair(ri, rj, d, x, direction)
    added = _volume(c, grid) - _volume(c.replace(neck_radius_nm=np.zeros(1)), grid)
    # the union takes the larger fraction where the fillet meets a sphere: ~1 % lost in the touching case
    assert added == pytest.approx(float(fillet_volume_nm3(ri, rj, d, x)), rel=0.025)


@pytest.mark.parametrize("u", [0.2, 0.4, 0.6])
def test_volume_conserving_fillet_pair_keeps_the_cu_volume(u):
    a0, h = 40.0, 1.0
    d = 2 * a0 * float(fillet_neck_distance_ratio(u))
    grid = Grid((88, 88, int((d + 2 * a0) / h) + 8), h)
    assert _volume(_pair(a0, a0, d, u * a0), grid) == pytest.approx(2 * 4 / 3 * np.pi * a0**3, rel=1e-3)


def test_narrowest_voxel_section_is_the_waist_and_the_truth():
    x, h = 12.0, 0.5
    c = _pair(40.0, 40.0, 80.0, x, (0.0, 0.0, 1.0))
    grid = Grid((101, 101, 101), h)  # a voxel plane on the neck plane x = 0
    area = voxelize(c, grid).core.sum(axis=(0, 1), dtype=np.float64) * h * h
    _, _, along = grid.coords_nm()
    radius = np.where(np.abs(along) < 30.0, np.sqrt(area / np.pi), np.inf)
    assert along[np.argmin(radius)] == 0.0
    assert radius.min() == pytest.approx(x, abs=0.02)
    for method in ("joint", "section"):
        assert pair_truth(c, P, neck=method)["neck_radius_nm"][0] == pytest.approx(x, abs=0.05)


def _digest(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def test_fillet_is_the_default_and_cylinder_is_todays_drawing():
    c = make_cluster(n_cores=5, rng=3)
    c = c.replace(neck_radius_nm=np.linspace(8.0, 30.0, c.n_contacts))
    grid = Grid((48, 96, 96), 5.0)
    default, fillet, cylinder = voxelize(c, grid), voxelize(c, grid, neck_shape="fillet"), voxelize(c, grid, neck_shape="cylinder")
    assert np.array_equal(default.core, fillet.core) and np.array_equal(default.label, fillet.label)
    assert not np.array_equal(fillet.core, cylinder.core)
    # digests of voxelize's output before the fillet existed (main at d17ff56)
    assert [_digest(a) for a in cylinder] == ["0f708f0e75ed37a8", "bcddb3563f2c7290", "b411ad679b25cfdc"]
    assert PhantomSpec().neck_shape == "fillet"


def test_bad_neck_shape_raises():
    with pytest.raises(InputError, match="neck_shape"):
        voxelize(_pair(40.0, 40.0, 80.0, 12.0), Grid((8, 8, 8), 10.0), neck_shape="cone")
    with pytest.raises(SpecError, match="neck_shape"):
        parse_spec({"name": "x", "seed": 1, "phantom": {"neck_shape": "cone"}})
