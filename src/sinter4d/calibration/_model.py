"""The reading model: measured = f(true value, orientation to the tilt axis, bridge), with its scatter.

For a metric m (neck radius or centre distance), with g the metric's
transform (the square for the neck, the identity for the distance):

    g(measured) = b0 + b1 (g(true) - g(ref)) + b2 cos 2α + b3 sin² ε + b4 bridged
                  + u_run + u_pair + e

α is the in-plane angle of the pair's axis from the tilt axis (0 = along
it), ε its elevation out of the film's plane, ``bridged`` 1 for a pair whose
surface gap exceeds :data:`BRIDGED_GAP_NM`; u_run ~ N(0, σ_run²) is shared
by a run (twin), u_pair ~ N(0, σ_pair²) by a pair's readings within a run,
e ~ N(0, σ_point²) is each reading's own. For the neck the square makes the
model the neck fill of a blur (r_meas² − r_true² = K, docs/design.md,
"Validation"): small necks read wide by a constant K, not by a constant nm.

Fit (:func:`fit_reading_model`): REML by statsmodels' ``MixedLM``, the runs
as groups (random intercepts) with a variance component for the pairs within
a run; a run effect on its boundary falls back to pairs as the groups and
σ_run = 0. Inversion
(:func:`invert_reading`): the true value that reads as measured, with its
s.d. from the coefficients' covariance (delta method) and the scatter.
docs/design.md, "Calibration".
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec
from statsmodels.tools.sm_exceptions import ConvergenceWarning, SingularMatrixWarning

from ..errors import InputError
from ..schema import NECK_READING_REFERENCE_NM

__all__ = [
    "BRIDGED_GAP_NM",
    "DISTANCE_REFERENCE_NM",
    "FIXED_GAINS",
    "READING_TERMS",
    "TRANSFORMS",
    "ReadingModel",
    "design_matrix",
    "fit_domain",
    "fit_reading_model",
    "invert_reading",
]

log = logging.getLogger(__name__)

REML_METHODS = ("bfgs", "lbfgs", "cg")
"""The optimisers MixedLM tries in turn until one converges (its own default order)."""
BOUNDARY_LOGLIK = 1.35
"""REML log-likelihood (nats) within which the fit without the run effect replaces a nested fit
that did not converge: half the 95 % point (2.71) of the likelihood ratio's 50:50 χ²₀:χ²₁
mixture for a variance at its boundary (Self & Liang 1987, doi:10.1080/01621459.1987.10478472)."""

READING_TERMS = ("intercept", "true", "along_tilt_axis", "elevation", "bridged")
"""The model's terms: b0 (g at the reference), b1 (gain in g), cos 2α, sin² ε, bridged."""
BRIDGED_GAP_NM = 5.0
"""Surface gap (nm) beyond which a pair is a bridged one: the reading curve's own cut
(:data:`sinter4d.validation.READING_CURVE_MAX_GAP_NM`)."""
DISTANCE_REFERENCE_NM = 150.0
"""Reference centre distance (nm): two touching cores of the paper's mean diameter (NP-150)."""
TRANSFORMS = {"neck_radius_nm": "square", "distance_nm": "identity"}
"""The transform g of each calibrated metric."""
REFERENCES = {"neck_radius_nm": NECK_READING_REFERENCE_NM, "distance_nm": DISTANCE_REFERENCE_NM}
"""The reference value (nm) of each calibrated metric."""
FIXED_GAINS = {"neck_radius_nm": None, "distance_nm": 1.0}
"""The gain b1 each metric's fit holds fixed (None: fitted). The distance keeps gain 1: in
the plane the pipeline reads distances without a gain worth correcting, and a fitted one
(0.93–0.96 on the quick twins) only added error away from the reference in
leave-one-twin-out (docs/validation.md, "Calibration of the quick acquisition")."""


def _g(x, transform: str):
    x = np.asarray(x, dtype=float)
    return x * x if transform == "square" else x


