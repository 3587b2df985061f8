"""Sintering-model cards (``models/*.toml``): loading and validation.

A card names mechanisms and a saturation law from the registries of
:mod:`sinter4d.sintering.laws`, gives the material data (each value with its
unit and source), and declares the free parameters with defaults and priors.
It never holds code. The layout is described in ``models/README.md``.

Every physical quantity is a table ``{value = ..., unit = "...", source = "..."}``;
the unit is converted with pint to the SI unit the law needs, and a unit of the
wrong dimension (``kJ`` for an activation energy, ``m^2/s`` for a boundary
``delta*D0``) is an error. Free parameters are plain numbers whose unit is in
their name (``capture_radius_nm``) or that are dimensionless
(``log10_C_<mechanism>``, the log10 of the factor on the mechanism's classical
constant C).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..errors import SpecError
from ..io.toml import read_toml
from .laws import MECHANISMS, SATURATIONS, TRANSPORTS

#: Prior distributions a free parameter may have.
PRIOR_KINDS = ("uniform", "log_uniform", "normal")

_MATERIAL = {
    "atomic_volume": ("m^3", "atomic volume Omega"),
    "surface_energy": ("J/m^2", "surface energy gamma_s"),
    "melting_point": ("K", "melting point T_m"),
}
_TRANSPORT_KEYS = ("prefactor", "activation_energy")
_TOP_KEYS = (
    "name",
    "description",
    "mechanisms",
    "saturation",
    "material",
    "transport",
    "contact",
    "reservoir",
    "parameters",
)
_QUANTITY_KEYS = ("value", "unit", "source")
_PARAMETER_KEYS = ("default", "prior", "description", "source")


@lru_cache(maxsize=1)
def _units():
    import pint

    return pint.UnitRegistry()


@dataclass(frozen=True)
class Prior:
    """A prior of one free parameter.

    Attributes
    ----------
    dist : {'uniform', 'log_uniform', 'normal'}
    low, high : float
        Support of ``uniform`` and ``log_uniform`` (``0 < low`` for the latter).
    mean, sd : float
        Of ``normal``.
    """

    dist: str
    low: float = -math.inf
    high: float = math.inf
    mean: float = 0.0
    sd: float = 1.0

    @property
    def bounds(self) -> tuple[float, float]:
        """Support ``(low, high)`` (infinite for ``normal``)."""
        return (self.low, self.high) if self.dist != "normal" else (-math.inf, math.inf)

    def logpdf(self, value):
        """Log density at ``value`` (``-inf`` outside the support)."""
        v = np.asarray(value, dtype=float)
        if self.dist == "normal":
            out = -0.5 * ((v - self.mean) / self.sd) ** 2 - math.log(self.sd * math.sqrt(2 * math.pi))
        else:
            inside = (v >= self.low) & (v <= self.high)
            if self.dist == "uniform":
                dens = np.full(v.shape, -math.log(self.high - self.low))
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    dens = -np.log(v) - math.log(math.log(self.high / self.low))
            out = np.where(inside, dens, -np.inf)
        return out if out.ndim else float(out)

    def sample(self, rng: np.random.Generator, size=None):
        """Draw from the prior with the given generator."""
        if self.dist == "normal":
            return rng.normal(self.mean, self.sd, size)
        if self.dist == "uniform":
            return rng.uniform(self.low, self.high, size)
        return np.exp(rng.uniform(math.log(self.low), math.log(self.high), size))


@dataclass(frozen=True)
class Parameter:
    """A free parameter of a card: default value, prior, and where the default comes from."""

    name: str
    default: float
    prior: Prior
    description: str = ""
    source: str = ""


@dataclass(frozen=True, eq=False)
class ModelCard:
    """A validated sintering-model card, all quantities in SI.

    Attributes
    ----------
    name, description, path : str
    mechanisms : tuple of str
        Names in :data:`~sinter4d.sintering.laws.MECHANISMS`.
    saturation : str
        Name in :data:`~sinter4d.sintering.laws.SATURATIONS`.
    atomic_volume_m3, surface_energy_J_m2, melting_point_K : float
    transport : mapping
        Transport kind -> ``(prefactor in SI, activation energy in J/mol)``.
    initial_neck_nm : float
        Neck radius a contact starts with when the shells bridge it (nm).
    shell_packing_fraction : float or None
        Volume fraction of shell material in the shell (shell reservoir only).
    parameters : mapping
        Name -> :class:`Parameter`.
    sources : mapping
        Dotted key -> source of each quantity (provenance).
    """

    name: str
    description: str
    path: str
    mechanisms: tuple[str, ...]
    saturation: str
    atomic_volume_m3: float
    surface_energy_J_m2: float
    melting_point_K: float
    transport: Mapping[str, tuple[float, float]]
    initial_neck_nm: float
    shell_packing_fraction: float | None
    parameters: Mapping[str, Parameter]
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the free parameters, in card order."""
        return tuple(self.parameters)

    @property
    def default_parameters(self) -> dict[str, float]:
        """Default value of each free parameter."""
        return {k: p.default for k, p in self.parameters.items()}

    @property
    def priors(self) -> dict[str, Prior]:
        """Prior of each free parameter."""
        return {k: p.prior for k, p in self.parameters.items()}

    def resolve_parameters(self, params: Mapping[str, float] | None = None) -> dict[str, float]:
        """Defaults overlaid with ``params``; an unknown name raises ``ValueError``."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise ValueError(
                f"model card {self.name!r} has no parameter {unknown[0]!r} (it has {', '.join(self.parameters)})"
            )
        out = self.default_parameters
        out.update({k: float(v) for k, v in params.items()})
        return out

    def multiplier(self, mechanism: str, params: Mapping[str, float]) -> float:
        """Factor on the classical C of ``mechanism`` (``10**log10_C_<mechanism>``, 1 if not free)."""
        key = f"log10_C_{mechanism}"
        return 10.0 ** params[key] if key in params else 1.0


def allowed_parameter_names(mechanisms, saturation: str) -> tuple[str, ...]:
    """Parameter names a card with these laws may declare."""
    names = [f"log10_C_{m}" for m in mechanisms]
    if saturation == "shell_reservoir":
        names.append("capture_radius_nm")
    return tuple(names)


class SpecReader:
    """Walks a parsed TOML card or spec and raises one-line SpecErrors naming file and key.

    Shared by the model cards here and the fit specs of
    :mod:`sinter4d.assimilation`, so both report errors the same way.
    """

    def __init__(self, source):
        self.source = str(source)
        self.sources: dict[str, str] = {}

    def fail(self, key: str, what: str):
        raise SpecError(f"{self.source}: {key}: {what}")

    def table(self, doc, key, allowed):
        if not isinstance(doc, dict):
            self.fail(key, f"must be a table, got {type(doc).__name__}")
        for k in doc:
            if k not in allowed:
                self.fail(f"{key}.{k}" if key else k, f"unknown key (allowed: {', '.join(allowed)})")
        return doc

    def number(self, value, key, *, positive=True, allow_zero=False):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, f"must be a number (got {value!r})")
        value = float(value)
        if not math.isfinite(value):
            self.fail(key, f"must be finite (got {value})")
        if positive and (value < 0 or (value == 0 and not allow_zero)):
            self.fail(key, f"must be {'>= 0' if allow_zero else 'positive'} (got {value:g})")
        return value

    def quantity(self, doc, key, unit, what, *, allow_zero=False):
        if doc is None:
            self.fail(key, f"missing {what} (a table {{value, unit, source}} in {unit})")
        self.table(doc, key, _QUANTITY_KEYS)
        for k in ("value", "unit"):
            if k not in doc:
                self.fail(f"{key}.{k}", "missing value" if k == "value" else f"missing unit (expected {unit})")
        value = self.number(doc["value"], f"{key}.value", allow_zero=allow_zero)
        given = doc["unit"]
        if not isinstance(given, str):
            self.fail(f"{key}.unit", f"must be a string, got {given!r}")
        import pint

        ureg = _units()
        try:
            si = ureg.Quantity(value, given.strip() or "dimensionless").to(unit).magnitude
        except pint.DimensionalityError:
            self.fail(f"{key}.unit", f"{given!r} does not match {what} (expected a unit convertible to {unit})")
        except Exception:
            self.fail(f"{key}.unit", f"unknown unit {given!r} (expected a unit convertible to {unit})")
        if "source" in doc:
            if not isinstance(doc["source"], str):
                self.fail(f"{key}.source", "must be a string")
            self.sources[key] = doc["source"]
        return float(si)

    def integer(self, value, key, *, minimum=1):
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be an integer (got {value!r})")
        if value < minimum:
            self.fail(key, f"must be at least {minimum} (got {value})")
        return int(value)

    def string(self, value, key, choices=None):
        if not isinstance(value, str):
            self.fail(key, f"must be a string (got {value!r})")
        if choices is not None and value not in choices:
            self.fail(key, f"unknown choice {value!r} (choose {', '.join(choices)})")
        return value

    def boolean(self, value, key):
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false (got {value!r})")
        return value

    def prior(self, doc, key, *, positive_support=False):
        self.table(doc, key, ("dist", "low", "high", "mean", "sd"))
        dist = doc.get("dist")
        if dist not in PRIOR_KINDS:
            self.fail(f"{key}.dist", f"unknown prior {dist!r} (choose {', '.join(PRIOR_KINDS)})")
        if dist == "normal":
            if positive_support:
                self.fail(f"{key}.dist", "a positive quantity needs a uniform or log_uniform prior")
            for k in ("mean", "sd"):
                if k not in doc:
                    self.fail(f"{key}.{k}", "missing value")
            extra = [k for k in ("low", "high") if k in doc]
            if extra:
                self.fail(f"{key}.{extra[0]}", "not used by a normal prior")
            return Prior("normal", mean=self.number(doc["mean"], f"{key}.mean", positive=False),
                         sd=self.number(doc["sd"], f"{key}.sd"))
        for k in ("low", "high"):
            if k not in doc:
                self.fail(f"{key}.{k}", "missing value")
        extra = [k for k in ("mean", "sd") if k in doc]
        if extra:
            self.fail(f"{key}.{extra[0]}", f"not used by a {dist} prior")
        low = self.number(doc["low"], f"{key}.low", positive=dist == "log_uniform" or positive_support,
                          allow_zero=dist == "uniform")
        high = self.number(doc["high"], f"{key}.high", positive=False)
        if not high > low:
            self.fail(f"{key}.high", f"must exceed low ({low:g}) (got {high:g})")
        return Prior(dist, low=low, high=high)

    def path(self, value, key, base: Path | None) -> Path:
        self.string(value, key)
        if not value:
            self.fail(key, "empty path")
        p = Path(value)
        if not p.is_absolute() and base is not None:
            p = base / p
        return p



def find_model_card(name: str, spec_path: str | Path | None = None, *, key: str = "model") -> Path:
    """Find the model card a spec names.

    ``name`` may be a path (absolute, relative to the working folder or to the
    spec's folder) or a bare card name looked up in the ``models/`` folder
    beside the spec's folder (``experiments/../models/NAME.toml``), then in
    ``./models``.

    Parameters
    ----------
    name : str
        Card name or path.
    spec_path : str or Path, optional
        The spec that names it.
    key : str
        The spec's key holding ``name`` (for the error message).

    Raises
    ------
    SpecError
        When no such card exists.
    """
    candidates = [Path(name)]
    if spec_path is not None:
        here = Path(spec_path).resolve().parent
        candidates += [here / name, here.parent / "models" / f"{name}.toml", here.parent / "models" / name]
    candidates.append(Path("models") / f"{name}.toml")
    for cand in candidates:
        if cand.is_file():
            return cand
    raise SpecError(f"{spec_path or '<spec>'}: {key}: no model card named {name!r} (looked in models/)")


def parse_model_card(doc: dict, *, source: str | Path = "<card>") -> ModelCard:
    """Validate a parsed card (a dict) and build a :class:`ModelCard`.

    Raises
    ------
    SpecError
        One line ``"<source>: <dotted.key>: <what is wrong>"``.
    """
    r = SpecReader(source)
    r.table(doc, "", _TOP_KEYS)
    for key in ("name", "mechanisms", "material", "transport", "parameters"):
        if key not in doc:
            r.fail(key, "missing key")
    name = doc["name"]
    if not isinstance(name, str) or not name:
        r.fail("name", f"must be a non-empty string, got {name!r}")
    description = doc.get("description", "")
    if not isinstance(description, str):
        r.fail("description", "must be a string")

    mechs = doc["mechanisms"]
    if not isinstance(mechs, list) or not mechs:
        r.fail("mechanisms", "must be a non-empty list of law names")
    for i, m in enumerate(mechs):
        if not isinstance(m, str) or m not in MECHANISMS:
            r.fail(f"mechanisms[{i}]", f"unknown law {m!r} (known: {', '.join(MECHANISMS)})")
    if len(set(mechs)) != len(mechs):
        r.fail("mechanisms", "a law is named twice")
    saturation = doc.get("saturation", "none")
    if saturation not in SATURATIONS:
        r.fail("saturation", f"unknown law {saturation!r} (known: {', '.join(SATURATIONS)})")

    material = r.table(doc["material"], "material", tuple(_MATERIAL))
    mat = {k: r.quantity(material.get(k), f"material.{k}", unit, what) for k, (unit, what) in _MATERIAL.items()}

    needed = sorted({MECHANISMS[m].transport for m in mechs})
    transport_doc = r.table(doc["transport"], "transport", needed)
    transport = {}
    for kind in needed:
        if kind not in transport_doc:
            r.fail(
                f"transport.{kind}",
                f"missing (needed by {', '.join(m for m in mechs if MECHANISMS[m].transport == kind)})",
            )
        tdoc = r.table(transport_doc[kind], f"transport.{kind}", _TRANSPORT_KEYS)
        pre = r.quantity(
            tdoc.get("prefactor"),
            f"transport.{kind}.prefactor",
            TRANSPORTS[kind].unit,
            f"the {kind} transport prefactor",
        )
        q = r.quantity(
            tdoc.get("activation_energy"),
            f"transport.{kind}.activation_energy",
            "J/mol",
            "an activation energy per amount (e.g. kJ/mol or eV/particle)",
            allow_zero=True,
        )
        transport[kind] = (pre, q)

    contact = r.table(doc.get("contact", {}), "contact", ("initial_neck",))
    initial_neck = r.quantity(
        contact.get("initial_neck"), "contact.initial_neck", "nm", "the initial neck radius (a length)"
    )

    packing = None
    if saturation == "shell_reservoir":
        res = r.table(doc.get("reservoir", {}), "reservoir", ("shell_packing_fraction",))
        packing = r.quantity(
            res.get("shell_packing_fraction"),
            "reservoir.shell_packing_fraction",
            "dimensionless",
            "a volume fraction (dimensionless)",
        )
        if packing > 1:
            r.fail("reservoir.shell_packing_fraction.value", f"must be at most 1 (got {packing:g})")
    elif "reservoir" in doc:
        r.fail("reservoir", f'only used with saturation = "shell_reservoir" (this card has {saturation!r})')

    allowed = allowed_parameter_names(mechs, saturation)
    params_doc = r.table(doc["parameters"], "parameters", allowed)
    parameters = {}
    for pname, pdoc in params_doc.items():
        key = f"parameters.{pname}"
        r.table(pdoc, key, _PARAMETER_KEYS)
        for k in ("default", "prior"):
            if k not in pdoc:
                r.fail(f"{key}.{k}", "missing value")
        default = r.number(pdoc["default"], f"{key}.default", positive=pname.endswith("_nm"))
        prior = r.prior(pdoc["prior"], f"{key}.prior")
        if not np.isfinite(prior.logpdf(default)):
            r.fail(f"{key}.default", f"{default:g} lies outside its prior's support {prior.bounds}")
        for k in ("description", "source"):
            if not isinstance(pdoc.get(k, ""), str):
                r.fail(f"{key}.{k}", "must be a string")
        parameters[pname] = Parameter(pname, default, prior, pdoc.get("description", ""), pdoc.get("source", ""))
    if saturation == "shell_reservoir" and "capture_radius_nm" not in parameters:
        r.fail("parameters.capture_radius_nm", "missing (the shell_reservoir law needs it)")

    return ModelCard(
        name=name,
        description=description,
        path=str(source),
        mechanisms=tuple(mechs),
        saturation=saturation,
        atomic_volume_m3=mat["atomic_volume"],
        surface_energy_J_m2=mat["surface_energy"],
        melting_point_K=mat["melting_point"],
        transport=MappingProxyType(transport),
        initial_neck_nm=initial_neck,
        shell_packing_fraction=packing,
        parameters=MappingProxyType(parameters),
        sources=MappingProxyType(dict(r.sources)),
    )


def load_model_card(path: str | Path) -> ModelCard:
    """Read and validate a model card.

    Parameters
    ----------
    path : str or Path
        A TOML file laid out as in ``models/README.md``.

    Returns
    -------
    ModelCard

    Raises
    ------
    SpecError
        Missing file, bad TOML, an unknown key, a missing or negative value,
        an unknown law name or a unit of the wrong dimension; one line
        ``"models/x.toml: <dotted.key>: <what is wrong>"``.

    Examples
    --------
    >>> card = load_model_card("models/cu_shell_reservoir.toml")  # doctest: +SKIP
    >>> card.parameter_names  # doctest: +SKIP
    ('log10_C_grain_boundary_diffusion', 'log10_C_surface_diffusion', 'capture_radius_nm')
    """
    return parse_model_card(read_toml(path), source=path)
