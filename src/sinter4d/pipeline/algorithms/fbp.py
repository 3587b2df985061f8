"""Filtered back-projection with the projector's adjoint: the fast baseline.

References
----------
.. [Kak1988] A. C. Kak, M. Slaney, *Principles of Computerized Tomographic
   Imaging*, IEEE Press (1988; SIAM reprint 2001), ch. 3 (the discrete ramp filter).
   doi:10.1137/1.9780898719277
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ...checks import check_choice
from ...errors import InputError
from ...operators import LinearOperator
from .base import check_data, system_sums

__all__ = ["FILTERS", "fbp"]

FILTERS = ("ram-lak", "shepp-logan", "cosine", "hann")


def _ramp(n_det: int, filter: str) -> tuple[np.ndarray, int]:
    """Frequency response (rfft of the padded length) of the windowed discrete ramp."""
    size = max(64, 1 << int(math.ceil(math.log2(2 * n_det))))
    n = np.concatenate([np.arange(0, size // 2 + 1), np.arange(-size // 2 + 1, 0)])
    h = np.zeros(size)
    h[0] = 0.25
    odd = n % 2 == 1
    h[odd] = -1.0 / (math.pi * n[odd]) ** 2  # Kak & Slaney (3.61), spacing 1
    resp = np.real(np.fft.rfft(h))
    f = np.fft.rfftfreq(size)  # cycles per pixel, 0..0.5
    if filter == "shepp-logan":
        resp *= np.sinc(f)
    elif filter == "cosine":
        resp *= np.cos(math.pi * f)
    elif filter == "hann":
        resp *= np.cos(math.pi * f) ** 2
    return resp, size


def _angle_weights(angles_deg: np.ndarray) -> np.ndarray:
    """Angular interval (rad) each view stands for: half the gap to each neighbour."""
    a = np.deg2rad(np.asarray(angles_deg, dtype=float))
    if a.size == 1:
        return np.array([math.pi])
    order = np.argsort(a)
    s = a[order]
    gaps = np.diff(s)
    w = np.empty_like(s)
    w[1:-1] = 0.5 * (gaps[:-1] + gaps[1:])
    w[0], w[-1] = gaps[0], gaps[-1]
    out = np.empty_like(w)
    out[order] = w
    return out


def fbp(
    sinogram: np.ndarray,
    operator: LinearOperator,
    *,
    angles_deg: Sequence[float],
    filter: str = "ram-lak",
    det_pixel_nm: float | None = None,
) -> np.ndarray:
    """Filtered back-projection with the operator's adjoint.

    Each projection row is convolved with the discrete ramp filter of Kak &
    Slaney [1]_ (zero-padded to at least twice the detector, no DC offset),
    optionally windowed; views are weighted by the angular interval they
    stand for and back-projected with ``A^T``. The result is scaled by
    ``1 / (d * w)``, ``d`` the detector pixel and ``w`` the median per-view
    column sum of ``A`` (``h^2 / d`` for an area-weighted projector), so that
    with a full 180° range a uniform object reconstructs to its value.
    With a limited range the missing wedge lowers and smears it.

    Parameters
    ----------
    sinogram : (n_angles, ny, n_det) ndarray
        Projections (line integrals of the volume's values).
    operator : LinearOperator
        The projector that models ``sinogram``.
    angles_deg : (n_angles,) sequence of float
        Tilt angle of each view, degrees.
    filter : {'ram-lak', 'shepp-logan', 'cosine', 'hann'}, optional
        Window on the ramp (Ram-Lak: none; Hann suppresses noise most).
    det_pixel_nm : float, optional
        Detector pixel in nm (default ``operator.det_pixel_nm`` or 1).

    Returns
    -------
    (nz, ny, nx) float32 ndarray

    References
    ----------
    .. [1] A. C. Kak, M. Slaney, *Principles of Computerized Tomographic
       Imaging* (1988; SIAM 2001), eq. 3.61. doi:10.1137/1.9780898719277
    """
    check_choice(filter, "filter", FILTERS)
    b = check_data(operator, sinogram)
    angles = np.asarray(angles_deg, dtype=float).ravel()
    if angles.size != b.shape[0]:
        raise InputError(f"angles_deg has {angles.size} angles but the sinogram {b.shape[0]} views")
    d = float(det_pixel_nm if det_pixel_nm is not None else getattr(operator, "det_pixel_nm", 1.0))
    _, cols = system_sums(operator)
    per_view = float(np.median(cols)) / angles.size
    resp, size = _ramp(b.shape[2], filter)
    weights = _angle_weights(angles) / (d * per_view)
    filtered = np.empty_like(b)
    for a in range(b.shape[0]):  # one view at a time keeps the complex buffer small
        spec = np.fft.rfft(b[a], n=size, axis=-1)
        spec *= resp
        filtered[a] = np.fft.irfft(spec, n=size, axis=-1)[:, : b.shape[2]] * weights[a]
    return operator.adjoint(filtered)
