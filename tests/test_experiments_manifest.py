"""``sinter4d import MANIFEST.csv`` and ``sinter4d run RUNDIR``: a real-looking 4D experiment without a truth.

Three MRC stacks of two overlapping spheres (radius 70 nm, centres 138, 132
and 126 nm apart: a neck growing as in sintering) are projected by the
package's projector and written with mrcfile, listed in a manifest with a
10-frame reference, imported, and run to ``metrics.nc``, a fit and
``report.html``. The distances are checked against the spheres' (known)
centres.
"""

import hashlib
import json
import shutil

import mrcfile
import numpy as np
import pytest
import xarray as xr

from sinter4d.cli import main
from sinter4d.errors import InputError
from sinter4d.experiments import import_manifest, read_manifest, run_imported
from sinter4d.experiments.measure import measure_run
from sinter4d.experiments.reconstruct import run_sigma_psd
from sinter4d.operators.projector import ParallelProjector
from sinter4d.pipeline.denoise import select_sigma_psnr
from sinter4d.pipeline.settings import PipelineSpec
from sinter4d.report import SECTIONS
from sinter4d.runfolder import IMPORTED_STAGES, STAGES, RunFolder

PIXEL_NM = 5.0
N_PX, N_Z = 64, 40
ANGLES = np.linspace(-70.0, 70.0, 15)
RADIUS_NM = 70.0
DISTANCES_NM = (138.0, 132.0, 126.0)
PT_TIME_S = (0.0, 5.0, 12.0)
REFERENCE_FRAMES = 10

SETTINGS = """\
description = "fastest settings: no BM3D, 30 SIRT iterations on a 200 nm slab"
[pipeline]
denoise = false
bm3d_profile = "lc"
bm3d_stages = "hard"
method = "sirt"
iterations = 30
slab_thickness_nm = 200.0
[fit]
walkers = 16
steps = 60
burn_in = 20
thin = 2
"""


def _spheres(distance_nm: float) -> np.ndarray:
    z, y, x = (((np.arange(n) - (n - 1) / 2) * PIXEL_NM) for n in (N_Z, N_PX, N_PX))
    z, y, x = z[:, None, None], y[None, :, None], x[None, None, :]
    vol = np.zeros((N_Z, N_PX, N_PX), np.float32)
    for cx in (-distance_nm / 2, distance_nm / 2):
        vol[z**2 + y**2 + (x - cx) ** 2 <= RADIUS_NM**2] = 1.0
    return vol


def _write_mrc(path, data, voxel_size_a=None):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(data, np.float32))
        if voxel_size_a is not None:
            mrc.voxel_size = voxel_size_a
    return path


def _write_angles(path, angles=ANGLES):
    path.write_text("".join(f"{a:g}\n" for a in angles))
    return path


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """The manifest folder: three stacks (50-1050 counts per pixel), their .rawtlt, a 10-frame reference at 0°."""
    folder = tmp_path_factory.mktemp("experiment")
    (folder / "series").mkdir()
    rng = np.random.default_rng(13)
    op = ParallelProjector((N_Z, N_PX), N_PX, voxel_size_nm=PIXEL_NM, angles_deg=ANGLES)
    for k, d in enumerate(DISTANCES_NM):
        expected = 1000.0 * op.direct(_spheres(d)) / 250.0 + 50.0
        _write_mrc(folder / "series" / f"s{k}.mrc", rng.poisson(expected), voxel_size_a=10 * PIXEL_NM)
        _write_angles(folder / "series" / f"s{k}.rawtlt")
        if k == 0:
            zero = expected[int(np.argmin(np.abs(ANGLES)))]
            _write_mrc(folder / "series" / "ref.mrc", rng.poisson(zero, size=(REFERENCE_FRAMES, *zero.shape)))
    rows = [f"series/s{k}.mrc,series/s{k}.rawtlt,{t:g},{350 + k},{'series/ref.mrc' if k == 0 else ''}"
            for k, t in enumerate(PT_TIME_S)]
    (folder / "manifest.csv").write_text("stack,angles,pt_time_s,temperature_C,reference\n" + "\n".join(rows) + "\n")
    (folder / "settings.toml").write_text(SETTINGS)
    return folder


