"""Sintering-model cards (``models/*.toml``): loading and validation.

A card names mechanisms and a saturation law from the registries of
:mod:`sinter4d.sintering.laws`, gives the material data (each value with its
unit and source), and declares the free parameters with their defaults (and the prior each
proposes to a fit, read by :mod:`sinter4d.assimilation.priors`). It never
holds code. The layout is described in ``models/README.md``.

Every physical quantity is a table ``{value = ..., unit = "...", source = "..."}``;
the unit is converted with pint to the SI unit the law needs, and a unit of the
wrong dimension (``kJ`` for an activation energy, ``m^2/s`` for a boundary
``delta*D0``) is an error. Free parameters are plain numbers whose unit is in
their name (``capture_radius_nm``) or that are dimensionless
(``log10_C_<mechanism>``, the log10 of the factor on the mechanism's classical
constant C).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from ..errors import InputError, SpecError
from ..specs import NonNegative, Number, Positive, Spec, Text, choice, fail, load, parse
from .laws import MECHANISMS, SATURATIONS, TRANSPORTS

_MATERIAL = {
    "atomic_volume": ("m^3", "atomic volume Omega"),
    "surface_energy": ("J/m^2", "surface energy gamma_s"),
    "melting_point": ("K", "melting point T_m"),
}

_Mechanism = choice(MECHANISMS, noun="law", verb="known:")
_Saturation = choice(SATURATIONS, noun="law", verb="known:")


@lru_cache(maxsize=1)
def _units():
    import pint

    return pint.UnitRegistry()


class Quantity(Spec):
    """A physical quantity of a card: ``{value = ..., unit = "...", source = "..."}`` (value > 0)."""

    value: Positive
    unit: Text
    source: Text = ""

    def to_si(self, unit: str, what: str, *at: str) -> float:
        """The value in ``unit``; a unit of another dimension fails at ``<at>.unit``."""
        import pint

        try:
            si = _units().Quantity(self.value, self.unit.strip() or "dimensionless").to(unit).magnitude
        except pint.DimensionalityError:
            raise fail(f"{self.unit!r} does not match {what} (expected a unit convertible to {unit})",
                       *at, "unit") from None
        except Exception:
            raise fail(f"unknown unit {self.unit!r} (expected a unit convertible to {unit})", *at, "unit") from None
        return float(si)


class EnergyQuantity(Quantity):
    """A quantity that may be 0 (an activation energy)."""

    value: NonNegative


class Material(Spec):
    """``[material]``: atomic volume, surface energy, melting point."""

    atomic_volume: Quantity
    surface_energy: Quantity
    melting_point: Quantity


class TransportData(Spec):
    """``[transport.<kind>]``: the diffusion prefactor and the activation energy."""

    prefactor: Quantity
    activation_energy: EnergyQuantity


class Contact(Spec):
    """``[contact]``: the neck a contact starts with."""

    initial_neck: Quantity


class Reservoir(Spec):
    """``[reservoir]``: packing of the shell (shell reservoir only)."""

    shell_packing_fraction: Quantity


class Parameter(Spec):
    """A free parameter of a card: default value, the prior it proposes (a table read by the
    assimilation, :func:`sinter4d.assimilation.priors.card_priors`), and where the default comes from."""

    default: Number
    prior: dict
    description: Text = ""
    source: Text = ""


class ModelCard(Spec):
    """A validated sintering-model card; the quantities in SI through the properties.

    Attributes
    ----------
    name, description : str
    path : str
        The file it came from (``"<card>"`` for a dict).
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

    name: Text
    description: Text = ""
    mechanisms: tuple[_Mechanism, ...]
    saturation: _Saturation = "none"
    material: Material
    transport_data: dict[str, TransportData] = Field(alias="transport")
    contact: Contact
    reservoir: Reservoir | None = None
    parameters: dict[str, Parameter]

    _path: str = PrivateAttr("<card>")

    def __eq__(self, other):  # one object per file read: cached per card (kinetics), compared by identity
        return self is other

    __hash__ = object.__hash__
    _si: dict = PrivateAttr(default_factory=dict)
    _sources: dict = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo):
        if not self.name:
            raise fail(f"must be a non-empty string, got {self.name!r}", "name")
        mechs = self.mechanisms
        if not mechs:
            raise fail("must be a non-empty list of law names", "mechanisms")
        if len(set(mechs)) != len(mechs):
            raise fail("a law is named twice", "mechanisms")
        si, sources = {}, {}

        def convert(q: Quantity, unit: str, what: str, *at: str) -> float:
            value = q.to_si(unit, what, *at)
            if "source" in q.model_fields_set:
                sources[".".join(at)] = q.source
            return value

        for key, (unit, what) in _MATERIAL.items():
            si[key] = convert(getattr(self.material, key), unit, what, "material", key)
        needed = sorted({MECHANISMS[m].transport for m in mechs})
        for kind in self.transport_data:
            if kind not in needed:
                raise fail(f"unknown key (allowed: {', '.join(needed)})", "transport", kind)
        transport = {}
        for kind in needed:
            if kind not in self.transport_data:
                users = ", ".join(m for m in mechs if MECHANISMS[m].transport == kind)
                raise fail(f"missing (needed by {users})", "transport", kind)
            t = self.transport_data[kind]
            transport[kind] = (
                convert(t.prefactor, TRANSPORTS[kind].unit, f"the {kind} transport prefactor",
                        "transport", kind, "prefactor"),
                convert(t.activation_energy, "J/mol", "an activation energy per amount (e.g. kJ/mol or eV/particle)",
                        "transport", kind, "activation_energy"),
            )
        si["transport"] = transport  # plain dicts, read-only views out: the card pickles (worker processes)
        si["initial_neck"] = convert(self.contact.initial_neck, "nm", "the initial neck radius (a length)",
                                     "contact", "initial_neck")
        si["packing"] = None
        if self.saturation == "shell_reservoir":
            if self.reservoir is None:
                raise fail("missing key", "reservoir", "shell_packing_fraction")
            packing = convert(self.reservoir.shell_packing_fraction, "dimensionless",
                              "a volume fraction (dimensionless)", "reservoir", "shell_packing_fraction")
            if packing > 1:
                raise fail(f"must be at most 1 (got {packing:g})", "reservoir", "shell_packing_fraction", "value")
            si["packing"] = packing
        elif self.reservoir is not None:
            raise fail(f'only used with saturation = "shell_reservoir" (this card has {self.saturation!r})',
                       "reservoir")
        allowed = allowed_parameter_names(mechs, self.saturation)
        for pname, param in self.parameters.items():
            if pname not in allowed:
                raise fail(f"unknown key (allowed: {', '.join(allowed)})", "parameters", pname)
            if pname.endswith("_nm") and not param.default > 0:
                raise fail(f"must be positive (got {param.default:g})", "parameters", pname, "default")
        if self.saturation == "shell_reservoir" and "capture_radius_nm" not in self.parameters:
            raise fail("missing (the shell_reservoir law needs it)", "parameters", "capture_radius_nm")
        self._si = si
        self._sources = sources
        self._path = str((info.context or {}).get("source", "<card>"))
        return self

    @property
    def path(self) -> str:
        """The file the card came from."""
        return self._path

    @property
    def sources(self) -> Mapping[str, str]:
        """Dotted key -> source of each quantity (provenance)."""
        return MappingProxyType(self._sources)

    @property
    def atomic_volume_m3(self) -> float:
        """Atomic volume Omega (m^3)."""
        return self._si["atomic_volume"]

    @property
    def surface_energy_J_m2(self) -> float:
        """Surface energy gamma_s (J/m^2)."""
        return self._si["surface_energy"]

    @property
    def melting_point_K(self) -> float:
        """Melting point T_m (K)."""
        return self._si["melting_point"]

    @property
    def transport(self) -> Mapping[str, tuple[float, float]]:
        """Transport kind -> ``(prefactor in SI, activation energy in J/mol)``."""
        return MappingProxyType(self._si["transport"])

    @property
    def initial_neck_nm(self) -> float:
        """Neck radius a contact starts with when the shells bridge it (nm)."""
        return self._si["initial_neck"]

    @property
    def shell_packing_fraction(self) -> float | None:
        """Volume fraction of shell material in the shell (shell reservoir only)."""
        return self._si["packing"]

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the free parameters, in card order."""
        return tuple(self.parameters)

    @property
    def default_parameters(self) -> dict[str, float]:
        """Default value of each free parameter."""
        return {k: p.default for k, p in self.parameters.items()}

    def resolve_parameters(self, params: Mapping[str, float] | None = None) -> dict[str, float]:
        """Defaults overlaid with ``params``; an unknown name raises :class:`~sinter4d.errors.InputError`."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(self.parameters))
        if unknown:
            raise InputError(
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


SHIPPED_MODELS = Path(__file__).resolve().parents[3] / "models"
"""The project's own cards: ``models/`` of the checkout the package runs from (a clone or
an editable install; a wheel has none). A bare card name falls back to it, so a run
folder's ``spec.json`` naming ``cu_shell_reservoir`` works from any working folder."""


def find_model_card(name: str, spec_path: str | Path | None = None, *, key: str = "model") -> Path:
    """Find the model card a spec names.

    ``name`` may be a path (absolute, relative to the working folder or to the
    spec's folder) or a bare card name looked up in the ``models/`` folder
    beside the spec's folder (``experiments/../models/NAME.toml``), then in
    ``./models``, then among the project's own cards (:data:`SHIPPED_MODELS`).

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
    candidates += [Path("models") / f"{name}.toml", SHIPPED_MODELS / f"{name}.toml"]
    for cand in candidates:
        if cand.is_file():
            return cand
    raise SpecError(f"{spec_path or '<spec>'}: {key}: no model card named {name!r} (looked in models/)")


def card_reference(path: str | Path) -> str:
    """How a spec written by the project names a card it found at ``path``.

    A shipped card (:data:`SHIPPED_MODELS`) by its bare name, so the spec
    resolves in any checkout (a calibration resumed from another clone);
    any other card by its absolute path.
    """
    path = Path(path).resolve()
    shipped = SHIPPED_MODELS / path.name
    if path.suffix == ".toml" and shipped.is_file() and shipped.resolve() == path:
        return path.stem
    return str(path)


def parse_model_card(doc: dict, *, source: str | Path = "<card>") -> ModelCard:
    """Validate a parsed card (a dict) and build a :class:`ModelCard`.

    Raises
    ------
    SpecError
        One line ``"<source>: <dotted.key>: <what is wrong>"``.
    """
    return parse(ModelCard, doc, source=source)


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
    return load(ModelCard, path)
