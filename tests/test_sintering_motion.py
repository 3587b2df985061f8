"""Rigid bodies moving between series: a random walk on the film, rigid, without overlaps, and tracked."""

import numpy as np
import pytest
from scipy import stats

from sinter4d import schema
from sinter4d.errors import SpecError
from sinter4d.experiments import parse_spec, plan_simulation, truth_dataset
from sinter4d.measurement import measure_volumes
from sinter4d.phantom import Cluster, Grid, make_cluster, surface_gap_nm, voxelize
from sinter4d.experiments.sweep_spec import dim_name
from sinter4d.sintering import HeatingLog, RigidMotion, RigidMotionSettings, rigid_bodies, sinter_cluster
from sinter4d.validation import compare_to_truth


def _spec(root, *, seed=11, n_cores=4, **motion):
    return parse_spec(
        {
            "name": "motion-test",
            "seed": seed,
            "phantom": {"n_cores": n_cores},
            "sintering": {"model": str(root / "models" / "cu_shell_reservoir.toml"), "rigid_motion": motion},
            "heating": {"pt_time_s": [0, 12, 41, 209], "temperature_C": [372, 370, 370, 350]},
            "acquisition": {"image_pixels": 512, "pixel_size_nm": 2.08, "bin": 4, "tilt_step_deg": 10.0},
        }
    )


def _loose_cores(n=200, spacing_nm=500.0):
    """n cores of 75 nm on the film, far apart, with no contact: each is a body of its own."""
    side = int(np.ceil(np.sqrt(n)))
    yx = np.stack(np.meshgrid(np.arange(side), np.arange(side), indexing="ij"), -1).reshape(-1, 2)[:n] * spacing_nm
    centre = np.column_stack([np.full(n, 75.0), yx])
    axis = np.tile([0.6, 0.8, 0.0], (n, 1))
    return Cluster(
        centre, np.full(n, 75.0), np.full(n, 75.0), np.full(n, 1.1), axis, np.zeros((0, 2), int), np.zeros(0),
        centre[:, None, 0:0].reshape(0, 3), np.zeros(0), np.zeros(0, int), 0.0, 30.0,
    )


def _cluster(seed=0, n_cores=7):
    return make_cluster(n_cores=n_cores, rng=np.random.default_rng(seed))


def test_displacements_are_a_random_walk_of_the_spec_sd():
    """Cumulative slide after k series ~ N(0, k s^2) along y and x (none along z); turn ~ N(0, k r^2)."""
    s, r, k = 5.0, 0.3, 9
    motion = RigidMotion(RigidMotionSettings(translation_sd_nm=s, rotation_sd_deg=r), np.random.default_rng(1))
    cluster = start = _loose_cores()
    for _ in range(k):
        cluster = motion(cluster)
    total = cluster.centre_nm - start.centre_nm
    np.testing.assert_allclose(total, np.sum(motion.displacement_nm, axis=0), atol=1e-9)
    assert np.all(total[:, 0] == 0.0)
    yx = total[:, 1:].ravel() / (s * np.sqrt(k))
    assert stats.kstest(yx, "norm").pvalue > 0.01
    assert np.std(yx) == pytest.approx(1.0, abs=0.12)  # 400 values: s.e. of an s.d. 3.5 %
    first = motion.displacement_nm[0][:, 1:].ravel() / s
    assert np.std(first) == pytest.approx(1.0, abs=0.12)
    turn = np.sum(motion.rotation_deg, axis=0) / (r * np.sqrt(k))
    assert stats.kstest(turn, "norm").pvalue > 0.01
    # the core axes turned by that angle about z; their z part unchanged
    a = np.radians(np.sum(motion.rotation_deg, axis=0))
    np.testing.assert_allclose(cluster.axis[:, 1], 0.8 * np.cos(a), atol=1e-12)
    np.testing.assert_allclose(cluster.axis[:, 2], 0.8 * np.sin(a), atol=1e-12)
    np.testing.assert_allclose(cluster.axis[:, 0], 0.6)


def test_bodies_are_cores_joined_by_touching_contacts():
    c = _cluster()
    gap = surface_gap_nm(c, c.contact)
    body = rigid_bodies(c, joint_gap_nm=1.0)
    assert body[0] == 0 and set(body) == set(range(body.max() + 1))
    for (i, j), g in zip(c.contact, gap):
        if g <= 1.0:
            assert body[i] == body[j]
    # no joint at all: every core is a body of its own; any joint: one body
    assert rigid_bodies(c, joint_gap_nm=-1e9).tolist() == list(range(c.n_cores))
    assert set(rigid_bodies(c, joint_gap_nm=1e9)) == {0}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_move_is_rigid_and_overlaps_nothing(seed):
    """Large moves (30 nm, 5 deg): distances inside a body kept, no core overlaps another, bridges tethered."""
    c = _cluster(seed)
    settings = RigidMotionSettings(translation_sd_nm=30.0, rotation_sd_deg=5.0)
    motion = RigidMotion(settings, np.random.default_rng(seed), bridging_distance_nm=20.0)
    for _ in range(5):
        body = rigid_bodies(c)
        moved = motion(c)
        i, j = np.triu_indices(c.n_cores, 1)
        d0 = np.linalg.norm(c.centre_nm[i] - c.centre_nm[j], axis=1)
        d1 = np.linalg.norm(moved.centre_nm[i] - moved.centre_nm[j], axis=1)
        same = body[i] == body[j]
        np.testing.assert_allclose(d1[same], d0[same], atol=1e-9)
        assert np.any(np.abs(d1[~same] - d0[~same]) > 1.0) or not np.any(~same)
        g0 = surface_gap_nm(c, np.column_stack([i, j]))
        g1 = surface_gap_nm(moved, np.column_stack([i, j]))
        assert np.all(g1[~same] >= np.minimum(g0[~same], 1.0) - 1e-9)
        tied = np.isin(i * c.n_cores + j, c.contact @ [c.n_cores, 1]) & ~same
        assert np.all(g1[tied] <= np.maximum(g0[tied], 20.0) + 1e-9)
        np.testing.assert_array_equal(moved.centre_nm[:, 0], c.centre_nm[:, 0])  # on the film
        owner = c.shell_owner
        np.testing.assert_allclose(  # shell particles ride with their core
            np.linalg.norm(moved.shell_centre_nm - moved.centre_nm[owner], axis=1),
            np.linalg.norm(c.shell_centre_nm - c.centre_nm[owner], axis=1),
            atol=1e-9,
        )
        c = moved


