"""Settings of a simulated acquisition: the spec's microscope, and the series it records.

:class:`AcquisitionSpec` is the ``[acquisition]`` section of an experiment
spec, in the microscope's terms (detector pixels, binning, a dose per nm²,
drift in nm). :class:`ScanSettings` is what
:func:`~sinter4d.acquisition.simulate_tilt_series` needs, per output pixel;
:meth:`AcquisitionSpec.scan_settings` turns the one into the other.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from ..checks import check_angles
from ..errors import InputError
from ..specs import Spec
from ._detector import DetectorSettings
from ._dose import dose_e_per_nm2
from ._stage import StageSettings
from ._probe import Probe, ProbeSettings

__all__ = ["AcquisitionSpec", "ScanSettings"]

Tilt = Annotated[float, Field(ge=-90.0, le=90.0)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class ScanSettings(Spec):
    """One simulated HAADF-STEM tilt series, in output pixels.

    Attributes
    ----------
    angles_deg : tuple of float
        Tilt angles in acquisition order (degrees, within (-90, 90)).
    pixel_size_nm : float
        Output pixel size (nm); the grid's voxel size times ``bin_factor``.
    probe_current_pA : float
        Probe current (pA), >= 0.
    dwell_time_ns : float
        Dwell time per output pixel (ns), > 0. Electrons per output pixel
        per frame are ``(I / e) × dwell``; the dose per nm² is that over
        ``pixel_size_nm²``, whatever ``bin_factor``.
    drift_sd_px : float
        S.d. of the drift step between consecutive images (output px).
    axis_offset_px : float
        Position of the tilt axis right (+x) of the image centre (output px).
    bin_factor : int
        Voxels summed per output pixel along y and x.
    reference_frames : int
        Frames averaged into the ``reference`` image (0: no reference).
    reference_tilt_deg : float
        Tilt of the reference frames.
    detector : DetectorSettings
        The detector's read-out (off by default here, unlike the spec's
        table: ideal Poisson counts).
    stage : StageSettings
        The stage's errors (off by default here, unlike the spec's table;
        docs/design.md, "Acquisition").
    probe : Probe or None
        The focused probe and beam broadening blurring the images (None: an
        ideal point probe; docs/design.md, "Acquisition").
    """

    angles_deg: tuple[float, ...]
    pixel_size_nm: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
    probe_current_pA: Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
    dwell_time_ns: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
    drift_sd_px: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0
    axis_offset_px: Finite = 0.0
    bin_factor: PositiveInt = 1
    reference_frames: NonNegativeInt = 0
    reference_tilt_deg: Annotated[float, Field(gt=-90.0, lt=90.0)] = 0.0
    detector: DetectorSettings = DetectorSettings(enabled=False)
    stage: StageSettings = StageSettings(enabled=False)
    probe: Probe | None = None

    @field_validator("angles_deg", mode="before")
    @classmethod
    def _angles(cls, value) -> tuple[float, ...]:
        return tuple(check_angles(value).tolist())


class AcquisitionSpec(Spec):
    """Microscope settings of one HAADF-STEM tilt series (the paper's by default).

    ``pixel_size_nm`` and ``image_pixels`` are the microscope's; ``bin`` sums
    ``bin × bin`` of them into one output pixel, keeping the dose per nm².
    When ``dose_e_per_nm2`` is given, the probe current is scaled to give it.
    ``detector``, ``stage`` and ``probe`` are the ``[acquisition.detector]``,
    ``[acquisition.stage]`` and ``[acquisition.probe]`` tables, each on by
    default (``enabled = false`` turns one off); ``oversample`` (default 2)
    projects the phantom on a grid that many times finer than the output
    pixels, so the reconstruction never inverts the projector that made its
    data (1 is the inverse crime, kept for ablations).
    """

    voltage_kV: PositiveFloat = 300.0
    image_pixels: Annotated[int, Field(ge=16, le=8192)] = 1024
    pixel_size_nm: PositiveFloat = 1.04
    bin: PositiveInt = 1
    dwell_time_ns: PositiveFloat = 500.0
    probe_current_pA: PositiveFloat = 2.0
    dose_e_per_nm2: PositiveFloat | None = None
    tilt_min_deg: Tilt = -40.0
    tilt_max_deg: Tilt = 40.0
    tilt_step_deg: PositiveFloat = 2.0
    drift_step_sd_nm: NonNegativeFloat = 2.0
    axis_offset_px: float | None = None
    axis_offset_max_px: NonNegativeFloat = 4.0
    reference_frames: NonNegativeInt = 50
    reference_tilt_deg: Tilt = 0.0
    oversample: PositiveInt = 2
    detector: DetectorSettings = DetectorSettings()
    stage: StageSettings = StageSettings()
    probe: ProbeSettings = ProbeSettings()

    @model_validator(mode="after")
    def _tilts(self):
        if self.tilt_max_deg < self.tilt_min_deg:
            raise ValueError(
                f"tilt_max_deg ({self.tilt_max_deg}) is below tilt_min_deg ({self.tilt_min_deg})"
            )
        if self.image_pixels % self.bin:
            raise ValueError(f"bin ({self.bin}) must divide image_pixels ({self.image_pixels})")
        n = (self.tilt_max_deg - self.tilt_min_deg) / self.tilt_step_deg
        if abs(n - round(n)) > 1e-6:
            raise ValueError("tilt_step_deg must divide tilt_max_deg - tilt_min_deg")
        if not self.tilt_min_deg <= self.reference_tilt_deg <= self.tilt_max_deg:
            raise ValueError("reference_tilt_deg must lie within [tilt_min_deg, tilt_max_deg]")
        return self

    @property
    def angles_deg(self) -> np.ndarray:
        """Tilt angles in acquisition order (degrees)."""
        n = int(round((self.tilt_max_deg - self.tilt_min_deg) / self.tilt_step_deg)) + 1
        return self.tilt_min_deg + self.tilt_step_deg * np.arange(n)

    @property
    def output_pixel_size_nm(self) -> float:
        """Pixel size of the stored images after binning (nm)."""
        return self.pixel_size_nm * self.bin

    @property
    def output_pixels(self) -> int:
        """Edge of the stored images after binning (px)."""
        return self.image_pixels // self.bin

    @property
    def beam_current_pA(self) -> float:
        """The probe current (pA): ``probe_current_pA``, or the one giving ``dose_e_per_nm2`` when that is set."""
        if self.dose_e_per_nm2 is None:
            return self.probe_current_pA
        nominal = dose_e_per_nm2(
            probe_current_pA=1.0,
            dwell_time_ns=self.dwell_time_ns,
            n_pixels=self.image_pixels**2,
            n_images=len(self.angles_deg),
            pixel_size_nm=self.pixel_size_nm,
        )
        return self.dose_e_per_nm2 / nominal

    def scan_settings(self) -> ScanSettings:
        """The series these settings record, per output pixel (``oversample`` voxels per pixel).

        Raises
        ------
        InputError
            ``axis_offset_px`` is still open (a run draws it first).
        """
        if self.axis_offset_px is None:
            raise InputError("acquisition.axis_offset_px is open; draw it (within axis_offset_max_px) first")
        pixel = self.output_pixel_size_nm
        return ScanSettings(
            angles_deg=self.angles_deg,
            pixel_size_nm=pixel,
            probe_current_pA=self.beam_current_pA,
            dwell_time_ns=self.dwell_time_ns * self.bin**2,
            drift_sd_px=self.drift_step_sd_nm / pixel,
            axis_offset_px=self.axis_offset_px,
            bin_factor=self.oversample,
            reference_frames=self.reference_frames,
            reference_tilt_deg=self.reference_tilt_deg,
            detector=self.detector,
            stage=self.stage,
            probe=self.probe.probe(self.voltage_kV),
        )
