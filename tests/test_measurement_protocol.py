"""The Fig. 7 protocol on noiseless volumes whose geometry is known exactly."""

import numpy as np
import pytest

from sinter4d.schema import PAIR_METRICS
from sinter4d.measurement import (
    NECK_3D_METHODS,
    measure_pairs,
    neck_radius_3d,
    split_particles,
)

VOX = 2.0  # nm


def _pair_axis(tilt_deg, azimuth_deg):
    """Unit (z, y, x) vector tilted out of the x-y plane by tilt, turned from x by azimuth."""
    t, p = np.radians(tilt_deg), np.radians(azimuth_deg)
    return np.array([np.sin(t), np.cos(t) * np.sin(p), np.cos(t) * np.cos(p)])


def _two_bodies(shape, mid, d, axis, *, radius, neck=0.0, semi_axes=None):
    """Labels of two bodies centred ``mid -/+ d/2 axis`` (voxel units), cut at the bisecting plane.

    Bodies are spheres of ``radius``, or spheroids with ``semi_axes`` (along
    the pair axis, across it in x-y, along z) when given; ``neck`` > 0 joins
    them with a cylinder of that radius along the axis.
    """
    idx = np.indices(shape, dtype=np.float32)
    rel = idx - np.asarray(mid, dtype=np.float32).reshape(3, 1, 1, 1)
    along = np.tensordot(axis.astype(np.float32), rel, axes=1)
    inside = np.zeros(shape, dtype=bool)
    for sign in (-1.0, 1.0):
        c = rel - (sign * 0.5 * d * axis).astype(np.float32).reshape(3, 1, 1, 1)
        if semi_axes is None:
            inside |= (c**2).sum(axis=0) <= radius**2
        else:
            horizontal = np.array([0.0, axis[1], axis[2]]) / np.hypot(axis[1], axis[2])
            across = np.array([0.0, -horizontal[2], horizontal[1]])
            a_u, a_v, a_z = semi_axes
            cu = np.tensordot(horizontal.astype(np.float32), c, axes=1)
            cv = np.tensordot(across.astype(np.float32), c, axes=1)
            inside |= (cu / a_u) ** 2 + (cv / a_v) ** 2 + (c[0] / a_z) ** 2 <= 1.0
    if neck > 0:
        radial2 = (rel**2).sum(axis=0) - along**2
        inside |= (np.abs(along) <= 0.5 * d) & (radial2 <= neck**2)
    return np.where(inside, np.where(along < 0, 1, 2), 0).astype(np.int32)


@pytest.mark.parametrize(("tilt", "azimuth"), [(0, 0), (15, 30), (25, 120)])
def test_cylindrical_neck_recovered_in_projection_and_3d(tilt, azimuth):
    radius, d, neck = 35.0, 76.0, 12.0  # voxels: spheres 6 voxels apart joined by a cylinder
    rng = np.random.default_rng(tilt)
    mid = np.array([60.0, 75.0, 80.0]) + rng.uniform(0, 1, 3)
    labels = _two_bodies((120, 150, 160), mid, d, _pair_axis(tilt, azimuth), radius=radius, neck=neck)
    res = measure_pairs(labels, [[1, 2]], voxel_size_nm=VOX, centre="inscribed")
    assert res["status"][0] == "ok"
    # the silhouette of a cylinder is 2 r wide whatever its tilt
    assert abs(res["neck_radius_nm"][0] - neck * VOX) <= VOX
    for method in NECK_3D_METHODS:
        assert abs(neck_radius_3d(labels, 1, 2, voxel_size_nm=VOX, method=method) - neck * VOX) <= VOX
    true_dz = abs(d * np.sin(np.radians(tilt)))
    assert abs(res["distance_nm"][0] - d * VOX) <= 0.5 * VOX
    assert abs(res["distance_z_nm"][0] - true_dz * VOX) <= 1.0 * VOX
    assert abs(res["distance_xy_nm"][0] - d * np.cos(np.radians(tilt)) * VOX) <= 0.5 * VOX
    assert abs(res["particle_radius_nm"][0] - radius * VOX) <= 0.03 * radius * VOX
    np.testing.assert_allclose(res["neck_ratio"], res["neck_radius_nm"] / res["particle_radius_nm"])
    np.testing.assert_allclose(res["distance_ratio"], res["distance_nm"] / (2 * res["particle_radius_nm"]))


