"""A manifest's heating log as measured: per-step time bounds and the holder's temperature log (issue 17, import).

The manifest's ``pt_step_error_bound_s`` and ``temperature_log`` columns go
into the run folder's ``heating_log.nc``; the fit reads them beside
``metrics.nc``: the bounds set the latent step errors' priors and the log
replaces the step's median temperature in the kinetics. The kinetics of the
fit is checked against a :class:`HeatingLog` whose pieces are written out by
hand here (nearest-sample pieces of docs/design.md, "Heating log as measured").
"""

import json

import mrcfile
import numpy as np
import pytest
import xarray as xr

from sinter4d.assimilation import TrajectoryModel, build_problem, parse_fit_spec, synthetic_trajectories
from sinter4d.cli import main
from sinter4d.errors import InputError
from sinter4d.experiments import import_manifest
from sinter4d.io.trajectories import read_trajectories
from sinter4d.runfolder import RunFolder
from sinter4d.sintering import HeatingLog, load_model_card

PT_TIME_S = (0.0, 5.0, 12.0, 22.0)
TEMPERATURE_C = (25.0, 372.0, 370.0, 366.0)
# the holder's log of PT step 1 (0 -> 5 s): a ramp, an overshoot, and one sample after the step's end
LOG_TIME_S = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
LOG_TEMPERATURE_C = (250.0, 395.0, 384.0, 376.0, 372.0, 370.0, 200.0)
HEADER = "stack,angles,pt_time_s,temperature_C,pt_step_error_bound_s,temperature_log\n"
ROWS = ("s0.mrc,s0.rawtlt,0,25,,\n", "s1.mrc,s1.rawtlt,5,372,1,step1.csv\n",
        "s2.mrc,s2.rawtlt,12,370,,\n", "s3.mrc,s3.rawtlt,22,366,0.5,\n")
LOG_CSV = "time_s,temperature_C\n" + "".join(f"{t:g},{c:g}\n" for t, c in zip(LOG_TIME_S, LOG_TEMPERATURE_C))


def _experiment(folder, rows=ROWS, log_csv=LOG_CSV):
    folder.mkdir(exist_ok=True)
    for k in range(len(PT_TIME_S)):
        with mrcfile.new(folder / f"s{k}.mrc", overwrite=True) as mrc:
            mrc.set_data(np.ones((3, 32, 32), np.float32))
            mrc.voxel_size = 40.0
        (folder / f"s{k}.rawtlt").write_text("-20\n0\n20\n")
    (folder / "step1.csv").write_text(log_csv)
    (folder / "manifest.csv").write_text(HEADER + "".join(rows))
    return folder / "manifest.csv"


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("heating")
    return import_manifest(_experiment(folder / "data"), folder / "run")


@pytest.fixture(scope="module")
def card(root):
    return load_model_card(root / "models" / "cu_shell_reservoir.toml")


def test_bounds_and_log_are_recorded_in_the_run_folder(imported):
    heating = xr.open_dataset(imported.heating_log)
    np.testing.assert_array_equal(heating["pt_time_s"].values, PT_TIME_S)
    np.testing.assert_array_equal(heating["pt_step_error_bound_s"].values, [np.nan, 1.0, np.nan, 0.5])
    np.testing.assert_array_equal(heating["holder_log_time_s"].values, LOG_TIME_S)
    np.testing.assert_array_equal(heating["holder_log_temperature_C"].values, LOG_TEMPERATURE_C)
    np.testing.assert_array_equal(heating["holder_log_series"].values, np.ones(len(LOG_TIME_S)))
    assert heating["holder_log_temperature_C"].attrs["units"] == "degC"
    provenance = json.loads(xr.open_dataset(imported.tilt(1)).attrs["provenance"])
    assert provenance["pt_step_error_bound_s"] == {"value": 1.0, "from": "manifest"}
    assert provenance["temperature_log"]["file"].endswith("step1.csv")
    assert "temperature_log" not in json.loads(xr.open_dataset(imported.tilt(2)).attrs["provenance"])


def test_a_manifest_without_the_columns_writes_no_heating_log(tmp_path):
    rows = [",".join(r.split(",")[:4]) + "\n" for r in ROWS]
    path = _experiment(tmp_path / "data", rows)
    path.write_text("stack,angles,pt_time_s,temperature_C\n" + "".join(rows))
    run = import_manifest(path, tmp_path / "run")
    assert len(run.tilt_files()) == 4 and not run.heating_log.exists()


def _metrics(card, run: RunFolder):
    """A metrics.nc of the imported run's times (synthetic pairs: the fit's input)."""
    log = HeatingLog(pt_time_s=PT_TIME_S, temperature_C=TEMPERATURE_C)
    synthetic_trajectories(card, None, rng=3, n_pairs=3, log=log).to_netcdf(run.metrics)
    return run.metrics


def _spec(root, *, latent):
    return parse_fit_spec({
        "model": str(root / "models" / "cu_shell_reservoir.toml"),
        "parameters": {"free": ["log10_C_lattice_diffusion_boundary"]},
        "forward": {"step_time_error": {"enabled": latent, "bound_s": 2.0}},
        "noise": {"neck_radius_nm": {"sigma": 1.0}, "distance_nm": {"sigma": 2.0}},
        "sampler": {"walkers": 12, "steps": 10, "burn_in": 0},
    })


