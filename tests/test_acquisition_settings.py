"""Acquisition settings: the spec's microscope turned into the series it records, and that series checked."""

from __future__ import annotations

import numpy as np
import pytest

from sinter4d.acquisition import AcquisitionSpec, ScanSettings, simulate_tilt_series
from sinter4d.errors import InputError, SpecError
from sinter4d.phantom import Grid
from sinter4d.specs import parse

E = 1.602176634e-19  # C


def test_the_papers_microscope():
    acq = AcquisitionSpec()
    np.testing.assert_array_equal(acq.angles_deg, np.arange(-40.0, 40.5, 2.0))
    assert acq.output_pixel_size_nm == 1.04 and acq.output_pixels == 1024
    assert acq.beam_current_pA == 2.0  # no dose asked: the probe current as given


def test_a_dose_sets_the_probe_current():
    acq = AcquisitionSpec(dose_e_per_nm2=250.0, image_pixels=512, bin=4)
    # dose = (I / e) x dwell x pixels x images / area, solved for I
    images, area = 41, (512 * 1.04) ** 2
    current = 250.0 * area * E / (500e-9 * 512**2 * images) * 1e12
    assert acq.beam_current_pA == pytest.approx(current, rel=1e-12)


def test_scan_settings_per_output_pixel():
    acq = AcquisitionSpec(image_pixels=512, pixel_size_nm=1.04, bin=4, oversample=2, drift_step_sd_nm=2.08,
                          axis_offset_px=-1.25, reference_frames=10, reference_tilt_deg=4.0, tilt_step_deg=4.0)
    scan = acq.scan_settings()
    assert scan.pixel_size_nm == pytest.approx(4.16)
    assert scan.dwell_time_ns == 500.0 * 16  # a pixel 16 times larger, scanned at the same dose per nm^2
    assert scan.drift_sd_px == pytest.approx(0.5)  # 2.08 nm in 4.16 nm pixels
    assert (scan.axis_offset_px, scan.bin_factor, scan.reference_frames, scan.reference_tilt_deg) == (-1.25, 2, 10, 4.0)
    np.testing.assert_array_equal(scan.angles_deg, acq.angles_deg)


def test_the_simulated_dose_is_the_one_asked_for():
    acq = AcquisitionSpec(image_pixels=64, pixel_size_nm=2.0, bin=2, dose_e_per_nm2=250.0, tilt_min_deg=-20.0,
                          tilt_max_deg=20.0, tilt_step_deg=20.0, axis_offset_px=0.0, reference_frames=0)
    ov = acq.oversample  # 2 by default: the phantom's grid is twice as fine as the pixels
    grid = Grid((8 * ov, 32 * ov, 32 * ov), acq.output_pixel_size_nm / ov)
    ds = simulate_tilt_series(np.zeros(grid.shape, np.float32), None, grid, acq.scan_settings(), rng=0)
    assert ds.counts.shape == (3, 32, 32)
    assert ds.attrs["dose_e_per_nm2"] == pytest.approx(250.0, rel=1e-12)
    assert ds.attrs["pixel_size_nm"] == 4.0


def test_an_open_axis_offset_must_be_drawn_first():
    with pytest.raises(InputError, match="axis_offset_px is open"):
        AcquisitionSpec().scan_settings()


@pytest.mark.parametrize(
    ("doc", "match"),
    [({"tilt_max_deg": 95.0}, r"a\.toml: tilt_max_deg: "), ({"bin": 3}, "bin \\(3\\) must divide image_pixels"),
     ({"tilt_step_deg": 3.0}, "tilt_step_deg must divide"), ({"reference_tilt_deg": 50.0}, "reference_tilt_deg must lie"),
     ({"dose_e_per_nm2": -5.0}, r"a\.toml: dose_e_per_nm2: "), ({"focus": 1}, r"a\.toml: focus: unknown key")],
)
def test_bad_acquisition_keys_are_one_line(doc, match):
    with pytest.raises(SpecError, match=match):
        parse(AcquisitionSpec, doc, source="a.toml")


@pytest.mark.parametrize(
    ("fields", "match"),
    [({"angles_deg": []}, "non-empty"), ({"angles_deg": [0.0, 90.0]}, "within \\(-90, 90\\)"),
     ({"probe_current_pA": -1.0}, "probe_current_pA"), ({"dwell_time_ns": 0.0}, "dwell_time_ns"),
     ({"pixel_size_nm": np.inf}, "pixel_size_nm"), ({"axis_offset_px": np.nan}, "axis_offset_px"),
     ({"bin_factor": 0}, "bin_factor"), ({"reference_frames": -1}, "reference_frames"),
     ({"reference_tilt_deg": -90.0}, "reference_tilt_deg"), ({"bin_factor": 1.5}, "bin_factor")],
)
def test_bad_scan_settings(fields, match):
    args = {"angles_deg": [-10.0, 0.0, 10.0], "pixel_size_nm": 1.0, "probe_current_pA": 2.0, "dwell_time_ns": 500.0}
    with pytest.raises(ValueError, match=match):
        ScanSettings(**{**args, **fields})


def test_scan_settings_defaults_are_a_plain_series():
    scan = ScanSettings(angles_deg=np.array([-10.0, 10.0]), pixel_size_nm=1.0, probe_current_pA=0.0, dwell_time_ns=1.0)
    assert scan.angles_deg == (-10.0, 10.0)
    assert (scan.drift_sd_px, scan.axis_offset_px, scan.bin_factor, scan.reference_frames) == (0.0, 0.0, 1, 0)
