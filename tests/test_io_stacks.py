"""read_stack: MRC / TIFF tilt series + .rawtlt -> tilt-series Dataset, and every input error."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
import tifffile

from sinter4d.errors import InputError
from sinter4d.io.stacks import read_angles, read_stack

ANGLES = np.arange(-40.0, 41.0, 20.0)  # 5 tilts


def _images(n=5, ny=12, nx=16, dtype=np.float32):
    rng = np.random.default_rng(0)
    return rng.poisson(6.0, (n, ny, nx)).astype(dtype)


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
    return _write_tlt(tmp_path / "series.rawtlt", ANGLES)


def _assert_one_line(exc_info, name):
    msg = str(exc_info.value)
    assert "\n" not in msg and name in msg


# ---------------------------------------------------------------- round trips


def test_mrc_round_trip(tmp_path, tlt):
    data = _images()
    ds = read_stack(_write_mrc(tmp_path / "series.mrc", data), tlt)
    assert ds.counts.dims == ("tilt", "y", "x") and ds.counts.dtype == np.float32
    np.testing.assert_array_equal(ds.counts.values, data)
    np.testing.assert_allclose(ds.tilt_angle.values, ANGLES)
    assert ds.attrs["pixel_size_nm"] == pytest.approx(1.04, rel=1e-5)
    assert ds.attrs["pixel_size_source"] == "file" and ds.attrs["source_format"] == "MRC"
    # coordinates centred on the image middle, spaced by the pixel size
    np.testing.assert_allclose(ds.x.values, (np.arange(16) - 7.5) * ds.attrs["pixel_size_nm"])
    np.testing.assert_allclose(ds.y.values.mean(), 0.0, atol=1e-12)
    for name in ["counts", "tilt_angle", "x", "y"]:
        assert {"units", "long_name"} <= set(ds[name].attrs), name


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.float32])
def test_mrc_integer_modes_become_float32(tmp_path, tlt, dtype):
    data = _images(dtype=dtype)
    ds = read_stack(_write_mrc(tmp_path / "s.st", data), tlt)
    assert ds.counts.dtype == np.float32
    np.testing.assert_array_equal(ds.counts.values, data.astype(np.float32))


def test_argument_overrides_header_pixel_size(tmp_path, tlt):
    ds = read_stack(_write_mrc(tmp_path / "s.mrc", _images()), tlt, pixel_size_nm=2.5)
    assert ds.attrs["pixel_size_nm"] == 2.5 and ds.attrs["pixel_size_source"] == "argument"
    assert ds.x.values[1] - ds.x.values[0] == pytest.approx(2.5)


def test_tiff_round_trip_with_argument(tmp_path, tlt):
    data = _images(dtype=np.uint16)
    tifffile.imwrite(tmp_path / "s.tif", data)
    ds = read_stack(tmp_path / "s.tif", tlt, pixel_size_nm=1.04)
    np.testing.assert_array_equal(ds.counts.values, data.astype(np.float32))
    assert ds.attrs["source_format"] == "TIFF" and ds.attrs["pixel_size_nm"] == 1.04


def test_tiff_imagej_pixel_size(tmp_path, tlt):
    data = _images()
    tifffile.imwrite(tmp_path / "s.tiff", data, imagej=True, resolution=(1 / 1.04, 1 / 1.04), metadata={"unit": "nm", "axes": "ZYX"})
    ds = read_stack(tmp_path / "s.tiff", tlt)
    assert ds.attrs["pixel_size_nm"] == pytest.approx(1.04, rel=1e-4)
    assert ds.counts.shape == data.shape


def test_descending_angles_and_comments(tmp_path):
    path = tmp_path / "a.tlt"
    path.write_text("# IMOD tilt file\n40\n\n20 0.1\n0\n-20\n-40\n")
    np.testing.assert_allclose(read_angles(path), ANGLES[::-1])


# ---------------------------------------------------------------- errors


def test_angle_count_mismatch(tmp_path):
    tlt = _write_tlt(tmp_path / "s.rawtlt", ANGLES[:4])
    with pytest.raises(InputError, match="4 tilt angles for 5 images") as e:
        read_stack(_write_mrc(tmp_path / "s.mrc", _images()), tlt)
    _assert_one_line(e, "s.rawtlt")


@pytest.mark.filterwarnings("ignore:Data array contains NaN")
def test_nan_pixels(tmp_path, tlt):
    data = _images()
    data[2, 3, 4] = np.nan
    data[3, 0, 0] = np.inf
    with pytest.raises(InputError, match=r"2 pixel\(s\) are NaN or infinite") as e:
        read_stack(_write_mrc(tmp_path / "bad.mrc", data), tlt)
    _assert_one_line(e, "bad.mrc")


@pytest.mark.parametrize(
    ("angles", "match"),
    [([-40, -20, 0, -10, 40], "not strictly monotonic"), ([-40, -20, 0, 0, 40], "not strictly monotonic"),
     ([-100, -20, 0, 20, 40], "beyond"), ([-40, -20, "nan", 20, 40], "NaN")],
)
def test_bad_angles(tmp_path, angles, match):
    path = tmp_path / "bad.rawtlt"
    path.write_text("\n".join(map(str, angles)) + "\n")
    with pytest.raises(InputError, match=match) as e:
        read_stack(_write_mrc(tmp_path / "s.mrc", _images()), path)
    _assert_one_line(e, "bad.rawtlt")


def test_non_numeric_angle_line(tmp_path):
    path = tmp_path / "bad.rawtlt"
    path.write_text("-40\nminus twenty\n")
    with pytest.raises(InputError, match="line 2") as e:
        read_angles(path)
    _assert_one_line(e, "bad.rawtlt")


def test_single_2d_image(tmp_path, tlt):
    with pytest.raises(InputError, match="single 2D image") as e:
        read_stack(_write_mrc(tmp_path / "one.mrc", _images()[0]), tlt)
    _assert_one_line(e, "one.mrc")
    tifffile.imwrite(tmp_path / "one.tif", _images()[0])
    with pytest.raises(InputError, match="single 2D image"):
        read_stack(tmp_path / "one.tif", tlt, pixel_size_nm=1.0)


def test_no_pixel_size(tmp_path, tlt):
    with pytest.raises(InputError, match="no pixel size") as e:
        read_stack(_write_mrc(tmp_path / "nopix.mrc", _images(), voxel_size_A=0.0), tlt)
    _assert_one_line(e, "nopix.mrc")
    tifffile.imwrite(tmp_path / "nopix.tif", _images())
    with pytest.raises(InputError, match="no pixel size"):
        read_stack(tmp_path / "nopix.tif", tlt)


@pytest.mark.parametrize("name", ["garbage.mrc", "garbage.tif"])
def test_unreadable_file(tmp_path, tlt, name):
    (tmp_path / name).write_bytes(b"this is not an image file at all" * 40)
    with pytest.raises(InputError, match="not a readable") as e:
        read_stack(tmp_path / name, tlt, pixel_size_nm=1.0)
    _assert_one_line(e, name)


def test_unknown_suffix_and_missing_files(tmp_path, tlt):
    (tmp_path / "s.png").write_bytes(b"x")
    with pytest.raises(InputError, match="unknown stack format '.png'"):
        read_stack(tmp_path / "s.png", tlt)
    with pytest.raises(InputError, match="no such file"):
        read_stack(tmp_path / "missing.mrc", tlt)
    with pytest.raises(InputError, match="no such file"):
        read_stack(_write_mrc(tmp_path / "s.mrc", _images()), tmp_path / "missing.rawtlt")


def test_bad_pixel_size_argument(tmp_path, tlt):
    with pytest.raises(InputError, match="positive"):
        read_stack(_write_mrc(tmp_path / "s.mrc", _images()), tlt, pixel_size_nm=-1.0)
