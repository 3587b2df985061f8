"""Photon transfer: a detector's gain, zero-signal variance and scan-line noise from a raw frame and its reference.

A HAADF value is a Poisson–Gaussian signal (docs/design.md, "Acquisition"):
``x = dark + gain N + e_pixel + e_row`` with ``N`` Poisson. Its variance is
linear in its mean (the photon-transfer relation)::

    var_pixel(x) = gain (mean(x) - dark) + read_noise_sd**2 + 1/12      (white part)
                 + row_noise_sd**2                                    (shared by a scan line)

A raw frame and the average of ``N`` frames at the same tilt (the series'
reference) give that relation without vacuum and without a noiseless image:
the residual ``raw - reference`` has zero mean and, at each pixel, ``(1 +
1/N)`` times the single-frame variance. Binning pixels by the reference's
value gives the variance at many signal levels; a weighted straight line
through them gives the gain (slope) and the white variance at zero signal of
the data as given (intercept). The scan-line part is read from the
residual's power spectrum: row noise puts ``nx row_noise_sd**2`` of power on
the ``f_x = 0`` column, white noise spreads evenly.

The intercept mixes the read noise with the dark level (``read**2 - gain
dark``); :func:`~sinter4d.acquisition.estimate_dark_level_skewness` separates
them. A variance-stabilising transform needs only the slope and the intercept
(:mod:`sinter4d.pipeline.noise_model`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..checks import check_int
from ..errors import InputError

__all__ = ["PhotonTransfer", "estimate_photon_transfer"]

#: Signal bins of the photon-transfer fit, and the fewest pixels a bin must hold.
PTC_BINS = 24
PTC_MIN_PIXELS = 64
#: Spatial frequencies (|f_y|, cycle/px) where the row-noise power is compared: above the
#: residual's low-frequency structure (e.g. a reference blurred by drift).
ROW_BAND_CYCLES = 0.25
#: MAD to standard deviation for normal noise.
MAD_TO_SD = 1.482602218505602


class PhotonTransfer(NamedTuple):
    """A detector's noise in the units of the data it was measured on.

    Attributes
    ----------
    gain : float
        Detector units per detected electron (the variance's slope against the mean).
    white_variance_at_zero : float
        Variance of the pixel (white) noise extrapolated to a value of 0 of
        the data (detector units²): ``read_noise_sd**2 + 1/12 - gain ×
        dark`` for data whose dark level is ``dark``.
    row_noise_sd : float
        S.d. of the offset shared by one scan line (image row), detector units.
    """

    gain: float
    white_variance_at_zero: float
    row_noise_sd: float

    def white_variance(self, values: np.ndarray) -> np.ndarray:
        """Pixel (white) noise variance at the given mean values, floored at 0."""
        return np.maximum(self.gain * np.asarray(values, dtype=np.float64) + self.white_variance_at_zero, 0.0)


def estimate_photon_transfer(
    image: np.ndarray, reference: np.ndarray, *, reference_frames: int, n_bins: int = PTC_BINS
) -> PhotonTransfer:
    """Gain, zero-signal white variance and row noise from one raw frame and its multi-frame reference.

    Parameters
    ----------
    image : (ny, nx) array_like
        One raw frame (detector units, any offset); rows are scan lines.
    reference : (ny, nx) array_like
        The mean of ``reference_frames`` frames of the same view, same units.
    reference_frames : int
        Frames averaged into ``reference`` (its noise variance is 1/N of a frame's).
    n_bins : int, optional
        Signal bins of the fit, evenly spaced in the reference's value
        between its 0.5th and 99.5th percentiles.

    Returns
    -------
    PhotonTransfer

    Raises
    ------
    InputError
        Shapes differ, too few pixels, fewer than 2 frames, or the signal
        spans too few bins to fit a slope (one flat level).

    Notes
    -----
    Each bin's variance is the squared normalised MAD of the residual, so
    a few pixels where the reference is misregistered (drift during its
    frames) do not inflate it. The line is fitted by least squares with
    weights ``n / var**2`` (a variance estimate's variance is ``2 var**2 /
    n`` for normal noise), twice, the second time with the first fit's
    variances. The row noise is ``(P_0 - P_white) / nx / (1 + 1/N)``, the
    excess of the mean power on the ``f_x = 0`` column over the rest, both
    over ``|f_y| >= 1/4`` cycle/px.
    """
    raw = np.asarray(image, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if raw.ndim != 2 or raw.shape != ref.shape:
        raise InputError(f"image and reference must be 2D images of one shape, got {raw.shape} and {ref.shape}")
    if min(raw.shape) < 16:
        raise InputError(f"images of {raw.shape[0]} x {raw.shape[1]} px are too small for photon transfer (>= 16 px a side)")
    frames = check_int(reference_frames, "reference_frames", minimum=2)
    n_bins = check_int(n_bins, "n_bins", minimum=2)
    scale = 1.0 + 1.0 / frames
    residual = raw - ref
    row_sd = _row_noise_sd(residual) / np.sqrt(scale)

    lo, hi = np.percentile(ref, [0.5, 99.5])
    edges = np.linspace(lo, hi, n_bins + 1)
    which = np.digitize(ref, edges[1:-1])
    means, variances, counts = [], [], []
    for b in range(n_bins):
        r = residual[which == b]
        if r.size < PTC_MIN_PIXELS:
            continue
        mad = np.median(np.abs(r - np.median(r)))
        means.append(float(ref[which == b].mean()))
        variances.append(float((MAD_TO_SD * mad) ** 2 / scale - row_sd**2))
        counts.append(r.size)
    means, variances, counts = map(np.asarray, (means, variances, counts))
    if means.size < 3 or np.ptp(means) <= 0:
        raise InputError("the reference spans too few signal levels for a photon-transfer fit (one flat level?)")
    weight_var = np.maximum(variances, np.max(variances) * 1e-3)
    for _ in range(2):
        slope, intercept = np.polyfit(means, variances, 1, w=np.sqrt(counts) / weight_var)
        weight_var = np.maximum(slope * means + intercept, np.max(variances) * 1e-3)
    if slope <= 0:
        raise InputError(f"the variance does not grow with the signal (slope {slope:.3g}): not a photon-counting signal")
    return PhotonTransfer(float(slope), float(intercept), float(row_sd))


def _row_noise_sd(residual: np.ndarray) -> float:
    """S.d. of a per-row offset in a zero-mean residual, from its power on the f_x = 0 column."""
    ny, nx = residual.shape
    power = np.abs(np.fft.fft2(residual - residual.mean())) ** 2 / (ny * nx)
    band = np.abs(np.fft.fftfreq(ny)) >= ROW_BAND_CYCLES
    on_column = power[band, 0].mean()
    white = power[band, 1:].mean()
    return float(np.sqrt(max(on_column - white, 0.0) / nx))
