"""Noise models of the fitted variables: the ``[noise.<variable>]`` tables of a fit spec.

Each fitted variable has Gaussian readings whose sigma is fitted, fixed or
taken from a ``validation.nc``; the neck radius may add an offset per pair
(integrated out), a bias and a gain (:mod:`.likelihood`). Or the whole
observation model is a calibration's reading model (``calibration =
"calibration.nc"``, :mod:`.calibrated`). Layout: ``assimilation/README.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import PlainValidator, model_validator

from ..schema import NECK_READING_REFERENCE_NM
from ..specs import Positive, Spec, Text, check_choice, check_integer, check_number, fail, nested, optional
from .priors import PositivePrior, Prior


#: Prior of a fitted sigma or pair sigma (nm) the spec gives none for.
DEFAULT_SIGMA_PRIOR = Prior("log_uniform", low=0.01, high=100.0)
_NECK_ONLY = ("pair_sigma", "bias", "gain", "reference_nm", "bridged_bias")


class NoiseSpec(Spec):
    """Gaussian noise of one fitted variable.

    Attributes
    ----------
    mode : {'fit', 'fixed', 'validation', 'calibration'}
        Fitted (a free parameter ``sigma_<variable>``), a fixed value, the
        root mean square of the variable in a ``validation.nc``, or the
        calibration's point scatter (with ``calibration``).
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
    bridged_bias_nm : float
        Fixed offset (nm) of the readings of the pairs bridged across a
        surface gap (the forward model's, ``forward.gap = "data"``), added to
        their pair offsets' mean, with ``bridged_prior`` None.
    bridged_prior : Prior or None
        Prior of a sampled offset ``bridged_bias_<variable>`` (nm). Neck radius only.
    exclude_series : tuple of int
        Tilt series (0-based) whose points of this variable leave the likelihood.
    calibration : str or None
        Path of a ``calibration.nc`` whose reading model is the observation
        model (:mod:`.calibrated`); the neck then has no pair, bias or gain
        settings of its own (they are the calibration's).
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
    bridged_bias_nm: float = 0.0
    bridged_prior: Prior | None = None
    exclude_series: tuple[int, ...] = ()
    calibration: str | None = None

    def __init__(self, mode: str | None = None, /, **data):
        if mode is not None:
            data["mode"] = mode
        super().__init__(**data)


def _mode_or_positive(modes):
    def check(value):
        return check_choice(value, modes) if isinstance(value, str) else check_number(value, positive=True)
    return PlainValidator(check)


def _number_or_prior(positive: bool):
    def check(value):
        return nested(Prior, value) if isinstance(value, dict) else check_number(value, positive=positive)
    return PlainValidator(check)


def _series(value) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise ValueError("must be a list of tilt-series indices (0 = the first)")
    for i, k in enumerate(value):
        try:
            check_integer(k, minimum=0)
        except ValueError as exc:
            raise fail(str(exc), i) from None
    if len(set(value)) != len(value):
        raise ValueError("a series is named twice")
    return tuple(sorted(value))


class NoiseTable(Spec):
    """``[noise.<variable>]`` as written: ``sigma`` is ``"fit"``, ``"validation"`` or a value (nm), etc."""

    sigma: Annotated[str | float, _mode_or_positive(("fit", "validation", "calibration"))] = "fit"
    prior: PositivePrior | None = None
    validation: optional(Text) = None
    pair_sigma: Annotated[str | float | None, _mode_or_positive(("fit",))] = None
    pair_prior: PositivePrior | None = None
    bias: Annotated[float | Prior | None, _number_or_prior(positive=False)] = None
    gain: Annotated[float | Prior | None, _number_or_prior(positive=True)] = None
    reference_nm: optional(Positive) = None
    bridged_bias: Annotated[float | Prior | None, _number_or_prior(positive=False)] = None
    exclude_series: Annotated[tuple[int, ...], PlainValidator(_series)] = ()
    calibration: optional(Text) = None

    @model_validator(mode="after")
    def _consistent(self):
        mode = self.sigma_mode
        if mode == "calibration" and self.calibration is None:
            raise fail('missing: the calibration.nc to take the observation model from', "calibration")
        if self.prior is not None and mode != "fit":
            raise fail('only used with sigma = "fit"', "prior")
        if self.validation is not None and mode != "validation":
            raise fail('only used with sigma = "validation"', "validation")
        if self.reference_nm is not None and self.gain is None:
            raise fail("only used with a gain", "reference_nm")
        if self.pair_prior is not None and self.pair_sigma != "fit":
            raise fail('only used with pair_sigma = "fit"', "pair_prior")
        if mode == "validation" and self.validation is None:
            raise fail("missing: the validation.nc to take sigma from", "validation")
        return self

    @property
    def sigma_mode(self) -> str:
        """``fit``, ``validation``, ``calibration`` or ``fixed``; a table with a calibration and no sigma: ``calibration``."""
        if self.calibration is not None and "sigma" not in self.model_fields_set:
            return "calibration"
        return self.sigma if isinstance(self.sigma, str) else "fixed"

    def resolve(self, base: Path | None) -> NoiseSpec:
        """The noise model this table declares (relative paths from ``base``)."""
        extra = {"exclude_series": self.exclude_series}
        if self.calibration is not None:
            extra["calibration"] = str(relative_path(self.calibration, base, "calibration"))
        if self.sigma_mode == "calibration":
            return NoiseSpec("calibration", **extra)
        if isinstance(self.bias, Prior):
            extra["bias_prior"] = self.bias
        elif self.bias is not None:
            extra["bias_nm"] = self.bias
        if isinstance(self.gain, Prior):
            extra["gain_prior"] = self.gain
        elif self.gain is not None:
            extra["gain"] = self.gain
        if self.reference_nm is not None:
            extra["reference_nm"] = self.reference_nm
        if isinstance(self.bridged_bias, Prior):
            extra["bridged_prior"] = self.bridged_bias
        elif self.bridged_bias is not None:
            extra["bridged_bias_nm"] = self.bridged_bias
        if self.pair_sigma == "fit":
            extra.update(pair_mode="fit", pair_prior=self.pair_prior or DEFAULT_SIGMA_PRIOR)
        elif self.pair_sigma is not None:
            extra.update(pair_mode="fixed", pair_sigma_nm=self.pair_sigma)
        if self.sigma == "fit":
            return NoiseSpec("fit", prior=self.prior or DEFAULT_SIGMA_PRIOR, **extra)
        if self.sigma == "validation":
            return NoiseSpec("validation", validation=str(relative_path(self.validation, base, "validation")), **extra)
        return NoiseSpec("fixed", sigma_nm=self.sigma, **extra)


class NoiseTables(Spec):
    """``[noise]``: one table per fitted variable."""

    neck_radius_nm: NoiseTable | None = None
    distance_nm: NoiseTable | None = None

    @model_validator(mode="after")
    def _neck_only(self):
        neck = self.neck_radius_nm
        if neck is not None and neck.calibration is not None:
            for key in ("sigma", "prior", *_NECK_ONLY, "pair_prior"):
                if key in neck.model_fields_set and not (key == "sigma" and neck.sigma == "calibration"):
                    raise fail("the calibration gives a calibrated neck's scatter, pair offsets and reading curve",
                               "neck_radius_nm", key)
        if self.distance_nm is not None:
            for key in _NECK_ONLY:
                if key in self.distance_nm.model_fields_set:
                    raise fail("neck_radius_nm only (a distance has its own initial value per pair)",
                               "distance_nm", key)
        return self


def relative_path(value: str, base: Path | None, *at) -> Path:
    """``value`` as a path, taken from ``base`` when relative; an empty one fails at key ``at``."""
    if not value:
        raise fail("empty path", *at)
    p = Path(value)
    return base / p if not p.is_absolute() and base is not None else p


def calibrated_tables(tables: dict, variables, calibration) -> dict:
    """``[noise]`` tables (as parsed) with every fitted variable's observation model from ``calibration``.

    Each keeps its ``exclude_series``; the distance keeps its ``sigma``,
    ``prior`` and ``validation`` (its own point scatter, "fit" by default:
    docs/design.md, "Calibration: the fit's observation model"); the neck
    takes everything else from the calibration.
    """
    out = dict(tables)
    for v in variables:
        old = tables.get(v) if isinstance(tables.get(v), dict) else {}
        kept = ("exclude_series",) if v == "neck_radius_nm" else ("exclude_series", "sigma", "prior", "validation")
        out[v] = {"calibration": str(Path(calibration).resolve()), "sigma": "calibration" if v == "neck_radius_nm"
                  else "fit", **{k: old[k] for k in kept if k in old}}
    return out
