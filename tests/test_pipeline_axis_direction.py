"""In-plane direction of the tilt axis: the common-line estimator, the rotation, the chain's choice.

Truths: series made with the project's simulator and then turned by a known
angle (exact ``np.rot90``, or ``scipy.ndimage.rotate``), and, against an
inverse crime, series projected with ``skimage.transform.radon`` from a
scikit-image blob volume on another grid.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

from sinter4d.acquisition import ScanSettings, simulate_tilt_series
from sinter4d.errors import InputError
from sinter4d.phantom import Grid
from sinter4d.pipeline.axis_direction import (
    _Profiles,
    choose_axis_rotation,
    common_line_scores,
    find_tilt_axis_rotation,
    fold_axis_rotation,
    remove_row_offsets,
    rotate_to_axis,
)
from sinter4d.pipeline.binarize import dice
from sinter4d.pipeline.chain import process_tilt_series
from sinter4d.pipeline.settings import AlignSettings, PipelineSpec, recorded_settings

ANGLES = np.linspace(-40.0, 40.0, 25)
GRID = Grid((24, 80, 80), 4.0)
# measured (docs/validation.md): errors 0.42-0.82 deg on this 80 px, 25-tilt series,
# <= 0.52 deg on 12 analytic sphere series of 96 px, 41 tilts at ~5.5 e-/px; a 1 deg
# error moves a point 40 px from the centre by 0.7 px, below the reconstruction's blur
TOL_DEG = 1.0


def _turned(images, angle_deg):
    """Each image turned by ``ndimage.rotate`` (cubic): the axis then lies at +angle_deg."""
    return np.stack([ndimage.rotate(i, angle_deg, reshape=False, order=3, mode="nearest") for i in images])


def _angle_error(found, truth):
    return abs(fold_axis_rotation(found - truth))


def _six_spheres() -> np.ndarray:
    """Six Cu spheres (radius 16-24 nm) at heights -26 to 26 nm on GRID."""
    z, y, x = GRID.coords_nm()
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    core = np.zeros(GRID.shape, np.float32)
    for cz, cy, cx, r in [(-24, -80, -60, 20), (20, -60, 50, 18), (0, 0, -10, 24),
                          (26, 44, -76, 16), (-26, 70, 60, 20), (8, 100, -8, 18)]:
        core[(zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2] = 1.0
    return core


@pytest.fixture(scope="module")
def series() -> xr.Dataset:
    """Six Cu spheres (radius 16-24 nm) at different heights, drift, axis offset 1.5 px.

    At 50 pA (8x the paper's dose per pixel: ~10 counts/px in a particle) the test is
    about geometry; docs/validation.md has the accuracy at the paper's dose.
    """
    core = _six_spheres()
    scan = ScanSettings(angles_deg=tuple(ANGLES), pixel_size_nm=4.0, probe_current_pA=50.0, dwell_time_ns=500.0,
                        drift_sd_px=0.5, axis_offset_px=1.5)
    return simulate_tilt_series(core, None, GRID, scan, film_thickness_nm=20.0, rng=3, temperature_C=370.0)


def _with_counts(ds: xr.Dataset, images: np.ndarray, **attrs) -> xr.Dataset:
    out = xr.Dataset({"counts": (("tilt", "y", "x"), images.astype(np.float32))},
                     coords={"tilt_angle": ("tilt", ANGLES)}, attrs={"pixel_size_nm": 4.0, **attrs})
    return out


@pytest.mark.parametrize(("turn", "truth"), [(None, 0.0), ("rot90", 90.0), (3.0, 3.0), (-7.0, -7.0)])
def test_finds_the_direction_of_a_simulated_series(series, turn, truth):
    counts = series["counts"].values
    images = counts if turn is None else np.rot90(counts, 1, axes=(1, 2)) if turn == "rot90" else _turned(counts, turn)
    found = find_tilt_axis_rotation(images, ANGLES)
    assert -90.0 < found <= 90.0
    assert _angle_error(found, truth) < TOL_DEG, found


def test_finds_the_direction_of_radon_projections_of_blobs():
    """Not our projector: skimage's radon of each y slice of a 3D blob volume (another grid, another interpolation)."""
    from skimage.data import binary_blobs
    from skimage.transform import radon

    blobs = binary_blobs(64, blob_size_fraction=0.12, n_dim=3, volume_fraction=0.08, rng=5).astype(float)
    yy, xx = np.mgrid[:64, :64] - 31.5
    volume = np.zeros((64, 64, 64))
    # a slab of blobs (z, y, x), as particles on a film, within a cylinder about z of radius
    # 22 px: at every tilt they stay inside the disk the profiles are taken on (see
    # axis_direction: mass crossing its edge breaks the common line)
    volume[24:40] = blobs[24:40] * (yy**2 + xx**2 <= 22**2)
    theta = np.linspace(-40.0, 40.0, 21)
    sino = np.stack([radon(volume[:, k, :], theta=theta, circle=False) for k in range(64)])  # (y, det, tilt)
    images = 4.0 + np.transpose(sino, (2, 0, 1))  # noise-free: the estimator's noise limit is in validation.md
    assert _angle_error(find_tilt_axis_rotation(images, theta), 0.0) < TOL_DEG
    assert _angle_error(find_tilt_axis_rotation(np.rot90(images, 1, axes=(1, 2)), theta), 90.0) < TOL_DEG
    assert _angle_error(find_tilt_axis_rotation(_turned(images, -5.0), theta), -5.0) < TOL_DEG


def test_scores_are_lowest_along_the_axis(series):
    grid = np.array([0.0, -30.0, 30.0, 60.0, 90.0])
    scores = common_line_scores(series["counts"].values, grid, reference=12)
    assert scores[0] < 0.5 * scores[1:].min(), scores
    assert 0.0 <= scores.min() and scores.max() < 1.0


def test_rotation_is_exact_for_quarter_turns_and_proper():
    img = np.random.default_rng(1).random((3, 12, 20)).astype(np.float32)
    np.testing.assert_array_equal(rotate_to_axis(np.rot90(img, 1, axes=(1, 2)), 90.0), img)
    np.testing.assert_array_equal(rotate_to_axis(img, 0.0), img)
    np.testing.assert_array_equal(rotate_to_axis(img, 180.0), img[:, ::-1, ::-1])
    assert rotate_to_axis(img, -90.0).shape == (3, 20, 12) and rotate_to_axis(img, 90.0).dtype == np.float32
    # a line through the centre along (dy, dx) = (cos a, sin a) ends up on the centre column
    a = np.deg2rad(30.0)
    yy, xx = np.mgrid[:41, :41] - 20.0
    line = np.exp(-((xx * np.cos(a) - yy * np.sin(a)) ** 2) / 2.0) * (yy**2 + xx**2 < 15**2)

    def spread(image):  # s.d. of the columns holding the mass, px
        col = np.clip(image, 0, None).sum(axis=0)
        return np.sqrt(col @ (np.arange(41) - 20.0) ** 2 / col.sum())

    assert spread(rotate_to_axis(line, 30.0)) < 1.5 < 4.0 < spread(rotate_to_axis(line, -30.0))


def test_choice_of_the_angle_and_its_source(series):
    counts = series["counts"].values
    assert choose_axis_rotation(counts, ANGLES, recorded=0.0) == (0.0, "file")
    assert choose_axis_rotation(counts, ANGLES, AlignSettings(axis_rotation=270.0), recorded=0.0) == (90.0, "setting")
    assert choose_axis_rotation(counts, ANGLES, AlignSettings(axis_rotation=-90.0)) == (90.0, "setting")
    # found near 0 or 90 deg: snapped (no resampling), else kept as found
    assert choose_axis_rotation(np.rot90(counts, 1, axes=(1, 2)), ANGLES, AlignSettings(axis_rotation="find"),
                             recorded=0.0) == (90.0, "found")
    angle, source = choose_axis_rotation(_turned(counts, 3.0), ANGLES)
    assert source == "found" and angle != 0.0 and abs(angle - 3.0) < TOL_DEG
    with pytest.raises(InputError, match="no tilt axis"):
        find_tilt_axis_rotation(np.ones((5, 32, 32)), ANGLES[:5])
    with pytest.raises(InputError, match="n angles"):
        find_tilt_axis_rotation(counts, ANGLES[:5])


@pytest.fixture(scope="module")
def aligned_recon(series):
    settings = PipelineSpec(denoise=False, method="sirt", iterations=30, slab_thickness_nm=96.0)
    return settings, process_tilt_series(series, settings, n_jobs=1)


def test_a_series_along_x_reconstructs_exactly_as_the_aligned_one(series, aligned_recon):
    settings, ref = aligned_recon
    assert (ref.attrs["tilt_axis_rotation_deg"], ref.attrs["tilt_axis_rotation_source"]) == (0.0, "file")
    along_x = _with_counts(series, np.rot90(series["counts"].values, 1, axes=(1, 2)))
    out = process_tilt_series(along_x, settings, n_jobs=1)
    assert (out.attrs["tilt_axis_rotation_deg"], out.attrs["tilt_axis_rotation_source"]) == (90.0, "found")
    np.testing.assert_array_equal(out.volume.values, ref.volume.values)
    np.testing.assert_array_equal(out.binary.values, ref.binary.values)
    # the same when the file says so
    given = process_tilt_series(_with_counts(series, along_x.counts.values, tilt_axis_rotation_deg=90.0), settings, n_jobs=1)
    assert given.attrs["tilt_axis_rotation_source"] == "file"
    np.testing.assert_array_equal(given.binary.values, ref.binary.values)


def test_a_series_turned_by_3_degrees_reconstructs_to_the_same_binary(series, aligned_recon):
    settings, ref = aligned_recon
    out = process_tilt_series(_with_counts(series, _turned(series["counts"].values, 3.0)), settings, n_jobs=1)
    assert out.attrs["tilt_axis_rotation_source"] == "found"
    assert abs(out.attrs["tilt_axis_rotation_deg"] - 3.0) < TOL_DEG
    assert out.binary.shape == ref.binary.shape
    assert dice(out.binary.values, ref.binary.values) >= 0.9
    # what it records reads back: a given angle is the setting
    fixed = settings.model_copy(update={"axis_rotation": 3.0})
    again = process_tilt_series(_with_counts(series, _turned(series["counts"].values, 3.0)), fixed, n_jobs=1)
    assert again.attrs["tilt_axis_rotation_source"] == "setting"
    assert recorded_settings(again.attrs, {"slab_thickness_nm": 96.0}) == fixed


@pytest.mark.slow
def test_etspy_needle_axis_is_found_along_x():
    """ETSpy's real HAADF needle (FEI, 2011; its log says 'Tilt Axis Angle 90°'), when etspy is installed."""
    etspy = pytest.importorskip("etspy")
    mrcfile = pytest.importorskip("mrcfile")
    from pathlib import Path

    folder = Path(etspy.__file__).parent / "tests" / "test_data"
    if not (folder / "HAADF.mrc").is_file():
        pytest.skip("etspy ships no HAADF.mrc")
    with mrcfile.open(folder / "HAADF.mrc", permissive=True) as f:
        images = np.asarray(f.data, dtype=np.float32)
    angles = np.loadtxt(folder / "HAADF.rawtlt")
    found = find_tilt_axis_rotation(images - images.min(), angles)
    assert _angle_error(found, 90.0) < 5.0, found


def test_row_offsets_are_removed_and_nothing_else():
    """Known row offsets on a film with a disc: removed to within the pixel noise; no row noise, no change."""
    rng = np.random.default_rng(21)
    yy, xx = np.mgrid[:64, :64] - 31.5
    clean = 20.0 + 200.0 * (yy**2 + xx**2 < 15**2)
    noisy = rng.normal(clean, 3.0)
    offsets = rng.normal(0.0, 6.0, 64)
    out = remove_row_offsets(noisy + offsets[:, None])
    left = (out - noisy).mean(axis=1)  # what remains of the offsets, per row
    assert np.std(left) < 0.15 * np.std(offsets), np.std(left)
    assert np.abs(remove_row_offsets(noisy) - noisy).max() < 0.5  # pixel noise alone: shrunk to ~nothing


def test_removing_row_offsets_does_not_favour_the_rows():
    """After the rows' film means are removed, the film's noise cancels along the rows only: flattened, it cancels everywhere.

    Twelve images of one disc (the same profile along every direction and in every
    image) on a noisy film with row offsets: the common-line score can only differ
    between directions through the noise. Removal alone makes 0 deg look better
    than 7 deg; with the film flattened 0 deg has no advantage.
    """
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:96, :96] - 47.5
    clean = 20.0 + 300.0 * (yy**2 + xx**2 < 20**2)
    stack = np.stack([rng.normal(clean, 6.0) + rng.normal(0.0, 4.0, 96)[:, None] for _ in range(12)])
    angles = [0.0, 7.0]

    def scores(images):
        return common_line_scores(images, angles, smooth_px=1.0, max_shift_fraction=0.0)

    removed = scores(remove_row_offsets(stack))
    flat = scores(remove_row_offsets(stack, flatten_film=True))
    assert removed[0] < 0.8 * removed[1]  # the rows are favoured (seeds 0-3: by 20-30 %)
    assert flat[0] > flat[1]  # no longer (what is left, the disc's residual row noise, favours no row)
    assert abs(flat[0] - flat[1]) < 0.5 * (removed[1] - removed[0])


