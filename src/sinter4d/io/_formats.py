"""One small reader per family of stack files: MRC, TIFF, and the rosettasciio formats.

Each reader takes a path and returns a :class:`RawStack`: the pixel array as
stored and what the file's own metadata says of the pixel size, the tilt
angles and the in-plane tilt-axis angle. Files beside the stack (``.mdoc``,
logs, angle lists) and the choice between sources belong to
:mod:`sinter4d.io.stacks`. A file that its library cannot read raises
:class:`~sinter4d.errors.InputError` with one line.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["FORMATS", "RawStack", "read_format"]

#: Length units of file metadata, in nm.
LENGTH_UNIT_NM = {
    "m": 1e9, "mm": 1e6, "um": 1e3, "\u00b5m": 1e3, "\u03bcm": 1e3, "micron": 1e3, "microns": 1e3,
    "nm": 1.0, "nanometer": 1.0, "a": 0.1, "\u00e5": 0.1, "angstrom": 0.1, "pm": 1e-3,
}
#: Angle units of a calibrated stack axis.
DEGREE_UNITS = {"deg", "degree", "degrees", "\u00b0"}
#: An MRC header voxel size of exactly this (angstrom) is the "unset" value IMOD and mrcfile write.
MRC_PLACEHOLDER_VOXEL_A = 1.0
#: Bytes of one record of the old FEI extended MRC header (32 float32 per image).
FEI_RECORD_BYTES = 128


@dataclass
class RawStack:
    """A stack as its file holds it.

    Attributes
    ----------
    data : ndarray
        ``(n, ny, nx)`` or ``(ny, nx)`` float32 (exact for 8- and 16-bit
        integers; the stored dtype is ``meta["source_dtype"]``).
    source_format : str
        e.g. ``"MRC"``, ``"Gatan DM3"``.
    pixel_size_nm, angles_deg, tilt_axis_rotation_deg : dict
        What the file's metadata says, by origin (e.g. ``"MRC header"``);
        the first entry is the most trusted.
    meta : dict
        Attributes to keep (netCDF types).
    """

    data: np.ndarray
    source_format: str
    pixel_size_nm: dict[str, float] = field(default_factory=dict)
    angles_deg: dict[str, np.ndarray] = field(default_factory=dict)
    tilt_axis_rotation_deg: dict[str, float] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


def _as_float32(data, path: Path) -> np.ndarray:
    """One float32 copy of the stored pixels (a memory map is read once)."""
    if data.dtype.kind not in "biuf":
        raise InputError(f"{path}: pixel type {data.dtype} is not numeric")
    return np.asarray(data, dtype=np.float32)


def _length_nm(value, unit) -> float | None:
    """``value`` in ``unit`` as nm, or None for an unknown unit or a non-positive value."""
    factor = LENGTH_UNIT_NM.get(str(unit).strip().lower()) if unit else None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v * factor if factor and np.isfinite(v) and v > 0 else None


# -------------------------------------------------------------------- MRC


def _fei_extended(mrc, n: int) -> tuple[np.ndarray | None, float | None]:
    """Tilt angles (deg) and pixel size (nm) of an FEI extended header, if the file has one.

    The old layout (Xplore3D/Inspect3D, no ``exttyp``) has 1024 records of 32
    float32 per image, the alpha tilt (deg) first and the pixel size (m)
    twelfth; the newer ``FEI1``/``FEI2`` layouts are decoded by ``mrcfile``
    (``Alpha tilt``, ``Pixel size X``).
    """
    ext, kind = mrc.extended_header, bytes(mrc.header.exttyp).strip(b"\0 ")
    if kind in (b"FEI1", b"FEI2"):
        try:
            records = mrc.indexed_extended_header
            tilts, pixels = np.asarray(records["Alpha tilt"][:n], float), np.asarray(records["Pixel size X"][:n], float)
        except (ValueError, KeyError, TypeError):
            return None, None
    elif kind == b"" and ext is not None and ext.nbytes >= n * FEI_RECORD_BYTES:
        endian = ">" if mrc.header.mode.dtype.byteorder == ">" else "<"
        records = np.frombuffer(ext.tobytes()[: n * FEI_RECORD_BYTES], dtype=f"{endian}f4").reshape(n, 32)
        tilts, pixels = records[:, 0].astype(float), records[:, 11].astype(float)
    else:
        return None, None
    ok_tilts = tilts.size == n and np.isfinite(tilts).all() and np.abs(tilts).max() <= 90 and (n == 1 or np.ptp(tilts) > 0)
    ok_pixel = pixels.size and np.isfinite(pixels).all() and 0 < pixels[0] < 1e-6 and np.allclose(pixels, pixels[0])
    return (tilts if ok_tilts else None), (float(f"{pixels[0] * 1e9:.7g}") if ok_pixel else None)  # float32: 7 digits


def _header_fits(path: Path) -> bool:
    """Whether the 1024-byte header (either byte order) describes data the file can hold.

    Checked before a permissive open, which on a file that is no MRC at all
    can take seconds to find out.
    """
    import mrcfile.dtypes
    import mrcfile.utils

    head = path.read_bytes()[:1024] if path.stat().st_size >= 1024 else b""
    if not head:
        return False
    for dtype in (mrcfile.dtypes.HEADER_DTYPE, mrcfile.dtypes.HEADER_DTYPE.newbyteorder()):
        h = np.frombuffer(head, dtype=dtype)[0]
        try:
            itemsize = mrcfile.utils.dtype_from_mode(h["mode"]).itemsize
        except ValueError:
            continue
        nx, ny, nz, ext = (int(h[k]) for k in ("nx", "ny", "nz", "nsymbt"))
        if min(nx, ny, nz) > 0 and ext >= 0 and 1024 + ext + nx * ny * nz * itemsize <= path.stat().st_size:
            return True
    return False


def read_mrc(path: Path) -> RawStack:
    """MRC/IMOD stack with ``mrcfile``; vendor files strict mode refuses are opened permissively.

    Metadata: the header voxel size (angstrom; exactly 1 Å or 0 counts as
    unset) and an old-style FEI extended header (tilt angles, pixel size).
    """
    import mrcfile

    permissive = False
    try:
        mrc = mrcfile.mmap(path, mode="r", permissive=False)
    except ValueError:
        permissive = True
        if not _header_fits(path):
            raise InputError(f"{path}: not a readable MRC file (its header does not describe the data it holds)") from None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mrc = mrcfile.mmap(path, mode="r", permissive=True)
        except Exception as exc:
            raise InputError(f"{path}: not a readable MRC file ({exc.__class__.__name__}: {exc})") from None
    except Exception as exc:  # OSError and the like
        raise InputError(f"{path}: not a readable MRC file ({exc.__class__.__name__}: {exc})") from None
    with mrc:
        if mrc.data is None:
            raise InputError(f"{path}: not a readable MRC file (the header's size does not match the data)")
        if np.iscomplexobj(mrc.data):
            raise InputError(f"{path}: MRC mode {int(mrc.header.mode)} holds complex values, not images")
        data = _as_float32(mrc.data, path)
        header = mrc.header
        stack = RawStack(data, "MRC", meta={"source_dtype": str(mrc.data.dtype), "mrc_mode": int(header.mode),
                                            "mrc_permissive": int(permissive)})
        labels = [bytes(lab).decode("ascii", "replace").strip() for lab in header.label[: int(header.nlabl)]]
        if labels:
            stack.meta["mrc_labels"] = " | ".join(lab for lab in labels if lab)
        n = data.shape[0] if data.ndim == 3 else 1
        angles, fei_pixel = _fei_extended(mrc, n)
        if fei_pixel is not None:
            stack.pixel_size_nm["FEI extended header"] = fei_pixel
        if angles is not None:
            stack.angles_deg["FEI extended header"] = angles
        vx, vy = float(mrc.voxel_size.x), float(mrc.voxel_size.y)
    if vx > 0 and vx != MRC_PLACEHOLDER_VOXEL_A:
        if vy > 0 and abs(vy - vx) > 1e-3 * vx:
            raise InputError(f"{path}: pixels are not square (header voxel size x = {vx:g} A, y = {vy:g} A)")
        stack.pixel_size_nm["MRC header"] = vx / 10.0
    return stack


# ------------------------------------------------------------------- TIFF


def read_tiff(path: Path) -> RawStack:
    """Multi-page or ImageJ TIFF with ``tifffile``; pixel size from the ImageJ unit and XResolution."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            data = tif.asarray()
            ij = tif.imagej_metadata or {}
            tag = tif.pages[0].tags.get("XResolution")
            resolution = tag.value if tag is not None else None
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, OSError...
        raise InputError(f"{path}: not a readable TIFF file ({exc.__class__.__name__}: {exc})") from None
    if (data.ndim == 4 and data.shape[-1] in (3, 4)) or (data.ndim == 3 and data.shape[-1] in (3, 4) and data.shape[0] > 4):
        raise InputError(f"{path}: holds colour (RGB) images, shape {data.shape}; a tilt series must be greyscale")
    stack = RawStack(_as_float32(data, path), "ImageJ TIFF" if ij else "TIFF", meta={"source_dtype": str(data.dtype)})
    if resolution is not None and resolution[0] > 0 and resolution[1] > 0:
        pixel = _length_nm(resolution[1] / resolution[0], ij.get("unit"))  # XResolution = pixels per unit
        if pixel is not None:
            stack.pixel_size_nm["ImageJ metadata"] = pixel
    return stack