def test_the_fit_integrates_the_holder_log_and_takes_the_step_bounds(root, card, imported):
    path = _metrics(card, imported)
    ds = read_trajectories(path)
    np.testing.assert_array_equal(ds["holder_log_temperature_C"].values, LOG_TEMPERATURE_C)
    problem = build_problem(path, _spec(root, latent=True))
    # step 1 by hand: each sample from the midpoint with its neighbour before to the one after, cut at 5 s
    by_hand = HeatingLog(pt_time_s=PT_TIME_S, temperature_C=TEMPERATURE_C, step_traces=(
        ([250.0, 395.0, 384.0, 376.0, 372.0, 370.0], [0.5, 1.0, 1.0, 1.0, 1.0, 0.5]),
        ([370.0], [7.0]), ([366.0], [10.0])))
    model = problem.logpost.model
    reference = TrajectoryModel(card, by_hand, model.radius_nm, model.gap_nm)
    median = TrajectoryModel(card, HeatingLog(pt_time_s=PT_TIME_S, temperature_C=TEMPERATURE_C),
                             model.radius_nm, model.gap_nm)
    errors = np.array([0.4, -1.5, 0.2])
    for step_error in (None, errors):
        got, want = model.necks({}, step_error_s=step_error), reference.necks({}, step_error_s=step_error)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12)
    assert not np.allclose(model.necks({})[0][1:], median.necks({})[0][1:], rtol=1e-3)  # the log matters
    priors = problem.logpost.prior.priors[-3:]
    assert [(p.low, p.high) for p in priors] == [(-1.0, 1.0), (-2.0, 2.0), (-0.5, 0.5)]  # the spec's 2 s for step 2
    assert problem.settings["step_error_bounds_s"] == [1.0, 2.0, 0.5]
    assert len(build_problem(path, _spec(root, latent=False)).logpost.names) == 1


def test_a_heating_log_of_other_times_is_refused(card, imported, tmp_path):
    run = RunFolder(tmp_path / "other")
    run.path.mkdir()
    xr.open_dataset(imported.heating_log).isel(time=[0, 1, 2]).to_netcdf(run.heating_log)
    log = HeatingLog(pt_time_s=PT_TIME_S[:3], temperature_C=TEMPERATURE_C[:3])
    synthetic_trajectories(card, None, rng=3, n_pairs=2, log=log).to_netcdf(run.metrics)
    read_trajectories(run.metrics)  # the same three times: read
    xr.open_dataset(imported.heating_log).to_netcdf(run.heating_log)
    with pytest.raises(InputError, match="heating_log.nc: its times .* differ"):
        read_trajectories(run.metrics)


GOOD_LOG = "time_s,temperature_C\n0,250\n1,380\n"


@pytest.mark.parametrize(
    ("log_csv", "rows", "match"),
    [
        ("time_s,temperature_C\n0,250\n2,380\n2,370\n", ROWS,
         "step1.csv: row 3, column time_s: 2 s is not after 2 s of row 2"),
        ("time_s,temperature_C\n0,250\n1,nan\n", ROWS, "step1.csv: row 2, column temperature_C: 'nan' is not a finite"),
        ("time_s,temperature_C\n0,250\n1,hot\n", ROWS, "step1.csv: row 2, column temperature_C: 'hot' is not a number"),
        ("time_s,temperature_C\n-1,250\n", ROWS, "step1.csv: row 1, column time_s: must be >= 0 s"),
        ("time_s,temperature_C\n0,250\n1,2000\n", ROWS, "step1.csv: row 2, column temperature_C: 2000 °C is outside"),
        ("time_s,temp\n0,250\n", ROWS, "step1.csv: the header must name the columns time_s, temperature_C"),
        ("time_s,temperature_C\n", ROWS, "step1.csv: no sample after the header"),
        ("time_s,temperature_C\n0,250,3\n", ROWS, "step1.csv: row 1: 3 cells for 2 columns"),
        ("time_s,temperature_C\n5,250\n", ROWS, "step1.csv: the first sample (5 s) is not within the step's logged 5 s"),
        (GOOD_LOG, ("s0.mrc,s0.rawtlt,0,25,,step1.csv\n", *ROWS[1:]),
         "row 1, column temperature_log: the first series ends no PT step"),
        (GOOD_LOG, ("s0.mrc,s0.rawtlt,0,25,1,\n", *ROWS[1:]),
         "row 1, column pt_step_error_bound_s: the first series ends no PT step"),
        (GOOD_LOG, (ROWS[0], "s1.mrc,s1.rawtlt,5,372,5,\n", *ROWS[2:]),
         "row 2, column pt_step_error_bound_s: 5 s is not below the step's logged 5 s"),
        (GOOD_LOG, (ROWS[0], "s1.mrc,s1.rawtlt,5,372,0,\n", *ROWS[2:]),
         "row 2, column pt_step_error_bound_s: must be positive"),
        (GOOD_LOG, (ROWS[0], "s1.mrc,s1.rawtlt,5,372,,none.csv\n", *ROWS[2:]),
         "row 2, column temperature_log: no such file none.csv"),
    ],
)
def test_a_bad_temperature_log_is_one_line_and_no_file(tmp_path, capsys, log_csv, rows, match):
    path = _experiment(tmp_path / "data", rows, log_csv)
    before = sorted(tmp_path.rglob("*"))
    assert main(["import", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0], err
    assert match in err[0], err
    assert sorted(tmp_path.rglob("*")) == before
