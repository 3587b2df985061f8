"""Experiment specs (``experiments/*.toml``): schema and validation.

A spec names everything a run needs, so that a run is reproducible from the
spec file alone: the specimen (``[phantom]``), the sintering model card and
the parameter values the truth is made with (``[sintering]``), the heating log
(``[heating]``) and the microscope settings (``[acquisition]``). Every key is
checked on load; an unknown key, a value of the wrong type, a negative dose
or a tilt beyond ±90° raises :class:`~sinter4d.errors.SpecError` with one line
naming the file and the key.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from ..acquisition.settings import AcquisitionSpec
from ..calibration import DEFAULT_TWINS, TWIN_N_SERIES
from ..checks import TEMPERATURE_RANGE_TEXT, in_temperature_range
from ..errors import SpecError
from ..phantom import NECK_SHAPES
from ..pipeline.settings import PipelineSpec
from ..sintering.cards import find_model_card
from ..sintering.heating_trace import OvershootSettings, StepTimeErrorSettings
from ..sintering.motion import RigidMotionSettings
from ..specs import Flag, Spec, integer, load, parse

Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]


class PhantomSpec(Spec):
    """The specimen: Cu cores with a sparse shell on a Si3N4 film.

    ``neck_shape`` is the neck bridge the phantom draws: ``"fillet"``, the
    classical concave neck (Kuczynski 1949, Coble 1958), or ``"cylinder"``,
    the paper's sharp-edged cylindrical neck (docs/design.md, "Specimen").
    ``n_stacked`` cores are stacked on the first layer (pairs out of the
    film's plane) and ``n_gap_pairs`` placed at a shell-bridged gap (None:
    the generator's default); calibration twins set them
    (:func:`sinter4d.phantom.make_cluster`).
    """

    n_cores: Annotated[int, Field(ge=2, le=30)] = 7
    mean_diameter_nm: PositiveFloat = 150.0
    diameter_sigma_log: NonNegativeFloat = 0.1
    aspect_ratio_range: tuple[PositiveFloat, PositiveFloat] = (0.85, 1.15)
    shell_thickness_nm: PositiveFloat = 10.0
    shell_particle_diameter_nm: tuple[PositiveFloat, PositiveFloat] = (3.0, 10.0)
    shell_packing_fraction: Fraction = 0.2
    film_thickness_nm: PositiveFloat = 30.0
    neck_shape: Literal[NECK_SHAPES] = "fillet"
    n_stacked: NonNegativeInt = 0
    n_gap_pairs: NonNegativeInt | None = None

    @model_validator(mode="after")
    def _ranges(self):
        if self.n_stacked > self.n_cores - 2:
            raise ValueError(f"n_stacked must be at most n_cores - 2 = {self.n_cores - 2}, got {self.n_stacked}")
        lo, hi = self.aspect_ratio_range
        if lo > hi:
            raise ValueError(f"aspect_ratio_range must be [low, high], got {list(self.aspect_ratio_range)}")
        lo, hi = self.shell_particle_diameter_nm
        if lo > hi or hi > 10.0:
            raise ValueError(
                f"shell_particle_diameter_nm must be [low, high] with high <= 10 nm (NP-10), "
                f"got {list(self.shell_particle_diameter_nm)}"
            )
        return self


class SinteringSpec(Spec):
    """Which model card makes the truth, with which parameter values, and how bodies move between series.

    ``rigid_motion`` is the ``[sintering.rigid_motion]`` table (on by default;
    docs/design.md, "Rigid motion between series").
    """

    model: str = "cu_shell_reservoir"
    parameters: dict[str, float] = Field(default_factory=dict)
    rigid_motion: RigidMotionSettings = RigidMotionSettings()


class HeatingSpec(Spec):
    """The heating log: tilt series taken at cumulative processing (PT) times.

    ``temperature_C[k]`` is the median temperature of the PT step that ended
    at series k (the paper's Fig. 3); between PT steps the specimen waits at
    ``standby_temperature_C`` for ``standby_s`` while a tilt series is taken.
    ``step_time_error`` and ``overshoot`` (``[heating.step_time_error]``,
    ``[heating.overshoot]``, both off by default) make the true heating
    differ from this log (docs/design.md, "Heating log as measured").
    ``imaged_series``: the series (indices into ``pt_time_s``, increasing)
    whose tilt series are simulated and reconstructed; the specimen sinters
    through the whole log either way. Default every series; a calibration
    twin of one series images only the run's middle one (docs/design.md,
    "Calibration").
    """

    pt_time_s: list[NonNegativeFloat] = [0, 5, 12, 17, 22, 27, 31, 36, 41, 46, 51, 61, 71, 81, 100, 120, 150, 209]
    temperature_C: list[float] = [372, 370, 370, 370, 370, 372, 372, 370, 370, 372, 370, 364, 364, 364, 354, 353, 351, 350]
    standby_temperature_C: float = 200.0
    standby_s: NonNegativeFloat = 900.0
    step_time_error: StepTimeErrorSettings = StepTimeErrorSettings()
    overshoot: OvershootSettings = OvershootSettings()
    imaged_series: list[NonNegativeInt] | None = None

    @property
    def imaged(self) -> list[int]:
        """Indices of the series whose tilt series are taken (every one by default)."""
        return list(range(len(self.pt_time_s))) if self.imaged_series is None else list(self.imaged_series)

    @model_validator(mode="after")
    def _log(self):
        t = self.pt_time_s
        if len(t) < 1:
            raise ValueError("pt_time_s must hold at least one time")
        imaged = self.imaged_series
        if imaged is not None and (not imaged or any(b <= a for a, b in zip(imaged, imaged[1:]))
                                   or imaged[-1] >= len(t)):
            raise ValueError(f"imaged_series must be increasing indices into pt_time_s (0 to {len(t) - 1}), "
                             f"got {imaged}")
        if len(self.temperature_C) != len(t):
            raise ValueError(
                f"temperature_C has {len(self.temperature_C)} values but pt_time_s has {len(t)}"
            )
        if any(b <= a for a, b in zip(t, t[1:])):
            raise ValueError("pt_time_s must increase strictly")
        shortest = min((b - a for a, b in zip(t, t[1:])), default=math.inf)
        if self.step_time_error.enabled and not self.step_time_error.bound_s < shortest:
            raise ValueError(f"step_time_error.bound_s ({self.step_time_error.bound_s:g} s) must be below the "
                             f"shortest PT step ({shortest:g} s)")
        error = self.step_time_error.bound_s if self.step_time_error.enabled else 0.0
        if self.overshoot.enabled and not 2.0 * self.overshoot.ramp_s < shortest - error:
            raise ValueError(f"overshoot.ramp_s ({self.overshoot.ramp_s:g} s) must last under half the shortest "
                             f"PT step less its time error ({shortest - error:g} s)")
        if self.overshoot.enabled and any(temp <= self.standby_temperature_C for temp in self.temperature_C[1:]):
            raise ValueError("with an overshoot every PT step's temperature must lie above standby_temperature_C")
        for temp in (*self.temperature_C, self.standby_temperature_C):
            if not in_temperature_range(temp):
                raise ValueError(f"temperature {temp} °C is outside {TEMPERATURE_RANGE_TEXT} (Cu melts at 1083 °C)")
        return self


class FitStageSpec(Spec):
    """The fit stage of ``sinter4d run``: which fit spec, and sampler overrides.

    ``spec`` is a fit spec (``assimilation/*.toml``), relative to the
    experiment spec's folder; its ``data`` is replaced by the run's
    ``metrics.nc``. Without it, a run stops after validation. The sampler
    settings given here replace the fit spec's (sweeps use shorter chains).
    """

    spec: str | None = None
    walkers: PositiveInt | None = None
    steps: PositiveInt | None = None
    burn_in: NonNegativeInt | None = None
    thin: PositiveInt | None = None

    def sampler_overrides(self) -> dict[str, int]:
        """The sampler keys this section sets."""
        keys = ("walkers", "steps", "burn_in", "thin")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


class CalibrationStageSpec(Spec):
    """The calibrate stage of ``sinter4d run`` (the ``[calibration]`` table; docs/design.md, "Calibration").

    ``enabled``: run ``twins`` simulated twins of the run's acquisition
    before the reconstruction and write ``calibration.nc``; the measure
    stage then adds the calibrated neck radius and distance. Off by default:
    the twins cost far more than the run they calibrate (docs/validation.md,
    "Calibration of the quick acquisition"). ``twins`` defaults to
    :data:`sinter4d.calibration.DEFAULT_TWINS`; at least 2. ``choose``: a
    choice card (``experiments/choose_*.toml``, relative to the spec or
    settings card): the stage first chooses the pipeline settings on twins
    of their own (``sinter4d calibrate --choose``), and the reconstruct
    stage then uses the chosen values (docs/design.md, "Calibration",
    "In a run"). ``twin_pixels``, ``twin_series``: the twins' field (detector
    pixels a side, cut from the run's; default the run's) and tilt series
    (default :data:`sinter4d.calibration.TWIN_N_SERIES`), as ``sinter4d
    calibrate --twin-pixels --twin-series``.
    """

    enabled: Flag = False
    twins: integer(minimum=2) = DEFAULT_TWINS
    choose: str | None = None
    twin_pixels: integer(minimum=16) | None = None
    twin_series: integer(minimum=1) = TWIN_N_SERIES


class ExperimentSpec(Spec):
    """A whole simulated experiment (one ``experiments/*.toml`` file)."""

    name: str
    description: str = ""
    seed: NonNegativeInt
    phantom: PhantomSpec = PhantomSpec()
    sintering: SinteringSpec = SinteringSpec()
    heating: HeatingSpec = HeatingSpec()
    acquisition: AcquisitionSpec = AcquisitionSpec()
    pipeline: PipelineSpec = PipelineSpec()
    fit: FitStageSpec = FitStageSpec()
    calibration: CalibrationStageSpec = CalibrationStageSpec()

    @model_validator(mode="after")
    def _fit_needs_the_initial_state(self):
        if self.fit.spec is not None and self.heating.imaged[0] != 0:
            raise ValueError("heating.imaged_series: the fit stage needs the first series imaged (the initial "
                             "state its kinetics start from); add 0 or drop [fit] spec")
        return self

    def to_json(self) -> str:
        """The spec as a JSON string (for netCDF attributes and provenance)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)


class RunSettings(Spec):
    """The settings card of an imported run (``sinter4d run RUNDIR --spec SETTINGS.toml``).

    An imported experiment has no phantom, truth or microscope to simulate,
    so its card holds only what the stages after import read: the
    ``[pipeline]``, ``[fit]`` and ``[calibration]`` tables of an experiment
    spec, with the same keys (experiments/README.md, "Settings of an
    imported run").
    """

    description: str = ""
    pipeline: PipelineSpec = PipelineSpec()
    fit: FitStageSpec = FitStageSpec()
    calibration: CalibrationStageSpec = CalibrationStageSpec()


def load_run_settings(path: str | Path) -> RunSettings:
    """Read and validate a settings card of an imported run.

    Raises
    ------
    SpecError
        Missing or unreadable file, bad TOML, or an invalid key (one line).
    """
    return load(RunSettings, path)


def parse_spec(data: dict, *, source: str | Path = "<spec>") -> ExperimentSpec:
    """Validate a spec given as a dict.

    Parameters
    ----------
    data : dict
        The parsed TOML document.
    source : str or Path, optional
        Name used in error messages.

    Returns
    -------
    ExperimentSpec

    Raises
    ------
    SpecError
        One line: ``"<source>: <dotted.key>: <what is wrong>"``.
    """
    spec = parse(ExperimentSpec, data, source=source)
    _check_parameters(spec, source)
    return spec


def _check_parameters(spec: ExperimentSpec, source) -> None:
    for key, value in spec.sintering.parameters.items():
        if not math.isfinite(value):
            raise SpecError(f"{source}: sintering.parameters.{key}: must be finite (got {value})")


def load_spec(path: str | Path) -> ExperimentSpec:
    """Read and validate an experiment spec file.

    Parameters
    ----------
    path : str or Path
        A TOML file in the layout of ``experiments/README.md``.

    Returns
    -------
    ExperimentSpec

    Raises
    ------
    SpecError
        Missing or unreadable file, bad TOML, or an invalid key (one line).
    """
    spec = load(ExperimentSpec, path)
    _check_parameters(spec, path)
    return spec


def resolve_model_card(name: str, spec_path: str | Path | None = None) -> Path:
    """Find the model card an experiment spec names (``sintering.model``).

    See :func:`sinter4d.sintering.cards.find_model_card`.
    """
    return find_model_card(name, spec_path, key="sintering.model")
