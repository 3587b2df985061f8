"""Checks of what a user passes in: one module, one argument order, one error type.

Every check takes the value first and its name second, returns the value in
the type the caller needs, and raises :class:`~sinter4d.errors.InputError`
with one line that names the value and says what would be right.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .errors import InputError

__all__ = [
    "MIN_IMAGE_PX",
    "MIN_TILTS",
    "MIN_TILT_RANGE_DEG",
    "TEMPERATURE_RANGE_C",
    "TEMPERATURE_RANGE_TEXT",
    "as_binary_volume",
    "as_centres",
    "as_label_volume",
    "as_pairs",
    "check_angles",
    "check_choice",
    "check_file",
    "check_finite_array",
    "check_int",
    "check_number",
    "check_positive",
    "check_range",
    "check_tilt_stack",
    "in_temperature_range",
]

#: Fewest images a tilt series may have (the tilt-axis search and the alignment need three).
MIN_TILTS = 3
#: Narrowest tilt range (max - min, degree) a tomogram can be made from.
MIN_TILT_RANGE_DEG = 10.0
#: Temperatures (°C) a heating log may hold: above absolute zero, below the melting point of Cu.
TEMPERATURE_RANGE_C = (-273.15, 1083.0)
#: The same range as error messages write it.
TEMPERATURE_RANGE_TEXT = f"({TEMPERATURE_RANGE_C[0]:g}, {TEMPERATURE_RANGE_C[1]:g}) °C"
#: Smallest image edge (px): BM3D matches 8 px blocks in a 39 px window and the
#: tilt-axis search spans +-20 px (pipeline settings), so fewer than four blocks
#: a side leave both with nothing to work on.
MIN_IMAGE_PX = 32


def check_file(path, *, error: type[InputError] = InputError) -> Path:
    """``path`` as a Path to an existing file (not a folder); else ``error`` naming it."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{path}: is a folder, not a file")
    if not path.is_file():
        raise error(f"{path}: no such file")
    return path


def check_number(value, name: str, *, minimum: float | None = None, maximum: float | None = None,
                 strict: bool = False) -> float:
    """``value`` as a finite float within ``[minimum, maximum]`` (open bounds when ``strict``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}={value!r} is not a number") from None
    low = minimum is not None and (v < minimum or (strict and v == minimum))
    high = maximum is not None and (v > maximum or (strict and v == maximum))
    if not math.isfinite(v) or low or high:
        rule = ["finite"]
        if minimum is not None:
            rule.append(f"{'>' if strict else '>='} {minimum:g}")
        if maximum is not None:
            rule.append(f"{'<' if strict else '<='} {maximum:g}")
        raise InputError(f"{name}={value!r} must be {' and '.join(rule)}")
    return v


def check_positive(value, name: str, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (>= 0 with ``allow_zero``)."""
    return check_number(value, name, minimum=0.0, strict=not allow_zero)


def check_int(value, name: str, *, minimum: int | None = None) -> int:
    """``value`` as an int (a bool or a non-integral number is refused), at least ``minimum``."""
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name}={value!r} must be an integer")
    try:
        integral = float(value).is_integer()
    except (TypeError, ValueError, OverflowError):
        integral = False
    if not integral:
        raise InputError(f"{name}={value!r} must be an integer")
    v = int(value)
    if minimum is not None and v < minimum:
        raise InputError(f"{name}={value!r} must be an integer >= {minimum}")
    return v


