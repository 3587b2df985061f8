"""Forward model and likelihood of the fit: same physics as sinter4d.sintering, exact marginalisation."""

import math
import pickle

import numpy as np
import pytest
from scipy import integrate

from sinter4d.assimilation import LogPosterior, Prior, PriorVector, TrajectoryModel, approach_nm, card_priors, synthetic_trajectories
from sinter4d.errors import InputError
from sinter4d.sintering import HeatingLog, load_model_card, neck_growth, sinter_cluster, truncated_sphere_distance_ratio


@pytest.fixture(scope="module")
def shell_card(root):
    return load_model_card(root / "models" / "cu_shell_reservoir.toml")


@pytest.fixture(scope="module")
def ashby_card(root):
    return load_model_card(root / "models" / "cu_ashby.toml")


def test_approach_table_matches_the_reference_geometry():
    rng = np.random.default_rng(1)
    u = np.concatenate([rng.uniform(0, 1, 2000), [0.0, 1e-4, 0.5, 1.0]])
    a = 75.0
    reference = 2 * a * (1 - truncated_sphere_distance_ratio(u))
    assert np.max(np.abs(approach_nm(u * a, a) - reference)) / (2 * a) < 1e-6
    assert np.isnan(approach_nm(np.nan, a))
    assert approach_nm(2 * a, a) == pytest.approx(2 * a * (1 - truncated_sphere_distance_ratio(1.0)))  # clipped


@pytest.mark.parametrize("card_name", ["shell_card", "ashby_card"])
def test_model_is_neck_growth(request, card_name):
    card = request.getfixturevalue(card_name)
    log = HeatingLog.paper()
    a = np.array([70.0, 75.0, 80.0])
    gap = np.array([0.0, 3.0, 12.0])
    params = card.default_parameters
    model = TrajectoryModel(card, log, a, gap)
    x, approach = model(params)
    x_ref, xd_ref = neck_growth(card, params, radius_nm=a, neck0_nm=card.initial_neck_nm, log=log, gap_nm=gap)
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_allclose(approach, 2 * a * (1 - truncated_sphere_distance_ratio(np.clip(xd_ref / a, 0, 1))),
                               atol=1e-6)
    x2, _ = model(params, initial_neck_nm=4.0)
    x2_ref, _ = neck_growth(card, params, radius_nm=a, neck0_nm=4.0, log=log, gap_nm=gap)
    np.testing.assert_array_equal(x2, x2_ref)


def test_model_started_later_continues_the_trajectory(shell_card):
    log = HeatingLog.paper()
    a = np.array([72.0, 76.0])
    params = shell_card.default_parameters
    x_ref, _ = neck_growth(shell_card, params, radius_nm=a, neck0_nm=shell_card.initial_neck_nm, log=log)
    start = np.array([0, 3])
    neck0 = np.array([shell_card.initial_neck_nm, x_ref[3, 1]])
    x, _ = TrajectoryModel(shell_card, log, a, 0.0, start_index=start, neck0_nm=neck0).necks(params)
    assert np.all(np.isnan(x[:3, 1])) and np.all(np.isfinite(x[3:, 1]))
    np.testing.assert_allclose(x[3:, 1], x_ref[3:, 1], atol=0.02)  # tabulation grids differ
    np.testing.assert_array_equal(x[:, 0], x_ref[:, 0])


def test_isolated_sphere_pair_matches_the_simulator(shell_card):
    """The fit's pair model against sinter_cluster + pair_truth for two spheres alone."""
    from sinter4d.phantom import make_cluster, pair_truth
    from sinter4d.phantom._cluster import surface_gap_nm

    log = HeatingLog.paper()
    c0 = make_cluster(n_cores=2, rng=1, aspect_ratio_range=(1.0, 1.0))
    clusters = sinter_cluster(c0, shell_card, None, log)
    pairs = np.asarray(clusters[0].contact)
    truth = {k: np.array([pair_truth(c, pairs)[k][0] for c in clusters]) for k in ("neck_radius_nm", "distance_nm")}
    a = float(np.mean(c0.initial_radius_nm))
    model = TrajectoryModel(shell_card, log, [a], surface_gap_nm(c0, pairs))
    x, approach = model(shell_card.default_parameters)
    np.testing.assert_allclose(x[:, 0], truth["neck_radius_nm"], atol=0.02)
    np.testing.assert_allclose(truth["distance_nm"][0] - approach[:, 0], truth["distance_nm"], atol=0.02)


