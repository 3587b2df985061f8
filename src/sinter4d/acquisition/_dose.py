"""Electron counts and dose of a STEM tilt series.

The paper (Ihara et al. 2023, "Tilt-series acquisition") counts the electrons
of one series as (probe current in e⁻/s) × (exposure time per frame) ×
(number of images), with the exposure time per frame = dwell × pixels and the
electrons that pass through the bare Si3N4 film included: 2.0 pA, 500 ns,
1024 × 1024 px and 41 images give 2.7 × 10⁸ e⁻. Spread over the scanned area
(1024 × 1.04 nm)² this is 237 e⁻/nm² (236.6 with the exact elementary charge,
236.9 with the paper's 1.6 × 10⁻¹⁹ C); the paper rounds it to "250 e⁻/nm²".
Each 1.04 nm pixel receives 6.24 (6.25) electrons per frame.
"""

from __future__ import annotations

from ..checks import check_int, check_positive

__all__ = ["ELEMENTARY_CHARGE_C", "dose_e_per_nm2", "electrons_per_pixel", "electrons_per_series"]

#: Elementary charge (C), exact SI value. The paper rounds it to 1.6e-19 C.
ELEMENTARY_CHARGE_C = 1.602176634e-19


def electrons_per_pixel(
    probe_current_pA: float, dwell_time_ns: float, *, elementary_charge_C: float = ELEMENTARY_CHARGE_C
) -> float:
    """Electrons that hit one pixel in one frame, ``(I / e) × dwell``.

    Parameters
    ----------
    probe_current_pA : float
        Probe current (pA), >= 0.
    dwell_time_ns : float
        Dwell time per pixel (ns), > 0.
    elementary_charge_C : float, optional
        Charge of an electron (C); the paper uses 1.6e-19.

    Returns
    -------
    float
        Electrons per pixel per frame (6.24 for the paper's 2.0 pA, 500 ns).

    Examples
    --------
    >>> round(electrons_per_pixel(2.0, 500.0, elementary_charge_C=1.6e-19), 3)
    6.25
    """
    current = check_positive(probe_current_pA, "probe_current_pA", allow_zero=True)
    dwell = check_positive(dwell_time_ns, "dwell_time_ns")
    e = check_positive(elementary_charge_C, "elementary_charge_C")
    return current * 1e-12 / e * dwell * 1e-9


def electrons_per_series(
    probe_current_pA: float,
    dwell_time_ns: float,
    n_pixels: int,
    n_images: int,
    *,
    elementary_charge_C: float = ELEMENTARY_CHARGE_C,
) -> float:
    """Electrons used by one tilt series, ``(I / e) × dwell × pixels × images``.

    Parameters
    ----------
    probe_current_pA : float
        Probe current (pA), >= 0.
    dwell_time_ns : float
        Dwell time per pixel (ns), > 0.
    n_pixels : int
        Pixels per image (1024 × 1024 in the paper).
    n_images : int
        Images per series (41 in the paper).
    elementary_charge_C : float, optional
        Charge of an electron (C).

    Returns
    -------
    float
        Electrons (2.68e8 for the paper's settings, "2.7 × 10⁸").

    Examples
    --------
    >>> f"{electrons_per_series(2.0, 500.0, 1024 * 1024, 41):.2g}"
    '2.7e+08'
    """
    pixels = check_int(n_pixels, "n_pixels", minimum=1)
    images = check_int(n_images, "n_images", minimum=1)
    per_pixel = electrons_per_pixel(probe_current_pA, dwell_time_ns, elementary_charge_C=elementary_charge_C)
    return per_pixel * pixels * images


def dose_e_per_nm2(
    probe_current_pA: float,
    dwell_time_ns: float,
    n_pixels: int,
    n_images: int,
    pixel_size_nm: float,
    *,
    elementary_charge_C: float = ELEMENTARY_CHARGE_C,
) -> float:
    """Dose of one tilt series (e⁻/nm²): electrons over the scanned area.

    ``electrons_per_series / (n_pixels × pixel_size_nm²)``; the film-only
    pixels count like any other (as in the paper).

    Parameters
    ----------
    probe_current_pA, dwell_time_ns, n_pixels, n_images
        As :func:`electrons_per_series`.
    pixel_size_nm : float
        Edge of a square pixel (nm), > 0.
    elementary_charge_C : float, optional
        Charge of an electron (C).

    Returns
    -------
    float
        Dose per series (236.6 e⁻/nm² for the paper's settings, which it
        reports as 250).

    Examples
    --------
    >>> round(dose_e_per_nm2(2.0, 500.0, 1024 * 1024, 41, 1.04))
    237
    """
    size = check_positive(pixel_size_nm, "pixel_size_nm")
    electrons = electrons_per_series(
        probe_current_pA, dwell_time_ns, n_pixels, n_images, elementary_charge_C=elementary_charge_C
    )
    return electrons / (int(n_pixels) * size * size)
