"""read_tilt_series: stacks written here with their own libraries, the sources of metadata, and refusal at the door."""

from __future__ import annotations

import hashlib
import logging

import mrcfile
import numpy as np
import pytest
import tifffile

from sinter4d.checks import MIN_IMAGE_PX, MIN_TILT_RANGE_DEG
from sinter4d.errors import InputError
from sinter4d.io.stacks import read_angles, read_tilt_series

ANGLES = np.arange(-40.0, 41.0, 20.0)  # 5 tilts
SHAPE = (5, 36, 40)


def _images(shape=SHAPE, dtype=np.float32):
    rng = np.random.default_rng(0)
    return rng.poisson(6.0, shape).astype(dtype)


def _write_mrc(path, data, voxel_size_A=10.4):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = voxel_size_A
    return path


def _write_tlt(path, angles):
    path.write_text("".join(f"{a:.2f}\n" for a in angles))
    return path


@pytest.fixture
def tlt(tmp_path):
    return _write_tlt(tmp_path / "angles.rawtlt", ANGLES)


def _assert_one_line(exc_info, name):
    msg = str(exc_info.value)
    assert "\n" not in msg and name in msg


# ---------------------------------------------------------------- round trips


def test_mrc_round_trip_finds_the_angle_list_beside(tmp_path):
    data = _images()
    _write_tlt(tmp_path / "series.rawtlt", ANGLES)
    path = _write_mrc(tmp_path / "series.mrc", data)
    ds = read_tilt_series(path)
    assert ds.counts.dims == ("tilt", "y", "x") and ds.counts.dtype == np.float32
    np.testing.assert_array_equal(ds.counts.values, data)
    np.testing.assert_allclose(ds.tilt_angle.values, ANGLES)
    a = ds.attrs
    assert a["pixel_size_nm"] == pytest.approx(1.04, rel=1e-5)
    assert (a["pixel_size_source"], a["pixel_size_origin"]) == ("file metadata", "MRC header")
    assert (a["angles_source"], a["angles_origin"]) == ("file beside the stack", "series.rawtlt")
    assert a["source_format"] == "MRC" and a["mrc_permissive"] == 0
    assert a["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "tilt_axis_rotation_deg" not in a  # nothing says it: the pipeline finds it
    # coordinates centred on the image middle, spaced by the pixel size
    np.testing.assert_allclose(ds.x.values, (np.arange(SHAPE[2]) - (SHAPE[2] - 1) / 2) * a["pixel_size_nm"])
    np.testing.assert_allclose(ds.y.values.mean(), 0.0, atol=1e-12)
    for name in ["counts", "tilt_angle", "x", "y"]:
        assert {"units", "long_name"} <= set(ds[name].attrs), name


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.float32])
def test_mrc_integer_modes_become_float32(tmp_path, tlt, dtype):
    data = _images(dtype=dtype)
    ds = read_tilt_series(_write_mrc(tmp_path / "s.st", data), angles=tlt)
    assert ds.counts.dtype == np.float32 and ds.attrs["source_dtype"] == np.dtype(dtype).name
    np.testing.assert_array_equal(ds.counts.values, data.astype(np.float32))


def test_vendor_mrc_without_map_id_is_read_permissively(tmp_path, tlt):
    data = _images(dtype=np.int16)
    path = _write_mrc(tmp_path / "vendor.mrc", data)
    raw = bytearray(path.read_bytes())
    raw[208:212] = b"\0\0\0\0"  # the map ID "MAP ", which old FEI software left out
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="Map ID"):
        mrcfile.open(path, permissive=False).close()
    ds = read_tilt_series(path, angles=tlt)
    assert ds.attrs["mrc_permissive"] == 1
    np.testing.assert_array_equal(ds.counts.values, data)


