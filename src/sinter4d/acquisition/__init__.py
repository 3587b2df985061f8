"""HAADF-STEM acquisition: dose arithmetic, the HAADF signal model, simulated tilt series.

Public names:

* :func:`electrons_per_pixel`, :func:`electrons_per_series`,
  :func:`dose_e_per_nm2`: the paper's dose arithmetic.
* :class:`HaadfModel`: fraction of the probe scattered onto the detector.
* :class:`AcquisitionSpec`: the ``[acquisition]`` section of an experiment
  spec; :class:`ScanSettings`: the series it records, per output pixel.
* :func:`simulate_tilt_series`: a phantom's tilt series as a Dataset
  (docs/design.md, "Tilt series file"); :func:`bin_tilt_series` sums pixels
  of one; :func:`project_cu_thickness` the projected Cu, by blocks of rows
  (at most :data:`BLOCK_VOXELS` voxels at once) on a large grid.
* :func:`shift_image`, :func:`drift_random_walk`: the shift and drift
  conventions the pipeline has to undo.
* :func:`estimate_dark_level`: a real detector's vacuum level (its offset);
  :func:`estimate_dark_level_skewness` the offset without vacuum, and
  :func:`estimate_photon_transfer` gain and noise from a frame and its reference.
* :class:`DetectorSettings`: the simulated detector's read-out
  (``[acquisition.detector]``, on by default in a spec, off in :class:`ScanSettings`).
"""

from ._detector import DetectorSettings
from ._dark import DARK_LEVEL_METHOD, estimate_dark_level, estimate_dark_level_skewness
from ._photon_transfer import PhotonTransfer, estimate_photon_transfer
from ._dose import ELEMENTARY_CHARGE_C, dose_e_per_nm2, electrons_per_pixel, electrons_per_series
from ._haadf import HaadfModel
from ._tiltseries import (
    BLOCK_VOXELS,
    bin_tilt_series,
    drift_random_walk,
    project_cu_thickness,
    shift_image,
    simulate_tilt_series,
)
from .settings import AcquisitionSpec, ScanSettings

__all__ = [
    "BLOCK_VOXELS",
    "DARK_LEVEL_METHOD",
    "ELEMENTARY_CHARGE_C",
    "AcquisitionSpec",
    "DetectorSettings",
    "HaadfModel",
    "PhotonTransfer",
    "ScanSettings",
    "bin_tilt_series",
    "dose_e_per_nm2",
    "drift_random_walk",
    "electrons_per_pixel",
    "electrons_per_series",
    "estimate_dark_level",
    "estimate_dark_level_skewness",
    "estimate_photon_transfer",
    "project_cu_thickness",
    "shift_image",
    "simulate_tilt_series",
]
