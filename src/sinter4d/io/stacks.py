"""Real tilt series brought by a user: an IMOD-style stack and its ``.rawtlt``.

:func:`read_stack` reads an MRC stack (``mrcfile``) or a multi-page TIFF
(``tifffile``) plus a text file of tilt angles (one per line, IMOD
``.rawtlt``/``.tlt``) and returns the tilt-series Dataset of docs/design.md
("Tilt series file"): variable ``counts`` ``(tilt, y, x)`` float32 in the raw
detector units of the file, coordinate ``tilt_angle`` in degrees, ``y``/``x``
in nm centred on the image middle (as :class:`sinter4d.phantom.Grid`). The
values are kept as they are: they need not be electron counts.

Every problem a user can cause raises :class:`~sinter4d.errors.InputError`
with one line naming the file and what is wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError

__all__ = ["MRC_SUFFIXES", "TIFF_SUFFIXES", "read_angles", "read_stack"]

MRC_SUFFIXES = (".mrc", ".mrcs", ".st", ".ali", ".preali", ".map")
TIFF_SUFFIXES = (".tif", ".tiff")
_TIFF_UNITS_NM = {"nm": 1.0, "nanometer": 1.0, "micron": 1e3, "um": 1e3, "\u00b5m": 1e3, "microns": 1e3,
                  "a": 0.1, "\u00e5": 0.1, "angstrom": 0.1}


def read_angles(path: str | Path) -> np.ndarray:
    """Tilt angles (degrees) from a text file with one angle per line.

    Blank lines and lines starting with ``#`` are skipped; only the first
    number of a line is read (IMOD ``.tlt`` files may carry more columns).

    Raises
    ------
    InputError
        Unreadable file, a line that is not a number, no angle, NaN or
        infinite values, angles beyond +-90 deg, or angles not strictly
        monotonic.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the tilt angles ({exc.__class__.__name__}: {exc})") from None
    values = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            values.append(float(text.split()[0]))
        except ValueError:
            raise InputError(f"{path}: line {number}: {text[:40]!r} is not a tilt angle in degrees") from None
    angles = np.asarray(values, dtype=np.float64)
    if angles.size == 0:
        raise InputError(f"{path}: holds no tilt angle")
    if not np.isfinite(angles).all():
        raise InputError(f"{path}: tilt angles hold NaN or infinite values")
    if np.any(np.abs(angles) > 90):
        raise InputError(f"{path}: tilt angle {angles[np.argmax(np.abs(angles))]:g} is beyond +-90 degrees")
    steps = np.diff(angles)
    if angles.size > 1 and not (np.all(steps > 0) or np.all(steps < 0)):
        k = int(np.argmax(steps <= 0) if steps[0] > 0 else np.argmax(steps >= 0)) + 1
        raise InputError(f"{path}: tilt angles are not strictly monotonic (angle {k + 1} = {angles[k]:g} after {angles[k - 1]:g})")
    return angles


def _read_mrc(path: Path) -> tuple[np.ndarray, float | None, dict]:
    import mrcfile

    try:
        with mrcfile.open(path, mode="r", permissive=False) as mrc:
            data = np.asarray(mrc.data)
            vs = mrc.voxel_size
            header = mrc.header
            labels = [bytes(lab).decode("ascii", "replace").strip() for lab in header.label[: int(header.nlabl)]]
            meta = {"source_format": "MRC", "mrc_mode": int(header.mode)}
            if labels:
                meta["mrc_labels"] = " | ".join(labels)
            size_x, size_y = float(vs.x), float(vs.y)
    except Exception as exc:  # mrcfile raises ValueError for a bad header, OSError for I/O
        raise InputError(f"{path}: not a readable MRC file ({exc.__class__.__name__}: {exc})") from None
    if np.iscomplexobj(data):
        raise InputError(f"{path}: MRC mode {meta['mrc_mode']} holds complex values, not images")
    pixel = None
    if size_x > 0:
        if size_y > 0 and abs(size_y - size_x) > 1e-3 * size_x:
            raise InputError(f"{path}: pixels are not square (header voxel size x = {size_x:g} A, y = {size_y:g} A)")
        pixel = size_x / 10.0  # Angstrom -> nm
    return data, pixel, meta


def _read_tiff(path: Path) -> tuple[np.ndarray, float | None, dict]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            data = tif.asarray()
            meta = {"source_format": "TIFF"}
            pixel = None
            ij = tif.imagej_metadata or {}
            unit = str(ij.get("unit", "")).strip().lower()
            tag = tif.pages[0].tags.get("XResolution")
            if unit in _TIFF_UNITS_NM and tag is not None:
                num, den = tag.value
                if num > 0 and den > 0:
                    pixel = den / num * _TIFF_UNITS_NM[unit]  # XResolution = pixels per unit
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, OSError...
        raise InputError(f"{path}: not a readable TIFF file ({exc.__class__.__name__}: {exc})") from None
    if (data.ndim == 4 and data.shape[-1] in (3, 4)) or (data.ndim == 3 and data.shape[-1] in (3, 4) and data.shape[0] > 4):
        raise InputError(f"{path}: holds colour (RGB) images, shape {data.shape}; a tilt series must be greyscale")
    return data, pixel, meta


