"""The calibrated observation model of a fit (assimilation/calibrated.py) against brute force."""

import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from sinter4d.assimilation import LogPosterior, TrajectoryModel, synthetic_trajectories
from sinter4d.assimilation.calibrated import CalibratedNeck, CalibratedReading, distance_shift_nm
from sinter4d.calibration import ReadingModel, design_matrix
from sinter4d.errors import InputError
from sinter4d.sintering import HeatingLog, load_model_card

T, P = 5, 3


def _reading(metric="neck_radius_nm", sigma_run=9.0, seed=0):
    """A reading model with correlated coefficient uncertainty and every scatter term, at random orientations."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(5, 5))
    scale = np.sqrt([30.0, 0.01, 20.0, 50.0, 40.0])
    cov = (a @ a.T) * np.outer(scale, scale) / 5  # correlated, positive definite
    if metric == "neck_radius_nm":
        model = ReadingModel(metric, "square", 25.0, np.array([650.0, 0.9, 60.0, 500.0, -300.0]), cov, sigma_run,
                             250.0, 110.0)
    else:
        cov[1, :] = cov[:, 1] = 0.0
        model = ReadingModel(metric, "identity", 150.0, np.array([149.0, 1.0, -0.3, -9.0, 0.6]), cov, 0.0, 1.4,
                             1.1)
    in_plane = rng.uniform(0, 90, (T, P))
    elevation = rng.uniform(0, 40, (T, P))
    bridged = rng.random((T, P)) < 0.3
    x = design_matrix(np.full(T * P, model.reference_nm), in_plane, elevation, bridged, transform=model.transform,
                      reference_nm=model.reference_nm).reshape(T, P, 5)
    return CalibratedReading(model, x)


def _brute_force(reading, y, neck, mask):
    """log p(y) from the dense covariance of g(y) (nm, with the Jacobian of the square)."""
    m = reading.model
    idx = np.nonzero(mask)
    x = reading.design[idx].copy()
    x[:, 1] = neck[idx] ** 2 - m.reference_nm ** 2
    pair = idx[1]
    run_cov = m.cov.copy()
    run_cov[0, 0] += m.sigma_run ** 2
    cov = (x @ run_cov @ x.T + m.sigma_pair ** 2 * (pair[:, None] == pair[None, :])
           + m.sigma_point ** 2 * np.eye(pair.size))
    gy = y[idx] ** 2
    return multivariate_normal(x @ m.coef, cov).logpdf(gy) + np.log(2 * y[idx]).sum(), x @ m.coef, cov, gy


@pytest.mark.parametrize("sigma_run", [0.0, 9.0])
def test_neck_density_equals_the_dense_multivariate_normal(sigma_run):
    reading = _reading(sigma_run=sigma_run)
    rng = np.random.default_rng(1)
    neck = rng.uniform(12, 35, (T, P))
    y = neck + rng.normal(0, 2, (T, P))
    y[0, 0] = np.nan
    y[1, 2] = 0.0  # a pair read apart: outside the reading model
    mask = np.isfinite(y)
    term = CalibratedNeck(reading, y, mask)
    assert not term.mask[1, 2] and term.mask.sum() == T * P - 2
    expected, *_ = _brute_force(reading, y, neck, term.mask)
    assert term.log_density(neck) == pytest.approx(expected, rel=1e-10, abs=1e-8)


def test_neck_draws_follow_the_gaussian_conditional():
    """Mean and s.d. of the drawn readings equal the dense conditional E[f | y] and its variance."""
    reading = _reading()
    rng = np.random.default_rng(2)
    neck = rng.uniform(12, 35, (T, P))
    y = neck + rng.normal(0, 2, (T, P))
    term = CalibratedNeck(reading, y, np.isfinite(y))
    _, mean, cov, gy = _brute_force(reading, y, neck, term.mask)
    shared = cov - reading.model.sigma_point ** 2 * np.eye(gy.size)  # covariance of f = E[g(y) | shared terms]
    gain = shared @ np.linalg.inv(cov)
    cond_mean = mean + gain @ (gy - mean)
    cond_sd = np.sqrt(np.diag(shared - gain @ shared))
    draws = np.array([term.draw(neck, rng) for _ in range(4000)])
    assert np.abs(draws.mean(axis=0) - cond_mean).max() < 4 * cond_sd.max() / math.sqrt(4000)
    np.testing.assert_allclose(draws.std(axis=0), cond_sd, rtol=0.08)


def test_distance_shift_is_the_orientation_terms_about_the_pair_mean():
    reading = _reading("distance_nm")
    shift = distance_shift_nm(reading)
    terms = reading.design[..., 2:] @ reading.model.coef[2:]
    np.testing.assert_allclose(shift, terms - terms.mean(axis=0))
    np.testing.assert_allclose(shift.mean(axis=0), 0.0, atol=1e-12)


@pytest.fixture(scope="module")
def problem(root):
    card = load_model_card(root / "models" / "cu_shell_reservoir.toml")
    ds = synthetic_trajectories(card, None, rng=3, n_pairs=P)
    log = HeatingLog(pt_time_s=ds.pt_time_s.values, temperature_C=ds.temperature_C.values)
    model = TrajectoryModel(card, log, ds.particle_radius_nm.values[0], 0.0)
    return card, ds, model


def test_calibrated_distance_is_the_plain_likelihood_of_the_shifted_readings(problem):
    card, ds, model = problem
    t = ds.sizes["time"]
    reading = _reading("distance_nm")
    design = np.concatenate([reading.design] * math.ceil(t / T))[:t]
    reading = CalibratedReading(reading.model, design)
    y = ds.distance_nm.values
    cal = LogPosterior(model, [], [], card.default_parameters, {"distance_nm": y}, {"distance_nm": 1.1},
                       calibrated={"distance_nm": reading})
    plain = LogPosterior(model, [], [], card.default_parameters, {"distance_nm": y - distance_shift_nm(reading)},
                         {"distance_nm": 1.1})
    assert cal.log_likelihood([]) == pytest.approx(plain.log_likelihood([]), rel=1e-12)
    assert cal.log_likelihood([]) != pytest.approx(
        LogPosterior(model, [], [], card.default_parameters, {"distance_nm": y}, {"distance_nm": 1.1}).log_likelihood([]))


def test_calibrated_neck_in_the_posterior_and_its_pointwise_terms(problem):
    card, ds, model = problem
    t = ds.sizes["time"]
    reading = _reading()
    reading = CalibratedReading(reading.model, np.concatenate([reading.design] * math.ceil(t / T))[:t])
    y = ds.neck_radius_nm.values
    lp = LogPosterior(model, [], [], card.default_parameters, {"neck_radius_nm": y}, {},
                      calibrated={"neck_radius_nm": reading})
    neck, _ = lp.predict([])
    expected, *_ = _brute_force(reading, y, neck, lp.masks["neck_radius_nm"])
    assert lp.log_likelihood([]) == pytest.approx(expected, rel=1e-10)
    out = lp.pointwise(np.array([]), np.random.default_rng(0))
    ll = out["log_likelihood/neck_radius_nm"]
    assert np.all(ll[~lp.masks["neck_radius_nm"]] == 0) and np.all(np.isfinite(ll))
    assert np.isfinite(out["model/neck_radius_nm"][lp.masks["neck_radius_nm"]]).all()
    with pytest.raises(InputError, match="calibrated neck_radius_nm"):
        LogPosterior(model, [], [], card.default_parameters, {"neck_radius_nm": y}, {"neck_radius_nm": 1.0},
                     calibrated={"neck_radius_nm": reading})


def test_compare_fits_scores_only_the_points_every_fit_has(tmp_path):
    """A point one fit leaves out (term 0 in every draw) leaves every fit's score."""
    import arviz as az
    import xarray as xr

    from sinter4d.assimilation import compare_fits

    rng = np.random.default_rng(4)
    obs = xr.Dataset({"neck_radius_nm": (("time", "pair"), rng.uniform(10, 30, (3, 2)))})
    paths, lls = [], []
    for k, drop in enumerate([None, (1, 0)]):
        ll = rng.normal(-2.0, 0.3, (2, 50, 3, 2))
        if drop is not None:
            ll[:, :, drop[0], drop[1]] = 0.0
        lls.append(ll)
        idata = az.from_dict(posterior={"x": rng.normal(size=(2, 50))},
                             log_likelihood={"neck_radius_nm": ll}, dims={"neck_radius_nm": ["time", "pair"]})
        idata.add_groups(observed_data=obs)
        paths.append(tmp_path / f"f{k}.nc")
        idata.to_netcdf(paths[-1])
    table = compare_fits({"a": paths[0], "b": paths[1]})
    kept = np.ones((3, 2), dtype=bool)
    kept[1, 0] = False
    for name, ll in zip("ab", lls):
        alone = az.InferenceData(posterior=az.from_netcdf(paths[0]).posterior, log_likelihood=xr.Dataset(
            {"total": (("chain", "draw", "observation"), ll[:, :, kept])}))
        assert table.loc[name, "elpd_loo"] == pytest.approx(az.loo(alone, var_name="total").elpd_loo)


