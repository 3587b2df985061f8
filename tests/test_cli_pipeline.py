"""`sinter4d import` and `sinter4d reconstruct` from the command line: files, resume, errors."""

import mrcfile
import numpy as np
import pytest
import xarray as xr

from sinter4d.cli import main
from sinter4d.experiments import parse_spec, plan_simulation
from sinter4d.experiments.simulate import tilt_series_dataset
from sinter4d.io.netcdf import write_dataset_atomic

SPEC = {
    "name": "cli-pipeline",
    "seed": 5,
    "phantom": {"n_cores": 2},
    "heating": {"pt_time_s": [0], "temperature_C": [372]},
    "acquisition": {"image_pixels": 512, "pixel_size_nm": 2.08, "bin": 4, "tilt_step_deg": 10.0, "reference_frames": 0},
}


@pytest.fixture(scope="module")
def tilts_file(tmp_path_factory, root):
    plan = plan_simulation(parse_spec(SPEC), root / "experiments" / "quick.toml")
    path = tmp_path_factory.mktemp("cli") / "t01.nc"
    write_dataset_atomic(tilt_series_dataset(plan, 0), path)
    return path


def test_reconstruct_file_writes_the_design_layout(tilts_file, tmp_path):
    out = tmp_path / "recon.nc"
    argv = ["reconstruct", str(tilts_file), "--method", "sirt", "--iterations", "5", "--no-denoise", "--out", str(out), "-q"]
    assert main(argv) == 0
    rec = xr.open_dataset(out)
    assert rec.volume.dims == ("z", "y", "x") and rec.volume.dtype == np.float32
    assert rec.binary.dtype == np.uint8 and set(np.unique(rec.binary.values)) <= {0, 1}
    assert rec.shift_x.dims == ("tilt",) and rec.shift_y.attrs["units"] == "px"
    for key in ("axis_offset_px", "method", "iterations"):
        assert key in rec.attrs
    assert rec.attrs["method"] == "sirt" and rec.attrs["iterations"] == 5
    src = xr.open_dataset(tilts_file)
    np.testing.assert_allclose(rec.x.values, src.x.values)
    assert rec.z.attrs["units"] == "nm"