def _g_inv(v, transform: str):
    v = np.asarray(v, dtype=float)
    return np.sqrt(np.maximum(v, 0.0)) if transform == "square" else v


@dataclass(frozen=True)
class ReadingModel:
    """A fitted reading model of one metric (see the module docstring).

    Attributes
    ----------
    metric : str
        ``neck_radius_nm`` or ``distance_nm``.
    transform : str
        ``square`` or ``identity`` (g).
    reference_nm : float
        ref, nm.
    coef : (5,) ndarray
        b0..b4 over :data:`READING_TERMS` (units of g: nm² for the neck, nm
        for the distance; b1 is 1).
    cov : (5, 5) ndarray
        Their covariance.
    sigma_run, sigma_pair, sigma_point : float
        The scatter between runs, between pairs of a run, between readings
        of a pair (units of g).
    n_points, n_pairs, n_runs : int
        What the fit saw.
    """

    metric: str
    transform: str
    reference_nm: float
    coef: np.ndarray
    cov: np.ndarray
    sigma_run: float
    sigma_pair: float
    sigma_point: float
    n_points: int = 0
    n_pairs: int = 0
    n_runs: int = 0

    def from_g(self, values) -> np.ndarray:
        """Values in units of g back in nm (g⁻¹; a negative square reads as 0)."""
        return _g_inv(values, self.transform)

    @property
    def sigma_total(self) -> float:
        """S.d. of one reading about the model (units of g)."""
        return float(np.sqrt(self.sigma_run**2 + self.sigma_pair**2 + self.sigma_point**2))


def design_matrix(true, in_plane_deg, elevation_deg, bridged, *, transform: str, reference_nm: float) -> np.ndarray:
    """(n, 5) design matrix over :data:`READING_TERMS`.

    Parameters
    ----------
    true : (n,) array_like
        True values, nm.
    in_plane_deg, elevation_deg : (n,) array_like
        In-plane angle of the pair's axis from the tilt axis and its
        elevation out of the film's plane, degrees.
    bridged : (n,) array_like of bool
    transform : {'square', 'identity'}
    reference_nm : float
    """
    t = np.asarray(true, dtype=float).ravel()
    a = np.radians(np.asarray(in_plane_deg, dtype=float).ravel())
    e = np.radians(np.asarray(elevation_deg, dtype=float).ravel())
    b = np.asarray(bridged, dtype=float).ravel()
    if not (t.size == a.size == e.size == b.size):
        raise InputError(f"true, in_plane_deg, elevation_deg and bridged differ in size ({t.size}, {a.size}, "
                         f"{e.size}, {b.size})")
    return np.column_stack([np.ones_like(t), _g(t, transform) - _g(reference_nm, transform), np.cos(2 * a),
                            np.sin(e) ** 2, b])


def fit_domain(metric: str, measured, true, *, min_true_nm: float = 0.0) -> np.ndarray:
    """Which readings a metric's reading model is fitted to (bool, the shape of ``measured``).

    Finite readings of true values ``>= min_true_nm``; for the neck, only
    necks read above 0 (a pair read apart shows no neck).
    """
    y = np.asarray(measured, dtype=float)
    t = np.asarray(true, dtype=float)
    keep = np.isfinite(y) & np.isfinite(t) & (t >= min_true_nm)
    if metric == "neck_radius_nm":
        keep &= y > 0
    return keep


def _codes(labels) -> np.ndarray:
    _, inverse = np.unique(np.asarray(labels).astype(str), return_inverse=True)
    return inverse


