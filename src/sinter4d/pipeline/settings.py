"""Settings of the image-processing chain: one validated object per stage, one place per default.

The ``[pipeline]`` section of an experiment spec is a :class:`PipelineSpec`.
It is flat (its TOML keys are the fields below), and it is composed of the
settings of each stage, which the stage's functions take:

* :class:`DenoiseSettings`: BM3D (:mod:`sinter4d.pipeline.denoise`);
* :class:`AlignSettings`: alignment and the tilt-axis search
  (:mod:`sinter4d.pipeline.align`, :mod:`sinter4d.pipeline.tilt_axis`);
* :class:`ReconstructionSettings`: the reconstructed slab and its algorithm;
* :class:`BinarizeSettings`: the opening after Otsu's threshold.

A :class:`PipelineSpec` is each of them, so it can be handed to any stage.
A reconstruction file records the settings it was made with as attributes
(:data:`RECON_ATTRS`); :func:`recorded_settings` reads them back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import Field, FiniteFloat, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from ..specs import Flag, Spec, fail

__all__ = [
    "ALIGN_METHODS",
    "AXIS_REFINE_CHOICES",
    "AXIS_ROTATION_CHOICES",
    "BM3D_PROFILES",
    "BM3D_STAGES",
    "DEFAULT_WARM_ITERATIONS",
    "PSD_SHAPES",
    "RECON_ATTRS",
    "RECONSTRUCTION_METHODS",
    "AlignSettings",
    "BinarizeSettings",
    "DenoiseSettings",
    "PipelineSpec",
    "ReconstructionSettings",
    "recorded_settings",
]

#: Noise spectra BM3D is told about: the BM3D demos' pink ``g4``, flat, or the detector's,
#: measured on the series (Poisson–Gaussian with row noise, :mod:`sinter4d.pipeline.noise_model`).
PSD_SHAPES = ("g4", "white", "detector")
#: BM3D presets (``bm3d.BM3DProfile`` and its variants).
BM3D_PROFILES = ("np", "refilter", "vn", "high", "lc")
#: Both BM3D stages, or hard thresholding alone.
BM3D_STAGES = ("all", "hard")
#: Registrations of adjacent tilts.
ALIGN_METHODS = ("xcorr", "mattes")
#: Where the tilt axis's in-plane direction comes from, when no angle is given.
AXIS_ROTATION_CHOICES = ("auto", "find")
#: Refinement of the direction per image after the common line: none, or a tilt-alignment fit to tracked particles.
AXIS_REFINE_CHOICES = ("none", "features")
#: Reconstruction algorithms of the chain.
RECONSTRUCTION_METHODS = ("tv", "pdhg", "sirt", "fbp")
#: Iterations of a warm-started series (docs/design.md, "Reconstruction notes", 5b: chosen on quick seed 5).
DEFAULT_WARM_ITERATIONS = 40


class DenoiseSettings(Spec):
    """BM3D on every raw image (the paper's first step).

    ``sigma_psd`` fixes the noise level (the paper tuned it once and kept it);
    left open, the chain chooses it against the series' reference average,
    or estimates it from the images. BM3D runs at ``denoise_strength`` times
    that level.

    ``denoise_margin_nm`` runs BM3D only on the rectangle where the specimen
    stands out of the film in the raw images averaged over the tilts,
    widened by this margin (nm) on each side
    (:func:`~sinter4d.pipeline.support.specimen_box`), and smooths the film
    around it with a 1 px Gaussian (``denoise_bm3d``'s ``box``). None (the
    default): BM3D on every pixel, the paper's protocol.
    """

    denoise: bool = True
    psd: Literal[PSD_SHAPES] = "g4"
    anscombe: bool = False
    bm3d_profile: Literal[BM3D_PROFILES] = "np"
    bm3d_stages: Literal[BM3D_STAGES] = "all"
    sigma_psd: PositiveFloat | None = None
    denoise_strength: PositiveFloat = 1.0
    #: Side (px) of the tiles the PSNR search scores (3 x 3 spread over the reference frame;
    #: the whole frame when 3 tiles span it, as at <= 384 px); None: the whole frame, the paper's
    #: protocol. 128 chose the whole frame's level (docs/design.md, "Reconstruction notes").
    sigma_tile_px: Annotated[int, Field(ge=64)] | None = 128
    denoise_margin_nm: NonNegativeFloat | None = None

    @property
    def applied_sigma_psd(self) -> float | None:
        """The level BM3D runs at, ``denoise_strength × sigma_psd``; None while the level is open."""
        return None if self.sigma_psd is None else self.denoise_strength * self.sigma_psd


class AlignSettings(Spec):
    """Registration of adjacent tilts, the tilt axis's in-plane direction, and the half-width of its offset search (px).

    ``axis_rotation`` is the in-plane direction of the tilt axis (deg from +y
    towards +x, :mod:`sinter4d.pipeline.axis_direction`): ``"auto"`` takes
    the tilt series' attribute ``tilt_axis_rotation_deg`` when it has one and
    finds it otherwise; ``"find"`` always finds it; a number is used as it
    is. A found angle within ``axis_rotation_snap_deg`` of a multiple of 90 deg
    is taken as that multiple (an exact rotation, no resampling).

    ``axis_refine = "features"`` then fits a rotation and a shift per image to
    the particles tracked through the series
    (:mod:`sinter4d.pipeline.tiltalign`); the particles are found with radii
    in ``feature_radius_nm`` (docs/design.md, "Tilt alignment to features").
    """

    align_method: Literal[ALIGN_METHODS] = "xcorr"
    axis_rotation: Literal[AXIS_ROTATION_CHOICES] | FiniteFloat = "auto"
    axis_rotation_snap_deg: NonNegativeFloat = 1.0
    axis_search_px: PositiveFloat = 20.0
    axis_refine: Literal[AXIS_REFINE_CHOICES] = "none"
    feature_radius_nm: tuple[PositiveFloat, PositiveFloat] = (35.0, 90.0)
    #: ``'mattes'``: fraction of the pixels drawn as the metric's random samples at every
    #: pyramid level; 1 (as many samples as pixels) unless measured otherwise (docs/design.md).
    mattes_sampling: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0


class ReconstructionSettings(Spec):
    """The reconstructed slab (nm) and the algorithm (the paper: 300 iterations of TV).

    ``warm_start`` begins each series of a run after the first from the
    previous series' volume, registered to it, and runs ``warm_iterations``
    iterations instead of ``iterations`` (:mod:`sinter4d.pipeline.warm_start`;
    docs/design.md, "Reconstruction notes", 5b, for the defaults' source). An iterative
    ``method`` only.

    ``support_margin_nm`` reconstructs only the slices along the tilt axis
    that hold the specimen, widened by this margin (nm) on each side
    (:func:`~sinter4d.pipeline.support.specimen_rows`); the other slices stay
    empty. It also registers the drift on the rectangle where the specimen
    stands out, with the same margin (:func:`~sinter4d.pipeline.support.specimen_box`).
    None (the default): every slice, the whole field.
    """

    method: Literal[RECONSTRUCTION_METHODS] = "tv"
    iterations: PositiveInt = 300
    tv_weight: PositiveFloat | None = None
    tol: PositiveFloat | None = None
    warm_start: Flag = False
    warm_iterations: PositiveInt = DEFAULT_WARM_ITERATIONS
    slab_thickness_nm: PositiveFloat = 360.0
    slab_z_centre_nm: float = 0.0
    support_margin_nm: NonNegativeFloat | None = None

    @model_validator(mode="after")
    def _warm_start_is_iterative(self):
        if self.warm_start and self.method == "fbp":
            raise fail("true needs an iterative method (tv, pdhg or sirt), not fbp", "warm_start")
        return self

    def slab_voxels(self, pixel_size_nm: float) -> int:
        """Voxels along z of the reconstructed slab: ``slab_thickness_nm`` in pixels, at least 2."""
        return max(2, int(round(self.slab_thickness_nm / pixel_size_nm)))

    def iterations_for(self, warm: bool) -> int:
        """The iterations a series runs: ``warm_iterations`` when it starts warm, else ``iterations``."""
        return self.warm_iterations if warm else self.iterations


class BinarizeSettings(Spec):
    """Radius (nm) of the erosion and dilation after Otsu's threshold, and the threshold's scale.

    The volume is thresholded at ``binarize_level`` times Otsu's threshold
    (1: Otsu's, the paper's; docs/design.md, "Reconstruction notes").
    """

    binarize_radius_nm: NonNegativeFloat = 4.0
    binarize_level: PositiveFloat = 1.0


# The bases are listed last stage first: pydantic orders the fields from the
# last base to the first, so the fields keep the order of the stages.
class PipelineSpec(BinarizeSettings, ReconstructionSettings, AlignSettings, DenoiseSettings):
    """The reconstruction chain's settings (the paper's by default)."""


#: Attribute of a reconstruction file -> the setting it records. The BM3D
#: level recorded (``denoise_sigma_psd``) is the one chosen, before
#: ``denoise_strength``; NaN when the series was not denoised.
RECON_ATTRS = {
    "method": "method",
    "iterations": "iterations",
    "warm_start": "warm_start",
    "warm_iterations": "warm_iterations",
    "denoise": "denoise",
    "denoise_psd": "psd",
    "denoise_profile": "bm3d_profile",
    "denoise_stages": "bm3d_stages",
    "denoise_sigma_psd": "sigma_psd",
    "denoise_strength": "denoise_strength",
    "denoise_margin_nm": "denoise_margin_nm",
    "align_method": "align_method",
    "axis_refine": "axis_refine",
    "support_margin_nm": "support_margin_nm",
    "binarize_radius_nm": "binarize_radius_nm",
    "binarize_level": "binarize_level",
}


def recorded_settings(attrs: Mapping | None = None, spec_pipeline: Mapping | None = None) -> PipelineSpec:
    """The settings a reconstruction was made with.

    Each setting is, in order of precedence, the one the reconstruction
    file records (``attrs``, see :data:`RECON_ATTRS`), the run's
    ``[pipeline]`` section (``spec_pipeline``, e.g. from ``spec.json``), or
    the default. Keys neither knows are ignored, so the folders of older
    versions read too. An axis angle recorded with source ``"setting"`` is
    the ``axis_rotation`` setting. ``sigma_psd`` is the level the reconstruction chose
    (None when it records none), so ``applied_sigma_psd`` is the level BM3D
    ran at.

    Parameters
    ----------
    attrs : mapping, optional
        Attributes of a reconstruction file (``recon/tNN.nc``).
    spec_pipeline : mapping, optional
        The ``pipeline`` entry of the run's spec.

    Returns
    -------
    PipelineSpec
    """
    fields = PipelineSpec.model_fields
    values = {k: v for k, v in (spec_pipeline or {}).items() if k in fields and v is not None}
    values.pop("sigma_psd", None)
    for attr, field in RECON_ATTRS.items():
        if attr in (attrs or {}):
            values[field] = attrs[attr]
    for flag in ("denoise", "warm_start"):
        if flag in values:
            values[flag] = bool(int(values[flag]))
    if (attrs or {}).get("tilt_axis_rotation_source") == "setting":
        values["axis_rotation"] = float(attrs["tilt_axis_rotation_deg"])
    sigma = values.pop("sigma_psd", None)
    if sigma is not None and math.isfinite(float(sigma)) and float(sigma) > 0:
        values["sigma_psd"] = float(sigma)
    return PipelineSpec.model_validate(values)