def test_fei1_extended_header_written_by_mrcfile(tmp_path):
    import mrcfile.dtypes

    angles = np.linspace(-60.0, 60.0, SHAPE[0])
    path = tmp_path / "velox.mrc"
    with mrcfile.new(path) as mrc:
        mrc.set_data(_images(dtype=np.int16))
        mrc.header.exttyp = b"FEI1"
        ext = np.zeros(SHAPE[0], dtype=mrcfile.dtypes.get_ext_header_dtype(b"FEI1"))
        ext["Metadata size"] = ext.dtype.itemsize
        ext["Alpha tilt"], ext["Pixel size X"], ext["Pixel size Y"] = angles, 2.5e-9, 2.5e-9
        mrc.set_extended_header(ext)
    ds = read_tilt_series(path)
    np.testing.assert_allclose(ds.tilt_angle.values, angles)
    assert ds.attrs["pixel_size_nm"] == 2.5 and ds.attrs["angles_origin"] == "FEI extended header"


def test_placeholder_voxel_size_is_no_pixel_size(tmp_path, tlt):
    # IMOD and mrcfile write 1 A when they do not know the pixel size
    with pytest.raises(InputError, match="no pixel size") as e:
        read_tilt_series(_write_mrc(tmp_path / "placeholder.mrc", _images(), voxel_size_A=1.0), angles=tlt)
    _assert_one_line(e, "placeholder.mrc")


def test_argument_wins_over_the_header_with_a_warning(tmp_path, tlt, caplog):
    with caplog.at_level(logging.WARNING, logger="sinter4d.io.stacks"):
        ds = read_tilt_series(_write_mrc(tmp_path / "s.mrc", _images()), angles=tlt, pixel_size_nm=2.5)
    assert ds.attrs["pixel_size_nm"] == 2.5 and ds.attrs["pixel_size_source"] == "argument"
    assert ds.x.values[1] - ds.x.values[0] == pytest.approx(2.5)
    [record] = caplog.records
    assert "pixel size 2.5 nm" in record.message and "MRC header says 1.04 nm" in record.message


def test_agreeing_sources_say_nothing(tmp_path, tlt, caplog):
    with caplog.at_level(logging.WARNING, logger="sinter4d.io.stacks"):
        read_tilt_series(_write_mrc(tmp_path / "s.mrc", _images()), angles=tlt, pixel_size_nm=1.04)
    assert not caplog.records


def test_tiff_with_pixel_size_argument(tmp_path, tlt):
    data = _images(dtype=np.uint16)
    tifffile.imwrite(tmp_path / "s.tif", data)
    ds = read_tilt_series(tmp_path / "s.tif", angles=tlt, pixel_size_nm=1.04)
    np.testing.assert_array_equal(ds.counts.values, data.astype(np.float32))
    assert ds.attrs["source_format"] == "TIFF" and ds.attrs["pixel_size_nm"] == 1.04


@pytest.mark.parametrize(("unit", "resolution", "pixel_nm"), [("nm", 1 / 1.04, 1.04), ("micron", 1 / 0.002, 2.0)])
def test_imagej_tiff_pixel_size(tmp_path, tlt, unit, resolution, pixel_nm):
    data = _images()
    tifffile.imwrite(tmp_path / "s.tiff", data, imagej=True, resolution=(resolution, resolution),
                     metadata={"unit": unit, "axes": "ZYX"})
    ds = read_tilt_series(tmp_path / "s.tiff", angles=tlt)
    assert ds.attrs["pixel_size_nm"] == pytest.approx(pixel_nm, rel=1e-4)
    assert ds.attrs["source_format"] == "ImageJ TIFF" and ds.attrs["pixel_size_origin"] == "ImageJ metadata"


def _mdoc(angles, *, pixel_A=7.88, axis=-84.5, axis_key=False):
    head = f"PixelSpacing = {pixel_A}\nImageFile = s.mrc\nImageSize = 40 36\nDataMode = 1\n\n"
    head += f"TiltAxisAngle = {axis}\n" if axis_key else f"[T = SerialEM: Titan  31-Mar-23]\n\n[T =     Tilt axis angle = {axis}, binning = 2  spot = 7]\n"
    sections = "".join(f"\n[ZValue = {k}]\nTiltAngle = {a}\nPixelSpacing = {pixel_A}\nRotationAngle = 0\n"
                       for k, a in enumerate(angles))
    return head + sections


