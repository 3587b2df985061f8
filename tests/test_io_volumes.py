"""Reconstructions as MRC: mode, voxel size, origin and axis order as IMOD reads them; atomic; one-line errors."""

import contextlib
import io

import mrcfile
import numpy as np
import pytest
import xarray as xr

from sinter4d.cli import main
from sinter4d.errors import InputError
from sinter4d.io.netcdf import write_dataset_atomic
from sinter4d.io.volumes import write_volume_mrc
from sinter4d.runfolder import mrc_beside

VOXEL_NM = 2.5
SHAPE = (6, 10, 14)  # (z, y, x): three different lengths, so a swapped axis shows
BRIGHT = (1, 7, 11)  # one voxel off every centre line: a flipped axis moves it


def recon(z_centre_nm=5.0):
    nz, ny, nx = SHAPE
    volume = np.zeros(SHAPE, np.float32)
    volume[BRIGHT] = 3.25
    volume[BRIGHT[0], BRIGHT[1], BRIGHT[2] - 1] = -1.5  # negative values survive (float32, mode 2)
    binary = (volume > 0).astype(np.uint8)
    centred = lambda n: (np.arange(n) - (n - 1) / 2) * VOXEL_NM  # noqa: E731
    return xr.Dataset(
        {"volume": (("z", "y", "x"), volume), "binary": (("z", "y", "x"), binary)},
        coords={"z": ("z", centred(nz) + z_centre_nm), "y": ("y", centred(ny)), "x": ("x", centred(nx))},
        attrs={"pixel_size_nm": VOXEL_NM, "source": "r.nc"},
    )


def test_volume_is_float32_with_voxel_size_origin_and_axes_as_imod_reads_them(tmp_path):
    ds = recon()
    out = write_volume_mrc(ds, tmp_path / "r.mrc")
    assert mrcfile.validate(str(out), print_file=io.StringIO())
    with mrcfile.open(out, permissive=False) as mrc:
        h = mrc.header
        assert int(h.mode) == 2 and mrc.data.dtype == np.float32
        # columns x, rows y (the tilt axis), sections z (the beam): nx, ny, nz = 14, 10, 6
        assert (int(h.nx), int(h.ny), int(h.nz)) == (SHAPE[2], SHAPE[1], SHAPE[0])
        assert (int(h.mapc), int(h.mapr), int(h.maps)) == (1, 2, 3)
        for axis in "xyz":
            assert float(mrc.voxel_size[axis]) == pytest.approx(VOXEL_NM * 10)  # angstrom
        # IMOD's origin: minus the first voxel's coordinate (angstrom)
        assert float(h.origin.x) == pytest.approx(-10 * float(ds.x[0]))
        assert float(h.origin.y) == pytest.approx(-10 * float(ds.y[0]))
        assert float(h.origin.z) == pytest.approx(-10 * float(ds.z[0]))
        # the tilt axis (x = y = 0) at coordinate 0: index * voxel - origin
        assert (SHAPE[2] - 1) / 2 * VOXEL_NM * 10 - float(h.origin.x) == pytest.approx(0)
        data = np.asarray(mrc.data)
        assert np.unravel_index(np.argmax(data), data.shape) == BRIGHT
        np.testing.assert_array_equal(data, ds.volume.values)
        assert "sinter4d" in "".join(bytes(lab).decode() for lab in h.label[: int(h.nlabl)])


def test_binary_is_bytes_of_0_and_1(tmp_path):
    out = write_volume_mrc(recon(), tmp_path / "b.mrc", variable="binary")
    assert mrcfile.validate(str(out), print_file=io.StringIO())
    with mrcfile.open(out, permissive=False) as mrc:
        assert int(mrc.header.mode) == 0
        assert set(np.unique(mrc.data)) == {0, 1} and int(mrc.data.sum()) == 1


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda ds: ds.drop_vars("volume"), "missing variable volume"),
        (lambda ds: ds.transpose("x", "y", "z"), r"dims \('x', 'y', 'z'\)"),
        (lambda ds: ds.assign_coords(y=ds.y * 2), "voxel size along y"),
        (lambda ds: ds.assign_coords(x=ds.x[::-1].values), "x is not evenly spaced and increasing"),
    ],
)
def test_a_volume_that_is_no_grid_is_one_line_and_no_file(tmp_path, change, match):
    with pytest.raises(InputError, match=match):
        write_volume_mrc(change(recon()), tmp_path / "r.mrc")
    assert not list(tmp_path.iterdir())


def test_export_command_writes_beside_the_reconstruction(tmp_path, capsys):
    write_dataset_atomic(recon(), tmp_path / "t01.nc")
    assert main(["export", str(tmp_path / "t01.nc")]) == 0
    assert main(["export", str(tmp_path / "t01.nc"), "--binary", "--mrc", str(tmp_path / "b.mrc")]) == 0
    assert mrc_beside(tmp_path / "t01.nc") == tmp_path / "t01.mrc"
    with mrcfile.open(tmp_path / "t01.mrc") as mrc:
        np.testing.assert_array_equal(mrc.data, recon().volume.values)
    with mrcfile.open(tmp_path / "b.mrc") as mrc:
        assert int(mrc.header.mode) == 0
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["export", str(tmp_path / "b.mrc")]) == 2