def test_scan_line_noise_does_not_throw_the_direction(series):
    """The detector's defaults (gain, dark level, read and row noise) on the module's series turned by 3 deg.

    Without removing the row offsets the estimate was 10-16 deg off on such series
    (docs/validation.md); the tolerance is the estimator's, as for the ideal counter.
    """
    from sinter4d.acquisition import DetectorSettings
    from sinter4d.acquisition._stage import StageSettings
    from sinter4d.pipeline.series import check_tilt_series

    core = _six_spheres()
    scan = ScanSettings(angles_deg=tuple(ANGLES), pixel_size_nm=4.0, probe_current_pA=50.0, dwell_time_ns=500.0,
                        drift_sd_px=0.5, axis_offset_px=1.5, stage=StageSettings(enabled=True, axis_rotation_deg=3.0),
                        detector=DetectorSettings(enabled=True))
    ds = simulate_tilt_series(core, None, GRID, scan, film_thickness_nm=20.0, rng=7)
    images, angles, _ = check_tilt_series(ds)
    truth = ds.attrs["tilt_axis_rotation_truth_deg"]
    assert _angle_error(find_tilt_axis_rotation(images, angles), truth) < 2.5
    assert _angle_error(find_tilt_axis_rotation(images, angles, destripe=False), truth) > 5.0  # the test can fail