@pytest.mark.parametrize("mdoc_name", ["s.mdoc", "s.mrc.mdoc"])
def test_serialem_mrc_with_mdoc(tmp_path, mdoc_name):
    angles = ANGLES + 0.013  # SerialEM's readback of the stage
    path = _write_mrc(tmp_path / "s.mrc", _images(dtype=np.int16), voxel_size_A=7.88)
    (tmp_path / mdoc_name).write_text(_mdoc(angles))
    ds = read_tilt_series(path)
    np.testing.assert_allclose(ds.tilt_angle.values, angles)
    assert ds.attrs["angles_origin"] == mdoc_name and ds.attrs["pixel_size_nm"] == pytest.approx(0.788)
    # IMOD/SerialEM: counter-clockwise from y; here: from y towards +x
    assert ds.attrs["tilt_axis_rotation_deg"] == pytest.approx(84.5)
    assert ds.attrs["tilt_axis_rotation_origin"] == mdoc_name


def test_mdoc_tilt_axis_key_and_argument_override(tmp_path, caplog):
    path = _write_mrc(tmp_path / "s.mrc", _images(), voxel_size_A=7.88)
    (tmp_path / "s.mdoc").write_text(_mdoc(ANGLES, axis=90.0, axis_key=True))
    assert read_tilt_series(path).attrs["tilt_axis_rotation_deg"] == 90.0
    with caplog.at_level(logging.WARNING, logger="sinter4d.io.stacks"):
        ds = read_tilt_series(path, tilt_axis_rotation_deg=-3.0)
    assert ds.attrs["tilt_axis_rotation_deg"] == -3.0 and ds.attrs["tilt_axis_rotation_source"] == "argument"
    assert "tilt-axis angle -3 deg" in caplog.text and "s.mdoc says 90 deg" in caplog.text


def test_angles_argument_wins_over_the_mdoc(tmp_path, tlt, caplog):
    path = _write_mrc(tmp_path / "s.mrc", _images(), voxel_size_A=7.88)
    (tmp_path / "s.mdoc").write_text(_mdoc(ANGLES * 0.5))
    with caplog.at_level(logging.WARNING, logger="sinter4d.io.stacks"):
        ds = read_tilt_series(path, angles=tlt)
    np.testing.assert_allclose(ds.tilt_angle.values, ANGLES)
    assert ds.attrs["angles_source"] == "argument" and "s.mdoc says 5 angles -20..20 deg" in caplog.text


def test_dark_level_of_an_offset_stack(tmp_path, tlt):
    data = _images().astype(np.int16) - 31900  # a signed detector with a large offset
    data[:, 10:26, 12:30] += 3000  # the specimen
    ds = read_tilt_series(_write_mrc(tmp_path / "s.mrc", data), angles=tlt)
    np.testing.assert_array_equal(ds.counts.values, data)  # raw values kept
    assert ds.attrs["dark_level"] == pytest.approx(-31900 + 6, abs=1.5)  # vacuum: Poisson(6) over the offset
    assert "median" in ds.attrs["dark_level_method"]


def test_descending_angles_and_comments(tmp_path):
    path = tmp_path / "a.tlt"
    path.write_text("# IMOD tilt file\n40\n\n20 0.1\n0\n-20\n-40\n")
    np.testing.assert_allclose(read_angles(path), ANGLES[::-1])


# ---------------------------------------------------------------- refusal at the door


@pytest.mark.parametrize(
    ("angles", "match"),
    [([-40, -20, 0, -10, 40], "not strictly monotonic"), ([-40, -20, 0, 0, 40], "appears 2 times"),
     ([-90, -20, 0, 20, 40], r"not within \(-90, 90\)"), ([-40, -20, "nan", 20, 40], "NaN"),
     ([-4, -2, 0, 2, 4], f"needs at least {MIN_TILT_RANGE_DEG:g} deg"), ([-40, 0, 40], "3 tilt angles for 5 images")],
)
def test_bad_angles(tmp_path, angles, match):
    path = tmp_path / "bad.rawtlt"
    path.write_text("\n".join(map(str, angles)) + "\n")
    with pytest.raises(InputError, match=match) as e:
        read_tilt_series(_write_mrc(tmp_path / "s.mrc", _images()), angles=path)
    _assert_one_line(e, "bad.rawtlt")


