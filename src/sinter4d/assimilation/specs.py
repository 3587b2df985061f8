"""Fit specs (``assimilation/*.toml``): loading and validation.

A fit spec says which data to fit (optional: the command line passes it),
which model card, which of the card's parameters are free and their priors
(defaults from the card), how the forward model starts each pair, the noise
model and the sampler settings. The layout is described in
``assimilation/README.md``. Every mistake raises :class:`~sinter4d.errors.SpecError`
with one line ``"<file>: <dotted.key>: <what is wrong>"``.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field, PlainValidator, PrivateAttr, ValidationInfo, model_validator

from ..sintering import ModelCard, load_model_card
from ..sintering.cards import find_model_card
from ..specs import (
    Elsewhere,
    Flag,
    NonNegative,
    Number,
    Positive,
    Spec,
    Text,
    check_choice,
    check_integer,
    check_number,
    check_text,
    choice,
    fail,
    integer,
    load,
    nested,
    optional,
    parse,
)
from ..io.toml import read_toml
from ..checks import TEMPERATURE_RANGE_TEXT, in_temperature_range
from ..errors import SpecError
from .likelihood import STEP_ERROR_PREFIX
from .noise import (NECK_READING_REFERENCE_NM, DEFAULT_SIGMA_PRIOR, NoiseSpec, NoiseTable, NoiseTables,
                    calibrated_tables, relative_path)
from .priors import PositivePrior, Prior, card_priors
from .sampler import MOVES

#: Variables a fit may use.
FIT_VARIABLES = ("neck_radius_nm", "distance_nm")
#: How each pair's neck starts.
INITIAL_NECK_MODES = ("card", "first", "fit")
#: How each pair's surface gap (shell-reservoir cards) is set.
GAP_MODES = ("data", "zero")
#: How the sampler's walkers start.
INIT_MODES = ("map", "prior")
#: Name of the shared initial-neck parameter when ``initial_neck = "fit"``.
INITIAL_NECK_PARAMETER = "initial_neck_nm"

_DEFAULT_NECK0_PRIOR = Prior("log_uniform", low=0.5, high=20.0)


def sigma_parameter(variable: str) -> str:
    """Name of the fitted noise level of a variable (``sigma_<variable>``)."""
    return f"sigma_{variable}"


def pair_sigma_parameter(variable: str) -> str:
    """Name of the fitted pair-offset sigma of a variable (``sigma_pair_<variable>``)."""
    return f"sigma_pair_{variable}"


def bias_parameter(variable: str) -> str:
    """Name of the sampled bias of a variable (``bias_<variable>``)."""
    return f"bias_{variable}"


def gain_parameter(variable: str) -> str:
    """Name of the sampled gain of a variable (``gain_<variable>``)."""
    return f"gain_{variable}"


def bridged_bias_parameter(variable: str) -> str:
    """Name of the sampled offset of the bridged pairs' readings (``bridged_bias_<variable>``)."""
    return f"bridged_bias_{variable}"



class StepErrorSpec(Spec):
    """``[forward.step_time_error]``: the logged PT step durations as uncertain.

    Attributes
    ----------
    enabled : bool
        Sample one latent time error per PT step, shared by all pairs
        (default False: the logged durations are exact).
    bound_s : float
        Its prior is uniform in ±``bound_s`` (s). Default 1 s, the paper's
        "error of ± 1 s" on each PT step (docs/design.md, "Heating log as
        measured").
    """

    enabled: Flag = False
    bound_s: Positive = 1.0