@pytest.mark.parametrize("axis_deg", [3.0, -7.0])
def test_a_stage_rotation_is_recovered_to_0_3_degrees_where_the_common_line_holds(axis_deg):
    """The simulator's stage turns the scan frame by a known angle (with drift and an axis offset);
    on noise-free projections the common line recovers it within the issue's 0.3 deg.

    Where it does not (docs/validation.md, "Where the remaining error comes from"): at the
    paper's dose, with the stage's per-image rotation walk, and where overlapping cores make
    the HAADF signal non-linear, the quick runs' series read 0.6 deg off (median).
    """
    from sinter4d.acquisition._stage import StageSettings

    stage = StageSettings(enabled=True, axis_rotation_deg=axis_deg, tilt_angle_sd_deg=0.0,
                          rotation_step_sd_deg=0.0, reference_drift_step_sd_nm=0.0)
    scan = ScanSettings(angles_deg=tuple(ANGLES), pixel_size_nm=4.0, probe_current_pA=50.0, dwell_time_ns=500.0,
                        drift_sd_px=0.5, axis_offset_px=1.5, stage=stage)
    ds = simulate_tilt_series(_six_spheres(), None, GRID, scan, film_thickness_nm=20.0, rng=3, store_expected=True)
    assert ds.attrs["tilt_axis_rotation_truth_deg"] == axis_deg
    assert _angle_error(find_tilt_axis_rotation(ds["expected_counts"].values, ANGLES), axis_deg) <= 0.3


def test_line_profiles_are_the_mean_along_each_line_with_linear_shares():
    # a pixel at signed distance s from the middle line adds (1 - w) of itself to bin floor(s) and w to the next
    rng = np.random.default_rng(3)
    stack = rng.normal(size=(3, 17, 21))
    profiles_of = _Profiles(stack)
    for angle in (0.0, 3.3, -47.1, 90.0):
        got, length = profiles_of(angle)
        a = np.deg2rad(angle)
        m = profiles_of.n_bins
        sums, weights = np.zeros((3, m)), np.zeros(m)
        for y, x, v in zip(profiles_of.y, profiles_of.x, profiles_of.values.T):
            s = y * np.cos(a) + x * np.sin(a) + (m - 1) / 2.0
            k, w = int(np.floor(s)), s - np.floor(s)
            sums[:, k] += (1 - w) * v
            sums[:, k + 1] += w * v
            weights[k] += 1 - w
            weights[k + 1] += w
        np.testing.assert_allclose(length, weights, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got, sums / np.maximum(weights, 1e-12), rtol=1e-10, atol=1e-12)