@pytest.mark.parametrize(
    ("shape", "match"),
    [((2, 36, 40), r"2 tilt image\(s\); a tilt series needs at least 3"),
     ((5, MIN_IMAGE_PX - 1, 40), f"too small; the pipeline needs at least {MIN_IMAGE_PX} px"),
     ((36, 40), "single 2D image")],
)
def test_stacks_no_stage_can_use(tmp_path, shape, match):
    n = shape[0] if len(shape) == 3 else 1
    tlt = _write_tlt(tmp_path / "a.rawtlt", np.linspace(-40, 40, n))
    with pytest.raises(InputError, match=match) as e:
        read_tilt_series(_write_mrc(tmp_path / "small.mrc", _images(shape)), angles=tlt)
    _assert_one_line(e, "small.mrc")


@pytest.mark.filterwarnings("ignore:Data array contains NaN")
def test_nan_pixels(tmp_path, tlt):
    data = _images()
    data[2, 3, 4] = np.nan
    data[3, 0, 0] = np.inf
    with pytest.raises(InputError, match=r"2 pixel\(s\) are NaN or infinite") as e:
        read_tilt_series(_write_mrc(tmp_path / "bad.mrc", data), angles=tlt)
    _assert_one_line(e, "bad.mrc")


def test_non_numeric_angle_line(tmp_path):
    path = tmp_path / "bad.rawtlt"
    path.write_text("-40\nminus twenty\n")
    with pytest.raises(InputError, match="line 2") as e:
        read_angles(path)
    _assert_one_line(e, "bad.rawtlt")


def test_no_pixel_size_and_no_angles(tmp_path, tlt):
    with pytest.raises(InputError, match="no pixel size") as e:
        read_tilt_series(_write_mrc(tmp_path / "nopix.mrc", _images(), voxel_size_A=0.0), angles=tlt)
    _assert_one_line(e, "nopix.mrc")
    tifffile.imwrite(tmp_path / "nopix.tif", _images())
    with pytest.raises(InputError, match="no pixel size"):
        read_tilt_series(tmp_path / "nopix.tif", angles=tlt)
    with pytest.raises(InputError, match="no tilt angles") as e:
        read_tilt_series(_write_mrc(tmp_path / "noangles.mrc", _images()))
    _assert_one_line(e, "noangles.mrc")


@pytest.mark.parametrize("name", ["garbage.mrc", "garbage.tif", "garbage.dm3", "garbage.dm4", "garbage.emd",
                                  "garbage.ser", "garbage.hspy"])
def test_unreadable_file(tmp_path, tlt, name):
    (tmp_path / name).write_bytes(b"this is not an image file at all" * 40)
    with pytest.raises(InputError, match="not a readable") as e:
        read_tilt_series(tmp_path / name, angles=tlt, pixel_size_nm=1.0)
    _assert_one_line(e, name)


def test_unknown_suffix_and_missing_files(tmp_path, tlt):
    (tmp_path / "s.png").write_bytes(b"x")
    with pytest.raises(InputError, match="unknown stack format '.png'"):
        read_tilt_series(tmp_path / "s.png", angles=tlt)
    with pytest.raises(InputError, match="no such file"):
        read_tilt_series(tmp_path / "missing.mrc", angles=tlt)
    with pytest.raises(InputError, match="no such file"):
        read_tilt_series(_write_mrc(tmp_path / "s.mrc", _images()), angles=tmp_path / "missing.rawtlt")


@pytest.mark.parametrize(("kwargs", "match"), [({"pixel_size_nm": -1.0}, "pixel_size_nm"),
                                               ({"tilt_axis_rotation_deg": float("nan")}, "tilt_axis_rotation_deg")])
def test_bad_arguments(tmp_path, tlt, kwargs, match):
    with pytest.raises(InputError, match=match):
        read_tilt_series(_write_mrc(tmp_path / "s.mrc", _images()), angles=tlt, **kwargs)