@pytest.fixture(scope="module")
def imported_run(experiment, root):
    """The experiment imported with the CLI and run with the settings card and a fit spec (every stage)."""
    out = experiment / "run"
    assert main(["import", str(experiment / "manifest.csv"), "--out", str(out)]) == 0
    argv = ["run", str(out), "--spec", str(experiment / "settings.toml"),
            "--fit", str(root / "assimilation" / "quick.toml"), "-q"]
    assert main(argv) == 0
    return RunFolder(out)


def test_manifest_rows_are_read_in_order_with_paths_relative_to_the_csv(experiment):
    rows = read_manifest(experiment / "manifest.csv")
    assert [r.pt_time_s for r in rows] == list(PT_TIME_S)
    assert rows[0].stack == (experiment / "series" / "s0.mrc").resolve()
    assert rows[0].reference is not None and rows[1].reference is None
    assert rows[1].pixel_size_nm is None and rows[1].reference_tilt_deg == 0.0


def test_import_writes_the_steps_in_time_order_with_provenance(imported_run, experiment):
    run = imported_run
    files = run.tilt_files()
    assert [f.name for f in files] == ["t01.nc", "t02.nc", "t03.nc"]
    assert run.imported and run.manifest.read_text() == (experiment / "manifest.csv").read_text()
    for k, path in enumerate(files):
        with xr.open_dataset(path) as ds:
            stack = experiment / "series" / f"s{k}.mrc"
            assert ds.attrs["pt_time_s"] == PT_TIME_S[k] and ds.attrs["temperature_C"] == 350 + k
            assert ds.attrs["source_sha256"] == hashlib.sha256(stack.read_bytes()).hexdigest()
            prov = json.loads(ds.attrs["provenance"])
            assert prov["row"] == k + 1 and prov["angles"]["from"] == "manifest"
            assert prov["pixel_size_nm"] == {"value": PIXEL_NM, "from": "stack metadata"}
            np.testing.assert_array_equal(ds["tilt_angle"].values, ANGLES)
            with mrcfile.open(stack) as mrc:
                np.testing.assert_array_equal(ds["counts"].values, mrc.data)
            assert ("reference" in ds) == (k == 0)
    with xr.open_dataset(files[0]) as ds, mrcfile.open(experiment / "series" / "ref.mrc") as ref:
        np.testing.assert_allclose(ds["reference"].values, ref.data.mean(axis=0), rtol=1e-6)
        assert ds["reference"].attrs["n_frames"] == REFERENCE_FRAMES and ds.attrs["reference_tilt_deg"] == 0.0
    record = json.loads(run.record.read_text())
    assert record["kind"] == "imported" and record["manifest"]["rows"] == 3


def test_run_skips_the_stages_that_need_a_truth_and_records_why(imported_run):
    run = imported_run
    stages = json.loads(run.record.read_text())["stages"]
    needs_truth = [s.name for s in STAGES if s.needs_truth]
    assert needs_truth == ["simulate", "validate"] and list(IMPORTED_STAGES) == [
        "calibrate", "reconstruct", "measure", "fit", "report"]
    for name in needs_truth:
        assert stages[name]["status"] == "not run" and "imported experiment" in stages[name]["reason"]
    assert stages["calibrate"]["status"] == "not run"  # off unless the settings turn it on
    assert [s for s in stages if stages[s]["status"] == "done"] == [s for s in IMPORTED_STAGES if s != "calibrate"]
    assert not run.truth.exists() and not run.validation.exists() and not run.spec.exists()
    assert run.fit.posterior.is_file()
    assert json.loads(run.settings.read_text())["pipeline"]["iterations"] == 30


def test_the_reference_tunes_bm3d_as_the_papers_average(imported_run, experiment):
    """The run's BM3D level is chosen against the imported reference: the level maximising PSNR of the raw 0°
    image against the mean of the reference's frames, both read from the MRC files (less the dark level the
    reader records, when it records one, as the pipeline takes it off both)."""
    settings = PipelineSpec(bm3d_profile="lc", bm3d_stages="hard")
    with xr.open_dataset(imported_run.tilt(0)) as ds:
        dark = float(ds.attrs.get("dark_level", 0.0))
    with mrcfile.open(experiment / "series" / "s0.mrc") as stack, \
            mrcfile.open(experiment / "series" / "ref.mrc") as ref:
        raw, reference = stack.data[int(np.argmin(np.abs(ANGLES)))], ref.data.mean(axis=0)
    raw, reference = (a.astype(np.float32) - np.float32(dark) for a in (raw, reference))  # not clipped at 0
    expected = float(select_sigma_psnr(raw, reference, settings=settings, n_jobs=1))
    assert run_sigma_psd(imported_run.tilt_files(), [], settings, n_jobs=1) == pytest.approx(expected, rel=1e-6)