def test_prior_vector_matches_prior_logpdf():
    priors = [Prior("uniform", low=-3, high=5), Prior("log_uniform", low=5, high=150), Prior("normal", mean=1, sd=2)]
    pv = PriorVector(priors)
    for theta in ([0.0, 30.0, 0.5], [4.9, 5.0, -3.0], [-3.0, 149.0, 10.0]):
        assert pv(theta) == pytest.approx(sum(p.logpdf(v) for p, v in zip(priors, theta)), rel=1e-12)
    assert pv([6.0, 30.0, 0.0]) == -math.inf
    assert pv([0.0, 4.0, 0.0]) == -math.inf
    draws = pv.sample(np.random.default_rng(0), 100)
    assert draws.shape == (100, 3) and np.all(np.isfinite([pv(d) for d in draws]))


def _posterior(card, ds, *, sigma_neck=1.0, sigma_distance=2.0, names=("capture_radius_nm",)):
    log = HeatingLog(pt_time_s=ds.pt_time_s.values, temperature_C=ds.temperature_C.values)
    model = TrajectoryModel(card, log, ds.particle_radius_nm.values[0], 0.0)
    priors = [card_priors(card)[k] for k in names]
    fixed = {k: v for k, v in card.default_parameters.items() if k not in names}
    obs = {v: ds[v].values for v in ("neck_radius_nm", "distance_nm")}
    return LogPosterior(model, names, priors, fixed, obs, {"neck_radius_nm": sigma_neck, "distance_nm": sigma_distance})


def test_distance_marginal_is_the_integral_over_the_initial_distance(shell_card):
    ds = synthetic_trajectories(shell_card, None, rng=3, n_pairs=2)
    ds["distance_nm"][[4, 9], 1] = np.nan
    lp = _posterior(shell_card, ds)
    theta = np.array([33.0])
    _, approach = lp.predict(theta)
    s = 2.0
    expected = 0.0
    for p in range(2):
        y = ds.distance_nm.values[:, p]
        ok = np.isfinite(y)

        def like(d0):
            r = y[ok] - (d0 - approach[ok, p])
            return np.exp(-0.5 * np.sum(r**2) / s**2 - ok.sum() * math.log(s * math.sqrt(2 * math.pi)) + 60.0)

        centre = np.mean(y[ok] + approach[ok, p])
        value, _ = integrate.quad(like, centre - 30, centre + 30, points=[centre], epsabs=0, epsrel=1e-11)
        expected += math.log(value) - 60.0
    neck = ds.neck_radius_nm.values
    x, _ = lp.predict(theta)
    expected += float(np.sum(-0.5 * (neck - x) ** 2 - 0.5 * math.log(2 * math.pi)))
    assert lp.log_likelihood(theta) == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_nan_points_are_skipped(shell_card):
    ds = synthetic_trajectories(shell_card, None, rng=4, n_pairs=3)
    y = ds.neck_radius_nm.values.copy()
    y[5, 1] = y[0, 2] = np.nan
    log = HeatingLog(pt_time_s=ds.pt_time_s.values, temperature_C=ds.temperature_C.values)
    model = TrajectoryModel(shell_card, log, ds.particle_radius_nm.values[0], 0.0)
    lp = LogPosterior(model, ("capture_radius_nm",), [card_priors(shell_card)["capture_radius_nm"]],
                      {}, {"neck_radius_nm": y}, {"neck_radius_nm": 1.0})
    theta = np.array([30.0])
    x, _ = lp.predict(theta)
    ok = np.isfinite(y)
    expected = float(np.sum(-0.5 * (y[ok] - x[ok]) ** 2 - 0.5 * math.log(2 * math.pi)))
    assert lp.log_likelihood(theta) == pytest.approx(expected, rel=1e-12)
    assert lp.n_observations == {"neck_radius_nm": y.size - 2}