def test_wedge_stretch_along_z_fools_only_the_equal_area_neck():
    """A reconstruction stretched 1.4x along z (missing wedge) turns the round neck into an ellipse."""
    radius, d, neck, stretch = 30.0, 66.0, 10.0, 1.4
    shape = (100, 80, 120)
    idx = np.indices(shape, dtype=np.float32)
    z = (idx[0] - 50.3) / stretch  # undo the stretch to test membership in the true shape
    y, x = idx[1] - 40.2, idx[2] - 60.1
    inside = (np.abs(x) <= d / 2) & (z**2 + y**2 <= neck**2)
    for cx in (-d / 2, d / 2):
        inside |= z**2 + y**2 + (x - cx) ** 2 <= radius**2
    labels = np.where(inside, np.where(x < 0, 1, 2), 0).astype(np.int32)
    got = {m: neck_radius_3d(labels, 1, 2, voxel_size_nm=VOX, method=m) / VOX for m in NECK_3D_METHODS}
    assert got["in_plane"] == pytest.approx(neck, abs=0.5)
    assert got["stretch_corrected"] == pytest.approx(neck, abs=0.5)
    assert got["equal_area"] == pytest.approx(neck * np.sqrt(stretch), abs=0.5)


def _com_shift_truncated_disc(radius, h):
    """Shift of the centre of mass of a disc of ``radius`` with the segment beyond ``h`` cut off."""
    segment_area = radius**2 * np.arccos(h / radius) - h * np.sqrt(radius**2 - h**2)
    return (2.0 / 3.0) * (radius**2 - h**2) ** 1.5 / (np.pi * radius**2 - segment_area)


@pytest.mark.parametrize("azimuth", [0, 35])
def test_overlapping_spheres_in_plane(azimuth):
    radius, d = 37.5, 70.0  # the intersection circle has radius sqrt(R^2 - (d/2)^2) = 13.46 voxels
    labels = _two_bodies((84, 150, 160), np.array([41.7, 75.2, 80.4]), d, _pair_axis(0, azimuth), radius=radius)
    true_neck = np.sqrt(radius**2 - (d / 2) ** 2)
    com = measure_pairs(labels, [[1, 2]], voxel_size_nm=VOX)
    inscribed = measure_pairs(labels, [[1, 2]], voxel_size_nm=VOX, centre="inscribed")
    # a sharp crease sampled on voxels half a voxel off its plane reads up to
    # (h / r_n) * 0.5 = 1.3 voxels wide, so the tolerance is 1.5 voxels here
    assert abs(com["neck_radius_nm"][0] - true_neck * VOX) <= 1.5 * VOX
    assert abs(com["neck_radius_3d_nm"][0] - true_neck * VOX) <= 1.5 * VOX
    assert com["distance_z_nm"][0] == 0.0
    # the paper's centre of mass moves away from the neck by the cut cap
    expected_com_d = d + 2 * _com_shift_truncated_disc(radius, d / 2)
    assert abs(com["distance_nm"][0] - expected_com_d * VOX) <= 0.5 * VOX
    assert abs(inscribed["distance_nm"][0] - d * VOX) <= 0.5 * VOX


@pytest.mark.parametrize("azimuth", [0, 50])
def test_tilted_pair_reads_its_silhouette_waist_in_projection_and_its_neck_in_3d(azimuth):
    """Spheres of R joined by a cylinder of x, tilted out of the x-y plane: closed forms.

    In 3D the spheres do not meet (d > 2R), so the neck is the cylinder, x. Projected along
    z, the two discs of R lie d cos(tilt) apart and overlap: the silhouette's waist is
    sqrt(R^2 - (d cos(tilt) / 2)^2), wider than x; the protocol's r_n reads the waist.
    """
    radius, d, neck, tilt = 35.0, 76.0, 8.0, 30.0  # voxels
    waist = np.sqrt(radius**2 - (0.5 * d * np.cos(np.radians(tilt))) ** 2)
    labels = _two_bodies((124, 150, 160), np.array([62.3, 75.2, 80.4]), d, _pair_axis(tilt, azimuth),
                         radius=radius, neck=neck)
    res = measure_pairs(labels, [[1, 2]], voxel_size_nm=VOX, centre="inscribed")
    assert res["status"][0] == "ok"
    # the waist is a sharp crease of the silhouette: sampled on pixels half a pixel off its line,
    # it reads up to (h / r) * 0.5 pixel wide, h = d cos(tilt) / 2 (1.4 pixel here)
    crease = 0.5 * (0.5 * d * np.cos(np.radians(tilt))) / waist
    assert abs(res["neck_radius_nm"][0] - waist * VOX) <= crease * VOX
    assert abs(res["neck_radius_3d_nm"][0] - neck * VOX) <= VOX
    assert res["neck_radius_nm"][0] > res["neck_radius_3d_nm"][0] + 2 * VOX
    assert abs(res["distance_nm"][0] - d * VOX) <= 0.5 * VOX
    assert abs(res["distance_z_nm"][0] - d * np.sin(np.radians(tilt)) * VOX) <= VOX
    assert abs(res["particle_radius_nm"][0] - radius * VOX) <= 0.03 * radius * VOX


