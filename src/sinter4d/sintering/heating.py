"""The heating log of an in-situ run: processing (PT) steps between tilt series.

Convention (the paper's Fig. 3 and its text): tilt series k is taken at the
cumulative processing time ``pt_time_s[k]``. ``temperature_C[k]`` is the
median temperature of the PT step that *ended* at series k, i.e. of the
interval ``(pt_time_s[k-1], pt_time_s[k]]``; the first value
(``temperature_C[0]``, T1) therefore belongs to no interval and is not used.
After each PT step the holder drops to the standby temperature (ST, 200 °C)
and series k is acquired there, which takes ``standby_s[k]``; the geometry of
series k is the state at the end of its PT step (the start of its standby),
and that standby is integrated before PT step k + 1. The last series'
standby is therefore never integrated.

The time line is thus::

    series 0 | ST standby_s[0] | PT step 1 at temperature_C[1] | series 1 | ST standby_s[1] | PT step 2 ...

A log may also carry the true temperature trace of each PT step
(``step_traces``, made by :func:`~sinter4d.sintering.heating_trace.true_heating`):
each step is then integrated as its pieces of constant temperature instead
of one segment at its median (docs/design.md, "Heating log as measured").
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import InputError

#: The paper's heating log (Ihara et al. 2023, Fig. 3): cumulative PT time (s)
#: of each tilt series T1..T18 and the median temperature (°C) of the PT step
#: that ended there.
PAPER_PT_TIME_S = (0, 5, 12, 17, 22, 27, 31, 36, 41, 46, 51, 61, 71, 81, 100, 120, 150, 209)
PAPER_TEMPERATURE_C = (372, 370, 370, 370, 370, 372, 372, 370, 370, 372, 370, 364, 364, 364, 354, 353, 351, 350)


@dataclass(frozen=True, eq=False)
class HeatingLog:
    """Processing steps and standby waits of an in-situ heating run.

    Attributes
    ----------
    pt_time_s : (T,) ndarray
        Cumulative processing time (s) at which each tilt series is taken;
        strictly increasing.
    temperature_C : (T,) ndarray
        Median temperature (°C) of the PT step that ended at each series
        (``temperature_C[0]`` is not used, see the module docstring).
    standby_temperature_C : float
        Temperature (°C) while a tilt series is acquired (200 °C).
    standby_s : float or (T,) ndarray
        Time (s) spent at the standby temperature acquiring each series; a
        scalar applies to every series. Stored as a (T,) array.
    step_traces : tuple of (temperature_C, duration_s) pairs, optional
        The temperature trace of each PT step 1..T-1: pieces of constant
        temperature (°C) and their durations (s), which sum to the step's
        duration. None (default): each step at ``temperature_C[k]`` throughout.
    """

    pt_time_s: np.ndarray
    temperature_C: np.ndarray
    standby_temperature_C: float = 200.0
    standby_s: np.ndarray | float = 900.0
    step_traces: tuple | None = None

    def __post_init__(self):
        t = np.asarray(self.pt_time_s, dtype=float).reshape(-1)
        temp = np.asarray(self.temperature_C, dtype=float).reshape(-1)
        if t.size < 1:
            raise InputError("pt_time_s must hold at least one time")
        if temp.shape != t.shape:
            raise InputError(f"temperature_C has {temp.size} values but pt_time_s has {t.size}")
        if np.any(np.diff(t) <= 0) or not np.all(np.isfinite(t)):
            raise InputError(f"pt_time_s must be finite and increase strictly, got {t.tolist()}")
        if np.any(temp <= -273.15) or not np.all(np.isfinite(temp)):
            raise InputError(f"temperature_C must be finite and above -273.15 °C, got {temp.tolist()}")
        standby = np.broadcast_to(np.asarray(self.standby_s, dtype=float), t.shape).copy()
        if np.any(standby < 0) or not np.all(np.isfinite(standby)):
            raise InputError(f"standby_s must be finite and >= 0, got {np.asarray(self.standby_s).tolist()}")
        if not self.standby_temperature_C > -273.15:
            raise InputError(f"standby_temperature_C must be above -273.15 °C, got {self.standby_temperature_C}")
        for name, value in (("pt_time_s", t), ("temperature_C", temp), ("standby_s", standby)):
            value.flags.writeable = False
            object.__setattr__(self, name, value)
        object.__setattr__(self, "standby_temperature_C", float(self.standby_temperature_C))
        if self.step_traces is not None:
            object.__setattr__(self, "step_traces", _check_traces(self.step_traces, np.diff(t)))

    @classmethod
    def paper(cls, *, standby_temperature_C: float = 200.0, standby_s: float = 900.0) -> HeatingLog:
        """The paper's log (Fig. 3): 18 tilt series over 209 s of processing at 350-372 °C.

        Parameters
        ----------
        standby_temperature_C : float
            Standby temperature (°C), 200 in the paper.
        standby_s : float
            Time per tilt series at standby (s). The paper does not state it;
            900 s (15 min for 41 low-dose images with refocusing) is our guess.
        """
        return cls(
            pt_time_s=np.asarray(PAPER_PT_TIME_S, dtype=float),
            temperature_C=np.asarray(PAPER_TEMPERATURE_C, dtype=float),
            standby_temperature_C=standby_temperature_C,
            standby_s=standby_s,
        )

    @property
    def n_series(self) -> int:
        """Number of tilt series T."""
        return int(self.pt_time_s.size)

    def segments(self, *, include_standby: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The log as constant-temperature segments in time order.

        Parameters
        ----------
        include_standby : bool
            Include the standby waits between PT steps (default) or only the
            PT steps.

        Returns
        -------
        temperature_C : (S,) ndarray
            Temperature of each segment (°C).
        duration_s : (S,) ndarray
            Its duration (s).
        series_end : (T,) int ndarray
            Number of segments completed when series k is taken
            (``series_end[0] == 0``).
        """
        if include_standby:
            return self._segments_with_standby
        return self._segments_without_standby

    @cached_property
    def _segments_with_standby(self):
        return _build_segments(self, True)

    @cached_property
    def _segments_without_standby(self):
        return _build_segments(self, False)


