"""Neck-growth laws and their integration, against closed forms."""

import math

import numpy as np
import pytest
from scipy import constants

from sinter4d.assimilation import card_priors
from sinter4d.sintering import (
    MECHANISMS,
    HeatingLog,
    load_model_card,
    neck_growth,
    neck_growth_rate,
    neck_growth_segments,
    neck_volume_nm3,
    parse_model_card,
    reservoir_limit_nm,
    reservoir_volume_nm3,
)

GAMMA, OMEGA = 1.72, 1.18e-29
# Arrhenius data per transport kind: (prefactor SI, Q in J/mol); vapour and viscous are
# made-up values that give necks in seconds to hours.
TRANSPORT = {
    "lattice": (2.0e-5, 197e3),
    "boundary": (5.0e-15, 104e3),
    "surface": (6e-10, 205e3),
    "vapour": (1e3, 150e3),
    "viscous": (1e10, 150e3),
}
UNITS = {"lattice": "m^2/s", "boundary": "m^3/s", "surface": "m^3/s", "vapour": "m/s", "viscous": "1/s"}


def q(value, unit):
    return {"value": value, "unit": unit, "source": "test"}


def make_card(mechanisms, *, saturation="none", parameters=None, transport=None):
    transport = {**TRANSPORT, **(transport or {})}
    kinds = sorted({MECHANISMS[m].transport for m in mechanisms})
    doc = {
        "name": "test",
        "mechanisms": list(mechanisms),
        "saturation": saturation,
        "material": {
            "atomic_volume": q(OMEGA, "m^3"),
            "surface_energy": q(GAMMA, "J/m^2"),
            "melting_point": q(1356, "K"),
        },
        "transport": {
            k: {"prefactor": q(transport[k][0], UNITS[k]), "activation_energy": q(transport[k][1], "J/mol")}
            for k in kinds
        },
        "contact": {"initial_neck": q(2.5, "nm")},
        "parameters": parameters or {},
    }
    if saturation == "shell_reservoir":
        doc["reservoir"] = {"shell_packing_fraction": q(0.2, "1")}
    return parse_model_card(doc, source="test.toml")


def closed_form_k(mech, temperature_C):
    """K (SI) written out from the textbook formula, independent of laws.rate_constant."""
    t = temperature_C + 273.15
    d0, qa = TRANSPORT[mech.transport]
    return mech.constant * d0 * math.exp(-qa / (constants.R * t)) * GAMMA * OMEGA / (constants.k * t)


@pytest.mark.parametrize("name", sorted(MECHANISMS))
def test_integrated_law_matches_closed_form(name):
    mech = MECHANISMS[name]
    card = make_card([name])
    a = np.array([40.0, 75.0, 120.0])
    x0 = 0.02 * a
    temp = 370.0
    k = closed_form_k(mech, temp)

    # durations that take x/a to ~0.1, 0.25 and 0.45 for each radius
    def t_of(u):
        return (u**mech.n - 0.02**mech.n) * (a[1] * 1e-9) ** mech.m / k

    dur = np.diff([0.0, t_of(0.1), t_of(0.25), t_of(0.45)])
    x, _ = neck_growth_segments(card, None, radius_nm=a, neck0_nm=x0, temperature_C=np.full(3, temp), duration_s=dur)
    t = np.cumsum(dur)[:, None]
    expected = ((x0 / a) ** mech.n + k * t / (a * 1e-9) ** mech.m) ** (1.0 / mech.n) * a
    expected = np.minimum(expected, a)  # a neck is capped at the core radius
    np.testing.assert_allclose(x[1:], expected, rtol=1e-4)


@pytest.mark.parametrize("name", ["lattice_diffusion_boundary", "grain_boundary_diffusion", "surface_diffusion"])
def test_arrhenius_ratio(name):
    card = make_card([name])
    t1, t2 = 350.0 + 273.15, 200.0 + 273.15
    r1, _ = neck_growth_rate(card, None, 20.0, radius_nm=75.0, temperature_C=t1 - 273.15)
    r2, _ = neck_growth_rate(card, None, 20.0, radius_nm=75.0, temperature_C=t2 - 273.15)
    qa = TRANSPORT[MECHANISMS[name].transport][1]
    expected = math.exp(-qa / constants.R * (1 / t1 - 1 / t2)) * t2 / t1
    assert r1 / r2 == pytest.approx(expected, rel=1e-9)


def test_two_mechanisms_add():
    both = make_card(["grain_boundary_diffusion", "surface_diffusion"])
    gb = make_card(["grain_boundary_diffusion"])
    sd = make_card(["surface_diffusion"])
    x = np.array([5.0, 20.0, 40.0])
    kw = dict(radius_nm=75.0, temperature_C=360.0)
    r, rd = neck_growth_rate(both, None, x, **kw)
    r_gb, rd_gb = neck_growth_rate(gb, None, x, **kw)
    r_sd, rd_sd = neck_growth_rate(sd, None, x, **kw)
    np.testing.assert_allclose(r, r_gb + r_sd, rtol=1e-12)
    np.testing.assert_allclose(rd, r_gb, rtol=1e-12)  # only boundary diffusion densifies
    np.testing.assert_array_equal(rd_sd, 0.0)


