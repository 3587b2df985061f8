"""netCDF4 files written atomically and opened with their variables checked."""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterable
from pathlib import Path

import xarray as xr

from ..checks import check_file
from ..errors import InputError
from .atomic import atomic_path


def _encoding(ds: xr.Dataset, compress: bool) -> dict:
    """zlib compression for every data variable of more than 1000 values."""
    if not compress:
        return {}
    enc = {}
    for name, var in ds.data_vars.items():
        if var.size > 1000 and var.dtype.kind in "fiub":
            enc[name] = {"zlib": True, "complevel": 1, "shuffle": True}
    return enc


def write_dataset_atomic(ds: xr.Dataset, path: str | Path, *, compress: bool = True) -> Path:
    """Write ``ds`` to ``path`` as netCDF4, atomically.

    The data are written to a temporary file in the same folder and renamed
    over ``path`` only once complete, so an interrupted write leaves either
    the old file or none, never a partial one.

    Parameters
    ----------
    ds : xarray.Dataset
        The dataset.
    path : str or Path
        Destination; its folder is created when missing.
    compress : bool, optional
        zlib-compress large variables (default True).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OSError
        The netCDF library could not write the file (a full disk, an I/O
        error); the message says how much space is free.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=_encoding(ds, compress))
        except RuntimeError as exc:
            if not str(exc).startswith("NetCDF:"):
                raise
            # the library's own failure to write (a full disk reads "NetCDF: HDF error"): a system error
            free_mb = shutil.disk_usage(path.parent).free / 1e6
            raise OSError(errno.EIO, f"cannot write the netCDF file ({exc}; {free_mb:.0f} MB free there)",
                          str(path)) from exc
    return path


def open_dataset_checked(
    path: str | Path, required: Iterable[str] = (), *, load: bool = True, cache: bool = True
) -> xr.Dataset:
    """Open a netCDF file and check that it holds the named variables.

    Parameters
    ----------
    path : str or Path
        The file.
    required : iterable of str
        Names of variables or coordinates that must be present.
    load : bool, optional
        Read the data into memory and close the file (default True).
    cache : bool, optional
        With ``load=False``: keep a variable in memory once read (default,
        xarray's). False reads it from the file at every access, so an array
        read once is freed as soon as its reader drops it.

    Returns
    -------
    xarray.Dataset

    Raises
    ------
    InputError
        One line naming the file and what is missing or unreadable.
    """
    path = check_file(path)
    try:
        ds = xr.open_dataset(path, engine="netcdf4", cache=cache or load)
    except Exception as exc:  # netCDF4 raises OSError, ValueError, RuntimeError...
        raise InputError(f"{path}: not a readable netCDF file ({exc})") from None
    missing = [name for name in required if name not in ds.variables]
    if missing:
        ds.close()
        raise InputError(f"{path}: missing variable(s) {', '.join(missing)}")
    if load:
        ds = ds.load()
        ds.close()
    return ds
