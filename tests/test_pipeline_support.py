"""The slices along the tilt axis that hold the specimen (``support_margin_nm``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from _synthetic import sphere_series

from sinter4d.errors import InputError
from sinter4d.operators import ParallelProjector
from sinter4d.pipeline.support import slice_mass, specimen_box, specimen_rows

ANGLES = np.arange(-40.0, 41.0, 4.0)
FILM = 4.0  # sphere_series' background level


def _truth_rows(clean: np.ndarray) -> tuple[int, int]:
    """Rows where any noise-free image rises above the film: the spheres' analytic extent."""
    rows = np.flatnonzero((clean - FILM > 0).any(axis=(0, 2)))
    return int(rows[0]), int(rows[-1]) + 1


def test_a_slices_projected_mass_is_the_same_at_every_tilt():
    # the premise of the profile: a parallel beam projects all of a slice's mass at every tilt
    rng = np.random.default_rng(0)
    volume = rng.uniform(0.0, 1.0, (12, 20, 40)).astype(np.float32)
    volume[:, :, :8] = volume[:, :, -8:] = 0.0  # the slice stays inside the detector at +-40 deg
    op = ParallelProjector((12, 40), 20, voxel_size_nm=1.0, angles_deg=ANGLES, n_det=64)
    sums = op.direct(volume).sum(axis=2)  # (tilt, y)
    np.testing.assert_allclose(sums, np.broadcast_to(volume.sum(axis=(0, 2)), sums.shape), rtol=2e-5)
    np.testing.assert_allclose(slice_mass(op.direct(volume)), volume.sum(axis=(0, 2)), rtol=2e-5)


@pytest.mark.parametrize("noisy", [False, True])
def test_the_rows_hold_the_spheres_and_little_more(noisy):
    clean = sphere_series(ANGLES, shape=(160, 96), seed=4)
    start, stop = _truth_rows(clean)
    assert stop - start < 100  # the spheres fill well under the 160 rows: film above and below
    images = np.random.default_rng(1).poisson(clean).astype(np.float32) if noisy else clean
    found = specimen_rows(images - FILM, margin_px=4)
    assert found[0] <= start and found[1] >= stop  # every row of a sphere is kept ...
    assert start - found[0] <= 4 and found[1] - stop <= 4  # ... and the margin is all that is added


def test_the_margin_is_clipped_to_the_image_and_a_flat_profile_keeps_every_row():
    signal = np.zeros((3, 50, 30), np.float32)
    signal[:, 2:45, 5:25] = 1.0
    assert specimen_rows(signal, margin_px=10) == (0, 50)
    assert specimen_rows(np.zeros((3, 50, 30)), margin_px=2) == (0, 50)


def _extent(mask: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns spanned by a 2D mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


@pytest.mark.parametrize("noise", ["none", "smoothed", "raw"])
def test_the_box_holds_what_most_images_show_and_little_more(noise):
    # drifting spheres in a wider field of film; their analytic extent in each noise-free image
    drift = np.column_stack([np.linspace(-12, 9, ANGLES.size), np.linspace(6, -10, ANGLES.size)])
    clean = sphere_series(ANGLES, shape=(200, 240), drift=drift, seed=4)
    on = clean - FILM > 0
    union, most = _extent(on.any(axis=0)), _extent(on.mean(axis=0) >= 0.25)
    assert union[0].stop - union[0].start < 100 and union[1].stop - union[1].start < 70  # film all round
    images = clean
    if noise != "none":
        images = np.random.default_rng(1).poisson(clean).astype(np.float32)
    if noise == "smoothed":  # as a denoiser would leave them
        images = ndimage.gaussian_filter(images, (0, 2, 2))
    found = specimen_box(images, margin_px=4)
    for got, want, every in zip(found, most, union):
        assert got.start <= want.start and got.stop >= want.stop, (found, most)  # what a quarter of the images show
        if noise != "raw":  # ... and within the margin of what any image shows
            assert got.start >= every.start - 4 - 1 and got.stop <= every.stop + 4 + 1, (found, union)
    # the same rows as the slices' profile finds, where there is no drift along y to spread them
    still = sphere_series(ANGLES, shape=(200, 240), seed=4)
    rows = specimen_box(still, margin_px=4)[0]
    assert (rows.start, rows.stop) == specimen_rows(still - FILM, margin_px=4)


@pytest.mark.parametrize(("signal", "kwargs", "match"), [
    (np.zeros((50, 30)), {"margin_px": 1}, "signal must be"),
    (np.zeros((3, 50, 30)), {"margin_px": -1}, "margin_px"),
    (np.zeros((3, 50, 30)), {"margin_px": 1, "fraction": 1.5}, "fraction"),
])
def test_bad_input_is_refused(signal, kwargs, match):
    with pytest.raises(InputError, match=match):
        specimen_rows(signal, **kwargs)


@pytest.mark.parametrize(("images", "kwargs", "match"), [
    (np.zeros((50, 30)), {"margin_px": 1}, "images must be"),
    (np.zeros((3, 50, 30)), {"margin_px": -1}, "margin_px"),
    (np.zeros((3, 50, 30)), {"margin_px": 1, "fraction": -0.1}, "fraction"),
])
def test_bad_input_to_the_box_is_refused(images, kwargs, match):
    with pytest.raises(InputError, match=match):
        specimen_box(images, **kwargs)


def test_smoothing_the_profiles_keeps_the_scan_lines_noise_out_of_the_box():
    # raw frames: each image row carries its own offset (a scan line's), which averaging along the row keeps;
    # averaged over the 21 tilts its s.d. is 0.06, and the level is 5 % of the rows' profile range (2.0 -> 0.10)
    # above the profile's 5th percentile (~1.6 s.d. under its mean), so the profile crosses it far from the spheres
    clean = sphere_series(ANGLES, shape=(200, 240), seed=4)
    union = _extent((clean - FILM > 0).any(axis=0))
    rows_offset = np.random.default_rng(5).normal(0.0, 0.06 * np.sqrt(ANGLES.size), (ANGLES.size, 200, 1))
    images = clean + rows_offset
    plain = specimen_box(images, margin_px=4)
    assert plain[0].stop - plain[0].start > 1.5 * (union[0].stop - union[0].start)  # the noise spreads the rows
    rows, cols = specimen_box(images, margin_px=4, smooth_px=8)
    # smoothed by 8 px the offsets' s.d. falls ~5x, under the level: the box holds the spheres, and the
    # smoothing can only widen it, by at most ~2 s.d. of the Gaussian
    for got, every in zip((rows, cols), union):
        assert every.start - 4 - 16 <= got.start <= every.start and every.stop <= got.stop <= every.stop + 4 + 16
    with pytest.raises(InputError, match="smooth_px"):
        specimen_box(images, margin_px=4, smooth_px=-1)