def test_pointwise_terms_add_up(shell_card):
    ds = synthetic_trajectories(shell_card, None, rng=5, n_pairs=3)
    lp = _posterior(shell_card, ds)
    theta = np.array([36.0])
    res = lp.pointwise(theta, np.random.default_rng(0))
    assert res["log_likelihood/neck_radius_nm"].shape == (18, 3)
    x, _ = lp.predict(theta)
    np.testing.assert_allclose(res["model/neck_radius_nm"], x)
    neck_part = float(res["log_likelihood/neck_radius_nm"].sum())
    assert neck_part == pytest.approx(float(np.sum(-0.5 * (ds.neck_radius_nm.values - x) ** 2 - 0.5 * math.log(2 * math.pi))))
    assert np.all(np.isfinite(res["predictive/distance_nm"]))


def test_posterior_pickles_and_is_outside_support(shell_card):
    ds = synthetic_trajectories(shell_card, None, rng=6)
    lp = _posterior(shell_card, ds, names=("log10_C_surface_diffusion", "capture_radius_nm"))
    theta = np.array([-2.0, 35.0])
    clone = pickle.loads(pickle.dumps(lp))
    assert clone(theta) == lp(theta)
    assert lp(np.array([-2.0, 500.0])) == -math.inf


def test_pair_offsets_are_the_correlated_gaussian(shell_card):
    """Offsets integrated out = the multivariate normal with covariance sigma^2 I + tau^2 1 1^T per pair."""
    from scipy.stats import multivariate_normal

    ds = synthetic_trajectories(shell_card, None, rng=8, n_pairs=3, neck_pair_sigma_nm=3.0)
    y = ds.neck_radius_nm.values.copy()
    y[4, 1] = np.nan
    out = np.zeros(y.shape, dtype=bool)
    out[0] = True  # series 0 left out
    log = HeatingLog(pt_time_s=ds.pt_time_s.values, temperature_C=ds.temperature_C.values)
    model = TrajectoryModel(shell_card, log, ds.particle_radius_nm.values[0], 0.0)
    names = ("capture_radius_nm", "sigma_neck_radius_nm", "sigma_pair_neck_radius_nm")
    priors = [card_priors(shell_card)["capture_radius_nm"], Prior("log_uniform", low=0.01, high=100.0),
              Prior("log_uniform", low=0.01, high=100.0)]
    lp = LogPosterior(model, names, priors, {}, {"neck_radius_nm": y}, {},
                      excluded={"neck_radius_nm": out})
    theta = np.array([33.0, 1.3, 2.7])
    x, _ = lp.predict(theta)
    expected = 0.0
    for p in range(3):
        ok = np.isfinite(y[:, p]) & ~out[:, p]
        n = int(ok.sum())
        cov = 1.3**2 * np.eye(n) + 2.7**2 * np.ones((n, n))
        expected += multivariate_normal(mean=x[ok, p], cov=cov).logpdf(y[ok, p])
    assert lp.log_likelihood(theta) == pytest.approx(expected, rel=1e-10)
    assert lp.n_observations == {"neck_radius_nm": 3 * 17 - 1}
    # tau -> 0 is the independent model
    lp0 = LogPosterior(model, names[:2], priors[:2], {}, {"neck_radius_nm": y}, {}, excluded={"neck_radius_nm": out})
    assert lp.log_likelihood([33.0, 1.3, 1e-9]) == pytest.approx(lp0.log_likelihood([33.0, 1.3]), rel=1e-10)


