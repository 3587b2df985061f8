"""voxelize: volume fractions, partial volume, labels, neck bridges, shell."""

import numpy as np
import pytest

from sinter4d.errors import InputError
from sinter4d.phantom import Cluster, Grid, Phantom, make_cluster, voxelize


def _cluster(centre, radius, *, aspect=None, axis=None, contact=(), neck=(), shell=None) -> Cluster:
    centre = np.asarray(centre, dtype=float).reshape(-1, 3)
    n = len(centre)
    radius = np.broadcast_to(np.asarray(radius, dtype=float), (n,)).copy()
    shell_c, shell_r = (np.zeros((0, 3)), np.zeros(0)) if shell is None else (np.asarray(shell[0], float), np.asarray(shell[1], float))
    return Cluster(
        centre_nm=centre,
        radius_nm=radius,
        initial_radius_nm=radius.copy(),
        aspect_ratio=np.ones(n) if aspect is None else np.asarray(aspect, dtype=float),
        axis=np.tile([0.0, 0.0, 1.0], (n, 1)) if axis is None else np.asarray(axis, dtype=float),
        contact=np.asarray(contact, dtype=int).reshape(-1, 2),
        neck_radius_nm=np.asarray(neck, dtype=float),
        shell_centre_nm=shell_c,
        shell_radius_nm=shell_r,
        shell_owner=np.zeros(len(shell_r), dtype=int),
        film_top_nm=-200.0,
        film_thickness_nm=30.0,
    )


def test_returns_typed_volumes_of_the_grid_shape():
    ph = voxelize(make_cluster(n_cores=3, rng=0), Grid((48, 96, 80), 5.0))
    assert isinstance(ph, Phantom)
    assert ph.core.shape == ph.shell.shape == ph.label.shape == (48, 96, 80)
    assert ph.core.dtype == np.float32 and ph.shell.dtype == np.float32 and ph.label.dtype == np.uint16
    assert 0.0 <= ph.core.min() and ph.core.max() <= 1.0
    assert np.all(ph.shell >= 0.0) and np.all(ph.core + ph.shell <= 1.0 + 1e-6)


@pytest.mark.parametrize("supersample", [1, 2])
def test_isolated_spheroid_volumes(supersample):
    rng = np.random.default_rng(4)
    axis = rng.standard_normal((4, 3))
    axis /= np.linalg.norm(axis, axis=1)[:, None]
    centre = [[3.1, -90.7, -91.3], [-2.2, 88.9, -87.6], [1.7, -89.4, 92.2], [0.3, 91.1, 89.8]]
    radius = np.array([70.0, 75.0, 60.0, 80.0])
    c = _cluster(centre, radius, aspect=[0.8, 1.2, 0.9, 1.1], axis=axis)
    h = 3.0
    ph = voxelize(c, Grid((64, 128, 128), h), supersample=supersample)
    exact = 4.0 / 3.0 * np.pi * radius**3
    z, y, x = np.ix_(*[np.arange(n) for n in ph.core.shape])
    for k in range(4):
        quadrant = ((y >= 64) == (centre[k][1] > 0)) & ((x >= 64) == (centre[k][2] > 0))
        volume = float(np.sum(ph.core * quadrant, dtype=np.float64)) * h**3
        assert abs(volume / exact[k] - 1) < 0.01
        labelled = np.count_nonzero(ph.label == k + 1) * h**3
        assert abs(labelled / exact[k] - 1) < 0.01


def test_partial_volume_converges_and_beats_binary():
    radius = 30.0
    exact = 4.0 / 3.0 * np.pi * radius**3
    errors, binary_errors = [], []
    for h in (8.0, 4.0, 2.0):
        n = int(np.ceil(80 / h))
        ph = voxelize(_cluster([[0.37, -0.61, 0.23]], radius), Grid((n, n, n), h), supersample=1)
        errors.append(abs(float(ph.core.sum(dtype=np.float64)) * h**3 / exact - 1))
        binary_errors.append(abs(np.count_nonzero(ph.core >= 0.5) * h**3 / exact - 1))
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 2e-3
    assert sum(errors) < sum(binary_errors)