def _calibration_file(path, models):
    """A calibration.nc holding ``models`` (the variables :func:`reading_models` reads)."""
    import xarray as xr

    ds = xr.Dataset({
        "transform": ("metric", [m.transform for m in models]),
        "reference_nm": ("metric", [m.reference_nm for m in models]),
        "coefficient": (("metric", "term"), np.array([m.coef for m in models])),
        "coefficient_covariance": (("metric", "term", "term_other"), np.array([m.cov for m in models])),
        "sigma_run": ("metric", [m.sigma_run for m in models]),
        "sigma_pair": ("metric", [m.sigma_pair for m in models]),
        "sigma_point": ("metric", [m.sigma_point for m in models]),
    }, coords={"metric": [m.metric for m in models]})
    ds.to_netcdf(path)
    return path


def test_read_through_calibration_without_scatter_is_the_reading_curve(problem):
    from sinter4d.assimilation.synthetic import read_through_calibration

    card, ds, _ = problem
    m = _reading().model
    exact = ReadingModel(m.metric, m.transform, m.reference_nm, m.coef, np.zeros((5, 5)), 0.0, 0.0, 0.0)
    angle = np.array([0.0, 45.0, 90.0])
    out = read_through_calibration(ds, {"neck_radius_nm": exact}, rng=0, in_plane_deg=angle)
    x = ds.true_neck_radius_nm.values
    g = m.coef[0] + m.coef[1] * (x**2 - 25.0**2) + m.coef[2] * np.cos(2 * np.radians(angle))[None, :]
    np.testing.assert_allclose(out.neck_radius_nm.values, np.sqrt(np.maximum(g, 0)), rtol=1e-12)
    np.testing.assert_array_equal(out.distance_nm.values, ds.distance_nm.values)
    from sinter4d.calibration import orientation_deg

    a, e = orientation_deg(out.pair_centre_nm.values[:, :, 0], out.pair_centre_nm.values[:, :, 1])
    np.testing.assert_allclose(a[-1], angle, atol=1e-9)
    np.testing.assert_allclose(e, 0.0, atol=1e-9)


