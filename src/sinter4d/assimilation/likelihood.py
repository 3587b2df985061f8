"""Log posterior of a fit: priors, Gaussian noise, and the initial distances marginalised.

Noise. Each fitted variable has Gaussian noise of its own sigma (nm), fixed
or sampled. NaN points are skipped.

Initial distance. ``d(t) = d0_p - A_p(t)`` (:mod:`.model`): the distance of
pair p at the first time, ``d0_p``, is a nuisance parameter with a flat
prior. It enters linearly, so it is integrated out exactly: with
``r_k = y_k + A_k`` over the n_p measured distances of the pair,

.. math::

    \\log L_p = -\\frac{\\sum_k (r_k - \\bar r)^2}{2\\sigma^2}
               - \\frac{n_p - 1}{2}\\log(2\\pi\\sigma^2) - \\frac{1}{2}\\log n_p,

so the sampler sees only the model's parameters. Its conditional posterior
is ``d0_p | theta, y ~ N(r̄, sigma^2/n_p)``: drawing it for each posterior
draw gives exact joint draws, from which the pointwise log-likelihood and the
posterior predictive are computed (:meth:`LogPosterior.pointwise`).

Pair offsets (optional, neck radius). A reconstruction's error on a neck is
mostly systematic per pair, not independent per time: it follows the pair's
angle to the tilt axis and the shell particles in its crevice (see
``validation.nc``). With a pair-offset sigma tau, each pair's readings share
an offset ``b_p ~ N(0, tau^2)`` on top of the independent noise sigma, so
the n_p residuals ``r`` of a pair are ``N(0, sigma^2 I + tau^2 11^T)``,
integrated out exactly:

.. math::

    \\log L_p = -\\frac{\\sum_k r_k^2 - \\tau^2 (\\sum_k r_k)^2 / (\\sigma^2 + n_p \\tau^2)}{2\\sigma^2}
               - (n_p - 1)\\log\\sigma - \\frac{1}{2}\\log(\\sigma^2 + n_p\\tau^2)
               - \\frac{n_p}{2}\\log 2\\pi.

Its conditional posterior ``b_p | theta, y ~ N(v_p S_p / sigma^2, v_p)`` with
``S_p = sum_k r_k`` and ``1/v_p = n_p/sigma^2 + 1/tau^2`` is drawn like d0.
The parameters are then pinned down by what the pairs share (the law's
shape, and its level only as well as the mean of n_pairs offsets allows),
not by many points each of which repeats a pair's bias.

Reading curve (optional, neck radius). An error the pairs share moves the
whole data set, which the fit cannot tell from the law: a reconstruction
reads small necks wide (resolution) and large ones narrow. The readings are
then taken as ``x_ref + g (x - x_ref) + beta`` of the law's neck x, with a
gain g and a bias beta at the reference neck x_ref, each fixed or sampled
under a prior from validation runs (what they are known to within then
widens the parameters' intervals).

Calibrated observation model (optional). With a calibration's reading
model (:mod:`.calibrated`) the neck readings follow it in the neck squared,
the run's curve and the pair offsets integrated out, and the distance
readings have the calibration's point scatter and orientation terms;
docs/design.md, "Calibration: the fit's observation model".

Step-time errors (optional). The logged duration of each PT step is
uncertain (the paper: ± 1 s): the true one is the logged one plus a latent
error ``e_k``, shared by all pairs, with a uniform prior on ± the bound.
The latents ``pt_step_error_s_<k>`` are sampled by emcee beside the physical
parameters (docs/design.md, "Fit: observation model", says why).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from ..errors import InputError
from .calibrated import CalibratedNeck, CalibratedReading, distance_shift_nm
from .priors import Prior
from .model import TrajectoryModel
from .noise import NECK_READING_REFERENCE_NM

_LOG_2PI = math.log(2.0 * math.pi)
#: Name of PT step k's sampled time error: ``pt_step_error_s_<k>`` (s), k = 1 .. T-1.
STEP_ERROR_PREFIX = "pt_step_error_s_"
#: How the forward model fails at a parameter vector (a PT step shorter than its error, ...): density 0 there.
_MODEL_FAILURES = (ValueError, FloatingPointError, ZeroDivisionError)


class PriorVector:
    """Joint log prior of independent parameters, evaluated fast for one point.

    Parameters
    ----------
    priors : sequence of Prior
    """

    def __init__(self, priors: Sequence[Prior]):
        self.priors = tuple(priors)
        self._terms = []
        for p in self.priors:
            if p.dist == "uniform":
                self._terms.append((0, p.low, p.high, -math.log(p.high - p.low)))
            elif p.dist == "log_uniform":
                self._terms.append((1, p.low, p.high, -math.log(math.log(p.high / p.low))))
            else:
                self._terms.append((2, p.mean, p.sd, -math.log(p.sd) - 0.5 * _LOG_2PI))

    def __call__(self, theta) -> float:
        """Sum of the log densities at ``theta`` (``-inf`` outside the support)."""
        total = 0.0
        for (kind, a, b, c), v in zip(self._terms, theta):
            v = float(v)
            if kind == 2:
                z = (v - a) / b
                total += c - 0.5 * z * z
            elif not a <= v <= b:
                return -math.inf
            elif kind == 0:
                total += c
            else:
                total += c - math.log(v)
        return total if math.isfinite(total) else -math.inf

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``(size, D)`` draws from the priors."""
        return np.column_stack([p.sample(rng, size) for p in self.priors]) if self.priors else np.zeros((size, 0))

    @property
    def scale(self) -> np.ndarray:
        """A width of each prior: ``high - low`` or ``sd`` (for starting balls)."""
        return np.array([p.sd if p.dist == "normal" else p.high - p.low for p in self.priors])


