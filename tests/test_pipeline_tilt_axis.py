"""Tilt-axis offset of synthetic series with a known axis position, alone and after alignment."""

from __future__ import annotations

import numpy as np
import pytest

from _synthetic import sphere_series

from sinter4d.errors import InputError
from sinter4d.pipeline.align import align_translations, apply_shifts
from sinter4d.pipeline.settings import AlignSettings
from sinter4d.pipeline.tilt_axis import center_tilt_axis, find_tilt_axis

ANGLES = np.arange(-40.0, 41.0, 2.0)  # the paper's 41 tilts, +-40 deg


def _counts(clean, seed=1):
    return np.random.default_rng(seed).poisson(clean).astype(np.float32)


# measured over 24 series (3 offsets x 2 centres x 4 seeds) at ~5.5 e-/px:
# RMS error 0.27 px, max 0.68 px; noise-free 0.20 px.
@pytest.mark.parametrize("offset", [3.4, 0.0, -2.7])
@pytest.mark.parametrize("centre", [(0.0, 0.0), (8.0, 4.0)])
def test_finds_known_offset_at_paper_dose(offset, centre):
    images = _counts(sphere_series(ANGLES, axis_offset_px=offset, centre=centre, seed=2))
    found = find_tilt_axis(images, ANGLES)
    assert abs(found - offset) < 1.0, found


def test_centering_moves_the_axis_to_the_middle():
    images = _counts(sphere_series(ANGLES, axis_offset_px=3.4, seed=3))
    found = find_tilt_axis(images, ANGLES)
    centred = center_tilt_axis(images, found)
    assert centred.dtype == np.float32
    assert abs(find_tilt_axis(centred, ANGLES)) < 0.3


def test_alignment_and_axis_together_are_a_rigid_motion():
    """After alignment the axis found is that of the aligned series: together with the
    shifts it must reproduce the true geometry up to a translation of the specimen,
    i.e. the x error per tilt must be of the form a cos(theta) + b sin(theta)."""
    n = ANGLES.size
    walk = np.cumsum(np.random.default_rng(11).normal(0, 1.5, (n, 2)), axis=0)
    drift = walk - walk[n // 2]
    clean = sphere_series(ANGLES, drift=drift, axis_offset_px=3.4, centre=(6.0, 3.0), seed=4)
    counts = _counts(clean)
    from scipy import ndimage

    light = ndimage.gaussian_filter(counts, (0, 1.5, 1.5))
    shifts = align_translations(light, ANGLES)
    offset = find_tilt_axis(apply_shifts(counts, -shifts), ANGLES)
    err_x = shifts[:, 1] + offset - (drift[:, 1] + 3.4)
    theta = np.deg2rad(ANGLES)
    rigid = np.column_stack([np.cos(theta), np.sin(theta)])
    resid = err_x - rigid @ np.linalg.lstsq(rigid, err_x, rcond=None)[0]
    assert np.sqrt(np.mean(resid**2)) < 0.3
    assert np.sqrt(np.mean((shifts[:, 0] - drift[:, 0]) ** 2)) < 0.5


def test_sharpness_method_on_noise_free_images():
    # the paper's criterion; reliable only without noise (see the module docstring)
    images = sphere_series(ANGLES, axis_offset_px=3.4, seed=2)
    found = find_tilt_axis(images, ANGLES, method="sharpness", search_px=(-6, 10))
    assert abs(found - 3.4) < 2.0


def test_bad_arguments():
    images = sphere_series(ANGLES[::10], seed=0)
    with pytest.raises(InputError, match="method='entropy' is not a known choice; use one of 'moments', 'sharpness'"):
        find_tilt_axis(images, ANGLES[::10], method="entropy")
    with pytest.raises(InputError, match="n angles"):
        find_tilt_axis(images, ANGLES[:3])
    with pytest.raises(InputError, match="outside search_px"):
        find_tilt_axis(sphere_series(ANGLES, axis_offset_px=6.0, seed=2), ANGLES, search_px=(-3, 3))
    with pytest.raises(InputError, match="rows"):
        find_tilt_axis(np.full((5, 32, 32), 4.0), ANGLES[::10])


def test_search_range_from_the_settings():
    images = sphere_series(ANGLES, axis_offset_px=6.0, seed=2)
    # the settings' half-width bounds the search as an explicit range would
    with pytest.raises(InputError, match=r"outside search_px=\(-3.0, 3.0\)"):
        find_tilt_axis(images, ANGLES, AlignSettings(axis_search_px=3.0))
    assert find_tilt_axis(images, ANGLES, AlignSettings(axis_search_px=8.0)) == find_tilt_axis(
        images, ANGLES, search_px=(-8.0, 8.0)
    )
