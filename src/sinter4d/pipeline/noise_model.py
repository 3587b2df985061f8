"""The detector's noise as BM3D should see it: Poisson–Gaussian pixels and scan-line (row) offsets.

``psd = "detector"`` (docs/design.md, "Reconstruction notes") replaces the
pink ``g4`` guess by a model measured on the series itself: photon transfer
between the raw frame at the reference's tilt and the reference
(:func:`~sinter4d.acquisition.estimate_photon_transfer`) gives the gain
``g``, the white variance ``c`` at zero signal and the row-noise s.d.
``s``. Then

* the generalized Anscombe transform [Makitalo2013]_ ``2 sqrt(x/g + c/g**2 +
  3/8)``, i.e. the Anscombe transform of ``x/g + c/g**2`` (a Poisson-like
  variable whose variance equals its mean), makes the white part of the
  noise unit-variance at every signal level; its inverse is the exact
  unbiased inverse of the Anscombe transform mapped back;
* the scan-line offsets stay additive in that domain, scaled by the
  transform's slope ``1/sqrt(g x + c + 3/8 g**2)``: they put ``nx s'**2``
  of power on the ``f_x = 0`` column of the PSD, ``s'**2`` the mean of
  ``s**2`` times the squared slope over the image.

:func:`anscombe` and :func:`inverse_anscombe` are the transform for
electron counts (``anscombe = true``) that both build on.

References
----------
.. [Makitalo2011] M. Mäkitalo, A. Foi, "Optimal inversion of the Anscombe
   transformation in low-count Poisson image denoising", IEEE Trans. Image
   Process. 20, 99–109 (2011). doi:10.1109/TIP.2010.2056693
.. [Makitalo2011b] M. Mäkitalo, A. Foi, "A closed-form approximation of the
   exact unbiased inverse of the Anscombe variance-stabilizing
   transformation", IEEE Trans. Image Process. 20, 2697–2698 (2011).
   doi:10.1109/TIP.2011.2121085
.. [Makitalo2013] M. Mäkitalo, A. Foi, "Optimal inversion of the generalized
   Anscombe transformation for Poisson-Gaussian noise", IEEE Trans. Image
   Process. 22, 91–103 (2013). doi:10.1109/TIP.2012.2202675
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from ..acquisition import PhotonTransfer, estimate_photon_transfer
from ..errors import InputError

__all__ = ["DetectorNoise", "anscombe", "inverse_anscombe", "measure_detector_noise"]


def _float_dtype(x: np.ndarray) -> np.dtype:
    """The one dtype policy: float32 stays float32, everything else becomes float64."""
    return np.dtype(np.float32) if x.dtype == np.float32 else np.dtype(np.float64)


# --------------------------------------------------------------------------
# Anscombe variance stabilisation
# --------------------------------------------------------------------------


def anscombe(counts: np.ndarray) -> np.ndarray:
    """Anscombe transform ``2 sqrt(x + 3/8)``: Poisson counts -> unit-variance noise.

    Parameters
    ----------
    counts : ndarray
        Electron counts (>= 0; negative values are clipped to 0).

    Returns
    -------
    ndarray
        Same shape; float32 for float32 input, float64 otherwise.
    """
    x = np.asarray(counts)
    x = x.astype(_float_dtype(x), copy=False)
    return 2.0 * np.sqrt(np.maximum(x, 0) + x.dtype.type(0.375))



@functools.lru_cache(maxsize=1)
def _anscombe_table() -> tuple[np.ndarray, np.ndarray]:
    """``E[2 sqrt(z + 3/8)]`` for ``z ~ Poisson(lam)`` on a grid of ``lam`` (0 to 1000)."""
    lam = np.concatenate([[0.0], np.geomspace(1e-3, 1e3, 1201)])
    k = np.arange(0, 1500, dtype=np.float64)  # P(z >= 1500 | lam <= 1000) < 1e-40
    logp = k[None, :] * np.log(lam[1:, None]) - lam[1:, None] - gammaln(k + 1)[None, :]
    expect = np.exp(logp) @ (2.0 * np.sqrt(k + 0.375))
    return np.concatenate([[2.0 * math.sqrt(0.375)], expect]), lam


def inverse_anscombe(values: np.ndarray) -> np.ndarray:
    """Exact unbiased inverse of the Anscombe transform [Makitalo2011]_.

    Maps ``D`` to the Poisson mean ``lam`` for which ``E[2 sqrt(z + 3/8)] = D``
    (not the algebraic ``(D/2)**2 - 3/8``, which is biased at low counts).
    ``E`` is tabulated for ``lam <= 1000`` and inverted by interpolation;
    above, the closed-form approximation of [Makitalo2011b]_ is used (it
    agrees with the table to 5e-6 relative there). ``D`` below
    ``2 sqrt(3/8)`` maps to 0.

    Parameters
    ----------
    values : ndarray
        Denoised values in the stabilised domain.

    Returns
    -------
    ndarray
        Poisson means (counts); float32 for float32 input, float64 otherwise.
    """
    d = np.asarray(values)
    dtype = _float_dtype(d)
    d = d.astype(np.float64)
    expect, lam = _anscombe_table()
    out = np.interp(d, expect, lam)
    big = d > expect[-1]
    if big.any():
        db = d[big]
        s = math.sqrt(1.5)
        out[big] = 0.25 * db**2 + 0.25 * s / db - 1.375 / db**2 + 0.625 * s / db**3 - 0.125
    return out.astype(dtype, copy=False)


# --------------------------------------------------------------------------
# the detector's noise
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DetectorNoise:
    """A measured Poisson–Gaussian noise with row offsets, in the units of the images it applies to.

    Attributes
    ----------
    gain : float
        Detector units per detected electron.
    white_variance_at_zero : float
        White (pixel) noise variance extrapolated to a value of 0 (units²).
    row_noise_sd : float
        S.d. of the offset shared by an image row (units).
    """

    gain: float
    white_variance_at_zero: float
    row_noise_sd: float

    @classmethod
    def from_photon_transfer(cls, ptc: PhotonTransfer) -> DetectorNoise:
        return cls(ptc.gain, ptc.white_variance_at_zero, ptc.row_noise_sd)

    def _shift(self) -> float:
        return self.white_variance_at_zero / self.gain**2

    def stabilise(self, image: np.ndarray) -> np.ndarray:
        """Generalized Anscombe transform: white noise of unit variance at every level (float64)."""
        return anscombe(np.asarray(image, dtype=np.float64) / self.gain + self._shift())

    def unstabilise(self, values: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`stabilise` (exact unbiased for the Poisson part), float64."""
        return (inverse_anscombe(np.asarray(values, dtype=np.float64)) - self._shift()) * self.gain

    def row_variance_stabilised(self, image: np.ndarray) -> float:
        """Row-noise variance after :meth:`stabilise`: ``s**2`` times the mean squared slope of the transform."""
        level = self.gain * np.asarray(image, dtype=np.float64) + self.white_variance_at_zero + 0.375 * self.gain**2
        return float(self.row_noise_sd**2 * np.mean(1.0 / np.maximum(level, 0.375 * self.gain**2)))

    def psd(self, image: np.ndarray, sigma_psd: float = 1.0) -> np.ndarray:
        """PSD (the :func:`bm3d.bm3d` convention, unshifted) of the stabilised noise of ``image``.

        White power ``ny nx sigma_psd**2`` everywhere plus the row part,
        ``ny nx**2 s'**2`` on the ``f_x = 0`` column; ``sigma_psd`` scales
        the white part (1: the measured noise).
        """
        ny, nx = np.shape(image)
        out = np.full((ny, nx), ny * nx * float(sigma_psd) ** 2)
        out[:, 0] += ny * nx**2 * self.row_variance_stabilised(image)
        return out


def measure_detector_noise(image: np.ndarray, reference: np.ndarray, *, reference_frames: int) -> DetectorNoise:
    """The noise model of a series from its frame at the reference's tilt and the reference.

    Parameters
    ----------
    image, reference : (ny, nx) ndarray
        The raw frame and the mean of ``reference_frames`` frames of the same
        view, in the units the series is denoised in, before any resampling
        (rows are scan lines).
    reference_frames : int
        Frames in the reference (>= 2).

    Returns
    -------
    DetectorNoise

    Raises
    ------
    InputError
        The photon-transfer fit fails (:func:`~sinter4d.acquisition.estimate_photon_transfer`).
    """
    if reference_frames is None:
        raise InputError("psd = 'detector' needs the number of frames in the reference (attribute n_frames)")
    return DetectorNoise.from_photon_transfer(
        estimate_photon_transfer(image, reference, reference_frames=int(reference_frames))
    )