def test_densifying_neck_of_purely_densifying_law_equals_growth():
    card = make_card(["grain_boundary_diffusion"])
    x, xd = neck_growth(card, None, radius_nm=[75.0], neck0_nm=[2.5], log=HeatingLog.paper())
    np.testing.assert_allclose(xd, x - 2.5, atol=1e-9)


@pytest.fixture(scope="module")
def cards(root):
    return {n: load_model_card(root / "models" / f"{n}.toml") for n in ("cu_ashby", "cu_shell_reservoir")}


def test_necks_never_shrink(cards):
    rng = np.random.default_rng(12)
    log = HeatingLog.paper()
    for card in cards.values():
        for _ in range(20):
            params = {k: float(p.sample(rng)) for k, p in card_priors(card).items()}
            a = rng.uniform(50, 100, 7)
            x, xd = neck_growth(
                card, params, radius_nm=a, neck0_nm=rng.uniform(1, 10, 7), gap_nm=rng.uniform(0, 15, 7), log=log
            )
            assert np.all(np.diff(x, axis=0) >= 0) and np.all(np.diff(xd, axis=0) >= -1e-12)
            assert np.all(x <= a + 1e-9) and np.all(xd <= x + 1e-9)


def test_saturating_model_stops_at_reservoir_limit(cards):
    card = cards["cu_shell_reservoir"]
    a = np.array([60.0, 75.0, 90.0])
    gap = np.array([0.0, 4.0, 12.0])
    params = {**card.default_parameters, "capture_radius_nm": 30.0}
    x, _ = neck_growth_segments(
        card,
        params,
        radius_nm=a,
        neck0_nm=[2.5] * 3,
        gap_nm=gap,
        temperature_C=[370.0] * 4,
        duration_s=[10.0, 100.0, 1e3, 1e5],
    )
    vr = reservoir_volume_nm3(a, a, capture_radius_nm=30.0, shell_thickness_nm=10.0, shell_packing_fraction=0.2)
    limit = reservoir_limit_nm(vr, a, gap)
    np.testing.assert_allclose(neck_volume_nm3(limit, a, gap), vr, rtol=1e-12)
    assert np.all(x <= limit * (1 + 1e-12))
    np.testing.assert_allclose(x[-1], limit, rtol=1e-6)
    np.testing.assert_allclose(x[-2], limit, rtol=1e-3)  # 1000 s: essentially stopped
    # the growth rate vanishes there
    r, _ = neck_growth_rate(card, params, limit, radius_nm=a, temperature_C=370.0, gap_nm=gap)
    assert np.all(
        r < 1e-6 * neck_growth_rate(card, params, 0.5 * limit, radius_nm=a, temperature_C=370.0, gap_nm=gap)[0]
    )


def _time_to_neck(card, params, ratio, temperature_C=350.0, a=75.0):
    t = np.logspace(-6, 7, 1301)
    x, _ = neck_growth_segments(
        card,
        params,
        radius_nm=[a],
        neck0_nm=[1e-4 * a],
        temperature_C=np.full(t.size, temperature_C),
        duration_s=np.diff(t, prepend=0.0),
    )
    return t[np.argmax(x[1:, 0] / a >= ratio)]


def test_frost_ashby_classical_timescales(cards):
    """75 nm Cu cores at 350 °C with classical C: boundary diffusion necks in ms, lattice in hours."""
    card = cards["cu_ashby"]
    off = {k: -30.0 for k in card.parameter_names}
    t_gb = _time_to_neck(card, {**off, "log10_C_grain_boundary_diffusion": 0.0}, 0.3)
    t_lat = _time_to_neck(card, {**off, "log10_C_lattice_diffusion_boundary": 0.0}, 0.3)
    assert 1e-3 < t_gb < 0.1  # 11 ms
    assert 3600 < t_lat < 10 * 3600  # 2.5 h


def test_standby_growth_bound_shell_reservoir(cards):
    """Q ~ 200 kJ/mol: a 900 s standby at 200 °C is worth ~2 ms at 370 °C."""
    card = cards["cu_shell_reservoir"]
    log = HeatingLog.paper()

    def grow(x0, temp, dt):
        return (
            neck_growth_segments(card, None, radius_nm=[75.0], neck0_nm=[x0], temperature_C=[temp], duration_s=[dt])[0][
                1, 0
            ]
            - x0
        )

    assert grow(2.5, 200.0, 900.0) < 3.0  # the fresh 2.5 nm shell bridge: +2.4 nm
    assert grow(10.0, 200.0, 900.0) < 0.1  # a grown neck: +0.05 nm
    assert grow(20.0, 200.0, 900.0) < 0.01 * grow(20.0, 370.0, 5.0)
    kw = dict(radius_nm=[75.0, 75.0, 60.0], neck0_nm=[2.5] * 3, gap_nm=[0.0, 4.0, 0.0], log=log)
    x, xd = neck_growth(card, None, **kw)
    x_pt, xd_pt = neck_growth(card, None, include_standby=False, **kw)
    assert np.abs(x - x_pt).max() < 0.01 and np.abs(xd - xd_pt).max() < 0.5


