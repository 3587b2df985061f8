"""The heating log as measured: step-time errors and the overshoot trace (docs/design.md, "Heating log as measured")."""

import numpy as np
import pytest

from sinter4d.errors import InputError
from sinter4d.sintering import (
    HeatingLog,
    OvershootSettings,
    StepTimeErrorSettings,
    load_model_card,
    neck_growth,
    overshoot_plateau_C,
    overshoot_trace,
    true_heating,
)
from sinter4d.sintering.heating_trace import draw_step_errors, trace_pieces

ON = StepTimeErrorSettings(enabled=True)
OFF = StepTimeErrorSettings()


@pytest.fixture(scope="module")
def card(root):
    return load_model_card(root / "models" / "cu_shell_reservoir.toml")


@pytest.mark.parametrize("median, duration, overshoot, decay", [
    (370.0, 5.0, 20.0, 2.0), (372.0, 4.2, 20.0, 2.0), (350.0, 59.0, 20.0, 2.0), (364.0, 10.0, 35.0, 6.0),
    (354.0, 19.0, 5.0, 0.5),
])
def test_trace_median_is_the_logged_temperature(median, duration, overshoot, decay):
    kw = dict(duration_s=duration, standby_temperature_C=200.0, overshoot_C=overshoot, decay_s=decay, ramp_s=0.1)
    plateau = overshoot_plateau_C(median, **kw)
    assert median - overshoot <= plateau <= median
    t = (np.arange(2_000_000) + 0.5) * duration / 2_000_000  # equal-time samples: their median is the trace's
    trace = overshoot_trace(t, plateau_C=plateau, **kw)
    assert np.median(trace) == pytest.approx(median, abs=1e-3)
    assert trace.max() == pytest.approx(plateau + overshoot, abs=1e-3)


def test_trace_closed_form_short_step():
    # a step so short that the median lies on the decay: time above it = ramp part + decay part = D/2
    kw = dict(duration_s=5.0, standby_temperature_C=200.0, overshoot_C=20.0, decay_s=2.0, ramp_s=0.0)
    plateau = overshoot_plateau_C(370.0, **kw)
    # no ramp: T(t) = T_pl + 20 exp(-t/2) crosses 370 at t = D/2 = 2.5 s
    assert plateau == pytest.approx(370.0 - 20.0 * np.exp(-2.5 / 2.0), abs=1e-8)
    assert overshoot_plateau_C(370.0, **{**kw, "overshoot_C": 0.0}) == 370.0


def test_trace_pieces_cover_the_step():
    temp, dur = trace_pieces(370.0, 5.05, OvershootSettings(enabled=True), 200.0)
    assert dur.sum() == pytest.approx(5.05, abs=1e-12) and temp.size == 51
    assert np.all(dur > 0) and temp[0] < temp[1]  # the ramp, then the peak
    assert np.all(np.diff(temp[1:]) < 0)  # relaxing towards the plateau


@pytest.mark.parametrize("law", ["uniform", "normal"])
def test_step_errors_lie_within_the_bound(law):
    e = draw_step_errors(20_000, StepTimeErrorSettings(enabled=True, law=law, bound_s=1.0), np.random.default_rng(4))
    assert np.all(np.abs(e) <= 1.0)
    sd = 1 / np.sqrt(3) if law == "uniform" else 0.5 * 0.8796  # truncnorm(-2, 2) s.d. is 0.8796 of the scale
    assert e.std() == pytest.approx(sd, rel=0.03) and abs(e.mean()) < 0.02
    assert not draw_step_errors(5, OFF, np.random.default_rng(4)).any()


def test_true_log_times_and_sharing(card):
    log = HeatingLog.paper()
    truth = true_heating(log, step_time_error=ON, overshoot=OvershootSettings(), rng=np.random.default_rng(1))
    e = truth.step_error_s
    assert e.shape == (17,) and np.all(np.abs(e) <= 1.0) and np.any(e != 0)
    np.testing.assert_allclose(truth.true.pt_time_s, np.concatenate([[0], np.cumsum(np.diff(log.pt_time_s) + e)]))
    np.testing.assert_array_equal(truth.true.temperature_C, log.temperature_C)
    # one log for the whole specimen: every contact integrates the same true durations
    a = np.array([65.0, 70.0, 80.0])
    x_all, _ = neck_growth(card, None, radius_nm=a, neck0_nm=np.full(3, 2.5), log=truth.true)
    for p in range(3):
        x_one, _ = neck_growth(card, None, radius_nm=a[p:p + 1], neck0_nm=[2.5], log=truth.true)
        np.testing.assert_allclose(x_all[:, p], x_one[:, 0], rtol=1e-12)


def test_disabled_is_the_logged_log_itself():
    log = HeatingLog.paper()
    truth = true_heating(log, step_time_error=OFF, overshoot=OvershootSettings())
    assert truth.true is log and not truth.step_error_s.any()


def test_overshoot_speeds_the_kinetics_up(card):
    # Arrhenius: a trace with the logged median but hotter early on sinters more than the median alone
    log = HeatingLog(pt_time_s=[0, 5, 12, 22], temperature_C=[370, 370, 370, 370])
    over = true_heating(log, step_time_error=OFF, overshoot=OvershootSettings(enabled=True)).true
    assert over.segments()[0].size > log.segments()[0].size
    x_log, _ = neck_growth(card, None, radius_nm=[75.0], neck0_nm=[2.5], log=log)
    x_over, _ = neck_growth(card, None, radius_nm=[75.0], neck0_nm=[2.5], log=over)
    assert np.all(x_over[1:] > x_log[1:])


def test_a_flat_trace_changes_nothing(card):
    # pieces at the step's own temperature: the same kinetics (splitting a segment changes nothing)
    log = HeatingLog(pt_time_s=[0, 5, 12], temperature_C=[372, 370, 364])
    traces = ((np.full(5, 370.0), np.full(5, 1.0)), (np.full(2, 364.0), np.array([3.0, 4.0])))
    split = HeatingLog(pt_time_s=[0, 5, 12], temperature_C=[372, 370, 364], step_traces=traces)
    x1, _ = neck_growth(card, None, radius_nm=[70.0], neck0_nm=[2.5], log=log)
    x2, _ = neck_growth(card, None, radius_nm=[70.0], neck0_nm=[2.5], log=split)
    np.testing.assert_allclose(x1, x2, rtol=1e-9)


@pytest.mark.parametrize("traces, match", [
    (((np.ones(2), np.ones(2)),), "has 1 steps"),
    (((np.full(2, 370.0), np.ones(2)), (np.full(1, 360.0), np.ones(1))), "sum to 2"),
])
def test_bad_traces_raise(traces, match):
    with pytest.raises(InputError, match=match):
        HeatingLog(pt_time_s=[0, 5, 12], temperature_C=[372, 370, 364], step_traces=traces)


def test_bound_longer_than_a_step_raises():
    log = HeatingLog(pt_time_s=[0, 1, 12], temperature_C=[372, 370, 364])
    with pytest.raises(InputError, match="bound_s"):
        true_heating(log, step_time_error=ON, overshoot=OvershootSettings(), rng=np.random.default_rng(0))
