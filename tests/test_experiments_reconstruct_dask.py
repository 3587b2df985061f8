"""A run's tilt series on Dask: the same files as in-process, resume, the chain hook, a bad file at the command line."""

import json
import logging
import shutil

import numpy as np
import pytest
import xarray as xr

from _sweeps import TINY_BASE

from sinter4d.cli import main
from sinter4d.experiments.cluster import WORKER_ENV, captured_logs, replay_logs
from sinter4d.experiments.reconstruct import pipeline_settings, reconstruct_path
from sinter4d.experiments.reconstruct_dask import reconstruct_series_dask
from sinter4d.io.netcdf import write_dataset_atomic
from sinter4d.runfolder import RunFolder

#: Attributes of a reconstruction file that differ between two runs of the same series: wall times, the input's path.
VARYING = ("seconds_", "source")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, root):
    """The sweeps' tiny spec simulated once (3 series of 64² px, 9 tilts, 10 reference frames): (spec, run)."""
    folder = tmp_path_factory.mktemp("dask_recon")
    spec = folder / "tiny.toml"
    spec.write_text(TINY_BASE.format(root=root))
    assert main(["run", str(spec), "--out", str(folder / "run"), "--stages", "simulate", "-q"]) == 0
    return spec, folder / "run"


@pytest.fixture(scope="module")
def scheduler():
    """The address of a LocalCluster of two single-threaded workers, shared by this module's tests."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, env=dict(WORKER_ENV),
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        yield cluster.scheduler_address


def _copy(run, folder, name):
    target = folder / name
    shutil.copytree(run, target)
    return target


@pytest.fixture(scope="module")
def on_dask(tiny, scheduler, tmp_path_factory):
    """The tiny run reconstructed by ``sinter4d run SPEC --scheduler ADDR`` (read-only)."""
    spec, run = tiny
    there = _copy(run, tmp_path_factory.mktemp("on_dask"), "run")
    argv = ["run", str(spec), "--out", str(there), "--stages", "simulate,reconstruct", "--scheduler", scheduler, "-q"]
    assert main(argv) == 0  # simulate skipped (its outputs exist), reconstruct on the two workers
    return there


def _same(a, b):
    """Two reconstruction files hold the same arrays and attributes (:data:`VARYING` aside)."""
    x, y = (xr.open_dataset(p).load() for p in (a, b))
    for ds in (x, y):
        ds.attrs = {k: v for k, v in ds.attrs.items() if not k.startswith(VARYING)}
    xr.testing.assert_identical(x, y)


@pytest.mark.timeout(240)
def test_series_on_two_workers_are_the_files_of_the_run_in_this_process(tiny, on_dask, tmp_path):
    here = _copy(tiny[1], tmp_path, "here")
    reconstruct_path(here, progress=False)  # in this process, BM3D on every core (the default)
    files = sorted(p.name for p in RunFolder(on_dask).recon.glob("t*.*"))
    assert files == sorted(p.name for p in RunFolder(here).recon.glob("t*.*")) == [
        "t01.mrc", "t01.nc", "t02.mrc", "t02.nc", "t03.mrc", "t03.nc"]
    for name in ("t01.nc", "t02.nc", "t03.nc"):
        _same(RunFolder(here).recon / name, RunFolder(on_dask).recon / name)  # bit-identical arrays
    with xr.open_dataset(RunFolder(on_dask).recon / "t01.nc") as ds:
        assert np.isfinite(ds.attrs["denoise_sigma_psd"])  # the run's level, chosen in a task of its own
    record = json.loads(RunFolder(on_dask).record.read_text())
    assert record["stages"]["reconstruct"]["status"] == "done"
    assert "t02: " in RunFolder(on_dask).log.read_text()  # each series' time and memory in the run's log


@pytest.mark.timeout(240)
def test_a_finished_series_is_kept_and_the_others_run_on_a_local_cluster(on_dask, tmp_path):
    there = _copy(on_dask, tmp_path, "there")
    recon = RunFolder(there).recon
    kept = {n: (recon / n).stat().st_mtime_ns for n in ("t01.nc", "t03.nc")}
    for f in recon.glob("t02.*"):
        f.unlink()
    assert main(["reconstruct", str(there), "--workers", "2", "-q"]) == 0
    assert {n: (recon / n).stat().st_mtime_ns for n in kept} == kept
    assert (recon / "t02.mrc").is_file()
    _same(recon / "t02.nc", RunFolder(on_dask).recon / "t02.nc")  # the run's level read back from t01


@pytest.mark.timeout(240)
def test_chained_series_start_after_the_previous_one_and_receive_it(tiny, scheduler, tmp_path):
    _, run = tiny
    there = _copy(run, tmp_path, "there")
    folder = RunFolder(there)
    series = [(t, folder.recon / t.name) for t in folder.tilt_files()]
    settings = pipeline_settings(there, {"method": "fbp", "denoise": False})
    write_dataset_atomic(xr.Dataset(attrs={"method": "fbp"}), series[0][1])  # t01 done before
    results = {r["series"]: r for r in reconstruct_series_dask(series, settings, scheduler=scheduler,
                                                                after_previous=True, mrc=(), progress=False)}
    assert sorted(results) == ["t02", "t03"]
    assert results["t02"]["previous"] == str(series[0][1])  # the finished series' file
    assert results["t03"]["previous"] == str(series[1][1])  # the task before it, passed by Dask
    assert results["t03"]["started"] >= results["t02"]["finished"]
    assert all(r["peak_rss_bytes"] > 10e6 and r["cpu_seconds"] > 0 for r in results.values())


@pytest.mark.timeout(240)
def test_a_warm_run_on_dask_is_the_warm_run_in_this_process(tiny, scheduler, tmp_path):
    """With warm_start the dispatcher chains the series and each starts from the file before it:
    the same files as the in-process loop, and each series after the first did start warm."""
    _, run = tiny
    warm = {"warm_start": True, "warm_iterations": 5}
    here, there = _copy(run, tmp_path, "here"), _copy(run, tmp_path, "there")
    reconstruct_path(here, overrides=warm, progress=False, mrc=())
    reconstruct_path(there, overrides=warm, scheduler=scheduler, progress=False, mrc=())
    for name in ("t01.nc", "t02.nc", "t03.nc"):
        _same(RunFolder(here).recon / name, RunFolder(there).recon / name)
    started_warm = []
    for name in ("t01.nc", "t02.nc", "t03.nc"):
        with xr.open_dataset(RunFolder(there).recon / name) as ds:
            started_warm.append("warm_start_shift_px" in ds.attrs)
    assert started_warm == [False, True, True]


@pytest.mark.timeout(240)
def test_a_bad_tilt_file_on_a_scheduler_is_one_line_and_no_file(tiny, scheduler, tmp_path, capsys):
    _, run = tiny
    there = _copy(run, tmp_path, "there")
    bad = RunFolder(there).tilts / "t02.nc"
    ds = xr.open_dataset(bad).load()
    ds["counts"][3, 10, 10] = np.nan
    write_dataset_atomic(ds, bad)
    assert main(["reconstruct", str(there), "--scheduler", scheduler, "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "t02.nc" in err[0] and "NaN" in err[0], err
    recon = RunFolder(there).recon
    assert not list(recon.glob("t02*")) and not list(recon.glob(".t02*"))


def test_a_tasks_log_records_stay_off_the_worker_console_and_reach_the_client(caplog):
    logger = logging.getLogger("sinter4d.pipeline.chain")
    with caplog.at_level(logging.INFO, logger="sinter4d"):
        with captured_logs() as records:
            logger.info("denoised %d images", 9)
            logger.debug("not kept")
        assert not caplog.records  # the package's handlers did not see it in the task
        replay_logs(records)
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("sinter4d.pipeline.chain", logging.INFO, "denoised 9 images")]