def test_fit_spec_takes_the_observation_model_from_a_calibration(root, tmp_path, problem):
    from sinter4d.assimilation import build_problem, load_fit_spec, parse_fit_spec
    from sinter4d.assimilation.synthetic import read_through_calibration
    from sinter4d.errors import SpecError

    card, ds, _ = problem
    neck, dist = _reading().model, _reading("distance_nm").model
    cal = _calibration_file(tmp_path / "calibration.nc", [neck, dist])
    data = tmp_path / "metrics.nc"
    read_through_calibration(ds, {"neck_radius_nm": neck, "distance_nm": dist}, rng=1).to_netcdf(data)
    head = f'model = "{root / "models" / "cu_shell_reservoir.toml"}"\n[parameters]\nfree = ["capture_radius_nm"]\n'
    spec = tmp_path / "spec.toml"
    spec.write_text(head + '[noise.neck_radius_nm]\ncalibration = "calibration.nc"\nexclude_series = [0]\n'
                    '[noise.distance_nm]\ncalibration = "calibration.nc"\n')
    pr = build_problem(data, load_fit_spec(spec))
    assert pr.logpost.names == ("capture_radius_nm",)  # nothing of the noise sampled
    assert set(pr.logpost.calibrated) == {"neck_radius_nm", "distance_nm"}
    assert pr.logpost.sigma_nm == {"distance_nm": dist.sigma_point}
    assert not pr.logpost.masks["neck_radius_nm"][0].any()
    assert np.isfinite(pr.logpost(pr.start))
    # the command line's --calibration: the same model from a spec without one, the distance's sigma kept
    plain = tmp_path / "plain.toml"
    plain.write_text(head + '[noise.neck_radius_nm]\npair_sigma = "fit"\nexclude_series = [0]\n'
                     '[noise.distance_nm]\nsigma = 1.1288\n')
    again = build_problem(data, load_fit_spec(plain, calibration=cal))
    assert again.logpost.sigma_nm == {"distance_nm": 1.1288}
    assert again.logpost(again.start) != pytest.approx(pr.logpost(pr.start))
    plain.write_text(head + f'[noise.neck_radius_nm]\npair_sigma = "fit"\nexclude_series = [0]\n'
                     f'[noise.distance_nm]\nsigma = {dist.sigma_point}\n')
    again = build_problem(data, load_fit_spec(plain, calibration=cal))
    assert again.logpost(again.start) == pytest.approx(pr.logpost(pr.start))
    plain.write_text(head)
    assert load_fit_spec(plain, calibration=cal).parameter_names == ("capture_radius_nm", "sigma_distance_nm")
    with pytest.raises(SpecError, match="noise.neck_radius_nm.pair_sigma: the calibration gives"):
        parse_fit_spec({"model": "cu_shell_reservoir", "noise": {"neck_radius_nm": {
            "calibration": str(cal), "pair_sigma": "fit"}}}, base_dir=root)
    with pytest.raises(SpecError, match="noise.distance_nm.calibration: missing"):
        parse_fit_spec({"model": "cu_shell_reservoir", "noise": {"distance_nm": {"sigma": "calibration"}}},
                       base_dir=root)
