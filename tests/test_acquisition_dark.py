"""estimate_dark_level: the vacuum level of a stack with a known offset and noise."""

from __future__ import annotations

import numpy as np
import pytest

from sinter4d.acquisition import estimate_dark_level
from sinter4d.errors import InputError

OFFSET = -31900.0
SIGMA = 25.0


def _stack(offset=OFFSET, vacuum_share=0.3, seed=0):
    """An (8, 96, 96) stack: a specimen filling all but ``vacuum_share`` of each image, plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    n, size = 8, 96
    images = np.full((n, size, size), offset) + rng.normal(0.0, SIGMA, (n, size, size))
    edge = int(round(size * vacuum_share))  # vacuum: a band on the left of each image
    yy, xx = np.mgrid[:size, :size]
    specimen = 400.0 + 2000.0 * np.exp(-((yy - 48) ** 2 + (xx - 60) ** 2) / 600.0)
    images[:, :, edge:] += specimen[None, :, edge:]
    return images


@pytest.mark.parametrize("vacuum_share", [0.2, 0.5])  # a band of whole 16 px tiles, or half the field
def test_recovers_the_offset_within_a_fraction_of_the_noise(vacuum_share):
    est = estimate_dark_level(_stack(vacuum_share=vacuum_share))
    assert abs(est - OFFSET) < 0.3 * SIGMA  # a 2nd-percentile of the pixels would sit ~2 sigma low


def test_independent_of_the_offset():
    assert estimate_dark_level(_stack(offset=0.0)) == pytest.approx(estimate_dark_level(_stack()) - OFFSET, abs=1e-6)


def test_single_image_and_tiles_larger_than_it():
    image = _stack()[0, :20, :10]  # all vacuum
    assert abs(estimate_dark_level(image, tile_px=64) - OFFSET) < 0.3 * SIGMA


@pytest.mark.parametrize(("images", "kwargs", "match"), [
    (np.zeros((0, 4, 4)), {}, "stack"),
    (np.full((2, 16, 16), np.nan), {}, "NaN"),
    (np.zeros((2, 16, 16)), {"fraction": 0.0}, "fraction"),
    (np.zeros((2, 16, 16)), {"tile_px": 0}, "tile_px"),
])
def test_refuses(images, kwargs, match):
    with pytest.raises(InputError, match=match):
        estimate_dark_level(images, **kwargs)


def test_a_drifting_detector_gets_its_typical_level():
    drift = np.array([0.0, 1.0, 2.0, 0.5, -0.5, 1.5, 3.0, -2.0]) * SIGMA  # per image
    images = _stack() + drift[:, None, None]
    est = estimate_dark_level(images)
    assert abs(est - (OFFSET + np.median(drift))) < 0.3 * SIGMA  # not the darkest image's -2 sigma
