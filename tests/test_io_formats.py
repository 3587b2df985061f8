"""Real microscope files: ETSpy's test data (FEI MRC needle, Gatan DM3, SerialEM, HyperSpy) and an EMD rosettasciio writes.

The files come with the ``etspy`` wheel of the ``test`` extra (not shipped
with sinter4d, never downloaded at run time); without it those tests skip.
No Velox EMD or TIA SER file is available from a package: those readers are
tested on their error path (tests/test_io_stacks.py) and, for EMD, on the
NCEM flavour rosettasciio can write.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from sinter4d.errors import InputError
from sinter4d.io._formats import read_format
from sinter4d.io.stacks import read_tilt_series


def _etspy_data() -> Path | None:
    spec = importlib.util.find_spec("etspy")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "tests" / "test_data"
    return folder if (folder / "HAADF.mrc").is_file() else None


ETSPY = _etspy_data()
needs_etspy = pytest.mark.skipif(ETSPY is None, reason="etspy 1.3.0 (the test extra) ships the real files; not installed")


# ------------------------------------------------------------ the FEI needle


@needs_etspy
def test_fei_needle_with_its_files_beside():
    ds = read_tilt_series(ETSPY / "HAADF.mrc")
    a = ds.attrs
    assert ds.counts.shape == (77, 256, 256) and a["source_dtype"] == "int16"
    assert a["mrc_permissive"] == 1  # "Map ID string not found" in strict mode
    # the angle list beside the stack, and the extended header agreeing with it (no warning needed)
    rawtlt = np.loadtxt(ETSPY / "HAADF.rawtlt")
    np.testing.assert_array_equal(ds.tilt_angle.values, rawtlt)
    assert (a["angles_source"], a["angles_origin"]) == ("file beside the stack", "HAADF.rawtlt")
    assert a["pixel_size_nm"] == pytest.approx(3.36) and a["pixel_size_origin"] == "FEI extended header"
    # the acquisition log: "Tilt Axis Angle [deg]:90.00", the axis along x
    assert a["tilt_axis_rotation_deg"] == 90.0 and a["tilt_axis_rotation_origin"] == "HAADF.txt"
    # raw int16 values kept; the vacuum sits near -31 900
    assert ds.counts.values.min() == -31908 and ds.counts.values.max() == 32325
    assert -31950 < a["dark_level"] < -31850
    assert a["source_sha256"] == hashlib.sha256((ETSPY / "HAADF.mrc").read_bytes()).hexdigest()


@needs_etspy
def test_fei_needle_alone_reads_its_extended_header(tmp_path):
    lone = tmp_path / "needle.mrc"
    shutil.copyfile(ETSPY / "HAADF.mrc", lone)
    ds = read_tilt_series(lone)
    np.testing.assert_array_equal(ds.tilt_angle.values, np.loadtxt(ETSPY / "HAADF.rawtlt"))
    assert (ds.attrs["angles_source"], ds.attrs["angles_origin"]) == ("file metadata", "FEI extended header")
    assert ds.attrs["pixel_size_nm"] == pytest.approx(3.36)
    assert "tilt_axis_rotation_deg" not in ds.attrs  # the extended header's axis field is 0 here: not trusted


# ------------------------------------------------------------ Gatan DM3


@needs_etspy
def test_dm3_stack_calibrations():
    raw = read_format(ETSPY / "HAADF.dm3")
    assert raw.data.shape == (91, 64, 64) and raw.source_format == "Gatan DM3"
    assert raw.pixel_size_nm["Gatan DM3 calibration"] == pytest.approx(17.995, abs=1e-3)  # 0.017995 um
    np.testing.assert_allclose(raw.angles_deg["Gatan DM3 stack axis"], np.arange(-90.0, 91.0, 2.0))


@needs_etspy
def test_dm3_stack_at_90_degrees_is_refused_and_takes_an_angles_file(tmp_path, caplog):
    # HAADF.rawtlt beside it belongs to HAADF.mrc (77 angles): dropped with a warning, the stack axis used
    with caplog.at_level(logging.WARNING, logger="sinter4d.io.stacks"):
        with pytest.raises(InputError, match=r"tilt angle -90 is not within \(-90, 90\)"):
            read_tilt_series(ETSPY / "HAADF.dm3")
    assert "HAADF.rawtlt holds 77 tilt angles for 91 images; not used" in caplog.text
    caplog.clear()
    tlt = tmp_path / "dm.rawtlt"
    tlt.write_text("\n".join(f"{a:g}" for a in np.linspace(-89.0, 89.0, 91)))
    with caplog.at_level(logging.WARNING, logger="sinter4d.io.stacks"):
        ds = read_tilt_series(ETSPY / "HAADF.dm3", angles=tlt)
    assert ds.attrs["angles_source"] == "argument" and "Gatan DM3 stack axis says 91 angles -90..90 deg" in caplog.text
    assert ds.attrs["pixel_size_nm"] == pytest.approx(17.995, abs=1e-3) and ds.attrs["source_format"] == "Gatan DM3"


@needs_etspy
def test_dm3_series_of_single_images():
    files = [ETSPY / "DM_Series_Test" / f"BF_00{k}.dm3" for k in (1, 2, 3)]
    alphas = [float(read_format(f).angles_deg["Gatan DM3 stage alpha"][0]) for f in files]
    np.testing.assert_allclose(alphas, [-72.0, -69.0, -66.0], atol=0.01)
    # three tilts 6 deg apart: read, stacked, and refused for its range
    with pytest.raises(InputError, match=r"spans 5\.99\d* deg; a tomogram needs at least 10 deg"):
        read_tilt_series(files)


# ------------------------------------------------------------ SerialEM, HyperSpy


@needs_etspy
def test_serialem_frames_at_one_tilt_are_refused():
    # two frames of one tilt (TiltAngle 5.00054 twice in its .mdoc): no tilt series
    folder = ETSPY / "SerialEM_Multiframe_Test"
    assert read_format(folder / "test_001.mrc").pixel_size_nm["MRC header"] == pytest.approx(0.788)
    with pytest.raises(InputError, match=r"2 tilt image\(s\)"):
        read_tilt_series(folder / "test_001.mrc")


@needs_etspy
def test_hyperspy_aligned_needle():
    ds = read_tilt_series(ETSPY / "HAADF_Aligned.hspy")
    np.testing.assert_allclose(ds.tilt_angle.values, np.loadtxt(ETSPY / "HAADF.rawtlt"))
    assert ds.attrs["angles_origin"] == "HyperSpy stack axis" and ds.attrs["pixel_size_nm"] == pytest.approx(3.36)


# ------------------------------------------------------------ EMD (NCEM flavour, written by rosettasciio)


def test_emd_written_by_rosettasciio(tmp_path):
    from rsciio.emd import file_writer

    data = np.random.default_rng(1).poisson(5.0, (5, 40, 36)).astype(np.uint16)
    signal = {
        "data": data,
        "axes": [
            {"name": "tilt", "size": 5, "scale": 15.0, "offset": -30.0, "units": "deg", "navigate": True},
            {"name": "y", "size": 40, "scale": 0.0025, "offset": 0.0, "units": "\u00b5m", "navigate": False},
            {"name": "x", "size": 36, "scale": 0.0025, "offset": 0.0, "units": "\u00b5m", "navigate": False},
        ],
        "metadata": {"General": {"title": "HAADF"}, "Signal": {}},
        "original_metadata": {},
    }
    file_writer(tmp_path / "series.emd", signal)
    ds = read_tilt_series(tmp_path / "series.emd")
    np.testing.assert_array_equal(ds.counts.values, data)
    np.testing.assert_allclose(ds.tilt_angle.values, [-30, -15, 0, 15, 30])
    assert ds.attrs["pixel_size_nm"] == pytest.approx(2.5) and ds.attrs["source_format"] == "EMD"
