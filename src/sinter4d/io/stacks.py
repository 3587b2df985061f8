"""Real tilt series brought by a user, in the files microscopes write.

:func:`read_tilt_series` reads a stack (MRC/IMOD/FEI/SerialEM, TIFF/ImageJ,
Gatan DM3/DM4, Velox EMD, TIA SER, HyperSpy; one reader per family in
:mod:`sinter4d.io._formats`), or a series of single-image files, and returns
the tilt-series Dataset of docs/design.md ("Tilt series file"). Pixel size,
tilt angles and the in-plane tilt-axis angle come from the arguments when
given, else from the file's metadata or the files beside it (``.rawtlt``/
``.tlt`` angle lists, a SerialEM ``.mdoc``, an FEI ``.txt`` acquisition log);
when two sources disagree the one used is logged as a warning, and the
choice is recorded (``*_source``, ``*_origin`` attributes). The raw values
are kept as they were; the vacuum (dark) level is estimated and recorded for
the pipeline to subtract.

Every problem a user can cause raises :class:`~sinter4d.errors.InputError`
with one line naming the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from ..checks import check_number, check_tilt_stack
from ..errors import InputError
from ._formats import FORMATS, RawStack, read_format
from ._sidecars import ANGLE_SUFFIXES, find_beside, read_angles, read_fei_log, read_mdoc, wrap_axis_rotation

__all__ = ["STACK_SUFFIXES", "file_sha256", "read_angles", "read_frames", "read_tilt_series"]

log = logging.getLogger(__name__)

#: Suffixes :func:`read_tilt_series` reads.
STACK_SUFFIXES = tuple(FORMATS)
#: Agreement needed between two sources before a warning: relative for the pixel size, degrees for angles.
PIXEL_SIZE_RTOL = 1e-3
ANGLE_ATOL_DEG = 0.05

ARGUMENT, FILE_METADATA, BESIDE = "argument", "file metadata", "file beside the stack"


def read_frames(path: str | Path) -> np.ndarray:
    """The pixels of an image or stack file in any format of :data:`STACK_SUFFIXES`, as float32, no metadata.

    For files that are not tilt series: a multi-frame reference, or its stored average.

    Raises
    ------
    InputError
        Unknown suffix, missing or unreadable file.
    """
    return read_format(Path(path)).data


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB blocks: the provenance of an imported file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_files(paths: list[Path]) -> tuple[np.ndarray, RawStack]:
    """The images of one stack file, or of single-image files stacked in the given order."""
    raws = [read_format(p) for p in paths]
    if len(raws) == 1:
        return raws[0].data, raws[0]
    for p, raw in zip(paths, raws):
        if raw.data.ndim != 2 and not (raw.data.ndim == 3 and raw.data.shape[0] == 1):
            raise InputError(f"{p}: holds {raw.data.shape[0]} images; a series of files needs one image per file")
    images = [raw.data.reshape(raw.data.shape[-2:]) for raw in raws]
    if len({im.shape for im in images}) > 1:
        raise InputError(f"{paths[0].parent}: the files hold images of different shapes {sorted({im.shape for im in images})}")
    first = raws[0]
    series = RawStack(np.stack(images), f"{first.source_format} series", meta=dict(first.meta))
    for origin, value in first.pixel_size_nm.items():
        if all(abs(r.pixel_size_nm.get(origin, np.nan) - value) <= PIXEL_SIZE_RTOL * value for r in raws):
            series.pixel_size_nm[origin] = value
    for origin in first.angles_deg:
        if all(origin in r.angles_deg and r.angles_deg[origin].size == 1 for r in raws):
            series.angles_deg[origin] = np.array([float(r.angles_deg[origin][0]) for r in raws])
    return series.data, series


def _candidates(path: Path, raw: RawStack, angles, pixel_size_nm, tilt_axis_rotation_deg, single: bool) -> dict:
    """Every source of each quantity, most trusted first: ``(source, origin, value)``."""
    found = {"pixel_size_nm": [], "angles": [], "tilt_axis_rotation_deg": []}
    if pixel_size_nm is not None:
        found["pixel_size_nm"].append((ARGUMENT, "pixel_size_nm", check_number(pixel_size_nm, "pixel_size_nm", minimum=0, strict=True)))
    if angles is not None:
        found["angles"].append((ARGUMENT, Path(angles).name, read_angles(angles)))
    if tilt_axis_rotation_deg is not None:
        value = check_number(tilt_axis_rotation_deg, "tilt_axis_rotation_deg", minimum=-180.0, maximum=180.0)
        found["tilt_axis_rotation_deg"].append((ARGUMENT, "tilt_axis_rotation_deg", wrap_axis_rotation(value)))
    if single and (tlt := find_beside(path, ANGLE_SUFFIXES)) is not None:
        found["angles"].append((BESIDE, tlt.name, read_angles(tlt)))
    if single and (mdoc_path := find_beside(path, (".mdoc",))) is not None:
        mdoc = read_mdoc(mdoc_path)
        for key, value in (("angles", mdoc.angles_deg), ("pixel_size_nm", mdoc.pixel_size_nm),
                           ("tilt_axis_rotation_deg", mdoc.tilt_axis_rotation_deg)):
            if value is not None:
                found[key].append((BESIDE, mdoc_path.name, value))
    found["angles"] += [(FILE_METADATA, origin, v) for origin, v in raw.angles_deg.items()]
    found["pixel_size_nm"] += [(FILE_METADATA, origin, v) for origin, v in raw.pixel_size_nm.items()]
    found["tilt_axis_rotation_deg"] += [(FILE_METADATA, origin, v) for origin, v in raw.tilt_axis_rotation_deg.items()]
    log_path = path.with_suffix(".txt")  # FEI tomography writes MRC stacks and this log beside them
    fei_log = read_fei_log(log_path) if single and raw.source_format == "MRC" and log_path.is_file() else None
    if fei_log is not None:
        if fei_log.pixel_size_nm is not None:
            found["pixel_size_nm"].append((BESIDE, log_path.name, fei_log.pixel_size_nm))
        if fei_log.tilt_axis_rotation_deg is not None:
            found["tilt_axis_rotation_deg"].append((BESIDE, log_path.name, fei_log.tilt_axis_rotation_deg))
    return found


def _agree(key: str, a, b) -> bool:
    if key == "angles":
        a, b = np.asarray(a, float), np.asarray(b, float)
        return a.shape == b.shape and bool(np.all(np.abs(a - b) <= ANGLE_ATOL_DEG))
    if key == "pixel_size_nm":
        return abs(a - b) <= PIXEL_SIZE_RTOL * abs(a)
    return abs(wrap_axis_rotation(a - b)) <= 0.5


def _describe(key: str, value) -> str:
    if key == "angles":
        v = np.asarray(value)
        return f"{v.size} angles {v.min():g}..{v.max():g} deg"
    return f"{value:g} {'nm' if key == 'pixel_size_nm' else 'deg'}"


def _fitting_angles(name: str, candidates: list, n: int, stack_name: str) -> list:
    """The angle lists with one angle per image; the others are dropped with a warning.

    An argument that does not fit is an error, and so is a file beside the
    stack when nothing else fits (it is then the user's list).
    """
    fit = [c for c in candidates if np.asarray(c[2]).size == n]
    for source, origin, value in candidates:
        if np.asarray(value).size == n:
            continue
        if source == ARGUMENT or not fit:
            raise InputError(f"{origin}: {np.asarray(value).size} tilt angles for {n} images in {stack_name}")
        log.warning("%s: %s holds %d tilt angles for %d images; not used", name, origin, np.asarray(value).size, n)
    return fit


_LABEL = {"pixel_size_nm": "pixel size", "angles": "tilt angles", "tilt_axis_rotation_deg": "tilt-axis angle"}


def _choose(name: str, key: str, candidates: list) -> tuple | None:
    """The most trusted candidate; one warning line naming the sources that disagree with it."""
    if not candidates:
        return None
    chosen = candidates[0]
    others = [f"{origin} says {_describe(key, value)}" for _, origin, value in candidates[1:]
              if not _agree(key, chosen[2], value)]
    if others:
        log.warning("%s: %s %s from %s (%s) is used; %s", name, _LABEL[key], _describe(key, chosen[2]),
                    chosen[1], chosen[0], "; ".join(others))
    return chosen


def read_tilt_series(
    path: str | Path | Sequence[str | Path],
    *,
    angles: str | Path | None = None,
    pixel_size_nm: float | None = None,
    tilt_axis_rotation_deg: float | None = None,
) -> xr.Dataset:
    """Read a tilt series from the file(s) a microscope wrote.

    Parameters
    ----------
    path : str or Path, or a sequence of them
        A stack: MRC (``.mrc``, ``.mrcs``, ``.st``, ``.ali``, ``.preali``,
        ``.map``; vendor files strict ``mrcfile`` refuses are read
        permissively), TIFF (``.tif``, ``.tiff``, ImageJ), Gatan ``.dm3``/
        ``.dm4``, Velox ``.emd``, TIA ``.ser``, HyperSpy ``.hspy``. Or a
        sequence of single-image files, one per tilt, in acquisition order
        (e.g. a DigitalMicrograph series, each with its Stage Alpha).
    angles : str or Path, optional
        Text file of tilt angles (deg), one per line (IMOD ``.rawtlt``).
        Without it: ``name.rawtlt``/``name.tlt`` beside the stack, the
        ``TiltAngle`` of a SerialEM ``name.mdoc``/``name.mrc.mdoc``, or the
        file's metadata (FEI extended header, a degree-calibrated stack axis,
        stage alpha), in that order.
    pixel_size_nm : float, optional
        Pixel size (nm). Without it: ``.mdoc`` ``PixelSpacing``, the file's
        metadata (FEI extended header, MRC header voxel size other than the
        1 Å placeholder, DM/EMD/SER calibrations, ImageJ resolution), or an
        FEI ``name.txt`` log.
    tilt_axis_rotation_deg : float, optional
        In-plane angle of the tilt axis (deg from the image y axis towards
        +x; 0 = along y, 90 = along x). Without it: ``.mdoc`` or the FEI log;
        when no source gives it the attribute is left out.

    Returns
    -------
    xarray.Dataset
        ``counts`` ``(tilt, y, x)`` float32 holding the raw values; coordinates
        ``tilt_angle`` (deg), ``y``, ``x`` (nm, 0 at the centre); attributes
        ``pixel_size_nm``, ``tilt_axis_rotation_deg`` (when known), ``dark_level``
        (units of ``counts``) and ``dark_level_method``, ``{pixel_size,
        angles, tilt_axis_rotation}_source`` (``"argument"``, ``"file
        metadata"`` or ``"file beside the stack"``) and ``*_origin`` (which
        header or file), ``source_file``, ``source_sha256``,
        ``source_format`` and format details.

    Raises
    ------
    InputError
        One line naming the file: unknown or unreadable format, no pixel size
        or angles from any source, NaN/inf pixels, or a series no stage
        could use (:func:`sinter4d.checks.check_tilt_stack`: fewer than 3
        tilts, images under 32 px, a range under 10°, duplicate or
        non-monotonic angles, an angle count differing from the images).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import mrcfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with mrcfile.new(folder / "s.mrc") as mrc:
    ...     mrc.set_data(np.zeros((3, 32, 32), np.float32))
    ...     mrc.voxel_size = 10.4  # angstrom
    >>> _ = (folder / "s.rawtlt").write_text("-20\\n0\\n20\\n")
    >>> ds = read_tilt_series(folder / "s.mrc")
    >>> ds.counts.dims, round(ds.attrs["pixel_size_nm"], 2), ds.attrs["angles_source"]
    (('tilt', 'y', 'x'), 1.04, 'file beside the stack')
    """
    single = isinstance(path, (str, Path))
    paths = [Path(path)] if single else [Path(p) for p in path]
    if not paths:
        raise InputError("no stack file given")
    name = str(paths[0]) if single else f"{paths[0].parent} ({len(paths)} files)"
    data, raw = _read_files(paths)
    if data.ndim == 2:
        raise InputError(f"{name}: holds a single 2D image {data.shape}; a tilt series needs one image per tilt")
    if data.ndim != 3:
        raise InputError(f"{name}: expected a stack of shape (tilt, y, x), got {data.shape}")
    bad = ~np.isfinite(data)
    if bad.any():
        raise InputError(f"{name}: {int(bad.sum())} pixel(s) are NaN or infinite (first in image {int(np.argwhere(bad)[0][0])})")

    found = _candidates(paths[0], raw, angles, pixel_size_nm, tilt_axis_rotation_deg, single)
    pixel = _choose(name, "pixel_size_nm", found["pixel_size_nm"])
    if pixel is None:
        raise InputError(f"{name}: no pixel size in the file or beside it; pass pixel_size_nm (--pixel-size)")
    tilt = _choose(name, "angles", _fitting_angles(name, found["angles"], data.shape[0], paths[0].name))
    if tilt is None:
        raise InputError(f"{name}: no tilt angles in the file or beside it (.rawtlt, .tlt, .mdoc); pass angles (--angles)")
    angle_values = check_tilt_stack(data.shape, tilt[2], f"{name} ({tilt[1]})")
    axis = _choose(name, "tilt_axis_rotation_deg", found["tilt_axis_rotation_deg"])

    from ..acquisition import DARK_LEVEL_METHOD, estimate_dark_level  # late: acquisition's settings import io

    n, ny, nx = data.shape
    step = float(pixel[2])
    attrs = {
        "pixel_size_nm": step, "pixel_size_source": pixel[0], "pixel_size_origin": pixel[1],
        "angles_source": tilt[0], "angles_origin": tilt[1],
        "dark_level": estimate_dark_level(data), "dark_level_method": DARK_LEVEL_METHOD,
        "source_file": " ".join(str(p) for p in paths), "source_sha256": " ".join(file_sha256(p) for p in paths),
        "source_format": raw.source_format, **raw.meta,
    }
    if axis is not None:
        attrs.update(tilt_axis_rotation_deg=float(axis[2]), tilt_axis_rotation_source=axis[0], tilt_axis_rotation_origin=axis[1])
    return xr.Dataset(
        {"counts": (("tilt", "y", "x"), data, {"units": "1", "long_name": "HAADF detector signal (raw detector units)"})},
        coords={
            "tilt_angle": ("tilt", angle_values, {"units": "degree", "long_name": "tilt angle"}),
            "y": ("y", (np.arange(ny) - (ny - 1) / 2.0) * step, {"units": "nm", "long_name": "image row position"}),
            "x": ("x", (np.arange(nx) - (nx - 1) / 2.0) * step, {"units": "nm", "long_name": "image column position"}),
        },
        attrs=attrs,
    )