def test_labels_split_at_the_neck_plane():
    radius, d, h = 60.0, 100.0, 2.0
    c = _cluster([[0.0, 0.0, -d / 2], [0.0, 0.0, d / 2]], radius, contact=[[0, 1]], neck=[0.0])
    ph = voxelize(c, Grid((64, 64, 128), h))
    _, _, x = Grid((64, 64, 128), h).coords_nm()
    xs = np.broadcast_to(x, ph.label.shape)
    assert np.all(xs[ph.label == 1] < h) and np.all(xs[ph.label == 2] > -h)
    n1, n2 = np.count_nonzero(ph.label == 1), np.count_nonzero(ph.label == 2)
    assert abs(n1 - n2) / n1 < 0.01
    cap = np.pi * (radius - d / 2) ** 2 * (2 * radius + d / 2) / 3  # lens half: cap of height R - d/2
    union = 2 * (4.0 / 3.0 * np.pi * radius**3) - 2 * cap
    assert abs(float(ph.core.sum(dtype=np.float64)) * h**3 / union - 1) < 0.01
    assert abs((n1 + n2) * h**3 / union - 1) < 0.01


def test_cylinder_bridge_fills_the_gap_of_a_bridged_pair():
    radius, gap, neck, h = 50.0, 12.0, 15.0, 1.0
    d = 2 * radius + gap
    c = _cluster([[0.0, 0.0, -d / 2], [0.0, 0.0, d / 2]], radius, contact=[[0, 1]], neck=[neck])
    grid = Grid((112, 112, 240), h)
    ph = voxelize(c, grid, neck_shape="cylinder")
    bare = voxelize(c.replace(neck_radius_nm=np.zeros(1)), grid, neck_shape="cylinder")
    added = float(ph.core.sum(dtype=np.float64) - bare.core.sum(dtype=np.float64)) * h**3
    # cylinder of radius x over the gap, plus the thin rims between it and the spheres' caps
    rim = 2 * (np.pi * neck**2 * (radius - np.sqrt(radius**2 - neck**2)) - np.pi * (radius - np.sqrt(radius**2 - neck**2)) ** 2 * (3 * radius - (radius - np.sqrt(radius**2 - neck**2))) / 3)
    expected = np.pi * neck**2 * gap + rim
    assert abs(added / expected - 1) < 0.03
    _, _, x = grid.coords_nm()
    mid = ph.label[56, 56, :]
    assert np.all(mid[np.abs(x) < d / 2] > 0)  # the gap is bridged on the axis
    assert np.all(mid[(x < -1) & (x > -d / 2)] == 1) and np.all(mid[(x > 1) & (x < d / 2)] == 2)


def test_shell_volume_is_exact_and_outside_the_core():
    c = make_cluster(n_cores=4, rng=6)
    h = 2.0
    ph = voxelize(c, Grid((128, 224, 224), h))
    exact = float(np.sum(4.0 / 3.0 * np.pi * c.shell_radius_nm**3))
    found = float(ph.shell.sum(dtype=np.float64)) * h**3
    assert 0.9 < found / exact <= 1.0 + 1e-4  # a little is lost where a particle meets its core's edge voxels
    assert np.all(ph.label[ph.shell > 0.5] == 0)


def test_objects_outside_the_grid_are_ignored():
    c = _cluster([[0.0, 0.0, 0.0], [0.0, 0.0, 1000.0]], 40.0)
    ph = voxelize(c, Grid((40, 40, 40), 4.0))
    assert set(np.unique(ph.label)) == {0, 1}


def test_256_cube_of_a_seven_core_cluster():
    c = make_cluster(n_cores=7, rng=1)
    ph = voxelize(c, Grid((256, 256, 256), 2.5))
    assert set(np.unique(ph.label)) == set(range(8))


def test_bad_supersample_raises():
    with pytest.raises(InputError, match="supersample"):
        voxelize(make_cluster(n_cores=2, rng=0), Grid((8, 8, 8), 10.0), supersample=0)
