"""The paper's image-processing chain: axis direction, denoise, align, tilt axis, reconstruct, binarise.

Each stage is a function of arrays and of its settings
(:mod:`~sinter4d.pipeline.settings`); :func:`process_tilt_series` chains them
on a tilt-series Dataset and returns the reconstruction Dataset.
"""

from .align import align_translations, apply_shifts, register_pair
from .axis_direction import choose_axis_rotation, find_tilt_axis_rotation, rotate_to_axis
from .binarize import dice, threshold_binary
from .chain import (
    PreparedSeries,
    prepare_tilt_series,
    process_tilt_series,
    reconstruct_and_binarize,
)
from .denoise import anscombe, denoise_bm3d, estimate_sigma_psd, inverse_anscombe, noise_psd, select_sigma_psnr
from .algorithms import SIRT, Algorithm, AlternatingTV, ChambollePock, fbp
from .callbacks import Callback, LoggingCallback, ObjectiveCallback, ProgressCallback
from .functions import LeastSquares, NonNegativity, TotalVariation
from .reconstruct import estimate_noise_sigma, reconstruct, slab_for, tv_weight_rule
from .settings import (
    AlignSettings,
    BinarizeSettings,
    DenoiseSettings,
    PipelineSpec,
    ReconstructionSettings,
    recorded_settings,
)
from .series import check_tilt_series, subtract_background
from .support import slice_mass, specimen_box, specimen_rows
from .tilt_axis import center_tilt_axis, find_tilt_axis

__all__ = [
    "Algorithm",
    "AlignSettings",
    "AlternatingTV",
    "BinarizeSettings",
    "Callback",
    "ChambollePock",
    "DenoiseSettings",
    "LeastSquares",
    "LoggingCallback",
    "NonNegativity",
    "ObjectiveCallback",
    "PipelineSpec",
    "PreparedSeries",
    "ProgressCallback",
    "ReconstructionSettings",
    "SIRT",
    "TotalVariation",
    "align_translations",
    "anscombe",
    "apply_shifts",
    "center_tilt_axis",
    "check_tilt_series",
    "choose_axis_rotation",
    "denoise_bm3d",
    "dice",
    "estimate_noise_sigma",
    "estimate_sigma_psd",
    "fbp",
    "find_tilt_axis",
    "find_tilt_axis_rotation",
    "inverse_anscombe",
    "noise_psd",
    "prepare_tilt_series",
    "process_tilt_series",
    "reconstruct",
    "reconstruct_and_binarize",
    "recorded_settings",
    "register_pair",
    "rotate_to_axis",
    "select_sigma_psnr",
    "slab_for",
    "slice_mass",
    "specimen_box",
    "specimen_rows",
    "subtract_background",
    "threshold_binary",
    "tv_weight_rule",
]
