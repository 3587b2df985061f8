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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..io.toml import read_toml
from ..sintering import ModelCard, Prior, load_model_card
from ..sintering.cards import SpecReader, find_model_card

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

_TOP = ("description", "data", "model", "variables", "parameters", "forward", "noise", "sampler")
_PARAMETERS = ("free", "fixed", "priors")
_FORWARD = ("initial_neck", "initial_neck_prior", "gap", "gap_min_nm", "shell_thickness_nm", "standby_temperature_C",
            "standby_s", "include_standby", "grid_points")
_NOISE = ("sigma", "prior", "validation", "pair_sigma", "pair_prior", "bias", "gain", "reference_nm", "exclude_series")
_SAMPLER = ("walkers", "steps", "burn_in", "thin", "seed", "init", "checkpoint_steps")
_DEFAULT_SIGMA_PRIOR = Prior("log_uniform", low=0.01, high=100.0)
_DEFAULT_NECK0_PRIOR = Prior("log_uniform", low=0.5, high=20.0)
#: Default reference neck (nm) of a reading curve: the one ``validate`` reads its
#: ``neck_reading_bias_nm`` at (measurement.NECK_READING_REFERENCE_NM; not imported,
#: to keep a fit's processes free of the image-analysis stack).
NECK_READING_REFERENCE_NM = 25.0


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


@dataclass(frozen=True)
class NoiseSpec:
    """Gaussian noise of one fitted variable.

    Attributes
    ----------
    mode : {'fit', 'fixed', 'validation'}
        Fitted (a free parameter ``sigma_<variable>``), a fixed value, or the
        root mean square of the variable in a ``validation.nc``.
    sigma_nm : float or None
        The fixed value (nm), with ``mode == 'fixed'``.
    prior : Prior or None
        Prior of the fitted sigma (nm), with ``mode == 'fit'``.
    validation : str or None
        Path of the validation file, with ``mode == 'validation'``.
    pair_mode : {'none', 'fit', 'fixed'}
        Offset shared by all the readings of a pair, ``N(0, tau^2)`` and
        integrated out (:mod:`.likelihood`): none, tau fitted (a free
        parameter ``sigma_pair_<variable>``) or fixed. Neck radius only.
    pair_sigma_nm : float or None
        The fixed tau (nm), with ``pair_mode == 'fixed'``.
    pair_prior : Prior or None
        Prior of the fitted tau (nm), with ``pair_mode == 'fit'``.
    bias_nm : float
        Fixed bias of the readings at ``reference_nm`` (nm), with ``bias_prior`` None.
    bias_prior : Prior or None
        Prior of a sampled bias ``bias_<variable>`` (nm). Neck radius only.
    gain : float
        Fixed gain of the readings, with ``gain_prior`` None: they are
        ``reference_nm + gain (x - reference_nm) + bias`` for the law's x.
    gain_prior : Prior or None
        Prior of a sampled gain ``gain_<variable>``. Neck radius only.
    reference_nm : float
        Reference neck of the gain (nm).
    exclude_series : tuple of int
        Tilt series (0-based) whose points of this variable leave the likelihood.
    """

    mode: str
    sigma_nm: float | None = None
    prior: Prior | None = None
    validation: str | None = None
    pair_mode: str = "none"
    pair_sigma_nm: float | None = None
    pair_prior: Prior | None = None
    bias_nm: float = 0.0
    bias_prior: Prior | None = None
    gain: float = 1.0
    gain_prior: Prior | None = None
    reference_nm: float = NECK_READING_REFERENCE_NM
    exclude_series: tuple[int, ...] = ()


@dataclass(frozen=True)
class ForwardSpec:
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
        ``fitting._gap_from_data``).
    gap_min_nm : float
        With ``gap = 'data'``, gaps below this (nm) count as 0 (contact).
    shell_thickness_nm, standby_temperature_C, standby_s : float or None
        Shell thickness (nm) and standby wait (°C, s per tilt series); None:
        the data file's experiment spec, else 10 nm, 200 °C and 900 s.
    include_standby : bool
        Integrate the standby waits.
    grid_points : int
        Tabulation points of the kinetics.
    """

    initial_neck: str = "card"
    initial_neck_prior: Prior = _DEFAULT_NECK0_PRIOR
    gap: str = "zero"
    gap_min_nm: float = 5.0
    shell_thickness_nm: float | None = None
    standby_temperature_C: float | None = None
    standby_s: float | None = None
    include_standby: bool = True
    grid_points: int = 128


@dataclass(frozen=True)
class SamplerSpec:
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
    """

    walkers: int = 32
    steps: int = 3000
    burn_in: int = 1000
    thin: int = 10
    seed: int = 0
    init: str = "map"
    checkpoint_steps: int = 100


