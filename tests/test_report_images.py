"""Sections 2-4 of the report: BM3D of the tilt montage as the pipeline ran it."""

import json
import shutil

import pytest
import xarray as xr

from sinter4d.pipeline.settings import PipelineSpec
from sinter4d.report.images import denoise_settings
from sinter4d.runfolder import RunFolder


def test_denoise_settings_are_the_reconstructions(tiny_run):
    run = RunFolder(tiny_run)
    spec = json.loads(run.spec.read_text())["pipeline"]
    with xr.open_dataset(run.recon_of(0)) as recon:
        attrs = dict(recon.attrs)
    settings, level, how = denoise_settings(run, run.tilt(0))
    assert (settings.psd, settings.bm3d_profile, settings.bm3d_stages) == (
        attrs["denoise_psd"], attrs["denoise_profile"], attrs["denoise_stages"])
    assert settings.anscombe == spec["anscombe"]
    assert level == pytest.approx(attrs["denoise_strength"] * attrs["denoise_sigma_psd"])
    assert "as used by the reconstruction" in how


def test_without_a_reconstruction_the_runs_settings_give_the_level(tiny_run, tmp_path):
    run = RunFolder(shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("fit", "recon")))
    spec = json.loads(run.spec.read_text())["pipeline"]
    settings, level, how = denoise_settings(run, run.tilt(0))
    assert settings.bm3d_profile == spec["bm3d_profile"]
    assert level == pytest.approx(spec["denoise_strength"] * spec["sigma_psd"])
    assert "from the run's settings" in how
    run.spec.unlink()
    settings, level, how = denoise_settings(run, run.tilt(0))
    assert settings == PipelineSpec() and level is None and "estimated" in how
