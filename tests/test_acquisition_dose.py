"""Dose arithmetic and the HAADF signal model against the paper's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from sinter4d.acquisition import (
    HaadfModel,
    dose_e_per_nm2,
    electrons_per_pixel,
    electrons_per_series,
)

PAPER = dict(probe_current_pA=2.0, dwell_time_ns=500.0, n_pixels=1024 * 1024, n_images=41)


def test_paper_electrons_per_series():
    e = electrons_per_series(**PAPER)
    assert f"{e:.1e}" == "2.7e+08"
    assert e == pytest.approx(2.684e8, rel=1e-3)
    assert electrons_per_series(**PAPER, elementary_charge_C=1.6e-19) == pytest.approx(2.6870e8, rel=1e-4)


def test_paper_dose_per_nm2():
    d = dose_e_per_nm2(**PAPER, pixel_size_nm=1.04)
    # (I/e) dwell pixels images / area = 236.6 e/nm^2; the paper rounds it to 250
    assert 236.5 <= d <= 250.0
    assert round(d) == 237
    assert 236.5 <= dose_e_per_nm2(**PAPER, pixel_size_nm=1.04, elementary_charge_C=1.6e-19) <= 250.0


def test_electrons_per_pixel_per_frame():
    assert electrons_per_pixel(2.0, 500.0) == pytest.approx(6.24, abs=0.01)
    assert electrons_per_pixel(2.0, 500.0, elementary_charge_C=1.6e-19) == pytest.approx(6.25, rel=1e-12)
    # dose is linear in current and dwell
    assert dose_e_per_nm2(4.0, 500.0, 100, 1, 1.0) == pytest.approx(2 * dose_e_per_nm2(2.0, 500.0, 100, 1, 1.0))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(probe_current_pA=-1.0), "probe_current_pA.*-1.0"),
        (dict(dwell_time_ns=0.0), "dwell_time_ns"),
        (dict(dwell_time_ns=np.nan), "dwell_time_ns"),
        (dict(n_pixels=0), "n_pixels"),
        (dict(n_images=2.5), "n_images"),
    ],
)
def test_bad_dose_input_raises(kwargs, match):
    args = dict(PAPER, **kwargs)
    with pytest.raises(ValueError, match=match):
        electrons_per_series(**args)


def test_bad_pixel_size_raises():
    with pytest.raises(ValueError, match="pixel_size_nm"):
        dose_e_per_nm2(**PAPER, pixel_size_nm=-1.04)


def test_haadf_fraction():
    m = HaadfModel()
    assert 0.25 < float(m.scattered_fraction(150.0)) < 0.35  # a 150 nm core scatters ~30 %
    assert float(m.scattered_fraction(0.0)) == 0.0
    film = m.scattered_fraction(0.0, 50.0)
    assert float(film) == pytest.approx(1 - np.exp(-m.mu_film_per_nm * 50.0))
    assert m.mu_film_per_nm < 0.2 * m.mu_cu_per_nm
    t = np.linspace(0, 300, 7, dtype=np.float32)
    f = m.scattered_fraction(t, 30.0)
    assert f.dtype == np.float32 and np.all(np.diff(f) > 0)


@pytest.mark.parametrize(
    "kwargs",
    [dict(mu_cu_per_nm=-1e-3), dict(detector_efficiency=0.0), dict(detector_efficiency=1.5), dict(background_counts=np.nan)],
)
def test_haadf_bad_parameters(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        HaadfModel(**kwargs)