class ForwardSpec(Spec):
    """How the forward model starts each pair and integrates the heating log.

    Attributes
    ----------
    initial_neck : {'card', 'first', 'fit'}
        ``card``: every pair starts at the first time with the card's
        ``contact.initial_neck`` (as the simulator starts a contact);
        ``first``: each pair starts at its first measured neck, which then
        leaves the likelihood; ``fit``: one shared free parameter
        ``initial_neck_nm``.
    initial_neck_prior : Prior
        Its prior (nm), with ``initial_neck == 'fit'``.
    gap : {'zero', 'data'}
        Surface gap bridged by each neck (enters the shell reservoir): 0
        (default), or ``max(d0 - 2 r_p, 0)`` with d0 the pair's initial
        distance averaged over its whole distance trajectory (see
        ``problem._gap_from_data``).
    gap_min_nm : float
        With ``gap = 'data'``, gaps below this (nm) count as 0 (contact).
    shell_thickness_nm, standby_temperature_C, standby_s : float or None
        Shell thickness (nm) and standby wait (°C, s per tilt series); None:
        the data file's experiment spec, else 10 nm, 200 °C and 900 s.
    include_standby : bool
        Integrate the standby waits.
    grid_points : int
        Tabulation points of the kinetics.
    step_time_error : StepErrorSpec
        The PT steps' time errors as latent parameters (off by default).
    """
    initial_neck: choice(INITIAL_NECK_MODES) = "card"
    initial_neck_prior: PositivePrior = _DEFAULT_NECK0_PRIOR
    gap: choice(GAP_MODES) = "zero"
    gap_min_nm: NonNegative = 5.0
    shell_thickness_nm: optional(Positive) = None
    standby_temperature_C: optional(Number) = None
    standby_s: optional(NonNegative) = None
    include_standby: Flag = True
    grid_points: integer(8) = 128
    step_time_error: StepErrorSpec = StepErrorSpec()

    @model_validator(mode="after")
    def _consistent(self):
        given = self.model_fields_set
        if "initial_neck_prior" in given and self.initial_neck != "fit":
            raise fail('only used with initial_neck = "fit"', "initial_neck_prior")
        if "gap_min_nm" in given and self.gap != "data":
            raise fail('only used with gap = "data"', "gap_min_nm")
        temp = self.standby_temperature_C
        if temp is not None and not in_temperature_range(temp):
            raise fail(f"must lie in {TEMPERATURE_RANGE_TEXT} (got {temp:g})", "standby_temperature_C")
        return self


class SamplerSpec(Spec):
    """emcee settings.

    Attributes
    ----------
    walkers : int
        Ensemble size (at least twice the number of free parameters).
    steps : int
        Steps per walker in all, burn-in included.
    burn_in : int
        Steps discarded from the start.
    thin : int
        Keep every ``thin``-th step after burn-in.
    seed : int
        Seeds the walkers' start, emcee's generator and the posterior draws.
    init : {'map', 'prior'}
        Start the walkers in a small ball around the maximum a posteriori
        point, or draw them from the prior.
    checkpoint_steps : int
        Steps held in memory between writes to ``chain.h5``.
    moves : {'stretch', 'de_snooker'}
        emcee's proposal: its default stretch move, or differential
        evolution mixed with its snooker variant (:func:`.sampler.ensemble_moves`).
    """
    walkers: integer(2) = 32
    steps: integer(1) = 3000
    burn_in: integer(0) = 1000
    thin: integer(1) = 10
    seed: integer(0) = 0
    init: choice(INIT_MODES) = "map"
    checkpoint_steps: integer(1) = 100
    moves: choice(MOVES) = "stretch"

    @model_validator(mode="after")
    def _burn_in_below_steps(self):
        if self.burn_in >= self.steps:
            raise fail(f"must be below steps ({self.steps}), got {self.burn_in}", "burn_in")
        return self


def _names(value) -> list[str]:
    if not isinstance(value, list):
        raise ValueError("must be a list of parameter names of the card")
    for i, name in enumerate(value):
        try:
            check_text(name)
        except ValueError as exc:
            raise fail(str(exc), i) from None
    return value


class ParametersTable(Spec):
    """``[parameters]`` as written: ``free`` names, ``fixed`` values and ``priors`` of the card's parameters."""

    free: Annotated[list[str] | None, PlainValidator(lambda v: None if v is None else _names(v))] = None
    fixed: dict[str, Any] = Field(default_factory=dict)
    priors: dict[str, Any] = Field(default_factory=dict)


