"""The HAADF detector's read-out: efficiency, gain, dark level, read and scan-line noise, saturation.

A scintillator–photomultiplier annular detector turns the electrons scattered
onto it into an analogue signal that the scan unit digitises once per pixel.
:func:`detector_readout` models that read-out on the expected number of
electrons reaching the detector in each pixel, ``λ``:

1. detection: each electron is detected with probability ``efficiency`` (η),
   so the detected electrons are ``N ~ Poisson(η λ)`` (binomial thinning of a
   Poisson count is again Poisson);
2. gain and offset: ``dark_level + gain × N`` (detector units);
3. read noise: independent normal noise of s.d. ``read_noise_sd`` per pixel;
4. scan-line noise: one normal offset of s.d. ``row_noise_sd`` per image row,
   shared by every pixel of the row. The fast-scan direction is the image x
   axis (a row, fixed y, is one scan line), so the noise is correlated along x
   and independent between rows;
5. digitisation: rounded to the nearest integer and clipped to the range of
   ``dtype`` (and to ``saturation_level`` when that is lower).

The values are returned as float64 (the tilt-series file keeps them as
float32, exact for 16-bit integers). Before saturation and rounding the mean
and variance are the Poisson–Gaussian closed form (docs/design.md,
"Acquisition")::

    mean = dark_level + gain η λ
    var  = gain² η λ + read_noise_sd² + row_noise_sd²

Switched off (the default) the read-out is today's ideal counter,
``Poisson(λ)``, drawn with the very same calls so the output is bit-identical.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat, model_validator

from ..errors import InputError
from ..specs import Spec
from ._dark import DARK_LEVEL_METHOD, DARK_LEVEL_SKEWNESS_METHOD, estimate_dark_level, estimate_dark_level_skewness
from ._photon_transfer import estimate_photon_transfer

__all__ = ["DetectorSettings", "detector_attrs", "detector_readout"]

#: Integer types a microscope writes, and their ranges.
DTYPES = ("int16", "uint16")
#: The image axis scanned fast: one image row (fixed y) is one scan line.
FAST_SCAN_AXIS = "x"


class DetectorSettings(Spec):
    """The HAADF detector's read-out, ``[acquisition.detector]`` (on by default).

    Defaults are those measured on the FEI HAADF tilt series ETSpy ships (an
    ``int16`` MRC of a needle; docs/design.md, "Acquisition", says how).

    Attributes
    ----------
    enabled : bool
        Apply the read-out (default true); false: ideal Poisson counts,
        bit-identical to the simulator without a detector.
    efficiency : float
        Probability that an electron reaching the detector is detected (η),
        in (0, 1]. Default 1 (no measured value for the paper's detector).
    gain : float
        Detector units per detected electron, > 0. Default 2.5, the
        photon-transfer slope (variance over mean above the dark level) of the
        FEI needle's specimen pixels: its read noise is then 1.9 electrons.
    dark_level : float
        Signal of no electron (detector units). Default -31890, the vacuum
        level of the FEI needle.
    read_noise_sd : float
        S.d. of the per-pixel read noise (detector units). Default 4.7, the
        FEI needle's vacuum after its scan-line part is removed.
    row_noise_sd : float
        S.d. of the per-row offset (detector units). Default 2.1, the excess
        scatter of the FEI needle's vacuum row means over their pixel noise.
    saturation_level : float or None
        Largest value the detector reports (detector units), e.g. a
        full-well or amplifier limit; None (default): the top of ``dtype``.
    dtype : {'int16', 'uint16'}
        Integer type of the file the microscope writes (default ``int16``,
        as FEI's MRC).
    """

    enabled: bool = True
    efficiency: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    gain: PositiveFloat = 2.5
    dark_level: Annotated[float, Field(allow_inf_nan=False)] = -31890.0
    read_noise_sd: NonNegativeFloat = 4.7
    row_noise_sd: NonNegativeFloat = 2.1
    saturation_level: Annotated[float, Field(allow_inf_nan=False)] | None = None
    dtype: Literal[DTYPES] = "int16"

    @model_validator(mode="after")
    def _range(self):
        info = np.iinfo(self.dtype)
        if not info.min <= self.dark_level < info.max:
            raise ValueError(
                f"dark_level ({self.dark_level:g}) must lie within the {self.dtype} range [{info.min}, {info.max})"
            )
        if self.saturation_level is not None and self.saturation_level <= self.dark_level:
            raise ValueError(
                f"saturation_level ({self.saturation_level:g}) must exceed dark_level ({self.dark_level:g})"
            )
        return self

    @property
    def value_range(self) -> tuple[float, float]:
        """Smallest and largest value written (detector units): the integer type, capped by ``saturation_level``."""
        info = np.iinfo(self.dtype)
        hi = float(info.max) if self.saturation_level is None else min(float(info.max), self.saturation_level)
        return float(info.min), float(np.floor(hi))


def detector_readout(
    expected: np.ndarray,
    settings: DetectorSettings,
    rng: np.random.Generator,
    *,
    frames: int = 1,
) -> np.ndarray:
    """Read out expected electron counts through the detector (the module docstring's model).

    Parameters
    ----------
    expected : (..., ny, nx) ndarray
        Expected electrons reaching the detector per pixel and frame (>= 0);
        the last axis is the fast-scan direction (x).
    settings : DetectorSettings
        The detector; when ``settings.enabled`` is False the ideal counter.
    rng : numpy.random.Generator
        Random generator (its draws are consumed).
    frames : int, optional
        Frames averaged into the result (the reference). Each frame gets its
        own Poisson, read and row noise and is digitised and clipped before
        the mean. The ideal counter draws one ``Poisson(frames × λ)`` and
        divides (the same distribution, today's calls).

    Returns
    -------
    ndarray
        Same shape as ``expected``: detector values (integers for one frame),
        float64; int64 Poisson counts for the ideal counter with one frame.
    """
    expected = np.asarray(expected, dtype=np.float64)
    if not settings.enabled:
        if frames == 1:
            return rng.poisson(expected)
        return rng.poisson(expected * frames) / frames
    mean = expected * settings.efficiency
    lo, hi = settings.value_range
    total = np.zeros(expected.shape, dtype=np.float64)
    for _ in range(int(frames)):
        value = rng.poisson(mean).astype(np.float64)
        value *= settings.gain
        value += settings.dark_level
        if settings.read_noise_sd > 0:
            value += rng.normal(0.0, settings.read_noise_sd, size=expected.shape)
        if settings.row_noise_sd > 0:
            value += rng.normal(0.0, settings.row_noise_sd, size=expected.shape[:-1])[..., None]
        np.rint(value, out=value)
        np.clip(value, lo, hi, out=value)
        total += value
    return total / frames if frames > 1 else total


def detector_attrs(
    settings: DetectorSettings,
    counts: np.ndarray,
    reference: np.ndarray | None = None,
    *,
    reference_index: int = 0,
    reference_frames: int = 0,
) -> dict:
    """Tilt-series attributes of a detector read-out: its truth, and the dark level the data give.

    ``detector_*`` hold the true settings. ``dark_level`` is estimated from
    the data, never the truth, so the pipeline subtracts an estimate: with a
    ``reference`` (the mean of ``reference_frames`` frames of image
    ``reference_index``), by photon transfer and the skewness of the
    low-signal region (:func:`~sinter4d.acquisition.estimate_dark_level_skewness`,
    right on a field of film); without, from the darkest tiles
    (:func:`~sinter4d.acquisition.estimate_dark_level`, as ``sinter4d
    import`` does for a microscope's file with vacuum). Empty when the
    detector is off.
    """
    if not settings.enabled:
        return {}
    lo, hi = settings.value_range
    dark, method = None, DARK_LEVEL_METHOD
    if reference is not None and reference_frames > 1:
        try:
            ptc = estimate_photon_transfer(counts[reference_index], reference, reference_frames=reference_frames)
            dark, method = estimate_dark_level_skewness(counts, ptc.gain), DARK_LEVEL_SKEWNESS_METHOD
        except InputError:  # too small or too flat a series: the darkest tiles
            pass
    if dark is None:
        dark = estimate_dark_level(counts)
    return {
        "detector_efficiency": float(settings.efficiency),
        "detector_gain": float(settings.gain),
        "detector_dark_level": float(settings.dark_level),
        "detector_read_noise_sd": float(settings.read_noise_sd),
        "detector_row_noise_sd": float(settings.row_noise_sd),
        "detector_saturation_level": hi,
        "detector_dtype": settings.dtype,
        "detector_fast_scan_axis": FAST_SCAN_AXIS,
        "detector_saturated_fraction": float(np.mean(counts >= hi)),
        "dark_level": float(dark),
        "dark_level_method": method,
    }
