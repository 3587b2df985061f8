"""``sinter4d run``: every stage into one folder, the run record, skip, resume and force."""

import io
import json

import numpy as np
import pytest
import xarray as xr

from sinter4d.cli import main
from sinter4d.errors import InputError
from sinter4d.experiments import run_experiment
from sinter4d.experiments.record import code_fingerprint, package_versions
from sinter4d.experiments.run import RUNNERS
from sinter4d.runfolder import STAGE_NAMES as STAGES

#: Every stage but the report, as a run without [calibration] does them (the calibration is not run).
DONE = tuple(s for s in STAGES[:-1] if s != "calibrate")

STEPS = 2


def _write_spec(path, root, *, seed=4, fit=True):
    fit_section = (
        f'[fit]\nspec = "{root / "assimilation" / "quick.toml"}"\nwalkers = 16\nsteps = 80\nburn_in = 20\nthin = 2\n'
        if fit else ""
    )
    path.write_text(
        f'name = "tiny-run"\nseed = {seed}\n'
        "[phantom]\nn_cores = 2\n"
        f'[sintering]\nmodel = "{root / "models" / "cu_shell_reservoir.toml"}"\n'
        "[heating]\npt_time_s = [0, 41]\ntemperature_C = [372, 370]\n"
        "[acquisition]\nimage_pixels = 512\npixel_size_nm = 1.04\nbin = 4\ntilt_step_deg = 10.0\n"
        '[pipeline]\ndenoise = false\nmethod = "pdhg"\niterations = 30\n'
        + fit_section
    )
    return path


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, root):
    folder = tmp_path_factory.mktemp("run")
    spec = _write_spec(folder / "tiny.toml", root)
    result = run_experiment(spec, folder / "run", stages=STAGES[:-1], progress=False)
    return spec, folder / "run", result


def test_every_stage_writes_its_outputs_and_the_record(finished_run):
    _, run, result = finished_run
    assert result.failed is None
    assert [s for s, e in result.stages.items() if e["status"] == "done"] == list(DONE)
    assert result.stages["calibrate"]["status"] == "not run"
    assert (run / "truth.nc").is_file() and len(list((run / "tilts").glob("t*.nc"))) == STEPS
    assert len(list((run / "recon").glob("t*.nc"))) == STEPS
    with xr.open_dataset(run / "validation.nc") as val:
        assert val.sizes["time"] == STEPS and val.attrs["pairs_found"] >= 1
    with xr.open_dataset(run / "fit" / "posterior.nc", group="posterior") as post:
        assert post.sizes["draw"] == (80 - 20) // 2
    record = json.loads((run / "run.json").read_text())
    assert record["versions"]["numpy"] == package_versions()["numpy"]
    assert record["versions"]["sinter4d"] != "not installed"
    assert all(record["stages"][s]["seconds"] > 0 for s in DONE)
    log = (run / "run.log").read_text()
    assert "simulate: done" in log and "fit: done" in log
    assert record["code"]["fingerprint"] == code_fingerprint()


def test_a_run_writes_each_volume_as_mrc_and_the_metrics_as_a_table(finished_run):
    import mrcfile

    from sinter4d.io.trajectories import read_trajectories
    from sinter4d.runfolder import RunFolder

    run = RunFolder(finished_run[1])
    for step in range(STEPS):
        with xr.open_dataset(run.recon_of(step)) as recon:
            volume, pixel = recon["volume"].values, float(recon.attrs["pixel_size_nm"])
        path = run.recon_mrc_of(step)
        assert mrcfile.validate(str(path), print_file=io.StringIO())
        with mrcfile.open(path, permissive=False) as mrc:
            np.testing.assert_array_equal(mrc.data, volume)  # (z, y, x) as sections, rows, columns
            assert float(mrc.voxel_size.x) == pytest.approx(10 * pixel)
    assert not run.recon_mrc_of(0, binary=True).exists()  # the binary only on request
    from_csv, from_nc = read_trajectories(run.metrics_csv), read_trajectories(run.metrics)
    for name in ("neck_radius_nm", "distance_nm", "particle_radius_nm", "surface_gap_nm", "pt_time_s"):
        np.testing.assert_array_equal(from_csv[name].values, from_nc[name].values)
    assert list(from_csv["pair"].values) == list(from_nc["pair"].values)


def test_every_stage_has_one_runner():
    assert tuple(RUNNERS) == STAGES