def _build_segments(log: HeatingLog, include_standby: bool):
    temps, durs, ends = [], [], [0]
    for k in range(1, log.n_series):
        if include_standby and log.standby_s[k - 1] > 0:
            temps.append(log.standby_temperature_C)
            durs.append(log.standby_s[k - 1])
        if log.step_traces is None:
            temps.append(log.temperature_C[k])
            durs.append(log.pt_time_s[k] - log.pt_time_s[k - 1])
        else:
            temps.extend(log.step_traces[k - 1][0])
            durs.extend(log.step_traces[k - 1][1])
        ends.append(len(temps))
    out = (np.asarray(temps, dtype=float), np.asarray(durs, dtype=float), np.asarray(ends, dtype=np.int64))
    for arr in out:
        arr.flags.writeable = False
    return out


def _check_traces(traces, step_s: np.ndarray) -> tuple:
    """The traces as read-only float arrays, checked against the steps' durations ``step_s``."""
    if len(traces) != step_s.size:
        raise InputError(f"step_traces has {len(traces)} steps but the log has {step_s.size}")
    out = []
    for k, (temp, dur) in enumerate(traces, start=1):
        temp = np.asarray(temp, dtype=float).reshape(-1)
        dur = np.asarray(dur, dtype=float).reshape(-1)
        if temp.shape != dur.shape or temp.size < 1:
            raise InputError(f"step_traces[{k - 1}]: temperature_C and duration_s must be 1-D of one length")
        if np.any(dur < 0) or not np.all(np.isfinite(dur)) or np.any(temp <= -273.15) or not np.all(np.isfinite(temp)):
            raise InputError(f"step_traces[{k - 1}]: durations must be >= 0 and temperatures above -273.15 °C")
        if not np.isclose(dur.sum(), step_s[k - 1], rtol=1e-9, atol=1e-9):
            raise InputError(f"step_traces[{k - 1}]: durations sum to {dur.sum():g} s, the step lasts {step_s[k - 1]:g} s")
        temp.flags.writeable = False
        dur.flags.writeable = False
        out.append((temp, dur))
    return tuple(out)
