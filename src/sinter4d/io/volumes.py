"""Reconstructions as MRC files for IMOD's 3dmod, tomviz and Chimera (docs/design.md, "Reconstruction as MRC").

A reconstruction file holds ``volume`` (float32) and ``binary`` (uint8) over
``(z, y, x)``: z the height along the beam at 0° tilt, y the tilt axis, x
across it, in nm, centred on the tilt axis. :func:`write_volume_mrc` writes
one of them as an MRC2014 file with ``mrcfile``, as IMOD writes a
tomogram after ``trimvol -rx``:

* the array is written as it is: MRC columns are x, rows are y, sections
  are z (``mapc, mapr, maps = 1, 2, 3``), so 3dmod shows X = x (across the
  tilt axis), Y = y (the tilt axis, as in the tilt images) and Z = z (the
  beam direction, section by section); its Z = middle section is the
  slice through the tilt axis, seen as at 0° tilt. Rows keep the order of
  the imported tilt images, so the volume is the same way up as the series
  was in 3dmod;
* ``volume`` is mode 2 (float32); ``binary`` is mode 0 (signed bytes, 0/1);
* the voxel size is in the header in ångström (``cella = n * voxel``);
* the origin is IMOD's: the coordinates of the (0, 0, 0) point relative to
  the first voxel, in ångström, i.e. minus the first voxel's coordinate
  (so the tilt axis at x = 0, y = 0 and z = 0 is at 3dmod's coordinate 0).
  UCSF Chimera reads the origin with the opposite sign;
* the header's labels name the program and the source file.

The file is written atomically (:mod:`sinter4d.io.atomic`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError
from .atomic import atomic_path

__all__ = ["MRC_VARIABLES", "write_volume_mrc"]

#: Variables of a reconstruction that can be written as MRC, with their MRC data type.
MRC_VARIABLES = {"volume": np.float32, "binary": np.int8}

_AXES = ("z", "y", "x")


def write_volume_mrc(recon: xr.Dataset, path: str | Path, *, variable: str = "volume", source: str | None = None) -> Path:
    """Write one volume of a reconstruction as an MRC file (IMOD conventions).

    Parameters
    ----------
    recon : xarray.Dataset
        A reconstruction (docs/design.md, "Reconstruction file"): ``variable``
        over ``(z, y, x)`` with coordinates ``z``, ``y``, ``x`` in nm.
    path : str or Path
        The MRC file to write (atomically; its folder is created).
    variable : {'volume', 'binary'}, optional
        ``volume`` as float32 (mode 2) or ``binary`` as 0/1 bytes (mode 0).
    source : str, optional
        Name of the reconstruction file, for the header's labels.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        The variable is missing, not over ``(z, y, x)``, or its grid is not
        evenly spaced with one voxel size (nm) on every axis.
    """
    import mrcfile

    name = source or recon.attrs.get("source", "reconstruction")
    if variable not in MRC_VARIABLES:
        raise InputError(f"{name}: cannot write {variable!r} as MRC; choose one of {', '.join(MRC_VARIABLES)}")
    if variable not in recon:
        raise InputError(f"{name}: missing variable {variable}")
    var = recon[variable]
    if var.dims != _AXES:
        raise InputError(f"{name}: variable {variable} has dims {var.dims}; expected (z, y, x)")
    voxel_nm, first_nm = _grid(recon, name)
    data = np.ascontiguousarray(var.values, dtype=MRC_VARIABLES[variable])
    with atomic_path(path) as tmp:
        with mrcfile.new(tmp, overwrite=True) as mrc:
            mrc.set_data(data)
            mrc.voxel_size = voxel_nm * 10.0  # angstrom
            # IMOD: origin = coordinates of (0, 0, 0) relative to the first voxel (angstrom)
            mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = (-10.0 * v for v in first_nm)
            mrc.add_label(f"sinter4d: {variable} (z, y, x) = MRC sections, rows, columns; y the tilt axis")
            mrc.add_label(f"from {Path(str(name)).name}"[:80])
    return Path(path)


def _grid(recon: xr.Dataset, name: str) -> tuple[float, tuple[float, float, float]]:
    """The voxel size (nm) and the first voxel's (x, y, z) coordinates (nm), checked."""
    steps, first = {}, {}
    for axis in _AXES:
        if axis not in recon.coords:
            raise InputError(f"{name}: missing coordinate {axis}")
        c = np.asarray(recon[axis].values, dtype=float)
        first[axis] = float(c[0]) if c.size else 0.0
        if c.size > 1:
            d = np.diff(c)
            if not (np.all(d > 0) and np.allclose(d, d[0], rtol=1e-4)):
                raise InputError(f"{name}: coordinate {axis} is not evenly spaced and increasing")
            steps[axis] = float(d.mean())
    pixel = float(recon.attrs.get("pixel_size_nm", np.nan))
    voxel = steps.get("x", steps.get("y", pixel))
    for axis, step in steps.items():
        if abs(step - voxel) > 1e-3 * voxel:
            raise InputError(f"{name}: voxel size along {axis} ({step:g} nm) differs from x ({voxel:g} nm)")
    if not (np.isfinite(voxel) and voxel > 0):
        raise InputError(f"{name}: no voxel size (a 1-voxel grid without pixel_size_nm)")
    return voxel, (first["x"], first["y"], first["z"])