class FitSpec(Spec):
    """A validated fit spec.

    Attributes
    ----------
    path : str
        Where it came from (``"<spec>"`` for a dict).
    description : str
    data : Path or None
        Data file named by the spec (relative paths are taken from the spec's folder).
    card : ModelCard
    free : tuple of str
        Free card parameters, in card order.
    fixed : mapping
        Values of the card parameters that are not free.
    priors : mapping
        Prior of each free card parameter.
    variables : tuple of str
        Fitted variables, a subset of :data:`FIT_VARIABLES`.
    noise : mapping
        Variable -> :class:`NoiseSpec`.
    forward : ForwardSpec
    sampler : SamplerSpec
    """
    description: Text = ""
    data_name: optional(Text) = Field(None, alias="data")
    model: Text
    variables_named: list[choice(FIT_VARIABLES)] = Field(default_factory=lambda: list(FIT_VARIABLES),
                                                         alias="variables")
    parameters: ParametersTable = ParametersTable()
    forward: ForwardSpec = ForwardSpec()
    noise_tables: NoiseTables = Field(NoiseTables(), alias="noise")
    sampler: SamplerSpec = SamplerSpec()

    _resolved: dict = PrivateAttr(default_factory=dict)

    def __eq__(self, other):  # one object per file read: cached per card (kinetics), compared by identity
        return self is other

    __hash__ = object.__hash__

    @model_validator(mode="after")
    def _resolve(self, info: ValidationInfo):
        ctx = info.context or {}
        source = ctx.get("source", "<spec>")
        spec_file = Path(source) if Path(source).is_file() else None
        base_dir = ctx.get("base_dir")
        base = Path(base_dir) if base_dir is not None else (spec_file.resolve().parent if spec_file else None)
        try:
            card = load_model_card(find_model_card(self.model, spec_file))
        except SpecError as exc:
            raise Elsewhere(exc) from None
        variables = self.variables_named
        if not variables:
            raise fail(f"must be a non-empty list of {', '.join(FIT_VARIABLES)}", "variables")
        if len(set(variables)) != len(variables):
            raise fail("a variable is named twice", "variables")
        variables = tuple(v for v in FIT_VARIABLES if v in variables)
        free, fixed, priors = _parameters(self.parameters, card)
        for name in self.noise_tables.model_fields_set:
            if name not in variables:
                raise fail(f"not a fitted variable (variables = {list(variables)})", "noise", name)
        noise = {v: (getattr(self.noise_tables, v) or NoiseTable()).resolve(base) for v in variables}
        bridged = [v for v in variables if noise[v].bridged_prior is not None or noise[v].bridged_bias_nm != 0.0]
        if bridged and not (self.forward.gap == "data" and card.saturation == "shell_reservoir"):
            raise fail('needs forward.gap = "data" and a shell-reservoir card: the bridged pairs are those the '
                       "forward model bridges across a surface gap", "noise", bridged[0], "bridged_bias")
        data = None if self.data_name is None else relative_path(self.data_name, base, "data")
        self._resolved = dict(path=str(source), data=data, card=card, free=free, fixed=fixed, priors=priors,
                              variables=variables, noise=noise)
        ndim = len(self.parameter_names)
        if ndim == 0:
            raise fail("nothing to fit (no free parameter and no fitted sigma)", "parameters", "free")
        if self.sampler.walkers < 2 * ndim:
            raise fail(f"must be at least twice the number of sampled parameters ({2 * ndim}), "
                       f"got {self.sampler.walkers}", "sampler", "walkers")
        return self

    @property
    def path(self) -> str:
        """The file the spec came from (``"<spec>"`` for a dict)."""
        return self._resolved["path"]

    @property
    def data(self) -> Path | None:
        """Data file named by the spec (relative paths are taken from the spec's folder)."""
        return self._resolved["data"]

    @property
    def card(self) -> ModelCard:
        """The model card."""
        return self._resolved["card"]

    @property
    def free(self) -> tuple[str, ...]:
        """Free card parameters, in card order."""
        return self._resolved["free"]

    @property
    def fixed(self) -> dict[str, float]:
        """Values of the card parameters that are not free."""
        return self._resolved["fixed"]

    @property
    def priors(self) -> dict[str, Prior]:
        """Prior of each free card parameter."""
        return self._resolved["priors"]

    @property
    def variables(self) -> tuple[str, ...]:
        """Fitted variables, in the order of :data:`FIT_VARIABLES`."""
        return self._resolved["variables"]

    @property
    def noise(self) -> dict[str, NoiseSpec]:
        """Variable -> :class:`NoiseSpec`."""
        return self._resolved["noise"]

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Every sampled parameter: free card parameters, fitted sigmas and pair sigmas, a fitted initial neck."""
        names = list(self.free)
        names += [sigma_parameter(v) for v in self.variables if self.noise[v].mode == "fit"]
        names += [pair_sigma_parameter(v) for v in self.variables if self.noise[v].pair_mode == "fit"]
        names += [bias_parameter(v) for v in self.variables if self.noise[v].bias_prior is not None]
        names += [gain_parameter(v) for v in self.variables if self.noise[v].gain_prior is not None]
        names += [bridged_bias_parameter(v) for v in self.variables if self.noise[v].bridged_prior is not None]
        if self.forward.initial_neck == "fit":
            names.append(INITIAL_NECK_PARAMETER)
        return tuple(names)

    @property
    def parameter_priors(self) -> tuple[Prior, ...]:
        """Prior of each of :attr:`parameter_names`."""
        priors = [self.priors[k] for k in self.free]
        priors += [self.noise[v].prior for v in self.variables if self.noise[v].mode == "fit"]
        priors += [self.noise[v].pair_prior for v in self.variables if self.noise[v].pair_mode == "fit"]
        priors += [self.noise[v].bias_prior for v in self.variables if self.noise[v].bias_prior is not None]
        priors += [self.noise[v].gain_prior for v in self.variables if self.noise[v].gain_prior is not None]
        priors += [self.noise[v].bridged_prior for v in self.variables if self.noise[v].bridged_prior is not None]
        if self.forward.initial_neck == "fit":
            priors.append(self.forward.initial_neck_prior)
        return tuple(priors)

    def step_error_names(self, n_series: int) -> tuple[str, ...]:
        """Latent time errors of a log of ``n_series`` series: ``pt_step_error_s_1 ..`` (none when off)."""
        if not self.forward.step_time_error.enabled:
            return ()
        return tuple(f"{STEP_ERROR_PREFIX}{k}" for k in range(1, n_series))

    def step_error_priors(self, n_series: int, bounds_s=None) -> tuple[Prior, ...]:
        """Their priors: uniform in ± the step's bound.

        ``bounds_s`` ((T - 1,) array, optional): the bound of each PT step
        1 .. T-1 the data give (an imported run's ``pt_step_error_bound_s``);
        where it is None or NaN, ``forward.step_time_error.bound_s``.
        """
        names = self.step_error_names(n_series)
        b = np.full(len(names), self.forward.step_time_error.bound_s)
        if bounds_s is not None and names:
            given = np.asarray(bounds_s, dtype=float)
            b = np.where(np.isfinite(given), given, b)
        return tuple(Prior("uniform", low=-float(bk), high=float(bk)) for bk in b)

    def to_json(self) -> str:
        """The validated spec as JSON (for provenance in ``posterior.nc``)."""
        doc = {
            "path": self.path,
            "description": self.description,
            "data": None if self.data is None else str(self.data),
            "model": self.card.name,
            "model_path": self.card.path,
            "free": list(self.free),
            "fixed": dict(self.fixed),
            "priors": {k: p.as_dict() for k, p in self.priors.items()},
            "variables": list(self.variables),
            "noise": {k: v.model_dump() for k, v in self.noise.items()},
            "forward": self.forward.model_dump(),
            "sampler": self.sampler.model_dump(),
        }
        return json.dumps(doc, sort_keys=True, default=_json_number)

    def resume_key(self) -> str:
        """Hash of everything a chain depends on (not ``steps``, ``burn_in``, ``thin``, ``checkpoint_steps``).

        A chain in ``chain.h5`` made with the same key is continued; extending
        ``steps`` continues a finished chain.
        """
        doc = json.loads(self.to_json())
        for key in ("path", "description", "data", "model_path"):
            doc.pop(key)
        for key in ("steps", "burn_in", "thin", "checkpoint_steps"):
            doc["sampler"].pop(key)
        if not self.forward.step_time_error.enabled:  # off: the key of a chain made before the switch existed
            doc["forward"].pop("step_time_error")
        if self.sampler.moves == "stretch":  # emcee's default: likewise
            doc["sampler"].pop("moves")
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]



def _parameters(table: ParametersTable, card: ModelCard):
    names = card.parameter_names

    def known(name, *at):
        if name not in names:
            raise fail(f"model card {card.name!r} has no parameter {name!r} (it has {', '.join(names)})", *at)

    free = list(names) if table.free is None else table.free
    for i, name in enumerate(free):
        known(name, "parameters", "free", i)
    if len(set(free)) != len(free):
        raise fail("a parameter is named twice", "parameters", "free")
    fixed = {}
    for name, value in table.fixed.items():
        known(name, "parameters", "fixed", name)
        if name in free:
            raise fail("is also listed in parameters.free", "parameters", "fixed", name)
        try:
            fixed[name] = check_number(value, positive=name.endswith("_nm"))
        except ValueError as exc:
            raise fail(str(exc), "parameters", "fixed", name) from None
    for name in names:
        if name not in free:
            fixed.setdefault(name, card.parameters[name].default)
    priors = {}
    for name, pdoc in table.priors.items():
        known(name, "parameters", "priors", name)
        if name not in free:
            raise fail("a prior for a parameter that is not free", "parameters", "priors", name)
        priors[name] = nested(PositivePrior if name.endswith("_nm") else Prior, pdoc, "parameters", "priors", name)
    free = tuple(k for k in names if k in free)
    proposed = card_priors(card) if set(free) - set(priors) else {}
    priors = {k: priors[k] if k in priors else proposed[k] for k in free}
    return free, {k: fixed[k] for k in names if k in fixed}, priors


def _json_number(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    raise TypeError(f"not JSON serialisable: {value!r}")


def parse_fit_spec(doc: dict, *, source: str | Path = "<spec>", base_dir: str | Path | None = None) -> FitSpec:
    """Validate a parsed fit spec (a dict) and build a :class:`FitSpec`.

    Parameters
    ----------
    doc : dict
        The parsed TOML document.
    source : str or Path
        Name used in error messages, and the spec's path for finding the card.
    base_dir : str or Path, optional
        Folder relative paths (``data``, ``validation``) are taken from
        (default: the folder of ``source`` when it is a file, else none).

    Raises
    ------
    SpecError
        One line ``"<source>: <dotted.key>: <what is wrong>"``.
    """
    return parse(FitSpec, doc, source=source, context={"base_dir": base_dir})


def load_fit_spec(path: str | Path, *, calibration: str | Path | None = None) -> FitSpec:
    """Read and validate a fit spec.

    Parameters
    ----------
    path : str or Path
        A TOML file laid out as in ``assimilation/README.md``.
    calibration : str or Path, optional
        A ``calibration.nc`` that becomes the observation model of every
        fitted variable (``[noise.<variable>] calibration = ...``): the
        command line's ``--calibration``. Each table keeps its
        ``exclude_series``, and the distance its ``sigma`` and ``prior``
        (its point scatter: on the quick runs a fitted one beats the
        calibrated one, docs/validation.md); the neck's are the calibration's.

    Returns
    -------
    FitSpec

    Raises
    ------
    SpecError
        Missing file, bad TOML, an unknown key, a wrong type, a negative
        value, an unknown parameter or card; one line
        ``"assimilation/x.toml: <dotted.key>: <what is wrong>"``.

    Examples
    --------
    >>> spec = load_fit_spec("assimilation/cu_shell_reservoir.toml")  # doctest: +SKIP
    >>> spec.parameter_names  # doctest: +SKIP
    ('log10_C_lattice_diffusion_boundary', 'log10_C_surface_diffusion', 'capture_radius_nm', ...)
    """
    if calibration is None:
        return load(FitSpec, path)
    doc = read_toml(path)
    if not isinstance(doc.get("noise", {}), dict):
        raise SpecError(f"{path}: noise: must be a table")
    doc["noise"] = calibrated_tables(doc.get("noise", {}), doc.get("variables", FIT_VARIABLES), calibration)
    return parse(FitSpec, doc, source=path)