@pytest.mark.parametrize(("ratio", "azimuth"), [(1.2, 0), (0.8, 30), (1.0, 60)])
def test_aspect_ratio_of_spheroids(ratio, azimuth):
    a_across = 30.0
    semi = (ratio * a_across, a_across, a_across)  # along the pair axis, across it, z
    d = 2 * semi[0] + 8.0  # apart: no neck
    mid = np.array([35.2, 80.3, 85.1])
    labels = _two_bodies((70, 160, 170), mid, d, _pair_axis(0, azimuth), radius=0, semi_axes=semi)
    res = measure_pairs(labels, [[1, 2]], voxel_size_nm=VOX)
    assert res["aspect_ratio"][0] == pytest.approx(ratio, abs=0.03)
    assert res["neck_radius_nm"][0] == 0.0 and res["neck_radius_3d_nm"][0] == 0.0
    assert res["neck_ratio"][0] == 0.0
    assert res["distance_nm"][0] == pytest.approx(d * VOX, abs=0.5 * VOX)
    assert res["particle_radius_nm"][0] == pytest.approx(np.sqrt(semi[0] * semi[1]) * VOX, rel=0.03)


def test_watershed_labels_give_the_same_pair_metrics():
    radius, d = 37.5, 70.0
    labels = _two_bodies((96, 120, 160), np.array([48.3, 60.1, 80.4]), d, _pair_axis(15, 20), radius=radius)
    split = split_particles((labels > 0).astype(np.uint8), voxel_size_nm=VOX)
    assert split.max() == 2
    ref = measure_pairs(labels, [[1, 2]], voxel_size_nm=VOX)
    got = measure_pairs(split, [[1, 2]], voxel_size_nm=VOX)
    for name in PAIR_METRICS:
        assert got[name][0] == pytest.approx(ref[name][0], abs=0.5 * VOX, rel=0.02), name


def test_slab_option_and_widest_section():
    radius, d, tilt = 37.5, 70.0, 30.0
    labels = _two_bodies((120, 120, 160), np.array([60.3, 60.2, 80.4]), d, _pair_axis(tilt, 0), radius=radius)
    full = measure_pairs(labels, [[1, 2]], voxel_size_nm=VOX)
    thin = measure_pairs(labels, [[1, 2]], voxel_size_nm=VOX, slab_nm=2 * VOX)
    # a thin slab through the widest-neck section (z of the pair's middle) cuts
    # each sphere 17.5 voxels from its centre: discs of radius 33.2 voxels
    offset = 0.5 * d * np.sin(np.radians(tilt))
    assert thin["particle_radius_nm"][0] == pytest.approx(np.sqrt(radius**2 - offset**2) * VOX, abs=VOX)
    assert full["particle_radius_nm"][0] == pytest.approx(radius * VOX, abs=0.5 * VOX)
    # the section of the two spheres at that z is two discs meeting at the neck's widest chord
    assert thin["neck_radius_nm"][0] < full["neck_radius_nm"][0]


