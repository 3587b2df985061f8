"""The command line's edges: every sub-command turns a user error into one line, exit status 2 and no file."""

import argparse
import errno

import numpy as np
import pytest
import xarray as xr

from sinter4d.cli import build_parser, main
from sinter4d.io.netcdf import write_dataset_atomic
from sinter4d.runfolder import STAGE_NAMES, RunFolder, role_label, stage

BAD_SPEC = 'name = "x"\nseed = 1\n[acquisition]\ndose_e_per_nm2 = -5\n'


def _files(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*"))


QUICK_FIT = "{root}/assimilation/quick.toml"


def _tilts(n=3, *, dims=("tilt", "y", "x"), nan=False, angles=None, drop=()):
    counts = np.ones((n, 8, 8), np.float32)
    if nan:
        counts[0, 2, 3] = np.nan
    angle = ("tilt", np.linspace(-10.0, 10.0, n)) if angles is None else ("angle", angles)
    ds = xr.Dataset({"counts": (("tilt", "y", "x"), counts)}, coords={"tilt_angle": angle},
                    attrs={"pixel_size_nm": 4.0})
    ds["counts"] = ds["counts"].transpose(*dims)
    return ds.drop_vars(list(drop))


def _bad_files(folder):
    """Every kind of bad file a user can bring, by name (in ``folder``)."""
    import mrcfile

    (folder / "bad.toml").write_text(BAD_SPEC)
    (folder / "syntax.toml").write_text('name = "x"\nseed = \n[acquisition\n')
    (folder / "unknown.toml").write_text('name = "x"\nseed = 1\nbogus_key = 3\n')
    (folder / "range.toml").write_text('name = "x"\nseed = 1\n[acquisition]\ntilt_step_deg = -3\n')
    (folder / "choose_bad.toml").write_text('[choose.grid]\nbm3d_strength = [0.3]\n')
    (folder / "fit_unknown.toml").write_text('model = "cu_shell_reservoir"\nbogus_key = 1\n')
    (folder / "fit_range.toml").write_text('model = "cu_shell_reservoir"\n[sampler]\nwalkers = -4\n')
    (folder / "binary.toml").write_bytes(b"\x82\xff\x00name")
    (folder / "empty.csv").write_text("")
    (folder / "rows.csv").write_text("pt_time_s,temperature_C,pair,neck_radius_nm,particle_radius_nm\n")
    (folder / "corrupt.nc").write_bytes(np.random.default_rng(0).bytes(2000))
    for name in ("empty", "folder.nc", "folder.toml", "folder.csv", "folder.mrc", "specrun"):
        (folder / name).mkdir()
    (folder / "specrun" / "spec.json").write_text('{"name": "s", "seed": 3}')  # a simulated run's spec: 1024^2 px
    for name, ds in {"tilts.nc": _tilts(), "nocounts.nc": _tilts(drop=["counts"]), "nan.nc": _tilts(nan=True),
                     "one.nc": _tilts(1), "two.nc": _tilts(2), "dims.nc": _tilts(dims=("y", "x", "tilt")),
                     "angles.nc": _tilts(angles=[-5.0, 0.0, 5.0, 10.0])}.items():
        write_dataset_atomic(ds, folder / name)
    (folder / "truncated.nc").write_bytes((folder / "tilts.nc").read_bytes()[:600])
    grid = {a: (a, np.arange(n) * 4.0) for a, n in zip("zyx", (4, 8, 8))}
    write_dataset_atomic(xr.Dataset({"volume": (("z", "y", "x"), np.zeros((4, 8, 8), np.float32))}, coords=grid,
                                    attrs={"pt_time_s": 0.0, "temperature_C": 20.0}), folder / "nobinary.nc")
    write_dataset_atomic(xr.Dataset({"distance_nm": (("time", "pair"), np.ones((2, 2)))},
                                    coords={"pt_time_s": ("time", [0.0, 1.0]), "temperature_C": ("time", [1.0, 1.0])}),
                         folder / "metrics_missing.nc")
    for name, n in (("one.mrc", 1), ("three.mrc", 3)):
        with mrcfile.new(folder / name) as mrc:
            mrc.set_data(np.ones((n, 8, 8), np.int16))
            mrc.voxel_size = 10.0
    (folder / "one.rawtlt").write_text("0\n")
    (folder / "three.rawtlt").write_text("-5\n0\n5\n")
    (folder / "four.rawtlt").write_text("-5\n0\n5\n10\n")


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["dose", "--current", "-1", "--dwell", "1", "--pixels", "10", "--tilts", "3", "--pixel-size", "1"],
         "--current"),
        (["dose", "--current", "1", "--dwell", "1", "--pixels", "0", "--tilts", "3", "--pixel-size", "1"],
         "--pixels"),
        (["dose", "--current", "1", "--dwell", "1", "--pixels", "10", "--tilts", "3", "--pixel-size", "0"],
         "--pixel-size"),
        (["dose", "--current", "nan", "--dwell", "1", "--pixels", "10", "--tilts", "3", "--pixel-size", "1"],
         "--current=nan"),
        # specs: bad value, TOML syntax, unknown key, out of range, not text, a folder
        (["simulate", "{out}/bad.toml", "--out", "{out}/run"], "acquisition.dose_e_per_nm2"),
        (["simulate", "{out}/syntax.toml", "--out", "{out}/run"], "syntax.toml: not valid TOML"),
        (["simulate", "{out}/unknown.toml", "--out", "{out}/run"], "bogus_key: unknown key"),
        (["simulate", "{out}/range.toml", "--out", "{out}/run"], "acquisition.tilt_step_deg"),
        (["simulate", "{out}/binary.toml", "--out", "{out}/run"], "not a TOML text file"),
        (["simulate", "{out}/folder.toml", "--out", "{out}/run"], "folder.toml: is a folder"),
        (["run", "{out}/bad.toml", "--out", "{out}/run"], "acquisition.dose_e_per_nm2"),
        (["run", "{out}/syntax.toml", "--out", "{out}/run"], "not valid TOML"),
        (["run", "{out}/unknown.toml", "--out", "{out}/run"], "bogus_key: unknown key"),
        (["run", "{out}/range.toml", "--out", "{out}/run"], "acquisition.tilt_step_deg"),
        (["run", "{out}/corrupt.nc", "--out", "{out}/run"], "not a TOML text file"),
        (["run", "{out}/folder.toml", "--out", "{out}/run"], "a run folder is run in place"),
        (["sweep", "{out}/bad.toml", "--out", "{out}/sweep"], "base: missing key"),
        (["sweep", "{out}/syntax.toml", "--out", "{out}/sweep"], "not valid TOML"),
        (["sweep", "{out}/binary.toml", "--out", "{out}/sweep"], "not a TOML text file"),
        (["sweep", "{out}/folder.toml", "--out", "{out}/sweep"], "is a folder"),
        # import: missing, unknown format, 1 tilt, angle count, a folder for the stack or the output
        (["import", "{out}/nope.mrc", "--angles", "{out}/nope.rawtlt", "--out", "{out}/t.nc"], "no such file"),
        (["import", "{out}/bad.toml", "--angles", "{out}/nope.rawtlt", "--out", "{out}/t.nc"], "unknown stack format"),
        (["import", "{out}/one.mrc", "--angles", "{out}/one.rawtlt", "--out", "{out}/t.nc"], "1 tilt image(s)"),
        (["import", "{out}/three.mrc", "--angles", "{out}/four.rawtlt", "--out", "{out}/t.nc"],
         "4 tilt angles for 3 images"),
        (["import", "{out}/folder.mrc", "--angles", "{out}/three.rawtlt", "--out", "{out}/t.nc"], "folder.mrc"),
        (["import", "{out}/three.mrc", "--angles", "{out}/three.rawtlt", "--out", "{out}/folder.nc"],
         "folder.nc: is a folder"),
        # reconstruct: every bad tilt-series file
        (["reconstruct", "{out}/nope.nc", "--out", "{out}/r.nc"], "no such file"),
        (["reconstruct", "{out}/empty"], "no tilt series"),
        (["reconstruct", "{out}/tilts.nc", "--iterations", "-5", "--out", "{out}/r.nc"], "iterations: "),
        (["reconstruct", "{out}/nocounts.nc", "--out", "{out}/r.nc"], "nocounts.nc: missing variable(s) counts"),
        (["reconstruct", "{out}/nan.nc", "--out", "{out}/r.nc"], "nan.nc: counts hold 1 NaN"),
        (["reconstruct", "{out}/one.nc", "--out", "{out}/r.nc"], "one.nc: 1 tilt image(s)"),
        (["reconstruct", "{out}/two.nc", "--out", "{out}/r.nc"], "two.nc: 2 tilt image(s)"),
        (["reconstruct", "{out}/angles.nc", "--out", "{out}/r.nc"], "4 tilt angles for 3 images"),
        (["reconstruct", "{out}/dims.nc", "--out", "{out}/r.nc"], "dims ('y', 'x', 'tilt')"),
        (["reconstruct", "{out}/corrupt.nc", "--out", "{out}/r.nc"], "corrupt.nc: not a readable netCDF file"),
        (["reconstruct", "{out}/truncated.nc", "--out", "{out}/r.nc"], "truncated.nc: not a readable netCDF"),
        (["reconstruct", "{out}/nobinary.nc", "--out", "{out}/r.nc"], "missing variable(s) counts"),
        (["reconstruct", "{out}/tilts.nc", "--out", "{out}/folder.nc"], "folder.nc: is a folder"),
        (["reconstruct", "{out}/tilts.nc", "--out", "{out}/r.nc"], "tilts.nc: the images are uniform"),
        # measure and export: reconstructions without a binary, corrupt, a folder
        (["measure", "{out}/nope.nc", "--out", "{out}/m.nc"], "no such file"),
        (["measure", "{out}/empty"], "no reconstruction"),
        (["measure", "{out}/nobinary.nc", "--out", "{out}/m.nc"], "missing variable(s) binary"),
        (["measure", "{out}/corrupt.nc", "--out", "{out}/m.nc"], "not a readable netCDF file"),
        (["measure", "{out}/tilts.nc", "--out", "{out}/m.nc"], "missing variable(s) binary"),
        (["export", "{out}/nobinary.nc", "--binary", "--mrc", "{out}/b.mrc"], "missing variable(s) binary"),
        (["export", "{out}/corrupt.nc", "--mrc", "{out}/b.mrc"], "not a readable netCDF file"),
        (["export", "{out}/folder.nc", "--mrc", "{out}/b.mrc"], "folder.nc: is a folder"),
        (["export", "{out}/nobinary.nc", "--mrc", "{out}/folder.mrc"], "folder.mrc: is a folder"),
        (["validate", "{out}/empty"], "truth"),
        (["validate", "{out}/nowhere"], "not a run folder"),
        (["validate", "{out}/corrupt.nc"], "not a run folder"),
        # fit: bad data and bad specs
        (["fit", "{out}/nope.csv", "--spec", "{out}/bad.toml", "--out", "{out}/fit"], "model: missing key"),
        (["fit", "{out}/nope.csv", "--spec", QUICK_FIT, "--out", "{out}/fit"], "no such file"),
        (["fit", "{out}/empty.csv", "--spec", QUICK_FIT, "--out", "{out}/fit"], "empty.csv: not a readable CSV"),
        (["fit", "{out}/rows.csv", "--spec", QUICK_FIT, "--out", "{out}/fit"], "rows.csv: the table has no rows"),
        (["fit", "{out}/metrics_missing.nc", "--spec", QUICK_FIT, "--out", "{out}/fit"],
         "missing variable(s) neck_radius_nm"),
        (["fit", "{out}/corrupt.nc", "--spec", QUICK_FIT, "--out", "{out}/fit"], "not a readable netCDF file"),
        (["fit", "{out}/folder.csv", "--spec", QUICK_FIT, "--out", "{out}/fit"], "folder.csv: is a folder"),
        (["fit", "{out}/rows.csv", "--spec", "{out}/syntax.toml", "--out", "{out}/fit"], "not valid TOML"),
        (["fit", "{out}/rows.csv", "--spec", "{out}/fit_unknown.toml", "--out", "{out}/fit"], "bogus_key"),
        (["fit", "{out}/rows.csv", "--spec", "{out}/fit_range.toml", "--out", "{out}/fit"], "sampler.walkers"),
        (["fit", "{out}/rows.csv", "--spec", "{out}/corrupt.nc", "--out", "{out}/fit"], "not a TOML text file"),
        (["fit", "{out}/rows.csv", "--spec", QUICK_FIT, "--out", "{out}/fit", "--jobs", "0"], "n_jobs must be -1"),
        (["run", "{out}/bad.toml"], "--out RUNDIR is required"),
        (["run", "{out}/bad.toml", "--out", "{out}/run", "--jobs", "-3"], "n_jobs must be -1"),
        (["run", "{out}/bad.toml", "--out", "{out}/run", "--fit", "{out}/bad.toml"], "are for an imported run folder"),
        (["run", "{out}/empty"], "not an imported run folder"),
        (["import", "{out}/nope.csv", "--out", "{out}/run"], "cannot read the manifest"),
        # calibrate: a missing or unreadable source, a folder that is no run, a bad --out, --twins or twin field, no dose
        (["calibrate", "{out}/nope.nc", "--out", "{out}/c.nc"], "no such file"),
        (["calibrate", "{out}/empty", "--out", "{out}/c.nc"], "not a run folder"),
        (["calibrate", "{out}/corrupt.nc", "--out", "{out}/c.nc"], "not a readable netCDF file"),
        (["calibrate", "{out}/tilts.nc", "--out", "{out}/folder.nc"], "folder.nc: is a folder"),
        (["calibrate", "{out}/tilts.nc", "--out", "{out}/c.nc", "--twins", "1"], "n_twins"),
        (["calibrate", "{out}/tilts.nc", "--out", "{out}/c.nc"], "records no dose"),
        (["calibrate", "{out}/tilts.nc", "--out", "{out}/c.nc", "--choose", "{out}/choose_bad.toml"],
         "choose_bad.toml: choose.grid.bm3d_strength: unknown pipeline setting"),
        (["calibrate", "{out}/tilts.nc", "--out", "{out}/c.nc", "--choose", "{out}/nope.toml"], "no such file"),
        (["calibrate", "{out}/specrun", "--out", "{out}/c.nc", "--twin-pixels", "2048"], "at most the run's 1024"),
        (["calibrate", "{out}/specrun", "--out", "{out}/c.nc", "--twin-series", "0"], "twin_series"),
        (["measure", "{out}/nobinary.nc", "--out", "{out}/m.nc", "--calibration", "{out}/nope.nc"], "no such file"),
        (["measure", "{out}/nobinary.nc", "--out", "{out}/m.nc", "--calibration", "{out}/tilts.nc"],
         "missing variable(s) coefficient"),
        # compare: a folder holding no finished fit, a file that is no posterior, one fit alone, names that clash
        (["compare", "{out}/empty", "{out}/tilts.nc"], "empty: no posterior.nc"),
        (["compare", "{out}/corrupt.nc", "{out}/tilts.nc"], "corrupt.nc: not a readable posterior.nc"),
        (["compare", "{out}/tilts.nc"], "at least two"),
        (["compare", "{out}/tilts.nc", "{out}/nan.nc", "--names", "a"], "--names gives 1 name(s) for 2 fits"),
        (["compare", "{out}/tilts.nc", "{out}/nan.nc", "--names", "a", "a"], "repeat"),
        (["report", "{out}/nowhere"], "not a run folder"),
        (["report", "{out}/corrupt.nc"], "not a run folder"),
    ],
)
def test_a_user_error_is_one_line_exit_2_and_no_file(tmp_path, root, capsys, argv, match):
    _bad_files(tmp_path)
    before = _files(tmp_path)
    argv = [a.format(out=tmp_path, root=root) for a in argv]
    assert main([*argv, *(["-q"] if argv[0] in ("simulate", "reconstruct", "measure", "validate", "fit", "run",
                                                  "sweep", "report", "calibrate") else [])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"sinter4d {argv[0]}: error: ") and match in err[0], err
    assert _files(tmp_path) == before


def test_every_command_is_driven_with_a_bad_input():
    parser = build_parser()
    commands = set(next(a for a in parser._actions if a.dest == "command").choices)
    cases = test_a_user_error_is_one_line_exit_2_and_no_file.pytestmark[0].args[1]
    driven = {argv[0] for argv, _ in cases}
    assert driven == commands


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (PermissionError(errno.EACCES, "Permission denied", "/data/t.nc"), "/data/t.nc: Permission denied"),
        (OSError(errno.ENOSPC, "No space left on device"), "error: No space left on device"),
    ],
)
def test_a_system_error_is_one_line_exit_1(tmp_path, capsys, monkeypatch, error, line):
    import sinter4d.experiments.reconstruct

    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(sinter4d.experiments.reconstruct, "open_dataset_checked", refuse)
    assert main(["export", str(tmp_path / "r.nc")]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [f"sinter4d export: error: {line.removeprefix('error: ')}"]


def test_a_worker_killed_is_one_line_exit_1(tmp_path, capsys, monkeypatch):
    from concurrent.futures.process import BrokenProcessPool

    import sinter4d.experiments.reconstruct

    def killed(*args, **kwargs):
        raise BrokenProcessPool("A process in the process pool was terminated abruptly")

    monkeypatch.setattr(sinter4d.experiments.reconstruct, "open_dataset_checked", killed)
    assert main(["export", str(tmp_path / "r.nc")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a worker process died (out of memory?)" in err[0] and "--jobs 1" in err[0]


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    import sinter4d.experiments.reconstruct

    def bug(*args, **kwargs):
        raise KeyError("a programming error")

    monkeypatch.setattr(sinter4d.experiments.reconstruct, "open_dataset_checked", bug)
    with pytest.raises(KeyError):
        main(["export", str(tmp_path / "r.nc")])


def test_help_texts_name_the_files_the_run_folder_names(capsys):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    helps = {c.dest: c.help for c in sub._choices_actions}
    assert helps["simulate"].endswith(stage("simulate").help)
    assert helps["run"].endswith(", ".join(STAGE_NAMES))
    assert role_label("report") in helps["report"]
    with pytest.raises(SystemExit):
        main(["reconstruct", "--help"])
    out = capsys.readouterr().out
    assert role_label("tilts") in out and role_label("recon") in out
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = capsys.readouterr().out
    assert RunFolder(".").fit.chain.name in out


def test_dose_prints_the_dose(capsys):
    argv = ["dose", "--current", "50", "--dwell", "1000", "--pixels", "1024", "--tilts", "71", "--pixel-size", "1.04"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "dose per series" in out and "e/nm^2" in out
    # 50 pA for 1 us is 5e-17 C: 312.08 electrons of 1.602176634e-19 C on each pixel of each image,
    # 288.53 e/nm^2 on pixels of 1.04 nm, 71 times over the series
    per_pixel = 50e-12 * 1e-6 / 1.602176634e-19
    assert f"per pixel per image:  {per_pixel:.2f} e ({per_pixel / 1.04**2:.2f} e/nm^2)" in out
    assert f"dose per series:      {71 * per_pixel / 1.04**2:.1f} e/nm^2" in out


def test_calibrate_help_states_the_default_twins():
    """The help's default (the parser stays light, so it is written out) is the one calibrate_run uses."""
    from sinter4d.experiments.calibrate import DEFAULT_TWINS

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    twins = next(a for a in sub.choices["calibrate"]._actions if a.dest == "twins")
    assert f"(default {DEFAULT_TWINS})" in twins.help


def _posterior_file(path, mean_log_lik, rng):
    """A posterior.nc as ``fit`` writes one, with log-likelihood terms around ``mean_log_lik`` per reading."""
    import arviz as az

    obs = xr.Dataset({"neck_radius_nm": (("time", "pair"), np.full((4, 3), 20.0))})
    idata = az.from_dict(posterior={"x": rng.normal(size=(2, 100))},
                         log_likelihood={"neck_radius_nm": rng.normal(mean_log_lik, 0.05, (2, 100, 4, 3))},
                         dims={"neck_radius_nm": ["time", "pair"]})
    idata.add_groups(observed_data=obs)
    path.parent.mkdir(parents=True, exist_ok=True)
    idata.to_netcdf(path)
    return path


def test_compare_ranks_fits_by_loo_and_names_them_by_folder(tmp_path, capsys):
    rng = np.random.default_rng(3)
    _posterior_file(tmp_path / "plain" / "posterior.nc", -3.0, rng)  # a fit folder
    _posterior_file(tmp_path / "calibrated" / "posterior.nc", -1.0, rng)
    assert main(["compare", str(tmp_path / "plain"), str(tmp_path / "calibrated" / "posterior.nc"),
                 "--out", str(tmp_path / "loo.csv")]) == 0
    out = capsys.readouterr().out
    assert "best by LOO: calibrated" in out and "plain" in out
    import pandas as pd

    table = pd.read_csv(tmp_path / "loo.csv", index_col=0)
    # 12 readings, each 2 nats apart: the difference is 24 nats, up to the draws' small spread
    assert table.loc["plain", "elpd_diff"] == pytest.approx(24.0, abs=0.5)
    assert table.loc["calibrated", "rank"] == 0
    assert main(["compare", str(tmp_path / "plain"), str(tmp_path / "calibrated"), "--names", "a", "b",
                 "--ic", "waic"]) == 0
    assert "best by WAIC: b" in capsys.readouterr().out


def test_compare_names_two_runs_fit_folders_by_their_runs(tmp_path, capsys):
    rng = np.random.default_rng(5)
    for run, mean in (("runA", -1.0), ("runB", -1.5)):
        _posterior_file(tmp_path / run / "fit" / "posterior.nc", mean, rng)
    assert main(["compare", str(tmp_path / "runA" / "fit"), str(tmp_path / "runB" / "fit")]) == 0
    assert "best by LOO: runA/fit" in capsys.readouterr().out
