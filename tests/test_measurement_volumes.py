"""measure_volumes: the metrics.nc Dataset of a series of binarised volumes."""

import json

import numpy as np
import pytest

from sinter4d import schema
from sinter4d.errors import InputError
from sinter4d.measurement import measure_volumes, pair_axis_angle_deg


def _two_balls(gap_vox: float = -4.0):
    """Two balls of radius 15 voxels (1 nm), centres 30 + gap apart along x, at two times."""
    z, y, x = np.mgrid[:40, :40, :90]
    d = 30.0 + gap_vox
    ball = lambda cx: (z - 20) ** 2 + (y - 20) ** 2 + (x - cx) ** 2 <= 15**2  # noqa: E731
    b = (ball(45 - d / 2) | ball(45 + d / 2)).astype(np.uint8)
    c = np.arange(90) - 44.5
    return [b, b], c[:40], c[:40], c, d


def _cut_sphere_shift(radius, h):
    """Shift of the centroid of a sphere with the cap beyond ``h`` from its centre cut off."""
    cap = radius - h
    v_cap = np.pi * cap**2 * (3 * radius - cap) / 3
    x_cap = 3 * (2 * radius - cap) ** 2 / (4 * (3 * radius - cap))
    return v_cap * x_cap / (4 / 3 * np.pi * radius**3 - v_cap)


def test_two_touching_balls_give_the_closed_form_distance_and_schema_attrs():
    binaries, z, y, x, d = _two_balls()
    ds = measure_volumes(binaries, z, y, x, [0.0, 5.0], [370.0, 370.0], voxel_size_nm=1.0, core_radius_nm=15)
    assert ds.sizes["pair"] == 1 and (ds.status.values == "ok").all()
    # the watershed cuts the pair at the mid-plane: each centre of mass moves off by its lost cap
    np.testing.assert_allclose(ds.distance_nm.values, d + 2 * _cut_sphere_shift(15.0, d / 2), atol=0.1)
    np.testing.assert_allclose(ds.distance_z_nm.values, 0.0, atol=1e-9)
    np.testing.assert_allclose(ds.tilt_axis_angle_deg.values, 90.0)
    # overlapping spheres: the neck is the intersection circle, within a voxel
    np.testing.assert_allclose(ds.neck_radius_3d_nm.values, np.sqrt(15.0**2 - (d / 2) ** 2), atol=1.0)
    for name in ds.variables:
        want = schema.attrs(name, schema.METRICS)
        assert {k: ds[name].attrs[k] for k in want} == want
    assert set(json.loads(ds.status.attrs["meanings"])) >= {"ok", "merged", "lost", "absent"}
    assert ds.attrs["distance"] == "com3d" and ds.attrs["gate_nm"] == 40.0


def test_pair_axis_angle():
    a = np.zeros((4, 3))
    b = np.array([[0.0, 5.0, 0.0], [0.0, 0.0, 5.0], [5.0, 0.0, 0.0], [0.0, -3.0, 3.0]])
    np.testing.assert_allclose(pair_axis_angle_deg(a, b), [0.0, 90.0, 90.0, 45.0])
    assert np.isnan(pair_axis_angle_deg(a[0], a[0])) and np.isnan(pair_axis_angle_deg(a[0], np.full(3, np.nan)))


def test_bad_arrays_are_named():
    b = np.zeros((4, 5, 6), np.uint8)
    c = np.arange(6) * 2.0
    with pytest.raises(InputError, match="voxels must be cubic"):
        measure_volumes([b], c[:4], c[:5], c, [0], [370], voxel_size_nm=1.0)
    with pytest.raises(InputError, match="binaries\\[0\\] has shape"):
        measure_volumes([b], c[:4], c[:5], c[:5], [0], [370], voxel_size_nm=2.0)
    with pytest.raises(InputError, match="pt_time_s has 2 values"):
        measure_volumes([b], c[:4], c[:5], c, [0, 1], [370], voxel_size_nm=2.0)
    with pytest.raises(ValueError, match="distance='x'"):
        measure_volumes([b], c[:4], c[:5], c, [0], [370], voxel_size_nm=2.0, distance="x")
