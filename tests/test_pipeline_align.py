"""Translational alignment of a synthetic tilt series with known drift, both metrics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from _synthetic import sphere_series

from sinter4d.errors import InputError
from sinter4d.pipeline.align import align_translations, apply_shifts, register_pair
from sinter4d.pipeline.settings import AlignSettings

ANGLES = np.arange(-40.0, 41.0, 2.0)  # the paper's 41 tilts
REF = 20  # index of 0 deg


def _drift(seed=5, step_px=1.5):
    walk = np.cumsum(np.random.default_rng(seed).normal(0, step_px, (ANGLES.size, 2)), axis=0)
    return walk - walk[REF]


def _noisy_light(clean, seed=1):
    """Poisson counts at ~5.5 e-/px, then a light denoise (Gaussian, sigma 1.5 px)."""
    counts = np.random.default_rng(seed).poisson(clean).astype(np.float32)
    return ndimage.gaussian_filter(counts, (0, 1.5, 1.5))


def _rms(a):
    return float(np.sqrt(np.mean(np.square(a))))


@pytest.fixture(scope="module")
def drifted():
    drift = _drift()
    return drift, _noisy_light(sphere_series(ANGLES, drift=drift, seed=3))


# measured (2 cores): xcorr RMS 0.14 px (y 0.11, x 0.17) in 0.3 s;
# mattes RMS 0.18 px in 7 s CPU (41 images, 96 x 96); with a quarter of the samples 0.37 px in 2.3 s
# (seed 8 of the drift: 0.21 and 0.22 px): fewer samples cost accuracy on images this small.
@pytest.mark.parametrize(("method", "tol", "sampling"), [("xcorr", 0.35, 1.0), ("mattes", 0.5, 1.0), ("mattes", 0.5, 0.25)])
def test_recovers_random_walk_drift(drifted, method, tol, sampling):
    drift, images = drifted
    shifts = align_translations(images, ANGLES, AlignSettings(align_method=method, mattes_sampling=sampling))
    assert shifts.shape == (41, 2) and np.all(shifts[REF] == 0)
    err = shifts - drift
    assert _rms(err) <= tol, (_rms(err[:, 0]), _rms(err[:, 1]))
    assert _rms(err[:, 0]) <= tol and _rms(err[:, 1]) <= tol


def test_zero_drift_gives_zero_shifts():
    clean = sphere_series(ANGLES, seed=3)
    assert np.abs(align_translations(clean, ANGLES)).max() < 0.1
    assert _rms(align_translations(_noisy_light(clean), ANGLES)) < 0.3


def test_undoing_the_shifts_aligns_the_series(drifted):
    drift, images = drifted
    aligned = apply_shifts(images, -align_translations(images, ANGLES))
    # rows (y) do not move with tilt: after alignment the row profiles of all tilts agree
    profile = aligned[:, 20:-20, 20:-20].mean(axis=2)
    truth = apply_shifts(images, -drift)[:, 20:-20, 20:-20].mean(axis=2)
    assert np.abs(profile - truth).max() < 0.2 * np.ptp(truth)


def test_apply_shifts_convention_and_round_trip():
    img = np.zeros((32, 32), np.float32)
    img[10, 12] = 1.0
    moved = apply_shifts(img, (2.0, -3.0), method="fourier")
    assert moved.dtype == np.float32
    assert np.unravel_index(np.argmax(moved), moved.shape) == (12, 9)  # content displaced by (+2, -3)
    smooth = ndimage.gaussian_filter(np.random.default_rng(0).random((40, 40)), 3)
    back = apply_shifts(apply_shifts(smooth, (1.3, -0.7)), (-1.3, 0.7))
    np.testing.assert_allclose(back[5:-5, 5:-5], smooth[5:-5, 5:-5], atol=1e-3)


@pytest.mark.parametrize("method", ["xcorr", "mattes"])
def test_register_pair_sign(method):
    fixed = sphere_series(ANGLES[REF : REF + 1], seed=2)[0]
    moving = sphere_series(ANGLES[REF : REF + 1], drift=[(1.4, -2.3)], seed=2)[0]
    np.testing.assert_allclose(register_pair(fixed, moving, method=method), (1.4, -2.3), atol=0.15)


def test_bad_arguments():
    images = np.zeros((3, 16, 16))
    with pytest.raises(InputError, match="method='sift' is not a known choice; use one of 'xcorr', 'mattes'"):
        register_pair(images[0], images[1], method="sift")
    with pytest.raises(ValueError, match=r"(?s)align_method.*'xcorr' or 'mattes'"):
        AlignSettings(align_method="sift")
    with pytest.raises(InputError, match=r"mattes_sampling=1.5 must lie in \(0, 1\]"):
        register_pair(images[0], images[1], method="mattes", mattes_sampling=1.5)
    with pytest.raises(InputError, match="monotonic"):
        align_translations(images, [0, -2, 2])
    with pytest.raises(InputError, match="n angles"):
        align_translations(images, [0, 2])
    with pytest.raises(InputError, match="normalization='full'"):
        align_translations(images, [-2, 0, 2], normalization="full")


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [("mattes_sampling", 0.0, r"pipeline\.mattes_sampling: .*greater than 0"),
     ("mattes_sampling", 2.0, r"pipeline\.mattes_sampling: .*less than or equal to 1"),
     ("sigma_tile_px", 16, r"pipeline\.sigma_tile_px: .*greater than or equal to 64")],
)
def test_speed_settings_are_checked_in_a_spec(root, key, value, match):
    import tomllib

    from sinter4d.errors import SpecError
    from sinter4d.experiments import parse_spec

    with open(root / "experiments" / "quick.toml", "rb") as fh:
        data = tomllib.load(fh)
    data["pipeline"][key] = value
    with pytest.raises(SpecError, match=match) as info:
        parse_spec(data, source="quick.toml")
    assert "\n" not in str(info.value)


def test_a_crop_with_the_fields_centre_finds_the_fields_shifts():
    # the spheres in a wider field of film: registering a crop of it (as the chain does on the
    # specimen's box) gives the field's shifts when the cosine stretch keeps the field's centre column
    drift = _drift(seed=8)
    field = _noisy_light(sphere_series(ANGLES, shape=(140, 200), drift=drift, seed=3))
    rows, cols = slice(10, 130), slice(20, 170)  # off-centre along x: the crop's middle is 5 px from the field's
    whole = align_translations(field, ANGLES)
    crop = np.ascontiguousarray(field[:, rows, cols])
    kept = align_translations(crop, ANGLES, centre_x=(200 - 1) / 2 - cols.start)
    assert np.abs(kept - whole).max() < 0.2  # measured 0.15 px (steps of the 1/20 px upsampling)
    assert _rms(kept - drift) < 0.35
    # the crop's own middle column scales the outer images about the wrong point: ~(1/cos 40 - 1) * 5 px at the ends
    moved = align_translations(crop, ANGLES)
    assert np.abs(moved[[0, -1], 1] - whole[[0, -1], 1]).min() > 0.8