def fit_reading_model(
    measured, true, in_plane_deg, elevation_deg, bridged, run, pair, *, metric: str = "neck_radius_nm",
    min_true_nm: float = 0.0,
    gain: float | None = None,
) -> ReadingModel:
    """Fit the reading model of one metric to twins' readings against their truth.

    Parameters
    ----------
    measured, true : (n,) array_like
        Measured and true values, nm; non-finite rows are left out (and, for
        the neck, readings of 0: a pair read apart shows no neck).
    in_plane_deg, elevation_deg, bridged
        As :func:`design_matrix`.
    run, pair : (n,) array_like
        Labels: the twin of each reading, and its pair (unique within the run).
    metric : {'neck_radius_nm', 'distance_nm'}
    min_true_nm : float, optional
        Readings of true values below this (nm) are left out (default 0: all).
    gain : float, optional
        Hold b1 at this value (its variance 0) instead of fitting it.

    Returns
    -------
    ReadingModel

    Raises
    ------
    InputError
        An unknown metric, sizes that differ, or too few readings for the
        model's five terms (a term no reading varies is fixed at 0).
    """
    if metric not in TRANSFORMS:
        raise InputError(f"metric={metric!r}: choose one of {', '.join(TRANSFORMS)}")
    transform, ref = TRANSFORMS[metric], REFERENCES[metric]
    y = np.asarray(measured, dtype=float).ravel()
    x = design_matrix(true, in_plane_deg, elevation_deg, bridged, transform=transform, reference_nm=ref)
    run_l, pair_l = np.asarray(run).ravel(), np.asarray(pair).ravel()
    if not (y.size == x.shape[0] == run_l.size == pair_l.size):
        raise InputError("measured, true, run and pair differ in size")
    keep = fit_domain(metric, y, np.asarray(true, dtype=float).ravel(), min_true_nm=min_true_nm)
    keep &= np.isfinite(x).all(axis=1)
    y, x, run_l, pair_l = _g(y[keep], transform), x[keep], run_l[keep], pair_l[keep]
    varies = np.ones(x.shape[1], dtype=bool)
    varies[1:] = np.ptp(x[:, 1:], axis=0) > 0 if y.size else False
    if y.size < 2 * varies.sum() or not varies[1]:
        raise InputError(f"{metric}: {y.size} readings are too few to fit the reading model")
    if gain is not None:  # the true term becomes an offset
        y = y - gain * x[:, 1]
        varies[1] = False
    run_c = _codes(run_l)
    pair_c = _codes(np.char.add(np.char.add(run_l.astype(str), "/"), pair_l.astype(str)))
    xs = x[:, varies]
    beta, cov, (s_run, s_pair, s_point) = _reml(xs, y, run_c, pair_c, metric)
    coef = np.zeros(x.shape[1])
    full = np.zeros((x.shape[1], x.shape[1]))
    coef[varies] = beta
    full[np.ix_(varies, varies)] = cov
    if gain is not None:
        coef[1] = gain
    return ReadingModel(metric, transform, float(ref), coef, full, float(np.sqrt(s_run)), float(np.sqrt(s_pair)),
                        float(np.sqrt(s_point)), int(y.size), int(np.unique(pair_c).size), int(np.unique(run_c).size))


def _reml(x, y, run, pair, metric):
    """REML fit of the nested model by statsmodels' MixedLM: coefficients, their covariance, variances.

    Groups are the runs (a random intercept each) with a variance component
    for the pairs within a run. With a single run, or when that fit does not
    converge (σ_run crawling to its boundary at 0) and the fit without the
    run effect is as good (REML log-likelihood less than
    :data:`BOUNDARY_LOGLIK` below), the pairs are the groups and σ_run is 0.
    MixedLM's warnings stay here; a fit that still did not converge says so
    in one logged line. docs/design.md, "Calibration".
    """
    k = x.shape[1]
    nested = _mixedlm(x, y, run, pair) if np.unique(run).size > 1 else None
    use_nested = nested is not None and _converged(nested, k)
    if not use_nested:
        flat = _mixedlm(x, y, pair, None)
        use_nested = nested is not None and not (_converged(flat, k) and flat.llf >= nested.llf - BOUNDARY_LOGLIK)
    if use_nested:
        fit, variances = nested, (nested.cov_re[0, 0], nested.vcomp[0], nested.scale)
    else:
        fit, variances = flat, (0.0, flat.cov_re[0, 0], flat.scale)
    if not _converged(fit, k):
        log.warning("%s: the reading model's REML fit (statsmodels MixedLM) did not converge; its coefficients "
                    "and scatter are the last iterate's", metric)
    cov = np.asarray(fit.cov_params())[:k, :k]
    return np.asarray(fit.fe_params, dtype=float), cov, tuple(max(float(v), 0.0) for v in variances)


