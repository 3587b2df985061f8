"""The fit's observation model taken from a calibration (``[noise.<variable>] calibration = ...``).

A ``calibration.nc`` (``sinter4d calibrate``, :mod:`sinter4d.calibration`)
holds the pipeline's reading model of each metric, fitted to simulated twins
of the run's acquisition:

    g(y) = b0 + b1 (g(x) - g(ref)) + b2 cos 2α + b3 sin² ε + b4 bridged + u_run + u_pair + e

with g the square for the neck and the identity for the distance, x the
true value (here: the law's), y the reading. The fit uses it as follows
(docs/design.md, "Calibration: the fit's observation model").

Neck radius (:class:`CalibratedNeck`). The likelihood is the model's own,
in g (the neck squared: no linearisation). Everything a run shares is
integrated out with the pair offsets: the coefficients b0..b4 are unknown
for a new run to within their covariance C, and u_run adds σ_run² to b0, so
for the n readings of a fit, with W the (n, 5) design at the law's necks,

    g(y) ~ N(W b̂, W (C + σ_run² e0 e0ᵀ) Wᵀ + σ_pair² Z Zᵀ + σ_point² I),

Z the readings' pair indicators. The covariance is σ_point² I plus a rank
≤ 5 + P term U Uᵀ, so the density costs one (k, k) Cholesky (Woodbury),
k ≤ 5 + P. The density is returned in y (nm), with the Jacobian
log |g'(y)| = log 2y, so that its LOO is comparable with an uncalibrated
fit's. Readings of 0 (a pair read apart) are outside the reading model's
domain and leave the likelihood.

Distance (:func:`distance_shift_nm`). A pair's own flat initial distance
(:mod:`.likelihood`) already absorbs b0, u_run, u_pair and the pair's
orientation terms, so the calibration gives the point scatter σ_point and
the orientation terms' change over the trajectory (a bridge that closes),
subtracted from the readings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from ..calibration import BRIDGED_GAP_NM, ReadingModel, design_matrix, orientation_deg, reading_models
from ..errors import InputError
from ..io.netcdf import open_dataset_checked

__all__ = ["CalibratedNeck", "CalibratedReading", "calibrated_readings", "distance_shift_nm"]

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class CalibratedReading:
    """A calibration's reading model of one fitted variable, at the fit's pairs.

    Attributes
    ----------
    model : ReadingModel
    design : (T, P, 5) ndarray
        The reading model's design at each (time, pair) with the true-value
        column 0 (filled with the law's value at each evaluation): 1,
        0, cos 2α, sin² ε, bridged; NaN where the pair's centres were not
        measured.
    source : str
        The calibration file.
    """

    model: ReadingModel
    design: np.ndarray
    source: str = ""


def calibrated_readings(calibration: str | Path, metrics: str | Path, pairs, variables) -> dict[str, CalibratedReading]:
    """The reading model of each variable at the fitted pairs of a ``metrics.nc``.

    Parameters
    ----------
    calibration : str or Path
        A ``calibration.nc``.
    metrics : str or Path
        The fitted ``metrics.nc``: its ``pair_centre_nm`` give each pair's
        orientation (as :func:`sinter4d.calibration.calibrate_metrics`), its
        ``surface_gap_nm`` the bridge flag.
    pairs : sequence of str
        The fitted pairs' labels, in the fit's order.
    variables : sequence of str
        The variables to calibrate.

    Raises
    ------
    InputError
        An unreadable calibration, one without a model of a variable, or
        data without the pairs' centres (a CSV table, a ``truth.nc``).
    """
    cal = open_dataset_checked(calibration, ["coefficient", "coefficient_covariance"])
    models = reading_models(cal)
    gap_cut = float(cal.attrs.get("bridged_gap_nm", BRIDGED_GAP_NM))
    if Path(metrics).suffix.lower() == ".csv":
        raise InputError(f"{metrics}: a calibrated observation model needs the pairs' measured centres "
                         "(pair_centre_nm): fit a run's metrics.nc")
    with xr.open_dataset(metrics) as ds:
        if "pair_centre_nm" not in ds or "surface_gap_nm" not in ds:
            raise InputError(f"{metrics}: a calibrated observation model needs the pairs' measured centres "
                             "(pair_centre_nm) and surface gaps: fit a run's metrics.nc")
        ds = ds.sel(pair=list(pairs))
        centre = ds["pair_centre_nm"].transpose("time", "pair", "end", "axis").values
        gap = ds["surface_gap_nm"].transpose("time", "pair").values
    in_plane, elevation = orientation_deg(centre[:, :, 0], centre[:, :, 1])
    bridged = np.nan_to_num(gap, nan=0.0) > gap_cut
    out = {}
    for v in variables:
        if v not in models:
            raise InputError(f"{calibration}: the calibration has no reading model of {v}")
        m = models[v]
        x = design_matrix(np.full(in_plane.size, m.reference_nm), in_plane, elevation, bridged,
                          transform=m.transform, reference_nm=m.reference_nm)
        out[v] = CalibratedReading(m, x.reshape(*in_plane.shape, x.shape[1]), str(calibration))
    return out


def distance_shift_nm(reading: CalibratedReading) -> np.ndarray:
    """(T, P) orientation terms of the distance's reading model about each pair's mean (nm).

    What the readings move by over a pair's trajectory beyond the law's
    approach (its constant part is the pair's initial distance); NaN where
    the pair's centres were not measured.
    """
    terms = reading.design[..., 2:] @ reading.model.coef[2:]
    return terms - np.nanmean(terms, axis=0, keepdims=True)


def _g(x, transform):
    return x * x if transform == "square" else x


class CalibratedNeck:
    """Log density of the neck readings under a calibration's reading model (module docstring).

    Parameters
    ----------
    reading : CalibratedReading
    observed : (T, P) ndarray
        Measured necks (nm).
    mask : (T, P) bool ndarray
        Points in the likelihood; readings of 0 or less and points without
        an orientation are left out (:attr:`mask` is what stays).
    """

    def __init__(self, reading: CalibratedReading, observed: np.ndarray, mask: np.ndarray):
        m = reading.model
        self.model = m
        self.transform = m.transform
        self._ref = float(_g(m.reference_nm, m.transform))
        self.mask = mask & (np.nan_to_num(observed) > 0) & np.isfinite(reading.design).all(axis=-1)
        self.index = np.nonzero(self.mask)
        y = observed[self.index]
        self.gy = _g(y, m.transform)
        self.log_jacobian = np.log(2.0 * y) if m.transform == "square" else np.zeros_like(y)
        self._x = reading.design[self.index]  # (n, 5), the true column filled per call
        cov = np.array(m.cov, dtype=float)
        cov[0, 0] += m.sigma_run ** 2  # u_run moves every reading of the run like b0
        w, vec = np.linalg.eigh(0.5 * (cov + cov.T))
        keep = w > 1e-12 * max(float(w.max()), 1e-300)
        self._coef_factor = vec[:, keep] * np.sqrt(w[keep])  # C + σ_run² e0 e0ᵀ = L Lᵀ
        pairs = np.unique(self.index[1])
        self._pair_columns = m.sigma_pair * (self.index[1][:, None] == pairs[None, :]).astype(float)
        self.sigma2 = m.sigma_point ** 2
        n = y.size
        self._const = -0.5 * n * (_LOG_2PI + math.log(self.sigma2)) + float(self.log_jacobian.sum())

    def _parts(self, neck_nm):
        """Residuals in g, the low-rank factor U and the mean at the law's necks ``neck_nm`` (T, P)."""
        x = self._x.copy()
        x[:, 1] = _g(neck_nm[self.index], self.transform) - self._ref
        mean = x @ self.model.coef
        u = np.concatenate([x @ self._coef_factor, self._pair_columns], axis=1)
        return self.gy - mean, u, mean

    def log_density(self, neck_nm) -> float:
        """log p(y | the law's necks), nm; the shared terms integrated out."""
        r, u, _ = self._parts(neck_nm)
        s2 = self.sigma2
        ur = u.T @ r
        chol = np.linalg.cholesky(np.eye(u.shape[1]) + (u.T @ u) / s2)
        z = np.linalg.solve(chol, ur) / s2  # L⁻¹ Uᵀ r / σ²
        quad = float(r @ r) / s2 - float(z @ z)
        return self._const - 0.5 * quad - float(np.log(np.diag(chol)).sum())

    def draw(self, neck_nm, rng: np.random.Generator) -> np.ndarray:
        """The run's reading curve and pair offsets drawn from their conditional posterior: g values (n,).

        ``mean + U ζ`` with ``ζ | y ~ N(M⁻¹ Uᵀ r / σ², M⁻¹)``, ``M = I + Uᵀ U / σ²``.
        """
        r, u, mean = self._parts(neck_nm)
        s2 = self.sigma2
        chol = np.linalg.cholesky(np.eye(u.shape[1]) + (u.T @ u) / s2)
        centre = np.linalg.solve(chol.T, np.linalg.solve(chol, u.T @ r)) / s2
        zeta = centre + np.linalg.solve(chol.T, rng.standard_normal(u.shape[1]))
        return mean + u @ zeta

    def pointwise(self, neck_nm, rng: np.random.Generator, shape) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pointwise log density (nm), the drawn reading (nm) and a predictive reading (nm), each ``shape``.

        0, NaN, NaN outside :attr:`mask`.
        """
        fitted = self.draw(neck_nm, rng)
        s = math.sqrt(self.sigma2)
        ll = np.zeros(shape)
        ll[self.index] = (-0.5 * ((self.gy - fitted) / s) ** 2 - math.log(s) - 0.5 * _LOG_2PI + self.log_jacobian)
        model = np.full(shape, np.nan)
        model[self.index] = self.model.from_g(fitted)
        pred = np.full(shape, np.nan)
        pred[self.index] = self.model.from_g(fitted + s * rng.standard_normal(fitted.size))
        return ll, model, pred