def test_metrics_of_the_imported_run_follow_the_spheres(imported_run):
    with xr.open_dataset(imported_run.metrics) as m:
        assert m.sizes["pair"] == 1
        np.testing.assert_array_equal(m["pt_time_s"].values, PT_TIME_S)
        # centre distance within half a voxel of the spheres' (the neck, a voxel wide, is read wider)
        np.testing.assert_allclose(m["distance_nm"].values[:, 0], DISTANCES_NM, atol=PIXEL_NM / 2)
        neck = m["neck_radius_nm"].values[:, 0]
    true_neck = np.sqrt(RADIUS_NM**2 - (np.array(DISTANCES_NM) / 2) ** 2)  # 11.8, 23.3, 30.5 nm
    assert np.all(np.diff(neck) > 0) and np.all(np.abs(neck - true_neck) < 2 * PIXEL_NM)


def test_a_rerun_skips_every_finished_stage(imported_run):
    result = run_imported(imported_run.path, progress=False)  # no fit spec named now: the fit made is kept
    assert {s: e["status"] for s, e in result.stages.items()} == {
        "simulate": "not run", "reconstruct": "skipped", "calibrate": "not run", "measure": "skipped",
        "validate": "not run", "fit": "skipped", "report": "skipped"}


def test_other_pipeline_settings_are_refused(imported_run, tmp_path, capsys):
    other = tmp_path / "other.toml"
    other.write_text(SETTINGS.replace("iterations = 30", "iterations = 31"))
    before = imported_run.settings.read_text()
    assert main(["run", str(imported_run.path), "--spec", str(other), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "iterations differ" in err[0]
    assert imported_run.settings.read_text() == before


def _sections(html: str) -> dict[str, str]:
    out = {}
    for anchor, _ in SECTIONS:
        start = html.find(f'<section id="{anchor}">')
        if start >= 0:
            out[anchor] = html[start:html.index("</section>", start)]
    return out


def test_the_report_says_no_truth_and_has_no_validation(imported_run):
    html = imported_run.report.read_text(encoding="utf-8")
    sec = _sections(html)
    assert set(sec) == {a for a, _ in SECTIONS} - {"validation", "calibration"}  # no truth, no calibration
    assert "No truth is available: this is an imported experiment" in sec["metadata"]
    assert "no truth is available: this is an imported experiment" in sec["slices"]
    assert "true cores" not in sec["surface"] and "validation" not in sec["metrics"]
    assert sec["slices"].count("<img ") == 2 and sec["surface"].count("<img ") == 1
    assert sec["metrics"].count("<img ") == 2 and "not available" not in sec["metrics"]
    assert "6. Fit" in html and "s0.mrc" in sec["metadata"]


def test_measure_of_one_reconstruction_without_time(imported_run, tmp_path):
    with xr.open_dataset(imported_run.recon_of(2)) as ds:
        ds = ds.load()
    for key in ("pt_time_s", "temperature_C"):
        del ds.attrs[key]
    ds.to_netcdf(tmp_path / "lone.nc")
    assert main(["measure", str(tmp_path / "lone.nc"), "-q"]) == 0
    with xr.open_dataset(tmp_path / "lone_metrics.nc") as m:
        assert m["pt_time_s"].values.tolist() == [0.0] and np.isnan(m["temperature_C"].values[0])
        assert "measured as one step at pt_time_s = 0 s" in m.attrs["time_note"]
        assert m["distance_nm"].values[0, 0] == pytest.approx(DISTANCES_NM[2], abs=PIXEL_NM / 2)
    with pytest.raises(Exception, match="missing attribute"):  # a run folder's step must carry its time
        folder = RunFolder(tmp_path / "folder")
        folder.recon.mkdir(parents=True)
        shutil.copy(tmp_path / "lone.nc", folder.recon_of(0))
        measure_run(folder.path, progress=False)


def _tiny(folder, name, *, voxel_size_a=40.0, shape=(3, 32, 32)):
    _write_mrc(folder / f"{name}.mrc", np.ones(shape, np.float32), voxel_size_a=voxel_size_a)
    _write_angles(folder / f"{name}.rawtlt", np.linspace(-20, 20, shape[0]))


HEADER = "stack,angles,pt_time_s,temperature_C\n"


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ("", "empty manifest (a header row"),
        ("# only a comment\n" + HEADER, "empty manifest: no row after the header"),
        ("stack,angles,pt_time_s\na.mrc,a.rawtlt,0\n", "column temperature_C: missing"),
        (HEADER.replace("\n", ",colour\n") + "a.mrc,a.rawtlt,0,20,red\n", "column colour: unknown column"),
        (HEADER + "nope.mrc,a.rawtlt,0,20\n", "row 1, column stack: no such file nope.mrc"),
        (HEADER + "a.mrc,nope.rawtlt,0,20\n", "row 1, column angles: no such file nope.rawtlt"),
        (HEADER + "lone.mrc,,0,20\n", "row 1, column stack: "),
        (HEADER + "a.mrc,a.rawtlt,0,hot\n", "row 1, column temperature_C: 'hot' is not a number"),
        (HEADER + "a.mrc,a.rawtlt,0,20\nb.mrc,b.rawtlt,0,20\n", "row 2, column pt_time_s: 0 s is not after 0 s"),
        (HEADER + "a.mrc,a.rawtlt,5,20\nb.mrc,b.rawtlt,2,20\n", "row 2, column pt_time_s: 2 s is not after 5 s"),
        (HEADER + "a.mrc,a.rawtlt,0,20\ncoarse.mrc,a.rawtlt,5,20\n", "row 2, column stack: pixel size 5 nm differs"),
        (HEADER.replace("\n", ",pixel_size_nm\n") + "a.mrc,a.rawtlt,0,20,4\nb.mrc,b.rawtlt,5,20,4.5\n",
         "row 2, column pixel_size_nm: pixel size 4.5 nm differs"),
        (HEADER + "a.mrc,a.rawtlt,0,20\nwide.mrc,wide.rawtlt,5,20\n", "row 2, column stack: images of 33 x 32 px"),
        (HEADER + "a.mrc,a.rawtlt,0,20\nbroken.mrc,a.rawtlt,5,20\n", "row 2, column stack: "),
        (HEADER.replace("\n", ",reference\n") + "a.mrc,a.rawtlt,0,20,wide.mrc\n", "row 1, column reference: images"),
    ],
)
def test_a_manifest_error_is_one_line_exit_2_and_no_file(tmp_path, capsys, table, match):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a", "b"):
        _tiny(data, name)
    _tiny(data, "coarse", voxel_size_a=50.0)
    _tiny(data, "wide", shape=(3, 32, 33))
    _write_mrc(data / "lone.mrc", np.ones((3, 32, 32), np.float32), voxel_size_a=40.0)  # no angles anywhere
    (data / "broken.mrc").write_bytes(b"not an MRC file" * 100)
    (data / "manifest.csv").write_text(table)
    before = sorted(tmp_path.rglob("*"))
    assert main(["import", str(data / "manifest.csv"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sinter4d import: error: ") and match in err[0], err
    assert str(data / "manifest.csv") in err[0]
    assert sorted(tmp_path.rglob("*")) == before


def test_an_existing_run_folder_is_refused_and_kept(tmp_path):
    _tiny(tmp_path, "a")
    (tmp_path / "m.csv").write_text(HEADER + "a.mrc,a.rawtlt,0,20\n")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="exists and is not empty"):
        import_manifest(tmp_path / "m.csv", tmp_path / "run")
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["keep.txt"]
    run = import_manifest(tmp_path / "m.csv", tmp_path / "new")  # the same manifest into a new folder works
    assert [p.name for p in run.tilt_files()] == ["t01.nc"] and not list(tmp_path.glob(".new*"))


def test_a_simulated_folder_is_not_run_as_imported(tmp_path, capsys):
    run = RunFolder(tmp_path / "simulated")
    run.tilts.mkdir(parents=True)
    run.tilt(0).write_bytes(b"")
    assert run.imported  # tilt series, neither spec nor truth: imported by another way
    run.spec.write_text("{}")
    assert not run.imported
    assert main(["run", str(run.path), "-q"]) == 2
    assert "not an imported run folder" in capsys.readouterr().err