def test_off_is_the_phantom_without_motion(root):
    """enabled = false: the plan's clusters are those of sintering alone, bit for bit; nothing recorded."""
    spec = _spec(root, enabled=False)
    plan = plan_simulation(spec)
    seeds = np.random.SeedSequence(spec.seed).spawn(2 + 4)
    c0 = make_cluster(n_cores=4, rng=np.random.default_rng(seeds[0]))
    log = HeatingLog(pt_time_s=np.array([0, 12, 41, 209.0]), temperature_C=np.array([372, 370, 370, 350.0]))
    alone = sinter_cluster(c0, plan.card, plan.parameters, log)
    for a, b in zip(plan.clusters, alone):
        for name in ("centre_nm", "radius_nm", "neck_radius_nm", "shell_centre_nm", "shell_radius_nm", "axis"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not plan.rigid_displacement_nm.any() and not plan.rigid_rotation_deg.any()
    on = plan_simulation(_spec(root))
    assert on.rigid_displacement_nm[1:].any()
    np.testing.assert_array_equal(on.clusters[0].centre_nm, plan.clusters[0].centre_nm)


def test_spec_keys(root):
    spec = _spec(root)
    m = spec.sintering.rigid_motion
    assert (m.enabled, m.translation_sd_nm, m.rotation_sd_deg, m.joint_gap_nm) == (True, 5.0, 0.3, 1.0)
    with pytest.raises(SpecError, match="sintering.rigid_motion.translation_sd_nm"):
        _spec(root, translation_sd_nm=-1.0)
    with pytest.raises(SpecError, match="sintering.rigid_motion"):
        _spec(root, speed=1.0)
    # a sweep over the switch has a dimension the schema declares
    assert dim_name("sintering.rigid_motion.enabled") in schema.SWEEP_SETTINGS


@pytest.fixture(scope="module")
def moving_plan(root):
    """Seed 11, 4 cores: two bodies that drift ~19 nm apart over the 4 series."""
    plan = plan_simulation(_spec(root))
    assert [int(rigid_bodies(c).max()) + 1 for c in plan.clusters] == [2, 2, 2, 2]
    return plan


def test_truth_records_the_motion(moving_plan):
    truth = truth_dataset(moving_plan)
    assert truth.rigid_displacement_nm.dims == ("time", "particle", "axis")
    assert truth.rigid_displacement_nm.attrs["units"] == "nm" and truth.rigid_rotation_deg.attrs["units"] == "degree"
    assert truth.core_axis.dims == ("time", "particle", "axis")
    disp = truth.rigid_displacement_nm.values
    assert not disp[0].any() and np.ptp(disp[-1, :, 2]) > 10.0  # the bodies moved apart
    assert truth.rigid_body.values.max() == 1


def test_pairs_tracked_under_the_default_motion(moving_plan):
    """The measurement follows every true pair through the moves (noiseless voxels of the true cores)."""
    plan, vox = moving_plan, 6.0
    lo = np.min([(c.centre_nm - 1.3 * c.radius_nm[:, None]).min(axis=0) for c in plan.clusters], axis=0)
    hi = np.max([(c.centre_nm + 1.3 * c.radius_nm[:, None]).max(axis=0) for c in plan.clusters], axis=0)
    nyx = [2 * int(np.ceil(max(abs(lo[k]), abs(hi[k])) / vox)) + 8 for k in (1, 2)]
    grid = Grid((int(np.ceil((hi[0] - lo[0]) / vox)) + 4, *nyx), vox, 0.5 * (lo[0] + hi[0]))
    binaries = [(voxelize(c, grid).label > 0).astype(np.uint8) for c in plan.clusters]
    z, y, x = grid.coords_nm()
    heating = plan.spec.heating
    metrics = measure_volumes(binaries, z, y, x, heating.pt_time_s, heating.temperature_C, voxel_size_nm=vox)
    val = compare_to_truth(metrics, truth_dataset(plan))
    n_true = len(plan.pairs)
    assert val.found.values.tolist() == [n_true] * 4
    assert (val.attrs["pairs_found"], val.attrs["pairs_missed"]) == (n_true, 0)
    assert (metrics.status.values == "ok").all() and metrics.sizes["pair"] == n_true