def test_the_code_fingerprint_follows_the_source(tmp_path):
    from sinter4d.experiments.record import _fingerprint

    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n")
    (package / "sub" / "b.py").write_text("y = 2\n")
    (package / "sub" / "__pycache__").mkdir()
    (package / "sub" / "__pycache__" / "b.cpython-311.pyc").write_bytes(b"compiled")
    first = _fingerprint(package)
    assert len(first) == 64 and first == _fingerprint.__wrapped__(package)
    (package / "sub" / "__pycache__" / "b.cpython-311.pyc").write_bytes(b"recompiled")
    assert _fingerprint.__wrapped__(package) == first  # bytecode is not source
    (package / "sub" / "b.py").write_text("y = 3\n")
    assert _fingerprint.__wrapped__(package) != first
    assert len(code_fingerprint()) == 64


def test_a_rerun_skips_finished_stages(finished_run):
    spec, run, _ = finished_run
    stamp = (run / "metrics.nc").stat().st_mtime_ns
    result = run_experiment(spec, run, stages=DONE, progress=False)
    assert {e["status"] for e in result.stages.values()} == {"skipped"}
    assert (run / "metrics.nc").stat().st_mtime_ns == stamp


def test_a_killed_run_resumes_where_it_stopped(tmp_path, finished_run):
    spec, run, _ = finished_run
    # a run killed during reconstruction: one reconstruction and everything after it missing
    (run / "recon" / "t02.nc").unlink()
    kept = (run / "recon" / "t01.nc").stat().st_mtime_ns
    for name in ("metrics.nc", "validation.nc"):
        (run / name).unlink()
    result = run_experiment(spec, run, stages=DONE[:4], progress=False)
    status = {s: e["status"] for s, e in result.stages.items()}
    assert status == {"simulate": "skipped", "reconstruct": "done", "measure": "done", "validate": "done"}
    assert (run / "recon" / "t01.nc").stat().st_mtime_ns == kept
    assert (run / "recon" / "t02.nc").is_file()


def test_force_redoes_a_stage(finished_run):
    spec, run, _ = finished_run
    stamp = (run / "validation.nc").stat().st_mtime_ns
    result = run_experiment(spec, run, stages=("validate",), force=True, progress=False)
    assert result.stages["validate"]["status"] == "done"
    assert (run / "validation.nc").stat().st_mtime_ns > stamp


def test_a_folder_of_another_spec_is_refused(tmp_path, root, finished_run):
    _, run, _ = finished_run
    other = _write_spec(tmp_path / "other.toml", root, seed=5)
    with pytest.raises(InputError, match="different spec"):
        run_experiment(other, run, progress=False)


def test_without_a_fit_spec_the_fit_stage_is_not_run(tmp_path, root):
    spec = _write_spec(tmp_path / "nofit.toml", root, fit=False)
    result = run_experiment(spec, tmp_path / "run", stages=("simulate", "fit"), progress=False)
    assert result.stages["simulate"]["status"] == "done"
    assert result.stages["fit"]["status"] == "not run"