def _overlay(fixed: Mapping[str, float], index: Mapping[str, int], theta) -> dict[str, float]:
    """Per-variable values: the fixed ones overlaid with those sampled at ``theta[index[v]]``."""
    out = dict(fixed)
    for v, i in index.items():
        out[v] = float(theta[i])
    return out


class LogPosterior:
    """Log posterior of the sampled parameters given neck/distance trajectories.

    Parameters
    ----------
    model : TrajectoryModel
    names : sequence of str
        Sampled parameters, in order: free card parameters, then
        ``sigma_<variable>`` for fitted noise, ``sigma_pair_<variable>`` for
        fitted pair offsets, ``bias_<variable>`` and ``gain_<variable>`` for a
        sampled reading curve, ``bridged_bias_<variable>`` for a sampled
        offset of the bridged pairs, then ``initial_neck_nm`` when fitted, then
        ``pt_step_error_s_<k>`` (k = 1 .. T-1) for sampled step-time errors
        (all of them or none).
    priors : sequence of Prior
        Prior of each.
    fixed : mapping
        Values of the card parameters that are not sampled.
    observed : mapping
        Variable (``neck_radius_nm``, ``distance_nm``) -> (T, P) measured values (nm, NaN = missing).
    sigma_nm : mapping
        Variable -> fixed noise sigma (nm); variables without one have ``sigma_<variable>`` in ``names``.
    pair_sigma_nm : mapping, optional
        Variable -> fixed pair-offset sigma tau (nm); ``neck_radius_nm`` only
        (a distance has its own free initial value per pair already). A
        variable with ``sigma_pair_<variable>`` in ``names`` has it sampled;
        one with neither has no pair offset.
    bias_nm : mapping, optional
        Variable -> fixed bias beta (nm) of the readings at ``reference_nm``;
        ``neck_radius_nm`` only. A variable with ``bias_<variable>`` in
        ``names`` has it sampled.
    gain : mapping, optional
        Variable -> fixed gain g of the readings (default 1); sampled when
        ``gain_<variable>`` is in ``names``.
    reference_nm : mapping, optional
        Variable -> reference neck x_ref (nm) of the gain (default
        :data:`.specs.NECK_READING_REFERENCE_NM`).
    bridged : (P,) array_like of bool, optional
        The pairs bridged across a surface gap (default none).
    bridged_bias_nm : mapping, optional
        Variable -> fixed offset (nm) of the bridged pairs' readings, added to
        every reading of those pairs (the mean of their pair offsets);
        ``neck_radius_nm`` only. A variable with ``bridged_bias_<variable>``
        in ``names`` has it sampled.
    excluded : mapping, optional
        Variable -> (T, P) bool ndarray of points left out of the likelihood
        (a neck used as the model's initial condition; a series the fit spec
        leaves out).
    calibrated : mapping, optional
        Variable -> :class:`~.calibrated.CalibratedReading`: the observation
        model from a calibration (module docstring). A calibrated neck takes
        no sigma, pair offset or reading curve of its own (they are the
        calibration's); a calibrated distance takes its sigma from
        ``sigma_nm`` or ``names`` as any other.

    Notes
    -----
    Calling the object with a parameter vector returns the log posterior (a
    float, ``-inf`` outside the priors' support or where the model fails):
    it is the function emcee samples. It pickles (for a process pool).
    """

    def __init__(self, model: TrajectoryModel, names: Sequence[str], priors: Sequence[Prior],
                 fixed: Mapping[str, float], observed: Mapping[str, np.ndarray], sigma_nm: Mapping[str, float],
                 *, pair_sigma_nm: Mapping[str, float] | None = None, bias_nm: Mapping[str, float] | None = None,
                 gain: Mapping[str, float] | None = None, reference_nm: Mapping[str, float] | None = None,
                 bridged=None, bridged_bias_nm: Mapping[str, float] | None = None,
                 excluded: Mapping[str, np.ndarray] | None = None,
                 calibrated: Mapping[str, CalibratedReading] | None = None):
        self.model = model
        self.names = tuple(names)
        self.prior = PriorVector(priors)
        if len(self.prior.priors) != len(self.names):
            raise InputError("one prior per parameter name")
        self.fixed = dict(fixed)
        self.variables = tuple(observed)
        unknown = [v for v in self.variables if v not in ("neck_radius_nm", "distance_nm")]
        if unknown:
            raise InputError(f"cannot fit {unknown[0]!r} (fit neck_radius_nm and/or distance_nm)")
        t, p = model.n_times, model.n_pairs
        self.observed = {v: np.asarray(observed[v], dtype=float) for v in self.variables}
        for v, y in self.observed.items():
            if y.shape != (t, p):
                raise InputError(f"observed {v} has shape {y.shape}, the model ({t}, {p})")
        self.calibrated = dict(calibrated or {})
        self.sigma_nm = {v: float(sigma_nm[v]) for v in self.variables if v in sigma_nm}
        self._sigma_index = {}
        for v in self.variables:
            name = f"sigma_{v}"
            if name in self.names:
                self._sigma_index[v] = self.names.index(name)
            elif v not in self.sigma_nm and not (v == "neck_radius_nm" and v in self.calibrated):
                raise InputError(f"no sigma for {v}: give sigma_nm[{v!r}] or sample {name!r}")
        self.pair_sigma_nm = {v: float(s) for v, s in (pair_sigma_nm or {}).items()}
        self._pair_index = {v: self.names.index(f"sigma_pair_{v}") for v in self.variables
                            if f"sigma_pair_{v}" in self.names}
        self.bias_nm = {v: float(b) for v, b in (bias_nm or {}).items()}
        self._bias_index = {v: self.names.index(f"bias_{v}") for v in self.variables if f"bias_{v}" in self.names}
        self.gain = {v: float(g) for v, g in (gain or {}).items()}
        self._gain_index = {v: self.names.index(f"gain_{v}") for v in self.variables if f"gain_{v}" in self.names}
        self.reference_nm = {v: float(x) for v, x in (reference_nm or {}).items()}
        self.bridged = np.zeros(p, dtype=bool) if bridged is None else np.asarray(bridged, dtype=bool).reshape(-1)
        if self.bridged.size != p:
            raise InputError(f"bridged flags {self.bridged.size} pairs, the model {p}")
        self.bridged_bias_nm = {v: float(b) for v, b in (bridged_bias_nm or {}).items()}
        self._bridged_index = {v: self.names.index(f"bridged_bias_{v}") for v in self.variables
                               if f"bridged_bias_{v}" in self.names}
        for v in (*self.pair_sigma_nm, *self._pair_index, *self.bias_nm, *self._bias_index, *self.gain,
                  *self._gain_index, *self.bridged_bias_nm, *self._bridged_index):
            if v != "neck_radius_nm":
                raise InputError(f"pair offsets and reading curves are for neck_radius_nm only, not {v!r} "
                                 "(a distance has its own initial value per pair)")
        self._card_index = [(k, i) for i, k in enumerate(self.names) if k in model.card.parameters]
        self._neck0_index = self.names.index("initial_neck_nm") if "initial_neck_nm" in self.names else None
        steps = [f"{STEP_ERROR_PREFIX}{k}" for k in range(1, t)]
        found = [n for n in self.names if n.startswith(STEP_ERROR_PREFIX)]
        if found and found != steps:
            raise InputError(f"step-time errors must be {STEP_ERROR_PREFIX}1 .. {STEP_ERROR_PREFIX}{t - 1} in order")
        self._step_slice = slice(self.names.index(steps[0]), self.names.index(steps[-1]) + 1) if found else None
        started = np.arange(t)[:, None] >= model.start_index[None, :]
        self.masks = {v: np.isfinite(y) & started for v, y in self.observed.items()}
        for v, out in (excluded or {}).items():
            if v in self.masks:
                self.masks[v] &= ~np.asarray(out, dtype=bool)
        self._neck_cal = None
        if "neck_radius_nm" in self.calibrated and "neck_radius_nm" in self.masks:
            v = "neck_radius_nm"
            if v in (*self._sigma_index, *self.sigma_nm, *self.pair_sigma_nm, *self._pair_index, *self.bias_nm,
                     *self._bias_index, *self.gain, *self._gain_index, *self.bridged_bias_nm, *self._bridged_index):
                raise InputError("a calibrated neck_radius_nm takes its sigma, pair offsets and reading curve "
                                 "from the calibration")
            self._neck_cal = CalibratedNeck(self.calibrated[v], self.observed[v], self.masks[v])
            self.masks[v] = self._neck_cal.mask
        self._d_shift = np.zeros((t, p))
        self._d_gain = 1.0
        if "distance_nm" in self.calibrated:
            reading = self.calibrated["distance_nm"]
            self._d_shift = np.nan_to_num(distance_shift_nm(reading))
            self._d_gain = float(reading.model.coef[1])
        self.n_observations = {v: int(m.sum()) for v, m in self.masks.items()}
        if "distance_nm" in self.masks:
            m = self.masks["distance_nm"]
            y = self.observed["distance_nm"] - self._d_shift
            self._d_index = np.nonzero(m)
            self._d_pair = self._d_index[1]
            self._d_count = m.sum(axis=0)
            first = np.where(self._d_count > 0, np.nanmax(np.where(m, y, -np.inf), axis=0), 0.0)
            self._d_ref = first  # a per-pair offset that keeps the sums small
            self._d_y = y[self._d_index] - first[self._d_pair]
            has = self._d_count > 0
            self._d_const = -0.5 * float(np.log(self._d_count[has]).sum())
            self._d_dof = int((self._d_count[has] - 1).sum())
        if "neck_radius_nm" in self.masks:
            self._n_index = np.nonzero(self.masks["neck_radius_nm"])
            self._n_y = self.observed["neck_radius_nm"][self._n_index]
            self._n_count = self.masks["neck_radius_nm"].sum(axis=0)
            self._n_bridged = self.bridged[self._n_index[1]]  # the points read on bridged pairs

    # -- parameters ---------------------------------------------------------------

    def card_parameters(self, theta) -> dict[str, float]:
        """Card parameters at ``theta``: the fixed values overlaid with the sampled ones."""
        params = dict(self.fixed)
        for name, i in self._card_index:
            params[name] = float(theta[i])
        return params

    def sigmas(self, theta) -> dict[str, float]:
        """Noise sigma (nm) of each variable at ``theta``."""
        return _overlay(self.sigma_nm, self._sigma_index, theta)

    def pair_sigmas(self, theta) -> dict[str, float]:
        """Pair-offset sigma tau (nm) of each variable that has one, at ``theta``."""
        return _overlay(self.pair_sigma_nm, self._pair_index, theta)

    def biases(self, theta) -> dict[str, float]:
        """Bias beta (nm) of each variable that has one, at ``theta``."""
        return _overlay(self.bias_nm, self._bias_index, theta)

    def reading(self, variable: str, model_nm, theta, bridged=None):
        """What the pipeline reads for the law's value ``model_nm``: ``x_ref + g (x - x_ref) + beta (+ beta_b)``.

        ``beta_b`` is the bridged pairs' offset, added where ``bridged`` (a
        bool array of ``model_nm``'s shape, or broadcast to it) marks a value
        of a bridged pair; default :attr:`bridged`, for (T, P) values.
        """
        g = float(theta[self._gain_index[variable]]) if variable in self._gain_index else self.gain.get(variable, 1.0)
        beta = self.biases(theta).get(variable, 0.0)
        offset = _overlay(self.bridged_bias_nm, self._bridged_index, theta).get(variable, 0.0)
        if offset != 0.0:
            beta = beta + offset * (self.bridged if bridged is None else bridged)
        if g == 1.0:
            return model_nm + beta
        ref = self.reference_nm.get(variable, NECK_READING_REFERENCE_NM)
        return ref + g * (model_nm - ref) + beta

    def step_errors(self, theta) -> np.ndarray | None:
        """Time error (s) of each PT step at ``theta``, (T - 1,); None when not sampled."""
        return None if self._step_slice is None else np.asarray(theta, dtype=float)[self._step_slice]

    def predict(self, theta):
        """Model neck radius and centre approach (nm), each (T, P), at ``theta``."""
        neck, approach = self.predict_batch(np.asarray(theta, dtype=float)[None, :])
        return neck[0], approach[0]

    def predict_batch(self, thetas):
        """Model neck radius and centre approach (nm), each (W, T, P), at the W rows of ``thetas``.

        One call of the kinetics for all rows (:meth:`.TrajectoryModel.batch`).
        """
        thetas = np.asarray(thetas, dtype=float)
        neck0 = None if self._neck0_index is None else thetas[:, self._neck0_index]
        steps = None if self._step_slice is None else thetas[:, self._step_slice]
        return self.model.batch([self.card_parameters(th) for th in thetas], neck0, steps)

    # -- densities ----------------------------------------------------------------

    def log_likelihood(self, theta) -> float:
        """Log likelihood at ``theta``, initial distances integrated out (``-inf`` if the model fails)."""
        try:
            neck, approach = self.predict(theta)
        except _MODEL_FAILURES:
            return -math.inf
        return self._log_likelihood(theta, neck, approach)

    def _log_likelihood(self, theta, neck, approach) -> float:
        """Log likelihood at ``theta`` given the model's (T, P) neck radius and approach there."""
        sig = self.sigmas(theta)
        total = 0.0
        if self._neck_cal is not None:
            total += self._neck_cal.log_density(neck)
        elif "neck_radius_nm" in self.masks:
            s = sig["neck_radius_nm"]
            r = self._n_y - self.reading("neck_radius_nm", neck[self._n_index], theta, self._n_bridged)
            n = r.size
            tau = self.pair_sigmas(theta).get("neck_radius_nm", 0.0)
            total += -0.5 * float(r @ r) / (s * s) - n * math.log(s) - 0.5 * n * _LOG_2PI
            if tau > 0.0:
                count = self._n_count
                s1 = np.bincount(self._n_index[1], r, minlength=count.size)
                v = s * s + count * (tau * tau)
                # the terms of pairs without a point are 0 (s1 = 0, log(v / s^2) = 0)
                total += float(0.5 * tau * tau * (s1 * s1 / v).sum() / (s * s)
                               - 0.5 * np.log(v / (s * s)).sum())
        if "distance_nm" in self.masks:
            s = sig["distance_nm"]
            r = self._d_y + self._d_gain * approach[self._d_index]
            count = np.maximum(self._d_count, 1)
            mean = np.bincount(self._d_pair, r, minlength=count.size) / count
            dev = r - mean[self._d_pair]
            total += (-0.5 * float(dev @ dev) / (s * s) - self._d_dof * (math.log(s) + 0.5 * _LOG_2PI)
                      + self._d_const)
        return total if math.isfinite(total) else -math.inf

    def __call__(self, theta) -> float:
        """Log posterior at ``theta``, a (D,) vector."""
        return float(self.batch(np.asarray(theta, dtype=float)[None, :])[0])

    def batch(self, thetas) -> np.ndarray:
        """Log posterior at each row of ``thetas`` (W, D): the function emcee samples (``vectorize``).

        The rows inside the priors' support share one call of the kinetics
        (:meth:`predict_batch`), which costs little more than one row; each
        row's value is the one :meth:`__call__` gives it. A row whose model
        fails gets ``-inf``, the others their values.
        """
        thetas = np.asarray(thetas, dtype=float)
        if thetas.ndim != 2 or thetas.shape[1] != len(self.names):
            raise InputError(f"thetas must be (W, {len(self.names)}), got shape {thetas.shape}")
        out = np.array([self.prior(th) for th in thetas], dtype=float)
        live = np.flatnonzero(np.isfinite(out))
        if live.size == 0:
            return out
        try:
            neck, approach = self.predict_batch(thetas[live])
        except _MODEL_FAILURES:
            for i in live:  # a row's model fails: each row alone, so that the others keep their values
                out[i] += self.log_likelihood(thetas[i])
            return out
        for j, i in enumerate(live):
            out[i] += self._log_likelihood(thetas[i], neck[j], approach[j])
        return out

    # -- per draw -----------------------------------------------------------------

    def pointwise(self, theta, rng: np.random.Generator, predicted=None) -> dict[str, np.ndarray]:
        """Pointwise log-likelihood, model curves and a posterior-predictive draw at ``theta``.

        The initial distance of each pair is drawn from its conditional
        posterior ``N(r̄, sigma^2/n_p)`` (module docstring).

        Parameters
        ----------
        theta : (D,) ndarray
        rng : numpy.random.Generator
            For the initial distances and the predictive noise.
        predicted : tuple of two (T, P) ndarrays, optional
            :meth:`predict` at ``theta``, when already computed (a row of
            :meth:`predict_batch`).

        Returns
        -------
        dict
            For each fitted variable ``v``: ``"log_likelihood/v"`` (T, P),
            0 where nothing was measured; ``"model/v"`` (T, P), the noise-free
            model (nm) as the pipeline reads it (reading curve, the pair's drawn
            offset) when those are modelled;
            ``"predictive/v"`` (T, P), the model plus noise (nm).
            NaN where the model is undefined (before a pair's start; the
            distance of a pair with no measured distance).
        """
        neck, approach = self.predict(theta) if predicted is None else predicted
        sig = self.sigmas(theta)
        pair_sig = self.pair_sigmas(theta)
        out = {}
        for v in self.variables:
            if v == "neck_radius_nm" and self._neck_cal is not None:
                ll, model, pred = self._neck_cal.pointwise(neck, rng, neck.shape)
                out.update({f"log_likelihood/{v}": ll, f"model/{v}": model, f"predictive/{v}": pred})
                continue
            s = sig[v]
            y = self.observed[v]
            m = self.masks[v]
            if v == "neck_radius_nm":
                model = self.reading(v, neck, theta)
                tau = pair_sig.get(v, 0.0)
                if tau > 0.0:
                    count = m.sum(axis=0)
                    s1 = np.where(m, y - model, 0.0).sum(axis=0)
                    var = 1.0 / (count / (s * s) + 1.0 / (tau * tau))
                    offset = var * s1 / (s * s) + np.sqrt(var) * rng.standard_normal(count.size)
                    model = model + offset[None, :]
            else:
                shift, gain = self._d_shift, self._d_gain
                r = np.where(m, y - shift + gain * approach, 0.0)
                count = m.sum(axis=0)
                mean = r.sum(axis=0) / np.maximum(count, 1)
                d0 = mean + s / np.sqrt(np.maximum(count, 1)) * rng.standard_normal(count.size)
                d0 = np.where(count > 0, d0, np.nan)
                model = d0[None, :] - gain * approach + shift
            resid = np.where(m, y - model, 0.0)
            ll = np.where(m, -0.5 * (resid / s) ** 2 - math.log(s) - 0.5 * _LOG_2PI, 0.0)
            out[f"log_likelihood/{v}"] = ll
            out[f"model/{v}"] = model
            out[f"predictive/{v}"] = model + s * rng.standard_normal(model.shape)
        return out
