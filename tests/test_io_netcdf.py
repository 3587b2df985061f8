"""netCDF files: written atomically and compressed, opened with their variables checked (InputError)."""

import numpy as np
import pytest
import xarray as xr

from sinter4d.errors import InputError
from sinter4d.io.netcdf import open_dataset_checked, write_dataset_atomic


def _dataset():
    return xr.Dataset({"big": (("a", "b"), np.arange(2000.0).reshape(40, 50)), "small": ("a", np.ones(40))},
                      attrs={"title": "t"})


def test_round_trip_and_compression_of_large_variables(tmp_path):
    path = write_dataset_atomic(_dataset(), tmp_path / "d.nc")
    ds = open_dataset_checked(path, ["big", "small"])
    xr.testing.assert_identical(ds, _dataset())
    with xr.open_dataset(path) as raw:
        assert raw["big"].encoding.get("zlib") and not raw["small"].encoding.get("zlib")
    plain = write_dataset_atomic(_dataset(), tmp_path / "p.nc", compress=False)
    with xr.open_dataset(plain) as raw:
        assert not raw["big"].encoding.get("zlib")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.nc", "p.nc"]


@pytest.mark.parametrize(("write", "required", "match"), [
    (None, (), "no such file"),
    ("not netcdf", (), "not a readable netCDF file"),
    ("dataset", ("big", "counts", "tilt_angle"), "missing variable\\(s\\) counts, tilt_angle"),
])
def test_bad_files_are_one_line_naming_the_file(tmp_path, write, required, match):
    path = tmp_path / "f.nc"
    if write == "dataset":
        write_dataset_atomic(_dataset(), path)
    elif write is not None:
        path.write_text(write)
    with pytest.raises(InputError, match=match) as info:
        open_dataset_checked(path, required)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


@pytest.mark.parametrize(("message", "raised"), [("NetCDF: HDF error", OSError), ("a bug", RuntimeError)])
def test_the_library_failing_to_write_is_a_system_error_and_leaves_no_file(tmp_path, monkeypatch, message, raised):
    def fail(self, path, **kwargs):
        open(path, "wb").write(b"half")  # what a full disk leaves
        raise RuntimeError(message)

    monkeypatch.setattr(xr.Dataset, "to_netcdf", fail)
    with pytest.raises(raised, match="NetCDF: HDF error.*MB free there" if raised is OSError else "a bug"):
        write_dataset_atomic(xr.Dataset({"a": ("x", [1.0])}), tmp_path / "t.nc")
    assert not list(tmp_path.iterdir())
