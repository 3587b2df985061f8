"""Tilt alignment to tracked features: the projection model, the tracking, the chain's per-image directions.

Truths: point clouds projected by the model itself with known rotations,
shifts and tilt errors; a six-sphere series made by the simulator's stage
with a known rotation walk (``true_axis_rotation``).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from sinter4d.acquisition import ScanSettings, simulate_tilt_series
from sinter4d.acquisition._stage import StageSettings
from sinter4d.errors import InputError
from sinter4d.pipeline.axis_direction import fold_axis_rotation, rotate_to_axis
from sinter4d.pipeline.chain import prepare_tilt_series
from sinter4d.pipeline.feature_tracks import particle_centres, track_patches
from sinter4d.pipeline.settings import PipelineSpec
from sinter4d.pipeline.tiltalign import fit_tilt_alignment, project_points, warp_views
from test_pipeline_axis_direction import GRID, _six_spheres  # the six spheres at several heights

ANGLES = np.arange(-40.0, 40.1, 2.0)


def _cloud(rng, m=12, z_sd=20.0):
    return np.column_stack([rng.uniform(-80, 80, m), rng.uniform(-80, 80, m), rng.normal(0, z_sd, m)])


def _truth(rng, n, tilt_sd=0.0):
    rotation = 2.0 + np.cumsum(rng.normal(0.0, 0.1, n))
    tilt = rng.normal(0.0, tilt_sd, n)
    tilt -= tilt[n // 2]
    return rotation, rng.normal(0.0, 2.0, (n, 2)), tilt


@pytest.mark.parametrize("fit_tilt", [False, True])
def test_noise_free_points_give_back_the_rotations_shifts_and_points(fit_tilt):
    rng = np.random.default_rng(1)
    points = _cloud(rng)
    rotation, shifts, tilt = _truth(rng, ANGLES.size, 0.3 if fit_tilt else 0.0)
    obs = project_points(points, ANGLES + tilt, rotation, shifts)
    fit = fit_tilt_alignment(obs, ANGLES, fit_tilt=fit_tilt)
    np.testing.assert_allclose(fit.rotation_deg, rotation, atol=1e-5)
    np.testing.assert_allclose(fit.tilt_correction_deg, tilt, atol=1e-5)
    # the points and shifts up to the translation gauge: the model's prediction is exact
    np.testing.assert_allclose(project_points(fit.points_px, ANGLES + fit.tilt_correction_deg, fit.rotation_deg,
                                              fit.shifts_px), obs, atol=1e-5)
    assert fit.residual_px < 1e-5


def test_noisy_points_give_the_rotations_within_the_noise_and_a_jump_is_rejected():
    """0.1 px of noise on 12 points at depths of +-20 px: each image's rotation within 0.15 deg
    (seeds 0-4 gave at most 0.09 deg); a feature that jumps 5 px half way is dropped."""
    rng = np.random.default_rng(2)
    points = _cloud(rng)
    rotation, shifts, _ = _truth(rng, ANGLES.size)
    obs = project_points(points, ANGLES, rotation, shifts) + rng.normal(0.0, 0.1, (ANGLES.size, 12, 2))
    obs[25:, 3, 0] += 5.0
    fit = fit_tilt_alignment(obs, ANGLES, fit_tilt=False, condition=True)
    assert not fit.kept[3] and fit.kept.sum() == 11
    assert np.abs(fit.rotation_deg - rotation).max() < 0.15
    assert np.isfinite(fit.condition) and fit.condition > 1


def test_too_few_features_or_views_raise_one_line():
    rng = np.random.default_rng(3)
    obs = project_points(_cloud(rng, m=3), ANGLES, np.zeros(ANGLES.size), np.zeros((ANGLES.size, 2)))
    with pytest.raises(InputError, match="at least 4") as err:
        fit_tilt_alignment(obs, ANGLES)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="at least 3"):
        fit_tilt_alignment(obs[:2], ANGLES[:2])
    with pytest.raises(InputError, match=r"\(n_images, n_features, 2\)"):
        fit_tilt_alignment(obs[..., 0], ANGLES)


def test_warp_views_matches_rotate_to_axis_and_moves_by_the_shift():
    rng = np.random.default_rng(4)
    images = rng.random((2, 32, 32))
    np.testing.assert_allclose(warp_views(images, [5.0, 5.0], np.zeros((2, 2))), rotate_to_axis(images, 5.0), atol=1e-12)
    moved = warp_views(images, [0.0, 0.0], [[0.0, 0.0], [2.0, -3.0]])
    np.testing.assert_allclose(moved[1, 5:20, 5:20], images[1, 7:22, 2:17], atol=1e-12)


SERIES_ANGLES = np.arange(-40.0, 40.1, 4.0)


@pytest.fixture(scope="module")
def walked() -> xr.Dataset:
    """Six spheres, 21 tilts, the stage turned by 3 deg with a rotation walk of 0.2 deg steps, drift, no noise."""
    stage = StageSettings(enabled=True, axis_rotation_deg=3.0, tilt_angle_sd_deg=0.0, rotation_step_sd_deg=0.2,
                          reference_drift_step_sd_nm=0.0)
    scan = ScanSettings(angles_deg=tuple(SERIES_ANGLES), pixel_size_nm=4.0, probe_current_pA=50.0, dwell_time_ns=500.0,
                        drift_sd_px=0.5, axis_offset_px=1.5, stage=stage)
    ds = simulate_tilt_series(_six_spheres(), None, GRID, scan, film_thickness_nm=20.0, rng=3, store_expected=True)
    return ds.assign(counts=ds["expected_counts"])


def test_particles_are_found_and_tracked(walked):
    image = rotate_to_axis(walked["counts"].values[10], 3.0)
    centres = particle_centres(image, min_radius_px=3, max_radius_px=7)
    assert centres.shape[0] == 6
    tracks = track_patches(rotate_to_axis(walked["counts"].values, 3.0), SERIES_ANGLES, centres, patch_px=14, search_px=3)
    assert np.isfinite(tracks).all()


def test_the_chain_recovers_each_images_rotation_to_0_3_degrees(walked):
    truth = walked["true_axis_rotation"].values
    assert np.ptp(truth) > 0.3  # the walk is there to be found
    settings = PipelineSpec(denoise=False, axis_rotation="find", axis_refine="features", feature_radius_nm=(12.0, 28.0))
    prep = prepare_tilt_series(walked, settings)
    errors = np.abs([fold_axis_rotation(e) for e in prep.axis_rotations_deg - truth])
    assert errors.max() <= 0.3, errors  # measured: 0.13-0.19 deg, the common line 0.42 deg at most
    plain = prepare_tilt_series(walked, settings.model_copy(update={"axis_refine": "none"}))
    assert np.abs(plain.axis_rotation_deg - truth).max() > errors.max()  # the common line alone does worse