def check_choice(value: str, name: str, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise InputError(f"{name}={value!r} is not a known choice; use one of {', '.join(map(repr, choices))}")
    return value


def check_range(pair, name: str) -> tuple[float, float]:
    """A ``(low, high)`` pair with ``0 < low <= high``."""
    try:
        lo, hi = (float(v) for v in pair)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a pair (low, high), got {pair!r}") from None
    if not 0 < lo <= hi:
        raise InputError(f"{name} must be (low, high) with 0 < low <= high, got {pair!r}")
    return lo, hi


def check_finite_array(values, name: str) -> np.ndarray:
    """``values`` as a float array with no NaN or infinity (the message counts the bad values)."""
    arr = np.asarray(values, dtype=float)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InputError(f"{name} holds {int(bad.sum())} NaN or infinite value(s) of {arr.size}")
    return arr


def check_angles(angles_deg, name: str = "angles_deg") -> np.ndarray:
    """Tilt angles (degree) as a non-empty 1D float array, each finite and within (-90, 90)."""
    angles = np.atleast_1d(np.asarray(angles_deg, dtype=float))
    if angles.ndim != 1 or angles.size == 0:
        raise InputError(f"{name} must be a non-empty 1D sequence, got shape {angles.shape}")
    bad = ~np.isfinite(angles) | (np.abs(angles) >= 90.0)
    if bad.any():
        raise InputError(f"{name}: tilt angles must be finite and within (-90, 90) deg, got {angles[bad][0]!r}")
    return angles


def as_binary_volume(binary, name: str = "binary") -> np.ndarray:
    """A ``(z, y, x)`` array of 0/1 (or bool) as a bool array."""
    arr = np.asarray(binary)
    if arr.ndim != 3:
        raise InputError(f"{name} must be a (z, y, x) volume; got an array of shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind not in "uif":
        raise InputError(f"{name} must hold 0 and 1; got dtype {arr.dtype}")
    if np.any((arr != 0) & (arr != 1)):
        raise InputError(f"{name} must hold 0 and 1 only (binarise the volume first); found other values")
    return arr != 0


def as_label_volume(labels, name: str = "labels") -> np.ndarray:
    """A ``(z, y, x)`` integer label volume (0 = background) as int32."""
    arr = np.asarray(labels)
    if arr.ndim != 3:
        raise InputError(f"{name} must be a (z, y, x) volume; got an array of shape {arr.shape}")
    if arr.dtype.kind not in "ui":
        raise InputError(f"{name} must be an integer label volume; got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise InputError(f"{name} must be >= 0 (0 is background); found {arr.min()}")
    return arr.astype(np.int32, copy=False)


def as_pairs(pairs, name: str = "pairs") -> np.ndarray:
    """An ``(M, 2)`` integer array of pairs."""
    arr = np.asarray(pairs)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.dtype.kind not in "ui":
        raise InputError(f"{name} must be an (M, 2) integer array; got shape {arr.shape}, dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def as_centres(centres, name: str = "centres") -> np.ndarray:
    """An ``(N, 3)`` float array of ``(z, y, x)`` positions in nm."""
    arr = np.asarray(centres, dtype=float)
    if arr.size == 0:
        return np.zeros((0, 3))
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InputError(f"{name} must be an (N, 3) array of (z, y, x) in nm; got shape {arr.shape}")
    return arr


def check_tilt_stack(shape, angles_deg, name: str) -> np.ndarray:
    """Angles (degree) of a tilt series whose images have ``shape``, checked at the door.

    A series is refused when no later stage could use it: fewer than
    :data:`MIN_TILTS` images, images smaller than :data:`MIN_IMAGE_PX` on a
    side, an angle count that differs from the image count, NaN/inf angles or
    angles not within (-90, 90), duplicate angles, angles not strictly
    monotonic, or a range narrower than :data:`MIN_TILT_RANGE_DEG`.

    Parameters
    ----------
    shape : tuple of int
        ``(n, ny, nx)`` of the images.
    angles_deg : array_like
        ``(n,)`` tilt angles in acquisition order.
    name : str
        Names the input in the message (a file, usually).
    """
    shape = tuple(int(v) for v in shape)
    if len(shape) != 3:
        raise InputError(f"{name}: expected a stack of shape (tilt, y, x), got {shape}")
    n, ny, nx = shape
    if n < MIN_TILTS:
        raise InputError(f"{name}: {n} tilt image(s); a tilt series needs at least {MIN_TILTS}")
    if min(ny, nx) < MIN_IMAGE_PX:
        raise InputError(f"{name}: images of {ny} x {nx} px are too small; the pipeline needs at least {MIN_IMAGE_PX} px a side")
    angles = np.asarray(angles_deg, dtype=float).ravel()
    if angles.size != n:
        raise InputError(f"{name}: {angles.size} tilt angles for {n} images")
    if not np.isfinite(angles).all():
        raise InputError(f"{name}: tilt angles hold NaN or infinite values")
    if np.any(np.abs(angles) >= 90.0):
        raise InputError(f"{name}: tilt angle {angles[np.argmax(np.abs(angles))]:g} is not within (-90, 90) degrees")
    unique, counts = np.unique(angles, return_counts=True)
    if np.any(counts > 1):
        raise InputError(f"{name}: tilt angle {unique[np.argmax(counts > 1)]:g} appears {counts.max()} times; "
                         "each image needs its own tilt")
    steps = np.diff(angles)
    if not (np.all(steps > 0) or np.all(steps < 0)):
        k = int(np.argmax(steps <= 0) if steps[0] > 0 else np.argmax(steps >= 0)) + 1
        raise InputError(f"{name}: tilt angles are not strictly monotonic (angle {k + 1} = {angles[k]:g} after {angles[k - 1]:g})")
    span = float(angles.max() - angles.min())
    if span < MIN_TILT_RANGE_DEG:
        raise InputError(f"{name}: tilt range {angles.min():g}..{angles.max():g} deg spans {span:g} deg; "
                         f"a tomogram needs at least {MIN_TILT_RANGE_DEG:g} deg")
    return angles


def in_temperature_range(temperature_C: float) -> bool:
    """Whether a temperature (°C) lies strictly within :data:`TEMPERATURE_RANGE_C`."""
    low, high = TEMPERATURE_RANGE_C
    return low < temperature_C < high