def test_missing_and_stacked_pairs():
    labels = _two_bodies((150, 80, 80), np.array([75.0, 40.0, 40.0]), 70.0, np.array([1.0, 0.0, 0.0]), radius=37.5)
    res = measure_pairs(labels, [[1, 2], [1, 3], [4, 5]], voxel_size_nm=VOX)
    assert res["status"].tolist() == ["stacked", "missing", "missing"]
    assert np.isnan(res["neck_radius_nm"][0]) and np.isnan(res["aspect_ratio"][0])
    # each truncated sphere spans d/2 + R below or above the cut: z-centres 72.5 voxels apart
    assert res["distance_z_nm"][0] == pytest.approx(72.5 * VOX, abs=VOX)
    assert res["neck_radius_3d_nm"][0] == pytest.approx(np.sqrt(37.5**2 - 35**2) * VOX, abs=1.5 * VOX)
    assert all(np.isnan(res[name][1:]).all() for name in PAIR_METRICS)
    assert np.isnan(neck_radius_3d(labels, 1, 3, voxel_size_nm=VOX))


def test_no_pairs_gives_empty_arrays():
    res = measure_pairs(np.zeros((4, 4, 4), dtype=np.int32), np.zeros((0, 2), dtype=int), voxel_size_nm=1.0)
    assert set(res) == {*PAIR_METRICS, "status"}
    assert all(v.shape == (0,) for v in res.values())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"centre": "median"}, "centre='median'"),
        ({"neck_3d_method": "area"}, "neck_3d_method='area'"),
        ({"voxel_size_nm": -1.0}, "voxel_size_nm=-1.0"),
        ({"slab_nm": 0.0}, "slab_nm=0.0"),
    ],
)
def test_bad_options_are_named(kwargs, match):
    labels = np.zeros((4, 4, 4), dtype=np.int32)
    options = {"voxel_size_nm": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        measure_pairs(labels, [[1, 2]], **options)


def test_bad_arrays_are_named():
    with pytest.raises(ValueError, match="labels must be a"):
        measure_pairs(np.zeros((4, 4), dtype=np.int32), [[1, 2]], voxel_size_nm=1.0)
    with pytest.raises(ValueError, match="integer label volume"):
        measure_pairs(np.zeros((4, 4, 4)), [[1, 2]], voxel_size_nm=1.0)
    with pytest.raises(ValueError, match=r"pairs must be an \(M, 2\)"):
        measure_pairs(np.zeros((4, 4, 4), dtype=np.int32), [1, 2, 3], voxel_size_nm=1.0)


@pytest.mark.parametrize(("azimuth", "gap"), [(0, 5.0), (40, 3.0), (100, 0.0)])
def test_surface_gap_of_spheroids_along_the_line_of_centres(azimuth, gap):
    """Spheroids elongated along their pair axis: the moment-ellipsoid gap reads the true gap
    (to a voxel), where d - 2 r_p (r_p from the projected area) reads it ~10 voxels short."""
    semi = (30.0, 22.0, 22.0)  # voxels: along the pair axis, across it, z
    d = 2 * semi[0] + gap
    mid = np.array([50.0, 70.0, 70.0]) + 0.37
    labels = _two_bodies((100, 140, 140), mid, d, _pair_axis(0, azimuth), radius=0.0, semi_axes=semi)
    res = measure_pairs(labels, [[1, 2]], voxel_size_nm=VOX)
    assert abs(res["surface_gap_nm"][0] - gap * VOX) <= 1.0 * VOX
    assert res["distance_nm"][0] - 2 * res["particle_radius_nm"][0] > (gap + 8.0) * VOX


def test_moment_radius_along_a_rotated_spheroid():
    from sinter4d.measurement import moment_radius_along

    z, y, x = np.indices((61, 61, 61), dtype=float) - 30.0
    u = np.array([0.0, np.sin(0.5), np.cos(0.5)])  # polar axis in the x-y plane
    along = z * u[0] + y * u[1] + x * u[2]
    perp2 = z**2 + y**2 + x**2 - along**2
    body = (along / 24.0) ** 2 + perp2 / 16.0**2 <= 1.0
    assert moment_radius_along(body, u) == pytest.approx(24.0, abs=0.3)
    assert moment_radius_along(body, (1, 0, 0)) == pytest.approx(16.0, abs=0.3)
    n = np.array([0.0, np.sin(1.2), np.cos(1.2)])  # 40 deg from the polar axis
    c = np.cos(0.7)
    assert moment_radius_along(body, n) == pytest.approx(1 / np.sqrt(c**2 / 24.0**2 + (1 - c**2) / 16.0**2), abs=0.3)
    assert np.isnan(moment_radius_along(np.zeros((4, 4, 4), bool), (1, 0, 0)))
