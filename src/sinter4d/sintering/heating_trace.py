"""The heating log as it was measured: step-time errors and an overshooting temperature trace.

The paper (Ihara et al. 2023) logs the holder's temperature once a second, so
"the PT time obtained in each PT step contained an error of ± 1 s", and
"overshooting from the setting temperature was recognized, and the median
temperature is shown" (its Fig. 3 and Fig. S2). The logged
:class:`~sinter4d.sintering.HeatingLog` is therefore not what the specimen
saw. :func:`true_heating` makes the true log from the logged one:

* **Step-time error.** The true duration of PT step k is the logged one plus
  an error e_k drawn per step (uniform in ±``bound_s`` by default, the
  paper's bound). Every contact of the specimen sees the same e_k.
* **Overshoot.** The true temperature of a step rises from the standby
  temperature in ``ramp_s`` (linearly) to a peak ``overshoot_C`` above a
  plateau, then relaxes to the plateau exponentially with time constant
  ``decay_s``. The plateau is chosen so that the median of the trace over
  the true step equals the logged temperature, as the paper reports it. For
  the kinetics the trace is cut into pieces of ``resolution_s``, each at the
  trace's temperature at its middle.

docs/design.md, "Heating log as measured", gives the defaults and their
sources.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.stats import truncnorm

from ..errors import InputError
from ..specs import Flag, NonNegative, Positive, Spec, choice
from .heating import HeatingLog

__all__ = [
    "HeatingTruth",
    "OvershootSettings",
    "STEP_ERROR_LAWS",
    "StepTimeErrorSettings",
    "draw_step_errors",
    "logged_trace_pieces",
    "overshoot_plateau_C",
    "overshoot_trace",
    "trace_pieces",
    "true_heating",
]

#: Laws of a PT step's time error.
STEP_ERROR_LAWS = ("uniform", "normal")


class StepTimeErrorSettings(Spec):
    """``[heating.step_time_error]``: the true duration of each PT step differs from the logged one.

    Attributes
    ----------
    enabled : bool
        Switch (default False: the logged durations are the true ones).
    law : {'uniform', 'normal'}
        ``uniform``: e_k uniform in [-bound_s, bound_s]; ``normal``: normal
        with s.d. ``bound_s / 2`` truncated at ±``bound_s``.
    bound_s : float
        Bound of the error (s). Default 1 s, the paper's: "the PT time
        obtained in each PT step contained an error of ± 1 s".
    """

    enabled: Flag = False
    law: choice(STEP_ERROR_LAWS, noun="law") = "uniform"
    bound_s: NonNegative = 1.0


class OvershootSettings(Spec):
    """``[heating.overshoot]``: the true temperature trace of each PT step.

    Attributes
    ----------
    enabled : bool
        Switch (default False: each step at its logged median throughout).
    overshoot_C : float
        Height of the peak above the plateau (°C). Default 20 °C, our
        assumption: the paper's medians lie up to 22 °C above its 350 °C set
        point, most in the short early steps.
    decay_s : float
        Time constant of the relaxation from the peak (s). Default 2 s, our
        assumption (the paper's Fig. S2 is not in our reference text).
    ramp_s : float
        Rise from the standby temperature to the peak (s). Default 0.1 s: the
        paper's MEMS chip responds in "less than 100 ms".
    resolution_s : float
        Length of the pieces of constant temperature the kinetics integrates (s).
    """

    enabled: Flag = False
    overshoot_C: NonNegative = 20.0
    decay_s: Positive = 2.0
    ramp_s: NonNegative = 0.1
    resolution_s: Positive = 0.1


def draw_step_errors(n_steps: int, settings: StepTimeErrorSettings, rng: np.random.Generator) -> np.ndarray:
    """Time error (s) of each of ``n_steps`` PT steps: true minus logged duration.

    Zeros when ``settings.enabled`` is false (nothing is drawn).
    """
    if not settings.enabled or settings.bound_s == 0 or n_steps == 0:
        return np.zeros(n_steps)
    b = settings.bound_s
    if settings.law == "uniform":
        return rng.uniform(-b, b, size=n_steps)
    return truncnorm.rvs(-2.0, 2.0, loc=0.0, scale=0.5 * b, size=n_steps, random_state=rng)


def overshoot_trace(time_s, *, plateau_C: float, duration_s: float, standby_temperature_C: float,
                    overshoot_C: float, decay_s: float, ramp_s: float) -> np.ndarray:
    """Temperature (°C) at times ``time_s`` (s from the step's start) of a step with a ramp and an overshoot.

    ``T = T_st + (T_pk - T_st) t / ramp_s`` for ``t < ramp_s``, then
    ``T = T_pl + overshoot_C exp(-(t - ramp_s) / decay_s)``, with
    ``T_pk = T_pl + overshoot_C``. ``duration_s`` only bounds the trace.
    """
    t = np.clip(np.asarray(time_s, dtype=float), 0.0, duration_s)
    peak = plateau_C + overshoot_C
    decay = plateau_C + overshoot_C * np.exp(-(t - ramp_s) / decay_s)
    if ramp_s == 0:
        return decay
    ramp = standby_temperature_C + (peak - standby_temperature_C) * t / ramp_s
    return np.where(t < ramp_s, ramp, decay)


def _time_above(m, plateau, duration, standby, overshoot, decay, ramp):
    """Time (s) the trace spends above the temperature ``m``."""
    peak = plateau + overshoot
    up = ramp * (peak - m) / (peak - standby) if ramp > 0 and standby < m < peak else (ramp if m <= standby else 0.0)
    if m <= plateau:
        down = duration - ramp
    elif m < peak:
        down = min(decay * np.log(overshoot / (m - plateau)), duration - ramp)
    else:
        down = 0.0
    return up + down


def overshoot_plateau_C(median_C: float, *, duration_s: float, standby_temperature_C: float, overshoot_C: float,
                        decay_s: float, ramp_s: float) -> float:
    """Plateau (°C) of the trace whose median over ``duration_s`` is ``median_C`` (:func:`overshoot_trace`).

    The time above ``median_C`` grows with the plateau; it is half the step
    at a plateau between ``median_C - overshoot_C`` and ``median_C``, found
    by Brent's method.
    """
    if not 2.0 * ramp_s < duration_s:
        raise InputError(f"the ramp ({ramp_s:g} s) must last under half the PT step ({duration_s:g} s)")
    if not median_C > standby_temperature_C:
        raise InputError(f"the step's median {median_C:g} °C must lie above the standby {standby_temperature_C:g} °C")
    if overshoot_C == 0:
        return float(median_C)
    args = (duration_s, standby_temperature_C, overshoot_C, decay_s, ramp_s)
    return float(brentq(lambda p: _time_above(median_C, p, *args) - 0.5 * duration_s,
                        median_C - overshoot_C, median_C, xtol=1e-10))


def trace_pieces(median_C: float, duration_s: float, settings: OvershootSettings,
                 standby_temperature_C: float) -> tuple[np.ndarray, np.ndarray]:
    """One step's trace as pieces of constant temperature: ``(temperature_C, duration_s)``, each (n,).

    Pieces of ``settings.resolution_s`` (the last one shorter), each at the
    trace's temperature at its middle.
    """
    plateau = overshoot_plateau_C(median_C, duration_s=duration_s, standby_temperature_C=standby_temperature_C,
                                  overshoot_C=settings.overshoot_C, decay_s=settings.decay_s, ramp_s=settings.ramp_s)
    edges = np.append(np.arange(0.0, duration_s, settings.resolution_s), duration_s)
    edges = edges[np.concatenate([[True], np.diff(edges) > 1e-12])]
    middle = 0.5 * (edges[:-1] + edges[1:])
    temp = overshoot_trace(middle, plateau_C=plateau, duration_s=duration_s,
                           standby_temperature_C=standby_temperature_C, overshoot_C=settings.overshoot_C,
                           decay_s=settings.decay_s, ramp_s=settings.ramp_s)
    return temp, np.diff(edges)


def logged_trace_pieces(time_s, temperature_C, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """A step's temperature as the holder logged it, as pieces of constant temperature: ``(temperature_C, duration_s)``.

    Each sample holds from the midpoint with its predecessor to the midpoint
    with its successor (nearest sample); the first piece starts at the step's
    start (0 s), the last ends at ``duration_s``, and samples beyond the step
    give no piece (docs/design.md, "Heating log as measured").

    Parameters
    ----------
    time_s : (n,) ndarray
        Times of the samples (s from the start of the PT step), strictly increasing.
    temperature_C : (n,) ndarray
        Logged temperatures (°C).
    duration_s : float
        Logged duration of the step (s).
    """
    t = np.asarray(time_s, dtype=float).reshape(-1)
    temp = np.asarray(temperature_C, dtype=float).reshape(-1)
    if t.size == 0 or t.shape != temp.shape or np.any(np.diff(t) <= 0) or not t[0] < duration_s:
        raise InputError(f"a logged trace needs increasing times starting within the step (0 … {duration_s:g} s)")
    edges = np.clip(np.concatenate([[0.0], 0.5 * (t[1:] + t[:-1]), [duration_s]]), 0.0, duration_s)
    dur = np.diff(edges)
    keep = dur > 0
    return temp[keep], dur[keep]


@dataclass(frozen=True, eq=False)
class HeatingTruth:
    """The logged heating log and the true one the specimen saw.

    Attributes
    ----------
    logged : HeatingLog
        What the holder's software recorded (what the tilt-series files carry).
    true : HeatingLog
        True cumulative PT times, logged medians and, with an overshoot, the
        true trace of each step (``step_traces``).
    step_error_s : (T - 1,) ndarray
        True minus logged duration of each PT step (s).
    """

    logged: HeatingLog
    true: HeatingLog
    step_error_s: np.ndarray


def true_heating(log: HeatingLog, *, step_time_error: StepTimeErrorSettings, overshoot: OvershootSettings,
                 rng: np.random.Generator | None = None) -> HeatingTruth:
    """The true heating of a logged one: step-time errors drawn, each step's trace made.

    Parameters
    ----------
    log : HeatingLog
        The logged heating (no ``step_traces``).
    step_time_error : StepTimeErrorSettings
    overshoot : OvershootSettings
    rng : numpy.random.Generator, optional
        Draws the step errors (needed when they are enabled).

    Returns
    -------
    HeatingTruth
        With both switches off, ``true`` is ``log`` itself.

    Raises
    ------
    InputError
        A logged step not longer than the error bound, or a ramp longer than
        half a true step.
    """
    n_steps = log.n_series - 1
    logged_s = np.diff(log.pt_time_s)
    if step_time_error.enabled and np.any(logged_s <= step_time_error.bound_s):
        raise InputError(f"heating.step_time_error.bound_s ({step_time_error.bound_s:g} s) must be below every "
                         f"logged PT step (shortest {logged_s.min():g} s)")
    if step_time_error.enabled and rng is None:
        raise InputError("true_heating needs an rng to draw the step-time errors")
    error = draw_step_errors(n_steps, step_time_error, rng)
    if not step_time_error.enabled and not overshoot.enabled:
        return HeatingTruth(log, log, error)
    true_s = logged_s + error
    traces = None
    if overshoot.enabled:
        traces = tuple(trace_pieces(log.temperature_C[k], true_s[k - 1], overshoot, log.standby_temperature_C)
                       for k in range(1, log.n_series))
    true = HeatingLog(pt_time_s=log.pt_time_s[0] + np.concatenate([[0.0], np.cumsum(true_s)]),
                      temperature_C=log.temperature_C, standby_temperature_C=log.standby_temperature_C,
                      standby_s=log.standby_s, step_traces=traces)
    return HeatingTruth(log, true, error)