def test_pair_offset_draws_follow_their_conditional_posterior(shell_card):
    """The offsets drawn per posterior draw are N(v S / sigma^2, v): mean and spread over many draws."""
    ds = synthetic_trajectories(shell_card, None, rng=9, n_pairs=2, neck_sigma_nm=1.0, neck_pair_sigma_nm=4.0)
    y = ds.neck_radius_nm.values
    log = HeatingLog(pt_time_s=ds.pt_time_s.values, temperature_C=ds.temperature_C.values)
    model = TrajectoryModel(shell_card, log, ds.particle_radius_nm.values[0], 0.0)
    lp = LogPosterior(model, ("capture_radius_nm",), [card_priors(shell_card)["capture_radius_nm"]], {},
                      {"neck_radius_nm": y}, {"neck_radius_nm": 1.0}, pair_sigma_nm={"neck_radius_nm": 4.0})
    theta = np.array([35.0])
    x, _ = lp.predict(theta)
    rng = np.random.default_rng(1)
    offsets = np.array([lp.pointwise(theta, rng)["model/neck_radius_nm"][5] - x[5] for _ in range(4000)])
    n = y.shape[0]
    v = 1.0 / (n / 1.0 + 1.0 / 16.0)
    mean = v * (y - x).sum(axis=0)
    np.testing.assert_allclose(offsets.mean(axis=0), mean, atol=4 * math.sqrt(v / 4000))
    np.testing.assert_allclose(offsets.std(axis=0), math.sqrt(v), rtol=0.05)


def test_pair_offsets_only_for_the_neck(shell_card):
    ds = synthetic_trajectories(shell_card, None, rng=10, n_pairs=2)
    log = HeatingLog(pt_time_s=ds.pt_time_s.values, temperature_C=ds.temperature_C.values)
    model = TrajectoryModel(shell_card, log, ds.particle_radius_nm.values[0], 0.0)
    with pytest.raises(ValueError, match="neck_radius_nm only"):
        LogPosterior(model, ("capture_radius_nm",), [card_priors(shell_card)["capture_radius_nm"]], {},
                     {"distance_nm": ds.distance_nm.values}, {"distance_nm": 1.0}, pair_sigma_nm={"distance_nm": 1.0})


def _three_pairs(card, rng):
    """Neck readings of three synthetic pairs, their forward model and the capture radius's prior."""
    ds = synthetic_trajectories(card, None, rng=rng, n_pairs=3)
    log = HeatingLog(pt_time_s=ds.pt_time_s.values, temperature_C=ds.temperature_C.values)
    model = TrajectoryModel(card, log, ds.particle_radius_nm.values[0], 0.0)
    return ds.neck_radius_nm.values, model, [card_priors(card)["capture_radius_nm"]]


def test_a_bias_is_subtracted_from_every_reading(shell_card):
    y, model, prior = _three_pairs(shell_card, 11)
    shifted = LogPosterior(model, ("capture_radius_nm",), prior, {}, {"neck_radius_nm": y - 1.7},
                           {"neck_radius_nm": 1.0}, pair_sigma_nm={"neck_radius_nm": 2.0})
    fixed = LogPosterior(model, ("capture_radius_nm",), prior, {}, {"neck_radius_nm": y}, {"neck_radius_nm": 1.0},
                         pair_sigma_nm={"neck_radius_nm": 2.0}, bias_nm={"neck_radius_nm": 1.7})
    sampled = LogPosterior(model, ("capture_radius_nm", "bias_neck_radius_nm"),
                           [*prior, Prior("normal", mean=-1.0, sd=0.5)], {}, {"neck_radius_nm": y},
                           {"neck_radius_nm": 1.0}, pair_sigma_nm={"neck_radius_nm": 2.0})
    assert fixed.log_likelihood([33.0]) == pytest.approx(shifted.log_likelihood([33.0]), rel=1e-12)
    assert sampled.log_likelihood([33.0, 1.7]) == pytest.approx(shifted.log_likelihood([33.0]), rel=1e-12)
    x, _ = fixed.predict([33.0])
    draw = fixed.pointwise([33.0], np.random.default_rng(0))
    # the model curves carry the bias (and each pair's offset, ~ the mean residual)
    np.testing.assert_allclose((draw["model/neck_radius_nm"] - x - 1.7).std(axis=0), 0.0, atol=1e-9)


