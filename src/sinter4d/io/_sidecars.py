"""Text files a microscope or IMOD leaves beside a stack: angles, SerialEM ``.mdoc``, FEI log.

Each parser takes a path and returns what it found (``None`` for what the
file does not say); only :func:`read_angles` raises, since a user names that
file. Conventions of the tilt-axis angle are those of docs/design.md ("Tilt
series file"): degrees from the image y axis towards +x, wrapped to
``(-90, 90]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["ANGLE_SUFFIXES", "FeiLog", "Mdoc", "find_beside", "read_angles", "read_fei_log", "read_mdoc", "wrap_axis_rotation"]

#: Suffixes of an IMOD angle list looked for beside a stack (``name.rawtlt``), in this order.
ANGLE_SUFFIXES = (".rawtlt", ".tlt")


def wrap_axis_rotation(angle_deg: float) -> float:
    """An in-plane axis direction (degree) wrapped to ``(-90, 90]`` (a line, so modulo 180)."""
    wrapped = (float(angle_deg) + 90.0) % 180.0 - 90.0
    return 90.0 if wrapped == -90.0 else wrapped


def find_beside(stack: Path, suffixes: tuple[str, ...]) -> Path | None:
    """The first existing ``name<suffix>`` or ``name.ext<suffix>`` beside ``stack``."""
    for suffix in suffixes:
        for candidate in (stack.with_suffix(suffix), stack.with_name(stack.name + suffix)):
            if candidate.is_file():
                return candidate
    return None


def read_angles(path: str | Path) -> np.ndarray:
    """Tilt angles (degrees) from a text file with one angle per line.

    Blank lines and lines starting with ``#`` are skipped; only the first
    number of a line is read (IMOD ``.tlt`` files may carry more columns).
    The order and range are checked with the images, where the count is known
    (:mod:`sinter4d.io.stacks`).

    Raises
    ------
    InputError
        Unreadable file, a line that is not a number, or no angle.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
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
    if not values:
        raise InputError(f"{path}: holds no tilt angle")
    return np.asarray(values, dtype=np.float64)


@dataclass(frozen=True)
class Mdoc:
    """What a SerialEM ``.mdoc`` says of its stack.

    Attributes
    ----------
    angles_deg : (n,) ndarray or None
        ``TiltAngle`` of each ``[ZValue = k]`` section, in ``k`` order.
    pixel_size_nm : float or None
        ``PixelSpacing`` (written in angstrom) in nm.
    tilt_axis_rotation_deg : float or None
        ``TiltAxisAngle``, or the ``Tilt axis angle`` of a ``[T = ...]``
        line, converted to this package's convention (see :func:`read_mdoc`).
    """

    angles_deg: np.ndarray | None
    pixel_size_nm: float | None
    tilt_axis_rotation_deg: float | None


_KEY = re.compile(r"^\s*(\w+)\s*=\s*(.*?)\s*$")
_SECTION = re.compile(r"^\s*\[\s*ZValue\s*=\s*(\d+)\s*\]")
_T_AXIS = re.compile(r"tilt\s*axis\s*angle\s*=\s*([-+0-9.eE]+)", re.IGNORECASE)


def read_mdoc(path: Path) -> Mdoc:
    """Parse a SerialEM ``.mdoc`` (``key = value`` lines, ``[ZValue = k]`` sections).

    SerialEM (like IMOD) gives the tilt axis as the angle from the image's
    vertical (y) axis, counter-clockwise positive with y pointing up; this
    package measures it from y towards +x, so the value is negated, then
    wrapped to ``(-90, 90]``.
    """
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None
    sections: dict[int, float] = {}
    pixels: list[float] = []
    axis = None
    current = None
    for line in lines:
        if m := _SECTION.match(line):
            current = int(m.group(1))
            continue
        if axis is None and (m := _T_AXIS.search(line)) and line.lstrip().startswith("[T"):
            axis = float(m.group(1))
            continue
        if not (m := _KEY.match(line)):
            continue
        key, value = m.group(1), m.group(2).split()
        try:
            number = float(value[0]) if value else None
        except ValueError:
            continue
        if number is None:
            continue
        if key == "TiltAngle" and current is not None:
            sections[current] = number
        elif key == "PixelSpacing" and number > 0:
            pixels.append(number)
        elif key == "TiltAxisAngle":
            axis = number
    angles = np.array([sections[k] for k in sorted(sections)]) if sections else None
    return Mdoc(
        angles_deg=angles,
        pixel_size_nm=pixels[0] / 10.0 if pixels else None,
        tilt_axis_rotation_deg=None if axis is None else wrap_axis_rotation(-axis),
    )


@dataclass(frozen=True)
class FeiLog:
    """What an FEI tomography acquisition log (``name.txt`` beside the stack) says."""

    pixel_size_nm: float | None
    tilt_axis_rotation_deg: float | None


_FEI_PIXEL = re.compile(r"Image pixel size \[(nm|pm|um|\W?m)\]\s*:\s*([-+0-9.eE]+)")
_FEI_AXIS = re.compile(r"Tilt Axis Angle[^:]*:\s*([-+0-9.eE]+)")
_FEI_UNIT_NM = {"nm": 1.0, "pm": 1e-3, "um": 1e3}


def read_fei_log(path: Path) -> FeiLog | None:
    """Parse an FEI (Xplore3D) acquisition log; ``None`` when it is not one.

    Reads ``Image pixel size [nm]: 3.36`` and ``Tilt Axis Angle [°]:90.00``.
    The log's tilt-axis angle is taken as given, modulo 180° (its sign
    convention is not documented in the file; 90°, the common value, reads
    the same either way).
    """
    try:
        text = path.read_bytes().decode("latin-1")
    except OSError:
        return None
    pixel = axis = None
    if m := _FEI_PIXEL.search(text):
        unit = m.group(1) if m.group(1) in _FEI_UNIT_NM else "um"  # the degree/micro sign may be mangled
        pixel = float(m.group(2)) * _FEI_UNIT_NM[unit]
    if m := _FEI_AXIS.search(text):
        axis = wrap_axis_rotation(float(m.group(1)))
    if pixel is None and axis is None:
        return None
    return FeiLog(pixel_size_nm=pixel if pixel and pixel > 0 else None, tilt_axis_rotation_deg=axis)
