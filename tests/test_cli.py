"""The command line's edges: every sub-command turns a user error into one line, exit status 2 and no file."""

import numpy as np
import pytest
import xarray as xr

from sinter4d.cli import build_parser, main
from sinter4d.io.netcdf import write_dataset_atomic
from sinter4d.runfolder import STAGE_NAMES, RunFolder, role_label, stage

BAD_SPEC = 'name = "x"\nseed = 1\n[acquisition]\ndose_e_per_nm2 = -5\n'


def _files(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*"))


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["dose", "--current", "-1", "--dwell", "1", "--pixels", "10", "--tilts", "3", "--pixel-size", "1"],
         "--current"),
        (["dose", "--current", "1", "--dwell", "1", "--pixels", "0", "--tilts", "3", "--pixel-size", "1"],
         "--pixels"),
        (["dose", "--current", "1", "--dwell", "1", "--pixels", "10", "--tilts", "3", "--pixel-size", "0"],
         "--pixel-size"),
        (["simulate", "{bad}", "--out", "{out}/run"], "acquisition.dose_e_per_nm2"),
        (["import", "{out}/nope.mrc", "--angles", "{out}/nope.rawtlt", "--out", "{out}/t.nc"], "no such file"),
        (["import", "{bad}", "--angles", "{out}/nope.rawtlt", "--out", "{out}/t.nc"], "unknown stack format"),
        (["reconstruct", "{out}/nope.nc", "--out", "{out}/r.nc"], "no such file"),
        (["reconstruct", "{empty}"], "no tilt series"),
        (["reconstruct", "{tilts}", "--iterations", "-5", "--out", "{out}/r.nc"], "iterations: "),
        (["measure", "{out}/nope.nc", "--out", "{out}/m.nc"], "no such file"),
        (["measure", "{empty}"], "no reconstruction"),
        (["validate", "{empty}"], "truth"),
        (["validate", "{out}/nowhere"], "not a run folder"),
        (["fit", "{out}/nope.csv", "--spec", "{bad}", "--out", "{out}/fit"], "model: missing key"),
        (["fit", "{out}/nope.csv", "--spec", "{root}/assimilation/quick.toml", "--out", "{out}/fit"], "no such file"),
        (["run", "{bad}", "--out", "{out}/run"], "acquisition.dose_e_per_nm2"),
        (["run", "{bad}"], "--out RUNDIR is required"),
        (["run", "{bad}", "--out", "{out}/run", "--fit", "{bad}"], "are for an imported run folder"),
        (["run", "{empty}"], "not an imported run folder"),
        (["import", "{out}/nope.csv", "--out", "{out}/run"], "cannot read the manifest"),
        (["sweep", "{bad}", "--out", "{out}/sweep"], "base: missing key"),
        (["report", "{out}/nowhere"], "not a run folder"),
    ],
)
def test_a_user_error_is_one_line_exit_2_and_no_file(tmp_path, root, capsys, argv, match):
    (tmp_path / "bad.toml").write_text(BAD_SPEC)
    (tmp_path / "empty").mkdir()
    write_dataset_atomic(xr.Dataset({"counts": (("tilt", "y", "x"), np.ones((3, 8, 8), np.float32))},
                                    coords={"tilt_angle": ("tilt", [-10.0, 0.0, 10.0])},
                                    attrs={"pixel_size_nm": 4.0}), tmp_path / "tilts.nc")
    before = _files(tmp_path)
    names = {"bad": tmp_path / "bad.toml", "out": tmp_path, "empty": tmp_path / "empty", "root": root,
             "tilts": tmp_path / "tilts.nc"}
    argv = [a.format(**names) for a in argv]
    assert main([*argv, *(["-q"] if argv[0] in ("simulate", "reconstruct", "measure", "validate", "fit", "run",
                                                  "sweep", "report") else [])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"sinter4d {argv[0]}: error: ") and match in err[0], err
    assert _files(tmp_path) == before


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
