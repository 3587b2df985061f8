"""Prior distributions of the sampled parameters, and the priors a model card proposes.

A prior is a table ``{dist = "uniform", low = ..., high = ...}``,
``{dist = "log_uniform", low = ..., high = ...}`` (``0 < low``) or
``{dist = "normal", mean = ..., sd = ...}``; fit specs give them
(``assimilation/README.md``), and a model card proposes one per free
parameter (``models/README.md``). The physics (:mod:`sinter4d.sintering`)
reads the card's parameters and defaults only; the card's ``prior`` tables
are read here (:func:`card_priors`).
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from pydantic import AfterValidator, model_validator

from ..errors import SpecError
from ..specs import Number, Positive, Spec, check_choice, fail, parse

__all__ = ["PRIOR_KINDS", "PositivePrior", "Prior", "card_priors"]

#: Prior distributions a parameter may have.
PRIOR_KINDS = ("uniform", "log_uniform", "normal")
_KEYS = {"normal": ("mean", "sd"), "uniform": ("low", "high"), "log_uniform": ("low", "high")}


class Prior(Spec):
    """A prior of one parameter.

    ``Prior("uniform", low=-3.0, high=5.0)``; from a TOML table with
    :func:`sinter4d.specs.parse`.

    Attributes
    ----------
    dist : {'uniform', 'log_uniform', 'normal'}
    low, high : float
        Support of ``uniform`` and ``log_uniform`` (``0 < low`` for the latter).
    mean, sd : float
        Of ``normal``.
    """

    dist: str
    low: Number = -math.inf
    high: Number = math.inf
    mean: Number = 0.0
    sd: Positive = 1.0

    def __init__(self, dist: str | None = None, /, **data):
        if dist is not None:
            data["dist"] = dist
        super().__init__(**data)

    @model_validator(mode="before")
    @classmethod
    def _keys_of_the_distribution(cls, doc):
        if not isinstance(doc, dict):
            return doc
        try:
            dist = check_choice(doc.get("dist"), PRIOR_KINDS, noun="prior")
        except ValueError as exc:
            raise fail(str(exc), "dist") from None
        for key in _KEYS[dist]:
            if key not in doc:
                raise fail("missing key", key)
        for key in ("low", "high", "mean", "sd"):
            if key in doc and key not in _KEYS[dist]:
                raise fail(f"not used by a {dist} prior", key)
        return doc

    @model_validator(mode="after")
    def _support(self):
        if self.dist == "log_uniform" and not self.low > 0:
            raise fail(f"must be positive (got {self.low:g})", "low")
        if self.dist != "normal" and not self.high > self.low:
            raise fail(f"must exceed low ({self.low:g}) (got {self.high:g})", "high")
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        """Support ``(low, high)`` (infinite for ``normal``)."""
        return (self.low, self.high) if self.dist != "normal" else (-math.inf, math.inf)

    def as_dict(self) -> dict[str, object]:
        """``{dist, low, high, mean, sd}`` (for provenance)."""
        return {"dist": self.dist, "low": self.low, "high": self.high, "mean": self.mean, "sd": self.sd}

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


def _positive_support(prior: Prior) -> Prior:
    if prior.dist == "normal":
        raise fail("a positive quantity needs a uniform or log_uniform prior", "dist")
    if prior.low < 0:
        raise fail(f"must be >= 0 (got {prior.low:g})", "low")
    return prior


#: A prior of a positive quantity (a length, a noise level): uniform or log-uniform, ``low >= 0``.
PositivePrior = Annotated[Prior, AfterValidator(_positive_support)]


def card_prior(card, name: str) -> Prior:
    """The prior the model card proposes for its parameter ``name`` (checked against its default)."""
    param = card.parameters[name]
    prior = parse(Prior, param.prior, source=card.path, at=("parameters", name, "prior"))
    if not np.isfinite(prior.logpdf(param.default)):
        raise SpecError(f"{card.path}: parameters.{name}.default: {param.default:g} lies outside "
                        f"its prior's support {prior.bounds}")
    return prior


def card_priors(card) -> dict[str, Prior]:
    """The prior a model card proposes for each of its free parameters, in card order.

    Raises
    ------
    SpecError
        A prior table of the card is invalid, or a default lies outside its
        prior's support: ``"models/x.toml: parameters.<name>.prior.<key>: ..."``.
    """
    return {name: card_prior(card, name) for name in card.parameter_names}
