"""End-to-end fits on synthetic trajectories: recovery, resume, output layout, model comparison."""

import multiprocessing

import arviz as az
import h5py
import numpy as np
import pytest

from sinter4d.assimilation import compare_fits, fit, synthetic_trajectories
from sinter4d.errors import InputError
from sinter4d.sintering import load_model_card

FREE = ["log10_C_lattice_diffusion_boundary", "log10_C_surface_diffusion", "capture_radius_nm"]


def write_spec(path, root, *, card="cu_shell_reservoir", free=FREE, variables=("neck_radius_nm", "distance_nm"),
               noise=None, sampler=None, forward=None):
    noise = noise or {"neck_radius_nm": "1.0", "distance_nm": "2.0"}
    sampler = {"walkers": 16, "steps": 800, "burn_in": 300, "thin": 5, "seed": 11, **(sampler or {})}
    lines = [f'model = "{root / "models" / (card + ".toml")}"',
             "variables = [" + ", ".join(f'"{v}"' for v in variables) + "]",
             "[parameters]", "free = [" + ", ".join(f'"{k}"' for k in free) + "]"]
    if forward:
        lines += ["[forward]", *forward]
    for var, sigma in noise.items():
        lines += [f"[noise.{var}]", f"sigma = {sigma}"]
    lines += ["[sampler]", *(f"{k} = {v}" for k, v in sampler.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def synthetic(root, tmp_path_factory):
    card = load_model_card(root / "models" / "cu_shell_reservoir.toml")
    ds = synthetic_trajectories(card, None, rng=2024, neck_sigma_nm=1.0, distance_sigma_nm=2.0)
    path = tmp_path_factory.mktemp("data") / "metrics.nc"
    ds.to_netcdf(path)
    return path, ds


@pytest.fixture(scope="module")
def recovery(root, synthetic, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("recovery")
    spec = write_spec(tmp / "spec.toml", root)
    return fit(synthetic[0], spec, tmp / "out", progress=False)


def test_recovery_true_values_inside_95_percent_intervals(recovery, synthetic):
    ds = synthetic[1]
    post = recovery.idata.posterior
    for name in FREE:
        draws = post[name].values.reshape(-1)
        lo, hi = np.quantile(draws, [0.025, 0.975])
        assert lo <= float(ds[name]) <= hi, (name, lo, float(ds[name]), hi)
    assert recovery.truth["capture_radius_nm"] == float(ds["capture_radius_nm"])
    assert 0.2 < float(np.mean(recovery.convergence.acceptance)) < 0.8


def test_posterior_file_layout(recovery):
    out = recovery.out_dir
    for name in ("posterior.nc", "chain.h5", "summary.csv", "summary.txt", "corner.png", "predictive.png"):
        assert (out / name).is_file(), name
    idata = az.from_netcdf(out / "posterior.nc")
    for group in ("posterior", "posterior_predictive", "observed_data", "log_likelihood", "sample_stats"):
        assert group in idata.groups()
    assert set(idata.posterior.data_vars) == set(FREE)
    assert idata.posterior.sizes["chain"] == 16 and idata.posterior.sizes["draw"] == 100
    for group in ("observed_data", "log_likelihood"):
        assert set(idata[group].data_vars) == {"neck_radius_nm", "distance_nm"}
    assert {"neck_radius_nm", "distance_nm"} <= set(idata.posterior_predictive.data_vars)
    assert idata.log_likelihood["neck_radius_nm"].dims == ("chain", "draw", "time", "pair")
    assert idata.observed_data["distance_nm"].dims == ("time", "pair")
    assert idata.observed_data["neck_radius_nm"].attrs["units"] == "nm"
    assert "pt_time_s" in idata.observed_data.coords
    assert idata.posterior.attrs["model_card"] == "cu_shell_reservoir"
    assert idata.posterior.attrs["truth_capture_radius_nm"] == pytest.approx(35.0)
    assert "n_over_tau" in idata.posterior.attrs
    text = (out / "summary.txt").read_text()
    assert "N/tau" in text and "capture_radius_nm" in text
    for col in ("mean", "sd", "hdi_3%", "hdi_97%", "r_hat", "ess_bulk", "truth"):
        assert col in recovery.summary.columns


def _chain(path):
    with h5py.File(path, "r") as f:
        g = f["mcmc"]
        it = int(g.attrs["iteration"])
        return g["chain"][:it], g["log_prob"][:it]


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def straight(root, synthetic, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("straight")
    spec = write_spec(tmp / "spec.toml", root, free=FREE[1:],
                      sampler={"walkers": 8, "steps": 40, "burn_in": 10, "thin": 1, "checkpoint_steps": 7})
    fit(synthetic[0], spec, tmp / "out", progress=False)
    return spec, tmp / "out"


def test_interrupted_fit_resumes_to_the_same_chain(straight, synthetic, tmp_path):
    spec, out_a = straight

    def stop_at_23(iteration, state):
        if iteration == 23:
            raise Stop

    with pytest.raises(Stop):
        fit(synthetic[0], spec, tmp_path / "b", progress=False, callback=stop_at_23)
    assert not (tmp_path / "b" / "posterior.nc").exists()
    assert _chain(tmp_path / "b" / "chain.h5")[0].shape[0] == 23  # steps held in memory were flushed
    fit(synthetic[0], spec, tmp_path / "b", progress=False)
    chain_a, lp_a = _chain(out_a / "chain.h5")
    chain_b, lp_b = _chain(tmp_path / "b" / "chain.h5")
    assert chain_a.shape == (40, 8, 2)
    np.testing.assert_array_equal(chain_a, chain_b)
    np.testing.assert_array_equal(lp_a, lp_b)
    post_a = az.from_netcdf(out_a / "posterior.nc")
    post_b = az.from_netcdf(tmp_path / "b" / "posterior.nc")
    np.testing.assert_array_equal(post_a.posterior_predictive["neck_radius_nm"].values,
                                  post_b.posterior_predictive["neck_radius_nm"].values)


def test_differential_evolution_moves_resume_to_the_same_chain(root, straight, synthetic, tmp_path):
    """sampler.moves = "de_snooker": seeded by the spec and resumable as the stretch move is; another chain."""
    spec = write_spec(tmp_path / "de.toml", root, free=FREE[1:],
                      sampler={"walkers": 8, "steps": 40, "burn_in": 10, "thin": 1, "checkpoint_steps": 7,
                               "moves": '"de_snooker"'})

    def stop_at_17(iteration, state):
        if iteration == 17:
            raise Stop

    fit(synthetic[0], spec, tmp_path / "a", progress=False)
    with pytest.raises(Stop):
        fit(synthetic[0], spec, tmp_path / "b", progress=False, callback=stop_at_17)
    fit(synthetic[0], spec, tmp_path / "b", progress=False)
    chain_a, chain_b = _chain(tmp_path / "a" / "chain.h5")[0], _chain(tmp_path / "b" / "chain.h5")[0]
    np.testing.assert_array_equal(chain_a, chain_b)
    assert not np.array_equal(chain_a, _chain(straight[1] / "chain.h5")[0])  # the stretch move's spec: another chain


def test_raising_steps_extends_a_finished_chain(root, straight, synthetic, tmp_path):
    spec, out_a = straight
    short = write_spec(tmp_path / "short.toml", root, free=FREE[1:],
                       sampler={"walkers": 8, "steps": 25, "burn_in": 10, "thin": 1, "checkpoint_steps": 7})
    fit(synthetic[0], short, tmp_path / "c", progress=False)
    assert _chain(tmp_path / "c" / "chain.h5")[0].shape[0] == 25
    fit(synthetic[0], spec, tmp_path / "c", progress=False)
    np.testing.assert_array_equal(_chain(tmp_path / "c" / "chain.h5")[0], _chain(out_a / "chain.h5")[0])


def test_a_chain_of_another_spec_is_refused(root, straight, synthetic, tmp_path):
    _, out_a = straight
    other = write_spec(tmp_path / "other.toml", root, free=FREE[1:],
                       sampler={"walkers": 8, "steps": 40, "burn_in": 10, "thin": 1, "seed": 99})
    with pytest.raises(InputError, match=r"chain\.h5: holds the chain of another fit spec"):
        fit(synthetic[0], other, out_a, progress=False)


def test_process_pool_gives_the_same_chain(straight, synthetic, tmp_path):
    spec, out_a = straight
    with multiprocessing.get_context("fork").Pool(2) as pool:
        fit(synthetic[0], spec, tmp_path / "d", progress=False, pool=pool)
    # emcee maps one position at a time there; the straight fit hands it the posterior's batch method
    np.testing.assert_array_equal(_chain(tmp_path / "d" / "chain.h5")[0], _chain(out_a / "chain.h5")[0])
    # the fit's own pool: the posterior sent once to each worker, the walkers split between them
    fit(synthetic[0], spec, tmp_path / "e", progress=False, n_jobs=2)
    np.testing.assert_array_equal(_chain(tmp_path / "e" / "chain.h5")[0], _chain(out_a / "chain.h5")[0])
    with pytest.raises(InputError, match="n_jobs must be -1"):
        fit(synthetic[0], spec, tmp_path / "f", progress=False, n_jobs=0)


def test_posterior_pool_maps_in_order_and_other_functions_too():
    from sinter4d.assimilation.sampler import PosteriorPool

    points = np.arange(15.0).reshape(5, 3)
    with PosteriorPool(_sum_of_squares, 2) as pool:
        assert pool.map(_sum_of_squares, points) == [float(np.sum(x**2)) for x in points]
        assert pool.map(abs, [-1, 2, -3]) == [1, 2, 3]  # not the posterior: the built-in map
        with pytest.raises(ValueError, match="negative"):  # a worker's error is raised here
            pool.map(_sum_of_squares, points * [[1], [1], [1], [1], [-1]])
        with pytest.raises(ValueError, match="negative"):  # and this process's, the workers' answers read
            pool.map(_sum_of_squares, points * [[-1], [1], [1], [1], [1]])
        assert pool.map(_sum_of_squares, points) == [float(np.sum(x**2)) for x in points]
    with pytest.raises(InputError, match="processes"):
        PosteriorPool(_sum_of_squares, 0)


def test_posterior_pool_evaluates_a_batch_posterior_in_chunks():
    from sinter4d.assimilation.sampler import PosteriorPool

    points = np.arange(21.0).reshape(7, 3)
    with PosteriorPool(_BatchSquares(), 2) as pool:
        np.testing.assert_array_equal(pool.batch(points), np.sum(points**2, axis=1))
        assert pool.map(pool.log_prob, points) == np.sum(points**2, axis=1).tolist()
        with pytest.raises(ValueError, match="negative"):
            pool.batch(-points)


def _sum_of_squares(x):
    if np.any(np.asarray(x) < 0):
        raise ValueError("negative")
    return float(np.sum(np.asarray(x) ** 2))


class _BatchSquares:
    """A log posterior with a batch method that refuses to be called one point at a time."""

    def __call__(self, x):
        raise AssertionError("called one point at a time")

    def batch(self, points):
        return np.array([_sum_of_squares(x) for x in points])


def test_compare_cards_by_loo(root, synthetic, recovery, tmp_path):
    spec = write_spec(tmp_path / "ashby.toml", root, card="cu_ashby",
                      free=["log10_C_grain_boundary_diffusion", "log10_C_surface_diffusion"],
                      sampler={"walkers": 12, "steps": 500, "burn_in": 250, "thin": 5})
    ashby = fit(synthetic[0], spec, tmp_path / "ashby", progress=False)
    table = compare_fits([recovery.posterior_path, ashby.posterior_path])
    assert list(table.index) == ["cu_shell_reservoir", "cu_ashby"]  # the data's own card wins
    assert table.loc["cu_ashby", "elpd_diff"] > 0
    waic = compare_fits({"shell": recovery.posterior_path, "ashby": ashby.posterior_path}, ic="waic")
    assert set(waic.index) == {"shell", "ashby"}
    with pytest.raises(InputError, match="at least two"):
        compare_fits([recovery.posterior_path])


def test_compare_refuses_fits_of_other_data(root, recovery, tmp_path):
    card = load_model_card(root / "models" / "cu_shell_reservoir.toml")
    synthetic_trajectories(card, None, rng=1).to_netcdf(tmp_path / "other.nc")
    spec = write_spec(tmp_path / "s.toml", root, free=FREE[2:], sampler={"walkers": 4, "steps": 20, "burn_in": 5})
    other = fit(tmp_path / "other.nc", spec, tmp_path / "o", progress=False)
    with pytest.raises(InputError, match="fits other data"):
        compare_fits([recovery.posterior_path, other.posterior_path])


def test_csv_neck_only_with_fitted_sigma_and_initial_neck(root, synthetic, tmp_path):
    ds = synthetic[1]
    rows = ["pt_time_s,temperature_C,pair,neck_radius_nm,distance_nm,particle_radius_nm"]
    for p, label in enumerate(ds.pair.values):
        for k in range(ds.sizes["time"]):
            if (k, p) == (6, 2):
                continue  # a missing row
            neck = "" if (k, p) == (9, 1) else f"{ds.neck_radius_nm.values[k, p]:.4f}"
            rows.append(f"{ds.pt_time_s.values[k]:g},{ds.temperature_C.values[k]:g},{label},{neck},,"
                        f"{ds.particle_radius_nm.values[k, p]:.4f}")
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    spec = write_spec(tmp_path / "s.toml", root, free=FREE[2:], variables=("neck_radius_nm",),
                      noise={"neck_radius_nm": '"fit"'}, forward=['initial_neck = "fit"'],
                      sampler={"walkers": 8, "steps": 60, "burn_in": 20, "thin": 2})
    result = fit(tmp_path / "t.csv", spec, tmp_path / "out", progress=False)
    assert result.parameter_names == ("capture_radius_nm", "sigma_neck_radius_nm", "initial_neck_nm")
    assert set(result.idata.observed_data.data_vars) == {"neck_radius_nm"}
    # distance requested but the table has none
    spec2 = write_spec(tmp_path / "s2.toml", root, free=FREE[2:], sampler={"walkers": 4, "steps": 20, "burn_in": 5})
    with pytest.raises(InputError, match=r"t\.csv: distance_nm: no measured value in any pair"):
        fit(tmp_path / "t.csv", spec2, tmp_path / "out2", progress=False)


def test_initial_neck_from_the_first_measurement(root, synthetic, tmp_path):
    spec = write_spec(tmp_path / "s.toml", root, free=FREE[2:], forward=['initial_neck = "first"'],
                      sampler={"walkers": 4, "steps": 30, "burn_in": 10, "thin": 2, "init": '"prior"'})
    result = fit(synthetic[0], spec, tmp_path / "out", progress=False)
    ll = result.idata.log_likelihood["neck_radius_nm"].values
    assert np.all(ll[:, :, 0, :] == 0.0)  # the first necks are the initial condition, not data
    assert np.all(ll[:, :, 1:, :] != 0.0)


def test_initial_neck_first_with_a_late_starting_pair(root, synthetic, tmp_path):
    # a pair read apart (r_n = 0) at the first times starts at its first neck; the surface
    # gaps from its distances before that start used to be NaN and the fit failed
    ds = synthetic[1].copy(deep=True)
    ds["neck_radius_nm"].values[:2, 0] = 0.0
    path = tmp_path / "late.nc"
    ds.to_netcdf(path)
    spec = write_spec(tmp_path / "s.toml", root, free=FREE[2:], forward=['initial_neck = "first"', 'gap = "data"'],
                      sampler={"walkers": 4, "steps": 30, "burn_in": 10, "thin": 2, "init": '"prior"'})
    result = fit(path, spec, tmp_path / "out", progress=False)
    ll = result.idata.log_likelihood["neck_radius_nm"].values
    assert np.all(ll[:, :, :3, 0] == 0.0)  # read apart twice, then the initial condition
    assert np.all(ll[:, :, 3:, 0] != 0.0)
    assert np.all(np.isfinite(result.idata.posterior["capture_radius_nm"].values))


def test_fit_needs_data(root, tmp_path):
    spec = write_spec(tmp_path / "s.toml", root, free=FREE[2:], sampler={"walkers": 4, "steps": 20, "burn_in": 5})
    with pytest.raises(Exception, match=r"s\.toml: data: missing"):
        fit(None, spec, tmp_path / "out", progress=False)


def test_sigma_from_a_validation_file(root, synthetic, tmp_path):
    import xarray as xr

    from sinter4d.assimilation import build_problem

    diff = np.array([[0.5, -0.5], [1.5, np.nan]])
    xr.Dataset({"neck_radius_nm": (("time", "pair"), diff)}).to_netcdf(tmp_path / "validation.nc")
    spec = write_spec(tmp_path / "s.toml", root, free=FREE[2:], variables=("neck_radius_nm",),
                      noise={"neck_radius_nm": '"validation"\nvalidation = "validation.nc"'},
                      sampler={"walkers": 4, "steps": 20, "burn_in": 5})
    problem = build_problem(synthetic[0], spec)
    assert problem.logpost.sigma_nm["neck_radius_nm"] == pytest.approx(np.sqrt((0.25 + 0.25 + 2.25) / 3))
    assert problem.logpost.names == ("capture_radius_nm",)


def test_recovery_with_an_offset_per_pair(root, tmp_path):
    """Necks read with one systematic offset per pair (sd 3 nm, as a reconstruction's orientation
    bias): the pair-offset model recovers the parameters and the offset sd; the t = 0 series left out."""
    card = load_model_card(root / "models" / "cu_shell_reservoir.toml")
    ds = synthetic_trajectories(card, None, rng=77, neck_sigma_nm=1.0, distance_sigma_nm=1.0,
                                neck_pair_sigma_nm=3.0)
    ds["neck_radius_nm"].values[0] += 12.0  # series 0 misread (as the crevice fill at the contact)
    ds.to_netcdf(tmp_path / "offset.nc")
    spec = write_spec(tmp_path / "s.toml", root,
                      noise={"neck_radius_nm": '"fit"\npair_sigma = "fit"\nexclude_series = [0]', "distance_nm": "1.0"},
                      sampler={"walkers": 24, "steps": 2500, "burn_in": 800, "thin": 10, "seed": 5})
    result = fit(tmp_path / "offset.nc", spec, tmp_path / "out", progress=False)
    post = result.idata.posterior
    truth = {name: float(ds[name]) for name in FREE}
    truth["sigma_neck_radius_nm"] = 1.0
    truth["sigma_pair_neck_radius_nm"] = 3.0
    for name, value in truth.items():
        lo, hi = np.quantile(post[name].values.reshape(-1), [0.025, 0.975])
        assert lo <= value <= hi, (name, lo, value, hi)
    ll = result.idata.log_likelihood["neck_radius_nm"].values
    assert np.all(ll[:, :, 0, :] == 0.0) and np.all(ll[:, :, 1:, :] != 0.0)
    # the predictive curves carry each pair's offset: they follow the data, not the bare law
    model = result.idata.posterior_predictive["neck_radius_nm_model"].mean(("chain", "draw")).values
    resid = ds.neck_radius_nm.values[1:] - model[1:]
    assert np.sqrt(np.mean(resid**2)) < 1.5


def test_excluded_series_must_exist(root, synthetic, tmp_path):
    spec = write_spec(tmp_path / "s.toml", root, free=FREE[2:],
                      noise={"neck_radius_nm": "1.0\nexclude_series = [18]", "distance_nm": "2.0"},
                      sampler={"walkers": 4, "steps": 20, "burn_in": 5})
    with pytest.raises(InputError, match=r"s\.toml: noise\.neck_radius_nm\.exclude_series: series 18 does not exist"):
        fit(synthetic[0], spec, tmp_path / "out", progress=False)


def test_gap_from_the_measured_surface_gap(root, synthetic, tmp_path):
    """gap = "data" takes the file's surface_gap_nm (along the line of centres) over d - 2 r_p."""
    from sinter4d.assimilation import TrajectoryModel, build_problem
    from sinter4d.sintering import HeatingLog

    ds = synthetic[1].copy(deep=True)
    card = load_model_card(root / "models" / "cu_shell_reservoir.toml")
    a = float(np.median(ds.particle_radius_nm.values[:, 2]))
    log = HeatingLog.paper()
    _, approach = TrajectoryModel(card, log, [a], [9.0])(card.default_parameters)
    # a pair bridged across a 9 nm gap, closing by its own approach; its d - 2 r_p says contact
    ds["surface_gap_nm"].values[:, 2] = 9.0 - approach[:, 0]
    ds.to_netcdf(tmp_path / "gap.nc")
    spec = write_spec(tmp_path / "s.toml", root, free=FREE[2:], forward=['gap = "data"'],
                      sampler={"walkers": 4, "steps": 20, "burn_in": 5})
    gap = build_problem(tmp_path / "gap.nc", spec).logpost.model.gap_nm
    assert gap[2] == pytest.approx(9.0, abs=0.05)
    assert np.all(gap[np.arange(gap.size) != 2] == 0.0)
    # the bridged pairs' reading offset applies to that pair alone
    text = spec.read_text().replace("[noise.neck_radius_nm]\nsigma = 1.0",
                                    "[noise.neck_radius_nm]\nsigma = 1.0\nbridged_bias = -5.0")
    bridged_spec = tmp_path / "bridged.toml"
    bridged_spec.write_text(text)
    problem = build_problem(tmp_path / "gap.nc", bridged_spec)
    np.testing.assert_array_equal(problem.logpost.bridged, np.arange(gap.size) == 2)
    reference = build_problem(tmp_path / "gap.nc", spec).logpost
    theta = problem.start
    x, _ = reference.predict(theta)
    read = problem.logpost.reading("neck_radius_nm", x, theta)
    np.testing.assert_allclose(read - x, np.where(np.arange(gap.size) == 2, -5.0, 0.0)[None, :].repeat(len(x), 0))
    ds = ds.drop_vars("surface_gap_nm")
    ds.to_netcdf(tmp_path / "nogap.nc")
    assert np.all(build_problem(tmp_path / "nogap.nc", spec).logpost.model.gap_nm == 0.0)


def test_synthetic_gaps_enter_the_reservoir_the_distance_and_the_readings(root, tmp_path):
    """synthetic_trajectories' gap_nm: a smaller reservoir, a longer distance, the bridged offset; the fit reads it back."""
    from sinter4d.assimilation import build_problem

    card = load_model_card(root / "models" / "cu_shell_reservoir.toml")
    quiet = dict(n_pairs=3, neck_sigma_nm=0.0, distance_sigma_nm=0.0)
    plain = synthetic_trajectories(card, None, rng=11, **quiet)
    gapped = synthetic_trajectories(card, None, rng=11, gap_nm=[0.0, 10.0, 0.0], bridged_neck_offset_nm=-4.0, **quiet)
    np.testing.assert_array_equal(gapped.true_neck_radius_nm[:, [0, 2]], plain.true_neck_radius_nm[:, [0, 2]])
    # before any densification the bridged pair's centres are 2a + gap apart, and the gap is the surface gap
    a = float(gapped.particle_radius_nm[0, 1])
    assert float(gapped.true_distance_nm[0, 1]) == pytest.approx(2 * a + 10.0, abs=1e-9)
    assert float(gapped.surface_gap_nm[0, 1]) == pytest.approx(10.0, abs=1e-9)
    # the gap shrinks the shell reservoir: the bridged neck plateaus lower than in contact
    assert float(gapped.true_neck_radius_nm[-1, 1]) < float(plain.true_neck_radius_nm[-1, 1]) - 1.0
    # only the bridged pair reads with the offset
    np.testing.assert_allclose(gapped.neck_radius_nm - gapped.true_neck_radius_nm,
                               np.broadcast_to([0.0, -4.0, 0.0], gapped.neck_radius_nm.shape))
    with pytest.raises(InputError, match="gap_nm"):
        synthetic_trajectories(card, None, rng=11, gap_nm=[0.0, -1.0, 0.0], **quiet)
    # the fit's gap = "data" reads the generator's gap back from the surface gaps, and flags that pair alone
    gapped.to_netcdf(tmp_path / "gap.nc")
    spec = write_spec(tmp_path / "s.toml", root, free=FREE[2:], forward=['gap = "data"'],
                      noise={"neck_radius_nm": "1.0\nbridged_bias = -4.0", "distance_nm": "2.0"},
                      sampler={"walkers": 4, "steps": 20, "burn_in": 5})
    problem = build_problem(tmp_path / "gap.nc", spec)
    np.testing.assert_allclose(problem.logpost.model.gap_nm, [0.0, 10.0, 0.0], atol=0.5)
    np.testing.assert_array_equal(problem.logpost.bridged, [False, True, False])


def test_necks_read_as_zero_leave_the_likelihood(root, synthetic, tmp_path):
    """A neck read as 0 (the pair held apart by the binary) is no reading: the log posterior is the
    one of the same data with those readings missing, not one pulled by a 0 nm neck."""
    from sinter4d.assimilation import build_problem

    spec = write_spec(tmp_path / "s.toml", root, sampler={"walkers": 8, "steps": 20, "burn_in": 5})
    base = synthetic[1]
    zero, missing = base.copy(deep=True), base.copy(deep=True)
    zero["neck_radius_nm"].values[-3:, 1] = 0.0
    missing["neck_radius_nm"].values[-3:, 1] = np.nan
    zero.to_netcdf(tmp_path / "zero.nc")
    missing.to_netcdf(tmp_path / "missing.nc")
    with_zero, without = build_problem(tmp_path / "zero.nc", spec), build_problem(tmp_path / "missing.nc", spec)
    n_all = int(np.isfinite(base["neck_radius_nm"].values).sum())
    assert with_zero.logpost.n_observations["neck_radius_nm"] == n_all - 3
    theta = with_zero.start
    assert with_zero.logpost(theta) == pytest.approx(without.logpost(theta), rel=1e-12)
    assert without.logpost(theta) != pytest.approx(build_problem(synthetic[0], spec).logpost(theta), rel=1e-6)
