"""Input checks shared by the measurement functions (one policy, one place)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..errors import InputError


def check_choice(name: str, value: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise naming it."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not a known choice; use one of {', '.join(map(repr, choices))}")
    return value


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if finite and > 0 (or >= 0), else raise."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a number") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}={value!r} must be finite and {bound}")
    return v


def as_binary_volume(binary: np.ndarray, name: str = "binary") -> np.ndarray:
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


def as_label_volume(labels: np.ndarray, name: str = "labels") -> np.ndarray:
    """A ``(z, y, x)`` integer label volume (0 = background) as int32."""
    arr = np.asarray(labels)
    if arr.ndim != 3:
        raise InputError(f"{name} must be a (z, y, x) volume; got an array of shape {arr.shape}")
    if arr.dtype.kind not in "ui":
        raise InputError(f"{name} must be an integer label volume; got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise InputError(f"{name} must be >= 0 (0 is background); found {arr.min()}")
    return arr.astype(np.int32, copy=False)


def as_pairs(pairs: np.ndarray, name: str = "pairs") -> np.ndarray:
    """An ``(M, 2)`` integer array of pairs."""
    arr = np.asarray(pairs)
    if arr.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.dtype.kind not in "ui":
        raise InputError(f"{name} must be an (M, 2) integer array; got shape {arr.shape}, dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def as_centres(centres: np.ndarray, name: str = "centres") -> np.ndarray:
    """An ``(N, 3)`` float array of ``(z, y, x)`` positions in nm."""
    arr = np.asarray(centres, dtype=float)
    if arr.size == 0:
        return np.zeros((0, 3))
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise InputError(f"{name} must be an (N, 3) array of (z, y, x) in nm; got shape {arr.shape}")
    return arr