def test_the_bridged_offset_shifts_only_the_bridged_pairs_readings(shell_card):
    """A bridged pair's readings carry the offset beta_b: the same as its readings shifted by -beta_b."""
    y, model, prior = _three_pairs(shell_card, 13)
    bridged = np.array([False, True, False])
    shifted = y.copy()
    shifted[:, bridged] += 6.0  # a pair bridged across a gap read 6 nm narrow, put back
    common = dict(pair_sigma_nm={"neck_radius_nm": 2.0}, bias_nm={"neck_radius_nm": 0.4})
    plain = LogPosterior(model, ("capture_radius_nm",), prior, {}, {"neck_radius_nm": shifted},
                         {"neck_radius_nm": 1.0}, **common)
    fixed = LogPosterior(model, ("capture_radius_nm",), prior, {}, {"neck_radius_nm": y}, {"neck_radius_nm": 1.0},
                         bridged=bridged, bridged_bias_nm={"neck_radius_nm": -6.0}, **common)
    sampled = LogPosterior(model, ("capture_radius_nm", "bridged_bias_neck_radius_nm"),
                           [*prior, Prior("uniform", low=-20.0, high=20.0)], {}, {"neck_radius_nm": y},
                           {"neck_radius_nm": 1.0}, bridged=bridged, **common)
    assert fixed.log_likelihood([33.0]) == pytest.approx(plain.log_likelihood([33.0]), rel=1e-12)
    assert sampled.log_likelihood([33.0, -6.0]) == pytest.approx(plain.log_likelihood([33.0]), rel=1e-12)
    # the model curves of the bridged pair carry it, the others not
    x, _ = fixed.predict([33.0])
    mean = fixed.pointwise([33.0], np.random.default_rng(1))["model/neck_radius_nm"]
    reference = plain.pointwise([33.0], np.random.default_rng(1))["model/neck_radius_nm"]
    np.testing.assert_allclose(mean - reference, np.where(bridged, -6.0, 0.0)[None, :].repeat(len(x), 0), atol=1e-9)
    # no bridged pair: the offset changes nothing
    none = LogPosterior(model, ("capture_radius_nm", "bridged_bias_neck_radius_nm"),
                        [*prior, Prior("uniform", low=-20.0, high=20.0)], {}, {"neck_radius_nm": shifted},
                        {"neck_radius_nm": 1.0}, **common)
    assert none.log_likelihood([33.0, -6.0]) == pytest.approx(plain.log_likelihood([33.0]), rel=1e-12)
    with pytest.raises(InputError, match="bridged flags 2 pairs"):
        LogPosterior(model, ("capture_radius_nm",), prior, {}, {"neck_radius_nm": y}, {"neck_radius_nm": 1.0},
                     bridged=[True, False])


def test_the_bridged_offset_is_recovered_with_the_law_held(shell_card):
    """Bridged pairs read 6 nm narrow (offsets and noise drawn): the likelihood peaks at beta_b ~ -6."""
    rng = np.random.default_rng(21)
    ds = synthetic_trajectories(shell_card, None, rng=rng, n_pairs=8)
    log = HeatingLog(pt_time_s=ds.pt_time_s.values, temperature_C=ds.temperature_C.values)
    model = TrajectoryModel(shell_card, log, ds.particle_radius_nm.values[0], 0.0)
    x, _ = model(shell_card.default_parameters)
    bridged = np.arange(8) % 2 == 1
    offsets = rng.normal(0.0, 1.0, 8)
    y = x + offsets[None, :] + np.where(bridged, -6.0, 0.0)[None, :] + rng.normal(0.0, 0.5, x.shape)
    prior = [card_priors(shell_card)["capture_radius_nm"], Prior("uniform", low=-20.0, high=20.0)]
    lp = LogPosterior(model, ("capture_radius_nm", "bridged_bias_neck_radius_nm"), prior, {}, {"neck_radius_nm": y},
                      {"neck_radius_nm": 0.5}, pair_sigma_nm={"neck_radius_nm": 1.0}, bridged=bridged)
    r_c = shell_card.default_parameters["capture_radius_nm"]
    grid = np.linspace(-12.0, 0.0, 241)
    best = grid[np.argmax([lp.log_likelihood([r_c, b]) for b in grid])]
    # four bridged pairs with offsets of s.d. 1 nm: the estimate's s.d. is about 1 / sqrt(4) * sqrt(2) nm
    assert best == pytest.approx(-6.0, abs=1.5)