def _mixedlm(x, y, groups, pair):
    """MixedLM's REML fit, its warnings kept in: a random intercept per group, and per pair within a group."""
    vc = None
    if pair is not None:  # one design block per group, in the groups' sorted order
        mats = [_indicators(pair[groups == r]) for r in np.unique(groups)]
        vc = VCSpec(["pair"], [[[f"pair{j}" for j in range(m.shape[1])] for m in mats]], [mats])
    with warnings.catch_warnings():
        for category in (ConvergenceWarning, SingularMatrixWarning, RuntimeWarning):
            warnings.simplefilter("ignore", category)
        model = MixedLM(y, x, groups, exog_re=np.ones((y.size, 1)), exog_vc=vc)
        try:
            return model.fit(reml=True, method=list(REML_METHODS))
        except np.linalg.LinAlgError as exc:
            raise InputError(f"the reading model's REML fit failed ({exc}): too few pairs or runs?") from None


def _converged(fit, k: int) -> bool:
    cov = np.diag(np.asarray(fit.cov_params())[:k, :k])
    return bool(fit.converged and np.all(np.isfinite(cov)) and np.all(cov > 0))


def _indicators(codes: np.ndarray) -> np.ndarray:
    """(n, k) 0/1 matrix of ``codes``' k distinct values: the design of one run's pair effects."""
    return (codes[:, None] == np.unique(codes)[None, :]).astype(float)


def invert_reading(model: ReadingModel, measured, in_plane_deg, elevation_deg, bridged) -> tuple[np.ndarray, np.ndarray]:
    """The calibrated value: the true value that reads as ``measured``, with its s.d.

    Parameters
    ----------
    model : ReadingModel
    measured : array_like
        Measured values, nm (any shape; NaN stays NaN; a neck read as 0
        stays 0 with s.d. NaN: no neck was seen).
    in_plane_deg, elevation_deg, bridged : array_like
        The pairs' orientation and bridge flag, same shape.

    Returns
    -------
    estimate, sd : ndarray
        nm, the shape of ``measured``. The s.d. combines the coefficients'
        covariance (delta method) and the three scatter components, and is
        carried through g⁻¹ as half the width of g⁻¹(G ± s).
    """
    y = np.asarray(measured, dtype=float)
    shape = y.shape
    t_ref = _g(model.reference_nm, model.transform)
    x = design_matrix(np.full(y.size, model.reference_nm), in_plane_deg, elevation_deg, bridged,
                      transform=model.transform, reference_nm=model.reference_nm)
    b = model.coef
    gain = b[1]
    others = x @ b  # the x's "true" column is 0 at the reference
    h = (_g(y.ravel(), model.transform) - others) / gain
    jac = -x / gain
    jac[:, 1] = -h / gain
    var_coef = np.einsum("ni,ij,nj->n", jac, model.cov, jac)
    s = np.sqrt(var_coef + model.sigma_total**2 / gain**2)
    centre = h + t_ref
    est = _g_inv(centre, model.transform)
    sd = 0.5 * (_g_inv(centre + s, model.transform) - _g_inv(centre - s, model.transform))
    if model.metric == "neck_radius_nm":
        zero = y.ravel() == 0
        est[zero], sd[zero] = 0.0, np.nan
    bad = ~np.isfinite(y.ravel())
    est[bad], sd[bad] = np.nan, np.nan
    return est.reshape(shape), sd.reshape(shape)
