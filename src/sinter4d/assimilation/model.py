"""Forward model of a fit: neck and centre approach of each measured pair.

The physics is :mod:`sinter4d.sintering`'s, not a copy: the neck radius x(t)
and its densifying part x_d(t) of every pair come from
:func:`~sinter4d.sintering.neck_growth_segments` along the heating log, and
the centre approach from the truncated-sphere geometry of an isolated pair,
``A = 2a (1 - d_ts(x_d / a))`` (:func:`~sinter4d.sintering.truncated_sphere_distance_ratio`,
as :mod:`sinter4d.sintering.cluster` moves the cores). The distance is then
``d(t) = d0 - A(t)``, with ``d0`` a nuisance parameter of each pair (see
:mod:`.likelihood`).

Each pair's geometry comes from the data:

* sphere radius ``a``: the median measured ``particle_radius_nm`` of the pair
  (the volume-conserving radius grows by < 0.3 % up to x/a = 0.4, well under
  the measurement noise);
* surface gap (enters the shell reservoir only): 0, or with ``gap = "data"``
  the pair's measured gap at its start, averaged over its trajectory
  (``sinter4d.assimilation.problem``);
* initial neck: the card's ``contact.initial_neck`` at the first time (as the
  simulator starts every contact), the pair's first measured neck at that
  time, or a shared fitted value (:class:`~.specs.ForwardSpec`).

The approach uses a table of ``d_ts(u)`` on 4097 equidistant points of
``u = x_d/a`` in [0, 1], built once from the reference bisection and read by
linear interpolation: it agrees with the reference to < 1e-8 in ``d/2a``
(tested) at a small fraction of the bisection's cost.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import InputError
from ..sintering import HeatingLog, ModelCard, neck_growth_segments, truncated_sphere_distance_ratio

_TABLE_POINTS = 4097


@lru_cache(maxsize=1)
def _distance_table() -> tuple[np.ndarray, np.ndarray]:
    u = np.linspace(0.0, 1.0, _TABLE_POINTS)
    ratio = truncated_sphere_distance_ratio(u)
    u.flags.writeable = False
    ratio.flags.writeable = False
    return u, ratio


def approach_nm(densifying_neck_nm, radius_nm):
    """Centre approach (nm) of an isolated truncated-sphere pair.

    Parameters
    ----------
    densifying_neck_nm : ndarray
        Densifying part x_d of the neck (nm); NaN passes through.
    radius_nm : ndarray
        Sphere radius a (nm); broadcast.

    Returns
    -------
    ndarray
        ``2a (1 - d_ts(x_d/a))`` (nm), with ``x_d/a`` clipped to [0, 1] as in
        :mod:`sinter4d.sintering.cluster`.
    """
    a = np.asarray(radius_nm, dtype=float)
    u = np.clip(np.asarray(densifying_neck_nm, dtype=float) / a, 0.0, 1.0)
    grid, ratio = _distance_table()
    out = 2.0 * a * (1.0 - np.interp(u, grid, ratio))
    return np.where(np.isnan(u), np.nan, out)


class TrajectoryModel:
    """Neck radius and centre approach of P pairs at the T times of a heating log.

    Parameters
    ----------
    card : ModelCard
    log : HeatingLog
        Times (s) and temperatures (°C) of the T tilt series, and the standby.
    radius_nm : (P,) ndarray
        Sphere radius a of each pair (nm).
    gap_nm : (P,) ndarray
        Surface gap each neck bridges (nm).
    start_index : (P,) int ndarray, optional
        Series at which each pair's model starts (default 0).
    neck0_nm : (P,) ndarray, optional
        Neck at the start of each pair (nm); None: the card's initial neck,
        or the value passed to :meth:`__call__`.
    shell_thickness_nm : float
        Shell thickness of the reservoir (nm).
    include_standby : bool
        Integrate the standby waits.
    grid_points : int
        Tabulation points of the kinetics.

    Notes
    -----
    The model is picklable (for a process pool): it pickles the card's path
    and re-reads the card once per process.
    """

    def __init__(self, card: ModelCard, log: HeatingLog, radius_nm, gap_nm, *, start_index=None, neck0_nm=None,
                 shell_thickness_nm: float = 10.0, include_standby: bool = True, grid_points: int = 128):
        self.card = card
        self.log = log
        self.radius_nm = np.asarray(radius_nm, dtype=float).reshape(-1)
        p = self.radius_nm.size
        if np.any(~(self.radius_nm > 0)):
            raise InputError(f"radius_nm must be positive, got {self.radius_nm.tolist()}")
        self.gap_nm = np.broadcast_to(np.asarray(gap_nm, dtype=float), (p,)).copy()
        start = np.zeros(p, dtype=np.int64) if start_index is None else np.asarray(start_index, dtype=np.int64)
        if start.shape != (p,) or np.any(start < 0) or np.any(start >= log.n_series):
            raise InputError(f"start_index must be (P,) in [0, {log.n_series}), got {start.tolist()}")
        self.start_index = start
        self.neck0_nm = None if neck0_nm is None else np.broadcast_to(np.asarray(neck0_nm, float), (p,)).copy()
        if self.neck0_nm is not None and np.any(~(self.neck0_nm > 0)):
            raise InputError("neck0_nm must be positive")
        self.shell_thickness_nm = float(shell_thickness_nm)
        self.include_standby = bool(include_standby)
        self.grid_points = int(grid_points)
        temp, dur, ends = log.segments(include_standby=include_standby)
        self._temp, self._dur, self._ends = temp, dur, ends
        self._step_last = ends[1:] - 1  # the last segment of each PT step 1..T-1 (its end is the series)
        # segments a pair has started by: the ones after the series it starts at
        self._running = np.arange(temp.size)[:, None] >= ends[start][None, :]  # (S, P)
        self._before_start = np.arange(log.n_series)[:, None] < start[None, :]  # (T, P)

    @property
    def n_pairs(self) -> int:
        """Number of pairs P."""
        return self.radius_nm.size

    @property
    def n_times(self) -> int:
        """Number of tilt series T."""
        return self.log.n_series

    def durations_s(self, step_error_s=None) -> np.ndarray:
        """Durations (s) of the log's segments, each PT step lengthened by its error.

        Parameters
        ----------
        step_error_s : (T - 1,) ndarray, optional
            True minus logged duration of each PT step (s); it is added to
            the step's last segment. None: the logged durations.

        Raises
        ------
        ValueError
            A segment would last less than 0 s.
        """
        if step_error_s is None:
            return self._dur
        dur = self._dur.copy()
        dur[self._step_last] += step_error_s
        if dur.min() < 0.0:
            raise ValueError("a PT step is shorter than its time error")
        return dur

    def necks(self, params: Mapping[str, float], initial_neck_nm: float | None = None, step_error_s=None):
        """Neck radius and its densifying part of every pair at every time.

        Parameters
        ----------
        params : mapping
            Card parameters (missing ones take the card's defaults).
        initial_neck_nm : float, optional
            Shared initial neck (nm) when the model has no ``neck0_nm``;
            default the card's ``contact.initial_neck``.
        step_error_s : (T - 1,) ndarray, optional
            Time error of each PT step (s), shared by all pairs
            (:meth:`durations_s`); None: the logged durations.

        Returns
        -------
        neck_radius_nm, densifying_neck_nm : (T, P) ndarray
            NaN before each pair's start.
        """
        x, xd = self.necks_batch([params], None if initial_neck_nm is None else [initial_neck_nm],
                                 None if step_error_s is None else np.asarray(step_error_s, dtype=float)[None, :])
        return x[0], xd[0]

    def necks_batch(self, params, initial_neck_nm=None, step_error_s=None):
        """:meth:`necks` of W parameter sets at once, in one call of the kinetics.

        The W × P contacts are integrated together
        (:func:`~sinter4d.sintering.neck_growth_segments` with per-contact
        parameters and durations); each set's values are those of :meth:`necks`.

        Parameters
        ----------
        params : sequence of W mappings
            Card parameters of each set (missing ones take the card's defaults).
        initial_neck_nm : (W,) array_like, optional
            Shared initial neck (nm) of each set, when the model has no ``neck0_nm``.
        step_error_s : (W, T - 1) ndarray, optional
            Time error of each PT step (s) of each set.

        Returns
        -------
        neck_radius_nm, densifying_neck_nm : (W, T, P) ndarray
            NaN before each pair's start.

        Raises
        ------
        ValueError
            A set's PT step is shorter than its time error.
        """
        t, p, w = self.n_times, self.n_pairs, len(params)
        names = sorted({k for q in params for k in q})
        defaults = self.card.default_parameters
        per_contact = {k: np.repeat([float(q.get(k, defaults.get(k, np.nan))) for q in params], p) for k in names}
        if self.neck0_nm is not None:
            x0 = np.tile(self.neck0_nm, w)
        elif initial_neck_nm is None:
            x0 = np.full(w * p, self.card.initial_neck_nm)
        else:
            x0 = np.repeat(np.asarray(initial_neck_nm, dtype=float).reshape(w), p)
        if step_error_s is None:
            dur = np.broadcast_to(self._dur[:, None], (self._dur.size, w))
        else:
            dur = np.column_stack([self.durations_s(e) for e in np.asarray(step_error_s, dtype=float).reshape(w, -1)])
        dur = (dur[:, :, None] * self._running[:, None, :]).reshape(self._dur.size, w * p)  # (S, W*P)
        xs, xds = neck_growth_segments(
            self.card, per_contact, radius_nm=np.tile(self.radius_nm, w), neck0_nm=x0,
            temperature_C=self._temp, duration_s=dur, gap_nm=np.tile(self.gap_nm, w),
            shell_thickness_nm=self.shell_thickness_nm, grid_points=self.grid_points,
        )
        x = xs[self._ends].reshape(t, w, p).transpose(1, 0, 2)
        xd = xds[self._ends].reshape(t, w, p).transpose(1, 0, 2)
        x[:, self._before_start] = np.nan
        xd[:, self._before_start] = np.nan
        return x, xd

    def __call__(self, params: Mapping[str, float], initial_neck_nm: float | None = None, step_error_s=None):
        """Neck radius and centre approach (nm) of every pair, each (T, P); NaN before a pair's start."""
        x, xd = self.necks(params, initial_neck_nm, step_error_s)
        return x, approach_nm(xd, self.radius_nm)

    def batch(self, params, initial_neck_nm=None, step_error_s=None):
        """:meth:`__call__` of W parameter sets (:meth:`necks_batch`): neck radius and approach (nm), each (W, T, P)."""
        x, xd = self.necks_batch(params, initial_neck_nm, step_error_s)
        return x, approach_nm(xd, self.radius_nm)

    def __reduce__(self):
        return (_rebuild_model, (
            str(Path(self.card.path).resolve()), self.log.pt_time_s, self.log.temperature_C,
            self.log.standby_temperature_C, self.log.standby_s, self.radius_nm, self.gap_nm, self.start_index, self.neck0_nm,
            self.shell_thickness_nm, self.include_standby, self.grid_points, self.log.step_traces,
        ))


_WORKER_CARDS: dict[str, ModelCard] = {}


def _rebuild_model(card_path, pt_time_s, temperature_C, standby_temperature_C, standby_s, radius_nm, gap_nm,
                   start_index, neck0_nm, shell_thickness_nm, include_standby, grid_points, step_traces=None):
    from ..sintering import load_model_card

    card = _WORKER_CARDS.get(card_path)
    if card is None:
        card = _WORKER_CARDS[card_path] = load_model_card(card_path)
    log = HeatingLog(pt_time_s=pt_time_s, temperature_C=temperature_C,
                     standby_temperature_C=standby_temperature_C, standby_s=standby_s, step_traces=step_traces)
    return TrajectoryModel(card, log, radius_nm, gap_nm, start_index=start_index, neck0_nm=neck0_nm,
                           shell_thickness_nm=shell_thickness_nm, include_standby=include_standby,
                           grid_points=grid_points)