def test_nan_stack_is_one_line_and_no_file(tilts_file, tmp_path, capsys):
    ds = xr.open_dataset(tilts_file).load()
    ds["counts"][3, 10, 10] = np.nan
    bad = tmp_path / "bad.nc"
    write_dataset_atomic(ds, bad)
    out = tmp_path / "recon.nc"
    assert main(["reconstruct", str(bad), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "NaN" in err[0]
    assert not out.exists()


def test_import_mrc_then_reconstruct(tilts_file, tmp_path):
    src = xr.open_dataset(tilts_file)
    stack = tmp_path / "series.mrc"
    with mrcfile.new(stack) as mrc:
        mrc.set_data(src.counts.values.astype(np.float32))
        mrc.voxel_size = src.attrs["pixel_size_nm"] * 10.0
    angles = tmp_path / "series.rawtlt"
    angles.write_text("\n".join(f"{a:g}" for a in src.tilt_angle.values) + "\n")
    imported = tmp_path / "imported.nc"
    assert main(["import", str(stack), "--angles", str(angles), "--out", str(imported)]) == 0
    ds = xr.open_dataset(imported)
    assert ds.attrs["pixel_size_nm"] == pytest.approx(src.attrs["pixel_size_nm"], rel=1e-5)
    np.testing.assert_allclose(ds.counts.values, src.counts.values)
    out = tmp_path / "imported_recon.nc"
    assert main(["reconstruct", str(imported), "--method", "fbp", "--no-denoise", "-q"]) == 0
    assert out.is_file()


def test_import_angle_count_mismatch(tilts_file, tmp_path, capsys):
    src = xr.open_dataset(tilts_file)
    stack = tmp_path / "series.mrc"
    with mrcfile.new(stack) as mrc:
        mrc.set_data(src.counts.values.astype(np.float32))
    angles = tmp_path / "series.rawtlt"
    angles.write_text("\n".join(f"{a:g}" for a in src.tilt_angle.values[:-1]) + "\n")
    out = tmp_path / "imported.nc"
    assert main(["import", str(stack), "--angles", str(angles), "--pixel-size", "8.32", "--out", str(out)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not out.exists()


def test_reconstruct_run_folder_resumes(tmp_path, root):
    spec = tmp_path / "two.toml"
    spec.write_text(
        f'name = "two"\nseed = 2\n[phantom]\nn_cores = 2\n[sintering]\nmodel = "{root / "models" / "cu_shell_reservoir.toml"}"\n'
        "[heating]\npt_time_s = [0, 5]\ntemperature_C = [372, 370]\n"
        "[acquisition]\nimage_pixels = 512\npixel_size_nm = 2.08\nbin = 4\ntilt_step_deg = 10.0\nreference_frames = 0\n"
        '[pipeline]\ndenoise = false\nmethod = "fbp"\n'
    )
    run = tmp_path / "run"
    assert main(["simulate", str(spec), "--out", str(run), "-q"]) == 0
    assert main(["reconstruct", str(run), "-q"]) == 0
    files = sorted((run / "recon").glob("t*.nc"))
    assert [f.name for f in files] == ["t01.nc", "t02.nc"]
    assert xr.open_dataset(files[0]).attrs["method"] == "fbp"
    kept = files[0].stat().st_mtime_ns
    files[1].unlink()
    assert main(["reconstruct", str(run), "-q"]) == 0
    assert files[1].is_file() and files[0].stat().st_mtime_ns == kept


def test_denoise_strength_scales_the_bm3d_level(tilts_file):
    from sinter4d.pipeline import PipelineSpec, prepare_tilt_series
    from sinter4d.pipeline.series import remove_dark_level
    from sinter4d.pipeline.denoise import denoise_bm3d

    ds = xr.open_dataset(tilts_file).load()
    # the axis direction is given: found on raw or on denoised images it may differ, and this test is about BM3D
    lc = dict(bm3d_profile="lc", bm3d_stages="hard", sigma_psd=3.0, axis_rotation=0.0)
    full = prepare_tilt_series(ds, PipelineSpec(**lc))
    half = prepare_tilt_series(ds, PipelineSpec(**lc, denoise_strength=0.5))
    assert full.sigma_psd == half.sigma_psd == 3.0  # the level chosen is recorded, not the scaled one
    # the same images as BM3D run at 1.5 directly
    signal = remove_dark_level(ds.counts.values, ds)  # the detector's dark level comes off first
    direct = denoise_bm3d(signal, PipelineSpec(**lc), sigma_psd=1.5)
    raw = prepare_tilt_series(ds.assign(counts=(ds.counts.dims, direct)).assign_attrs(dark_level=0.0),
                              PipelineSpec(denoise=False, axis_rotation=0.0))
    np.testing.assert_allclose(half.signal, raw.signal, rtol=1e-5, atol=1e-5 * float(np.abs(raw.signal).max()))
    # weaker denoising leaves more noise: a rougher signal
    rough = lambda s: float(np.std(np.diff(s, axis=2)))  # noqa: E731
    assert rough(half.signal) > 1.2 * rough(full.signal)
    with pytest.raises(ValueError, match="denoise_strength"):
        PipelineSpec(denoise_strength=0.0)


def test_import_of_one_image_and_reconstruct_of_two_tilts_are_one_line(tilts_file, tmp_path, capsys):
    src = xr.open_dataset(tilts_file)
    stack = tmp_path / "one.mrc"
    with mrcfile.new(stack) as mrc:
        mrc.set_data(src.counts.values[:1].astype(np.float32))
        mrc.voxel_size = 20.8
    out = tmp_path / "one.nc"
    assert main(["import", str(stack), "--angles", str(_angles_file(tmp_path, [0.0])), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "1 tilt image(s); a tilt series needs at least 3" in err[0] and not out.exists()
    # a tilt-series file made some other way: reconstruct refuses it in one line too
    two = tmp_path / "two.nc"
    write_dataset_atomic(src.isel(tilt=slice(0, 2)).load(), two)
    assert main(["reconstruct", str(two), "--no-denoise", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "two.nc: 2 tilt image(s)" in err[0] and "at least 3" in err[0]


def _angles_file(folder, angles):
    path = folder / "angles.rawtlt"
    path.write_text("\n".join(f"{a:g}" for a in angles) + "\n")
    return path


def test_import_prints_what_it_read(tilts_file, tmp_path, capsys):
    src = xr.open_dataset(tilts_file)
    stack = tmp_path / "series.mrc"
    with mrcfile.new(stack) as mrc:
        mrc.set_data((src.counts.values - 500).astype(np.int16))  # an offset detector
        mrc.voxel_size = src.attrs["pixel_size_nm"] * 10.0
    (tmp_path / "series.tlt").write_text("\n".join(f"{a:g}" for a in src.tilt_angle.values) + "\n")
    out = tmp_path / "t.nc"
    assert main(["import", str(stack), "--tilt-axis-rotation", "90", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "series.tlt, file beside the stack" in text and "MRC header, file metadata" in text
    assert "tilt axis 90 deg from y (given)" in text
    ds = xr.open_dataset(out)
    assert ds.attrs["tilt_axis_rotation_deg"] == 90.0 and ds.attrs["dark_level"] < -400