def test_standby_growth_bound_cu_ashby(cards):
    """Qb = 104 kJ/mol: a standby is worth ~0.8 s of processing; documented in the card."""
    card = cards["cu_ashby"]
    r200, _ = neck_growth_rate(card, None, 20.0, radius_nm=75.0, temperature_C=200.0)
    r370, _ = neck_growth_rate(card, None, 20.0, radius_nm=75.0, temperature_C=370.0)
    assert 900 * r200 / r370 < 1.0
    kw = dict(radius_nm=[75.0], neck0_nm=[2.5], log=HeatingLog.paper())
    x, _ = neck_growth(card, None, **kw)
    x_pt, _ = neck_growth(card, None, include_standby=False, **kw)
    assert np.abs(x - x_pt).max() < 1.0


def test_shipped_defaults_neck_in_tens_of_seconds(cards):
    log = HeatingLog.paper()
    t = log.pt_time_s
    for name, card in cards.items():
        x, _ = neck_growth(card, None, radius_nm=[75.0], neck0_nm=[2.5], log=log)
        u = x[:, 0] / 75.0
        assert 0.2 < u[t == 5][0] < 0.35 and 0.3 < u[t == 61][0] < 0.5, name
    x, _ = neck_growth(cards["cu_shell_reservoir"], None, radius_nm=[75.0], neck0_nm=[2.5], log=log)
    assert x[-1, 0] - x[t == 61][0, 0] < 1.0  # stopped near 60 s


def test_bad_input_raises(cards):
    card = cards["cu_ashby"]
    with pytest.raises(ValueError, match="neck0_nm"):
        neck_growth_segments(card, None, radius_nm=[75.0], neck0_nm=[0.0], temperature_C=[370.0], duration_s=[1.0])
    with pytest.raises(ValueError, match="no parameter 'foo'"):
        neck_growth_rate(card, {"foo": 1.0}, 10.0, radius_nm=75.0, temperature_C=370.0)
    with pytest.raises(ValueError, match="duration_s"):
        neck_growth_segments(card, None, radius_nm=[75.0], neck0_nm=[1.0], temperature_C=[370.0], duration_s=[-1.0])


def test_contacts_of_several_parameter_sets_in_one_call_are_each_set_alone(cards):
    """Per-contact parameters and durations: one call of W sets equals W calls, bit for bit."""
    rng = np.random.default_rng(5)
    card = cards["cu_shell_reservoir"]
    priors = card_priors(card)
    temp, dur = np.array([350.0, 120.0, 350.0, 352.0]), np.array([60.0, 30.0, 45.0, 20.0])
    a, x0, gap = rng.uniform(60, 90, 3), rng.uniform(1, 5, 3), np.array([0.0, 4.0, 10.0])
    sets = [{k: float(p.sample(rng)) for k, p in priors.items()} for _ in range(4)]
    durations = [dur * f for f in (1.0, 0.5, 1.3, 0.0)]  # the last set does not move
    alone = [neck_growth_segments(card, q, radius_nm=a, neck0_nm=x0, gap_nm=gap, temperature_C=temp, duration_s=d)
             for q, d in zip(sets, durations)]
    per_contact = {k: np.repeat([q[k] for q in sets], 3) for k in priors}
    x, xd = neck_growth_segments(card, per_contact, radius_nm=np.tile(a, 4), neck0_nm=np.tile(x0, 4),
                                 gap_nm=np.tile(gap, 4), temperature_C=temp,
                                 duration_s=np.repeat(np.column_stack(durations), 3, axis=1))
    for w, (xw, xdw) in enumerate(alone):
        np.testing.assert_array_equal(x[:, 3 * w:3 * w + 3], xw)
        np.testing.assert_array_equal(xd[:, 3 * w:3 * w + 3], xdw)
    np.testing.assert_allclose(x[:, 9:], np.broadcast_to(x0, (5, 3)), rtol=1e-15)
    assert not np.array_equal(x[:, :3], x[:, 3:6])  # the sets differ
    with pytest.raises(ValueError, match="capture_radius_nm must be a float or finite values of the 3 contacts"):
        neck_growth_segments(card, {"capture_radius_nm": [20.0, 30.0]}, radius_nm=a, neck0_nm=x0,
                             temperature_C=temp, duration_s=dur)
    with pytest.raises(ValueError, match="duration_s of shape"):
        neck_growth_segments(card, None, radius_nm=a, neck0_nm=x0, temperature_C=temp, duration_s=np.ones((4, 2)))
    with pytest.raises(ValueError, match="no parameter 'foo'"):
        neck_growth_segments(card, {"foo": np.ones(3)}, radius_nm=a, neck0_nm=x0, temperature_C=temp, duration_s=dur)