def test_a_reading_curve_maps_the_law_to_the_readings(shell_card):
    """gain g about x_ref and bias beta: the readings are x_ref + g (x - x_ref) + beta of the law's x."""
    y, model, prior = _three_pairs(shell_card, 12)
    names = ("capture_radius_nm", "bias_neck_radius_nm", "gain_neck_radius_nm")
    lp = LogPosterior(model, names, [*prior, Prior("normal", mean=0.0, sd=1.0), Prior("normal", mean=1.0, sd=0.1)],
                      {}, {"neck_radius_nm": y}, {"neck_radius_nm": 1.0}, reference_nm={"neck_radius_nm": 20.0})
    theta = [33.0, -0.6, 0.85]
    x, _ = lp.predict(theta)
    read = 20.0 + 0.85 * (x - 20.0) - 0.6
    expected = float(np.sum(-0.5 * (y - read) ** 2 - 0.5 * math.log(2 * math.pi)))
    assert lp.log_likelihood(theta) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(lp.pointwise(theta, np.random.default_rng(0))["model/neck_radius_nm"], read)
    fixed = LogPosterior(model, ("capture_radius_nm",), prior, {}, {"neck_radius_nm": y}, {"neck_radius_nm": 1.0},
                         bias_nm={"neck_radius_nm": -0.6}, gain={"neck_radius_nm": 0.85},
                         reference_nm={"neck_radius_nm": 20.0})
    assert fixed.log_likelihood([33.0]) == pytest.approx(expected, rel=1e-12)


def test_batch_gives_each_row_its_own_value(shell_card):
    """The walkers of a half-step in one call of the kinetics: each value as if alone, failures kept apart."""
    log = HeatingLog(pt_time_s=[0, 5, 12, 22, 41], temperature_C=[372, 370, 370, 370, 370])
    ds = synthetic_trajectories(shell_card, None, rng=4, n_pairs=3, log=log)
    model = TrajectoryModel(shell_card, log, ds.particle_radius_nm.values[0], [0.0, 5.0, 0.0], start_index=[0, 0, 2])
    proposed = card_priors(shell_card)
    names = ("log10_C_lattice_diffusion_boundary", "capture_radius_nm", "initial_neck_nm",
             *(f"pt_step_error_s_{k}" for k in range(1, 5)))
    priors = [proposed[names[0]], proposed[names[1]], Prior("uniform", low=1.0, high=6.0),
              *[Prior("uniform", low=-6.0, high=6.0)] * 4]
    fixed = {k: v for k, v in shell_card.default_parameters.items() if k not in names}
    obs = {v: ds[v].values for v in ("neck_radius_nm", "distance_nm")}
    lp = LogPosterior(model, names, priors, fixed, obs, {"neck_radius_nm": 1.0, "distance_nm": 2.0})
    rng = np.random.default_rng(8)
    thetas = PriorVector(priors[:3]).sample(rng, 7)
    thetas = np.column_stack([thetas, rng.uniform(-0.5, 0.5, (7, 4))])
    thetas[2, 1] = proposed[names[1]].high + 1.0  # outside the prior
    thetas[4, 3] = -5.5  # the first PT step (5 s) would last less than 0 s: the model fails
    values = lp.batch(thetas)
    np.testing.assert_array_equal(values, [lp(t) for t in thetas])
    assert values[2] == values[4] == -math.inf and np.all(np.isfinite(np.delete(values, [2, 4])))
    rows = [0, 1, 3]
    neck, approach = lp.predict_batch(thetas[rows])
    for j, i in enumerate(rows):
        x, app = model(lp.card_parameters(thetas[i]), thetas[i, 2], thetas[i, 3:])
        np.testing.assert_array_equal(neck[j], x)
        np.testing.assert_array_equal(approach[j], app)
    assert np.all(np.isnan(neck[:, :2, 2])) and np.all(np.isfinite(neck[:, 2:, 2]))  # pair 2 starts at series 2
    with pytest.raises(InputError, match=r"thetas must be \(W, 7\)"):
        lp.batch(thetas[:, :3])