@dataclass(frozen=True, eq=False)
class FitSpec:
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

    path: str
    description: str
    data: Path | None
    card: ModelCard
    free: tuple[str, ...]
    fixed: Mapping[str, float]
    priors: Mapping[str, Prior]
    variables: tuple[str, ...]
    noise: Mapping[str, NoiseSpec]
    forward: ForwardSpec
    sampler: SamplerSpec
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Every sampled parameter: free card parameters, fitted sigmas and pair sigmas, a fitted initial neck."""
        names = list(self.free)
        names += [sigma_parameter(v) for v in self.variables if self.noise[v].mode == "fit"]
        names += [pair_sigma_parameter(v) for v in self.variables if self.noise[v].pair_mode == "fit"]
        names += [bias_parameter(v) for v in self.variables if self.noise[v].bias_prior is not None]
        names += [gain_parameter(v) for v in self.variables if self.noise[v].gain_prior is not None]
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
        if self.forward.initial_neck == "fit":
            priors.append(self.forward.initial_neck_prior)
        return tuple(priors)

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
            "priors": {k: asdict(p) for k, p in self.priors.items()},
            "variables": list(self.variables),
            "noise": {k: {**asdict(v), "prior": None if v.prior is None else asdict(v.prior)}
                      for k, v in self.noise.items()},
            "forward": {**asdict(self.forward), "initial_neck_prior": asdict(self.forward.initial_neck_prior)},
            "sampler": asdict(self.sampler),
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
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


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
    r = SpecReader(source)
    spec_file = Path(source) if Path(str(source)).is_file() else None
    base = Path(base_dir) if base_dir is not None else (spec_file.resolve().parent if spec_file else None)
    r.table(doc, "", _TOP)
    if "model" not in doc:
        r.fail("model", "missing key (a card name in models/ or a path)")
    description = r.string(doc.get("description", ""), "description")
    data = r.path(doc["data"], "data", base) if "data" in doc else None
    card = load_model_card(find_model_card(r.string(doc["model"], "model"), spec_file))

    variables = doc.get("variables", list(FIT_VARIABLES))
    if not isinstance(variables, list) or not variables:
        r.fail("variables", f"must be a non-empty list of {', '.join(FIT_VARIABLES)}")
    for i, v in enumerate(variables):
        r.string(v, f"variables[{i}]", FIT_VARIABLES)
    if len(set(variables)) != len(variables):
        r.fail("variables", "a variable is named twice")
    variables = tuple(v for v in FIT_VARIABLES if v in variables)

    free, fixed, priors = _parameters(r, doc.get("parameters", {}), card)
    forward = _forward(r, doc.get("forward", {}))
    noise = _noise(r, doc.get("noise", {}), variables, base)
    sampler = _sampler(r, doc.get("sampler", {}))

    spec = FitSpec(path=str(source), description=description, data=data, card=card, free=free, fixed=fixed,
                   priors=priors, variables=variables, noise=noise, forward=forward, sampler=sampler, raw=doc)
    ndim = len(spec.parameter_names)
    if ndim == 0:
        r.fail("parameters.free", "nothing to fit (no free parameter and no fitted sigma)")
    if sampler.walkers < 2 * ndim:
        r.fail("sampler.walkers", f"must be at least twice the number of sampled parameters ({2 * ndim}), "
                                  f"got {sampler.walkers}")
    return spec


def _parameters(r: SpecReader, doc, card: ModelCard):
    r.table(doc, "parameters", _PARAMETERS)
    names = card.parameter_names
    free = doc.get("free", list(names))
    if not isinstance(free, list):
        r.fail("parameters.free", "must be a list of parameter names of the card")
    for i, name in enumerate(free):
        r.string(name, f"parameters.free[{i}]")
        if name not in names:
            r.fail(f"parameters.free[{i}]", f"model card {card.name!r} has no parameter {name!r} "
                                            f"(it has {', '.join(names)})")
    if len(set(free)) != len(free):
        r.fail("parameters.free", "a parameter is named twice")
    fixed_doc = doc.get("fixed", {})
    if not isinstance(fixed_doc, dict):
        r.fail("parameters.fixed", "must be a table of parameter = value")
    fixed = {}
    for name, value in fixed_doc.items():
        key = f"parameters.fixed.{name}"
        if name not in names:
            r.fail(key, f"model card {card.name!r} has no parameter {name!r} (it has {', '.join(names)})")
        if name in free:
            r.fail(key, "is also listed in parameters.free")
        fixed[name] = r.number(value, key, positive=name.endswith("_nm"))
    for name in names:
        if name not in free:
            fixed.setdefault(name, card.parameters[name].default)
    priors_doc = doc.get("priors", {})
    if not isinstance(priors_doc, dict):
        r.fail("parameters.priors", "must be a table of parameter = {dist, ...}")
    priors = {}
    for name, pdoc in priors_doc.items():
        key = f"parameters.priors.{name}"
        if name not in names:
            r.fail(key, f"model card {card.name!r} has no parameter {name!r} (it has {', '.join(names)})")
        if name not in free:
            r.fail(key, "a prior for a parameter that is not free")
        priors[name] = r.prior(pdoc, key, positive_support=name.endswith("_nm"))
    free = tuple(k for k in names if k in free)
    priors = {k: priors.get(k, card.parameters[k].prior) for k in free}
    return free, {k: fixed[k] for k in names if k in fixed}, priors


def _forward(r: SpecReader, doc) -> ForwardSpec:
    r.table(doc, "forward", _FORWARD)
    out = {}
    if "initial_neck" in doc:
        out["initial_neck"] = r.string(doc["initial_neck"], "forward.initial_neck", INITIAL_NECK_MODES)
    if "initial_neck_prior" in doc:
        if out.get("initial_neck") != "fit":
            r.fail("forward.initial_neck_prior", 'only used with initial_neck = "fit"')
        out["initial_neck_prior"] = r.prior(doc["initial_neck_prior"], "forward.initial_neck_prior",
                                            positive_support=True)
    if "gap" in doc:
        out["gap"] = r.string(doc["gap"], "forward.gap", GAP_MODES)
    for key in ("shell_thickness_nm", "standby_s", "gap_min_nm"):
        if key in doc:
            out[key] = r.number(doc[key], f"forward.{key}", allow_zero=key != "shell_thickness_nm")
    if "gap_min_nm" in doc and out.get("gap", "zero") != "data":
        r.fail("forward.gap_min_nm", 'only used with gap = "data"')
    if "standby_temperature_C" in doc:
        temp = r.number(doc["standby_temperature_C"], "forward.standby_temperature_C", positive=False)
        if not -273.15 < temp < 1083.0:
            r.fail("forward.standby_temperature_C", f"must lie in (-273.15, 1083) °C (got {temp:g})")
        out["standby_temperature_C"] = temp
    if "include_standby" in doc:
        out["include_standby"] = r.boolean(doc["include_standby"], "forward.include_standby")
    if "grid_points" in doc:
        out["grid_points"] = r.integer(doc["grid_points"], "forward.grid_points", minimum=8)
    return ForwardSpec(**out)


def _noise(r: SpecReader, doc, variables, base) -> dict[str, NoiseSpec]:
    r.table(doc, "noise", FIT_VARIABLES)
    for name in doc:
        if name not in variables:
            r.fail(f"noise.{name}", f"not a fitted variable (variables = {list(variables)})")
    out = {}
    for name in variables:
        key = f"noise.{name}"
        ndoc = r.table(doc.get(name, {}), key, _NOISE)
        sigma = ndoc.get("sigma", "fit")
        if isinstance(sigma, str):
            mode = r.string(sigma, f"{key}.sigma", ("fit", "validation"))
        else:
            mode = "fixed"
            value = r.number(sigma, f"{key}.sigma")
        if "prior" in ndoc and mode != "fit":
            r.fail(f"{key}.prior", 'only used with sigma = "fit"')
        if "validation" in ndoc and mode != "validation":
            r.fail(f"{key}.validation", 'only used with sigma = "validation"')
        extra = _error_model(r, ndoc, key, name)
        if mode == "fit":
            prior = r.prior(ndoc["prior"], f"{key}.prior", positive_support=True) if "prior" in ndoc \
                else _DEFAULT_SIGMA_PRIOR
            out[name] = NoiseSpec("fit", prior=prior, **extra)
        elif mode == "fixed":
            out[name] = NoiseSpec("fixed", sigma_nm=value, **extra)
        else:
            if "validation" not in ndoc:
                r.fail(f"{key}.validation", 'missing: the validation.nc to take sigma from')
            out[name] = NoiseSpec("validation", validation=str(r.path(ndoc["validation"], f"{key}.validation", base)),
                                  **extra)
    return out


def _error_model(r: SpecReader, ndoc, key: str, variable: str) -> dict:
    """``pair_sigma``, ``pair_prior``, ``bias``, ``gain``, ``reference_nm`` and ``exclude_series`` of one noise table."""
    out = {}
    for name in ("pair_sigma", "bias", "gain", "reference_nm"):
        if name in ndoc and variable != "neck_radius_nm":
            r.fail(f"{key}.{name}", "neck_radius_nm only (a distance has its own initial value per pair)")
    if "bias" in ndoc:
        value = ndoc["bias"]
        if isinstance(value, dict):
            out["bias_prior"] = r.prior(value, f"{key}.bias", positive_support=False)
        else:
            out["bias_nm"] = r.number(value, f"{key}.bias", positive=False)
    if "gain" in ndoc:
        value = ndoc["gain"]
        if isinstance(value, dict):
            out["gain_prior"] = r.prior(value, f"{key}.gain", positive_support=False)
        else:
            out["gain"] = r.number(value, f"{key}.gain")
    if "reference_nm" in ndoc:
        if "gain" not in ndoc:
            r.fail(f"{key}.reference_nm", "only used with a gain")
        out["reference_nm"] = r.number(ndoc["reference_nm"], f"{key}.reference_nm")
    if "pair_sigma" in ndoc:
        value = ndoc["pair_sigma"]
        if isinstance(value, str):
            out["pair_mode"] = r.string(value, f"{key}.pair_sigma", ("fit",))
        else:
            out["pair_mode"], out["pair_sigma_nm"] = "fixed", r.number(value, f"{key}.pair_sigma")
    if "pair_prior" in ndoc:
        if out.get("pair_mode") != "fit":
            r.fail(f"{key}.pair_prior", 'only used with pair_sigma = "fit"')
        out["pair_prior"] = r.prior(ndoc["pair_prior"], f"{key}.pair_prior", positive_support=True)
    elif out.get("pair_mode") == "fit":
        out["pair_prior"] = _DEFAULT_SIGMA_PRIOR
    if "exclude_series" in ndoc:
        series = ndoc["exclude_series"]
        if not isinstance(series, list):
            r.fail(f"{key}.exclude_series", "must be a list of tilt-series indices (0 = the first)")
        for i, k in enumerate(series):
            r.integer(k, f"{key}.exclude_series[{i}]", minimum=0)
        if len(set(series)) != len(series):
            r.fail(f"{key}.exclude_series", "a series is named twice")
        out["exclude_series"] = tuple(sorted(series))
    return out


def _sampler(r: SpecReader, doc) -> SamplerSpec:
    r.table(doc, "sampler", _SAMPLER)
    out = {}
    for key, minimum in (("walkers", 2), ("steps", 1), ("burn_in", 0), ("thin", 1), ("seed", 0),
                         ("checkpoint_steps", 1)):
        if key in doc:
            out[key] = r.integer(doc[key], f"sampler.{key}", minimum=minimum)
    if "init" in doc:
        out["init"] = r.string(doc["init"], "sampler.init", INIT_MODES)
    spec = SamplerSpec(**out)
    if spec.burn_in >= spec.steps:
        r.fail("sampler.burn_in", f"must be below steps ({spec.steps}), got {spec.burn_in}")
    return spec


def load_fit_spec(path: str | Path) -> FitSpec:
    """Read and validate a fit spec.

    Parameters
    ----------
    path : str or Path
        A TOML file laid out as in ``assimilation/README.md``.

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
    return parse_fit_spec(read_toml(path), source=path)