def test_cli_bad_spec_and_bad_stage_are_one_line(tmp_path, root, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nseed = 1\n[acquisition]\ndose_e_per_nm2 = -5\n')
    assert main(["run", str(bad), "--out", str(tmp_path / "r"), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "acquisition.dose_e_per_nm2" in err[0]
    assert not (tmp_path / "r").exists()
    spec = _write_spec(tmp_path / "ok.toml", root, fit=False)
    assert main(["run", str(spec), "--out", str(tmp_path / "r"), "--stages", "simulate,polish", "-q"]) == 2
    assert "unknown stage 'polish'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_one_bm3d_noise_level_per_run(tmp_path, monkeypatch):
    from sinter4d.experiments import reconstruct as rc
    from sinter4d.pipeline.settings import PipelineSpec
    from sinter4d.io.netcdf import write_dataset_atomic
    from sinter4d.pipeline import series

    angles = np.array([-20.0, 0.0, 20.0])
    rng = np.random.default_rng(0)
    tilts = []
    for k, with_reference in enumerate((False, True, True)):
        ds = xr.Dataset({"counts": (("tilt", "y", "x"), rng.poisson(5.0, (3, 8, 8)).astype(np.float32))},
                        coords={"tilt_angle": ("tilt", angles)}, attrs={"pixel_size_nm": 4.0})
        if with_reference:
            ds["reference"] = (("y", "x"), np.full((8, 8), 5.0 + k))
        tilts.append(write_dataset_atomic(ds, tmp_path / "tilts" / f"t{k + 1:02d}.nc"))
    outs = [tmp_path / "recon" / t.name for t in tilts]
    calls = []

    def fake_select(image, reference, **kwargs):
        calls.append(float(reference[0, 0]))
        return 3.5

    monkeypatch.setattr(series, "select_sigma_psnr", fake_select)
    settings = PipelineSpec()
    # chosen once, on the first series that has a reference average (the second)
    assert rc.run_sigma_psd(tilts, outs, settings) == 3.5 and calls == [6.0]
    # a resumed run reuses the level its finished reconstructions were made with
    write_dataset_atomic(xr.Dataset(attrs={"denoise_sigma_psd": 2.25}), outs[2])
    assert rc.run_sigma_psd(tilts, outs, settings) == 2.25 and len(calls) == 1
    # a level fixed by the spec, or no denoising, is left alone
    assert rc.run_sigma_psd(tilts, outs, PipelineSpec(sigma_psd=1.0)) == 1.0
    assert rc.run_sigma_psd(tilts, outs, PipelineSpec(denoise=False)) is None


def test_a_series_imaged_alone_is_the_one_the_whole_run_takes_and_is_validated_at_its_step(tiny_run, tmp_path):
    """``[heating] imaged_series``: the specimen sinters through the whole log, only the listed series are imaged."""
    from conftest import ROOT, TINY_SPEC
    from sinter4d.calibration import reading_table
    from sinter4d.runfolder import RunFolder

    spec = tmp_path / "late.toml"
    tiny = TINY_SPEC.format(root=ROOT.as_posix()).split("[fit]")[0]  # a fit needs series 0 imaged
    spec.write_text(tiny.replace("temperature_C = [372, 370]\n", "temperature_C = [372, 370]\nimaged_series = [1]\n"))
    result = run_experiment(spec, tmp_path / "run", stages=("simulate", "reconstruct", "measure", "validate"),
                            progress=False, n_jobs=1)
    assert result.failed is None, result.stages
    run, whole = RunFolder(tmp_path / "run"), RunFolder(tiny_run)
    assert [f.name for f in run.tilt_files()] == [whole.tilt(1).name] and [f.name for f in run.recon_files()] == [
        whole.tilt(1).name]
    with xr.open_dataset(run.tilt(1)) as alone, xr.open_dataset(whole.tilt(1)) as taken:
        np.testing.assert_array_equal(alone["counts"].values, taken["counts"].values)  # the same draws
        assert alone.attrs["pt_time_s"] == 41.0
    with xr.open_dataset(run.truth) as t, xr.open_dataset(whole.truth) as w:
        truth = t.load()
        np.testing.assert_array_equal(truth["neck_radius_nm"].values, w["neck_radius_nm"].values)  # sintered the same
    with xr.open_dataset(run.metrics) as m, xr.open_dataset(run.validation) as v:
        assert m["time"].values.tolist() == [1] and v["pt_time_s"].values.tolist() == [41.0]
        assert v.attrs["pairs_found"] == v.attrs["pairs_true"] == 1
        table = reading_table(m.load(), truth, v.load(), run=0)  # a calibration's readings: the imaged step's truth
        assert table["time"].tolist() == [1]
        assert table["true_neck_radius_nm"].tolist() == truth["neck_radius_nm"].values[1].tolist()
    with pytest.raises(Exception, match="imaged_series"):
        spec.write_text(spec.read_text().replace("imaged_series = [1]", "imaged_series = [2]"))
        run_experiment(spec, tmp_path / "bad", stages=("simulate",), progress=False, n_jobs=1)
    assert not (tmp_path / "bad").exists()


def test_a_fit_needs_the_initial_series_imaged(root):
    from sinter4d.errors import SpecError
    from sinter4d.experiments import parse_spec

    doc = {"name": "late", "seed": 1, "heating": {"pt_time_s": [0, 5, 12], "temperature_C": [372, 370, 370],
                                                  "imaged_series": [1, 2]}}
    assert parse_spec(doc).heating.imaged == [1, 2]  # no fit: any series may be imaged
    with pytest.raises(SpecError, match="the fit stage needs the first series imaged"):
        parse_spec({**doc, "fit": {"spec": "../assimilation/quick.toml"}})
    with pytest.raises(SpecError, match="imaged_series must be increasing indices"):
        parse_spec({**doc, "heating": {**doc["heating"], "imaged_series": [2, 1]}})