# ------------------------------------------------------------- rosettasciio


def _dotted(tree: dict, path: str):
    node = tree
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _tilt_alpha(signal: dict):
    """Stage alpha (deg) from the signal's metadata, or via rosettasciio's own metadata mapping."""
    target = "Acquisition_instrument.TEM.Stage.tilt_alpha"
    value = _dotted(signal.get("metadata", {}), target)
    if value is None:
        for source, (dest, func) in (signal.get("mapping") or {}).items():
            raw = _dotted(signal.get("original_metadata", {}), source) if dest == target else None
            if raw is not None:
                value = func(raw) if func is not None else raw
                break
    try:
        return np.atleast_1d(np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        return None


def _pick_image(signals: list[dict], path: Path) -> dict:
    """The first image-like signal (2 signal axes, at most one stack axis), HAADF preferred."""
    images = [s for s in signals if 2 <= np.ndim(s["data"]) <= 3 and np.asarray(s["data"]).dtype.kind in "biuf"]
    if not images:
        shapes = ", ".join(str(np.shape(s["data"])) for s in signals) or "nothing"
        raise InputError(f"{path}: holds no image or image stack (found {shapes})")
    haadf = [s for s in images if "haadf" in str(_dotted(s.get("metadata", {}), "General.title") or "").lower()]
    return (haadf or images)[0]


def _read_rsciio(path: Path, module: str, fmt: str, **kwargs) -> RawStack:
    reader = importlib.import_module(f"rsciio.{module}").file_reader
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            signals = reader(str(path), **kwargs)
    except Exception as exc:  # each plugin raises its own types for a broken file
        raise InputError(f"{path}: not a readable {fmt} file ({exc.__class__.__name__}: {exc})") from None
    signal = _pick_image(list(signals), path)
    data = np.asarray(signal["data"])
    axes = sorted(signal["axes"], key=lambda a: a.get("index_in_array", 0))
    stack = RawStack(_as_float32(data, path), fmt, meta={"source_dtype": str(data.dtype)})
    title = _dotted(signal.get("metadata", {}), "General.title")
    if title:
        stack.meta["source_title"] = str(title)
    if len(axes) == data.ndim:
        sy, sx = axes[-2], axes[-1]
        px, py = _length_nm(sx.get("scale"), sx.get("units")), _length_nm(sy.get("scale"), sy.get("units"))
        if px is not None and (py is None or abs(py - px) <= 1e-3 * px):
            stack.pixel_size_nm[f"{fmt} calibration"] = px
        if data.ndim == 3 and str(axes[0].get("units", "")).strip().lower() in DEGREE_UNITS:
            a = axes[0]
            stack.angles_deg[f"{fmt} stack axis"] = float(a.get("offset", 0.0)) + float(a.get("scale", 1.0)) * np.arange(data.shape[0])
    alpha = _tilt_alpha(signal)
    if alpha is not None and alpha.size and np.isfinite(alpha).all():
        n = data.shape[0] if data.ndim == 3 else 1
        if alpha.size >= n and (n == 1 or np.ptp(alpha[:n]) > 0):
            stack.angles_deg[f"{fmt} stage alpha"] = alpha[:n]
    return stack


def read_dm(path: Path) -> RawStack:
    """Gatan DigitalMicrograph ``.dm3``/``.dm4``: calibrations, a degree stack axis, Stage Alpha."""
    return _read_rsciio(path, "digitalmicrograph", f"Gatan {path.suffix[1:].upper()}")


def read_emd(path: Path) -> RawStack:
    """Thermo Fisher Velox (or NCEM) ``.emd``: the HAADF image (stack), calibration, stage alpha."""
    return _read_rsciio(path, "emd", "EMD", select_type="images")


def read_ser(path: Path) -> RawStack:
    """FEI TIA ``.ser`` (its ``.emi`` beside it): calibration and stage alpha."""
    return _read_rsciio(path, "tia", "TIA SER")


def read_hspy(path: Path) -> RawStack:
    """HyperSpy ``.hspy``: calibrated axes (a degree navigation axis gives the angles)."""
    return _read_rsciio(path, "hspy", "HyperSpy")


#: Reader of each suffix.
FORMATS = {
    **{s: read_mrc for s in (".mrc", ".mrcs", ".st", ".ali", ".preali", ".map")},
    ".tif": read_tiff, ".tiff": read_tiff,
    ".dm3": read_dm, ".dm4": read_dm,
    ".emd": read_emd,
    ".ser": read_ser,
    ".hspy": read_hspy,
}


def read_format(path: Path) -> RawStack:
    """Read ``path`` with the reader of its suffix.

    Raises
    ------
    InputError
        An unknown suffix, a missing file, or a file its library cannot read.
    """
    reader = FORMATS.get(path.suffix.lower())
    if reader is None:
        raise InputError(
            f"{path}: unknown stack format {path.suffix or '(no suffix)'!r}; expected one of {', '.join(FORMATS)}"
        )
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    return reader(path)