def read_stack(path: str | Path, angles_path: str | Path, *, pixel_size_nm: float | None = None) -> xr.Dataset:
    """Read an MRC or multi-page TIFF tilt series and its tilt angles.

    Parameters
    ----------
    path : str or Path
        The stack: ``.mrc``, ``.mrcs``, ``.st``, ``.ali``, ``.preali``,
        ``.map`` (MRC) or ``.tif``, ``.tiff`` (one page per tilt).
    angles_path : str or Path
        Text file with one tilt angle (degrees) per line, in stack order
        (IMOD ``.rawtlt``); see :func:`read_angles`.
    pixel_size_nm : float, optional
        Pixel size in nm. Overrides the file's own (MRC header voxel size in
        angstrom when non-zero; TIFF ImageJ unit and XResolution); required
        when the file has none.

    Returns
    -------
    xarray.Dataset
        ``counts`` ``(tilt, y, x)`` float32 in raw detector units, coordinates
        ``tilt_angle`` (deg), ``y``, ``x`` (nm); attributes ``pixel_size_nm``,
        ``pixel_size_source`` (``"argument"`` or ``"file"``),
        ``source_file``, ``source_format`` and format metadata.

    Raises
    ------
    InputError
        One line naming the file: unknown or unreadable format, a single 2D
        image, NaN/inf pixels, no pixel size, angle count differing from the
        image count, or bad angles (see :func:`read_angles`).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import mrcfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with mrcfile.new(folder / "s.mrc") as mrc:
    ...     mrc.set_data(np.zeros((3, 8, 8), np.float32))
    ...     mrc.voxel_size = 10.4  # angstrom
    >>> _ = (folder / "s.rawtlt").write_text("-2\\n0\\n2\\n")
    >>> ds = read_stack(folder / "s.mrc", folder / "s.rawtlt")
    >>> ds.counts.dims, round(ds.attrs["pixel_size_nm"], 2)
    (('tilt', 'y', 'x'), 1.04)
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in MRC_SUFFIXES + TIFF_SUFFIXES:
        raise InputError(f"{path}: unknown stack format {suffix or '(no suffix)'!r}; expected one of {', '.join(MRC_SUFFIXES + TIFF_SUFFIXES)}")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    data, file_pixel, meta = _read_mrc(path) if suffix in MRC_SUFFIXES else _read_tiff(path)

    if data.ndim == 2:
        raise InputError(f"{path}: holds a single 2D image {data.shape}; a tilt series needs one image per tilt")
    if data.ndim != 3 or min(data.shape) < 1:
        raise InputError(f"{path}: expected a stack of shape (tilt, y, x), got {data.shape}")
    if data.dtype.kind not in "biuf":
        raise InputError(f"{path}: pixel type {data.dtype} is not numeric")
    counts = data.astype(np.float32)
    bad = ~np.isfinite(counts)
    if bad.any():
        raise InputError(f"{path}: {int(bad.sum())} pixel(s) are NaN or infinite (first in image {int(np.argwhere(bad)[0][0])})")

    if pixel_size_nm is not None:
        if not (np.isfinite(pixel_size_nm) and pixel_size_nm > 0):
            raise InputError(f"{path}: pixel_size_nm must be a positive number, got {pixel_size_nm}")
        pixel, source = float(pixel_size_nm), "argument"
    elif file_pixel is not None:
        pixel, source = float(file_pixel), "file"
    else:
        raise InputError(f"{path}: the file gives no pixel size; pass pixel_size_nm")

    angles_path = Path(angles_path)
    if not angles_path.is_file():
        raise InputError(f"{angles_path}: no such file")
    angles = read_angles(angles_path)
    if angles.size != counts.shape[0]:
        raise InputError(f"{angles_path}: {angles.size} tilt angles for {counts.shape[0]} images in {path.name}")

    n, ny, nx = counts.shape
    y = (np.arange(ny) - (ny - 1) / 2.0) * pixel
    x = (np.arange(nx) - (nx - 1) / 2.0) * pixel
    ds = xr.Dataset(
        {
            "counts": (
                ("tilt", "y", "x"),
                counts,
                {"units": "1", "long_name": "HAADF detector signal (raw detector units)"},
            )
        },
        coords={
            "tilt_angle": ("tilt", angles, {"units": "degree", "long_name": "tilt angle about the y axis"}),
            "y": ("y", y, {"units": "nm", "long_name": "position along the tilt axis"}),
            "x": ("x", x, {"units": "nm", "long_name": "position across the tilt axis"}),
        },
        attrs={
            "pixel_size_nm": pixel,
            "pixel_size_source": source,
            "source_file": str(path),
            "angles_file": str(angles_path),
            **meta,
        },
    )
    return ds
