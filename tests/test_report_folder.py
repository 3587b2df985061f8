"""What the report reads from a run folder: the true cores on the reconstruction's grid, settings, labels."""

import json
import shutil

import numpy as np
import pytest

from sinter4d.errors import SpecError
from sinter4d.pipeline.settings import PipelineSpec
from sinter4d.report.folder import (
    Missing,
    duration,
    first_last,
    pipeline_settings,
    read_step,
    registration_offset,
    step_label,
    truth_on_recon_grid,
)
from sinter4d.runfolder import RunFolder


def test_truth_on_the_same_grid_is_the_truth(two_spheres):
    label, coords = two_spheres
    np.testing.assert_array_equal(truth_on_recon_grid(label, coords, coords, (0.0, 0.0, 0.0)), label > 0)


def test_truth_is_shifted_by_the_offset(two_spheres):
    label, coords = two_spheres
    # the value at p is the truth's at p + offset: one voxel (4 nm) along +x moves the content one voxel to -x
    shifted = truth_on_recon_grid(label, coords, coords, (0.0, 0.0, 4.0))
    np.testing.assert_array_equal(shifted[:, :, :-1], (label > 0)[:, :, 1:])
    assert not shifted[:, :, -1].any()
    down = truth_on_recon_grid(label, coords, coords, (-8.0, 0.0, 0.0))
    np.testing.assert_array_equal(down[2:], (label > 0)[:-2])
    assert not down[:2].any()


def test_truth_on_a_taller_slab_is_padded_with_nothing(two_spheres):
    label, (z, y, x) = two_spheres
    taller = (np.arange(z.size + 4) - (z.size + 3) / 2) * 4.0
    out = truth_on_recon_grid(label, (z, y, x), (taller, y, x), (0.0, 0.0, 0.0))
    assert out.shape == (z.size + 4, y.size, x.size)
    np.testing.assert_array_equal(out[2:-2], label > 0)
    assert not out[:2].any() and not out[-2:].any()


def test_duration_and_step_label(tmp_path):
    assert duration(None) == "–" and duration(float("nan")) == "–"
    assert duration(12.34) == "12.3 s" and duration(245) == "4:05 min" and duration(3723) == "1:02:03"
    label = step_label({"pt_time_s": 5.0, "temperature_C": 370.0}, tmp_path / "t02.nc")
    assert label == "t02, processing time 5 s, 370 °C"


def test_pipeline_settings_are_the_runs(tiny_run, tmp_path):
    run = RunFolder(tiny_run)
    spec = json.loads(run.spec.read_text())
    assert pipeline_settings(run) == PipelineSpec.model_validate(spec["pipeline"])
    assert pipeline_settings(RunFolder(tmp_path)) is None
    (tmp_path / "spec.json").write_text(json.dumps({"pipeline": {"iterations": 0}}))
    with pytest.raises(SpecError, match="iterations"):
        pipeline_settings(RunFolder(tmp_path))


def test_a_step_of_the_tiny_run(tiny_run):
    run = RunFolder(tiny_run)
    paths = first_last(run)
    assert paths == [run.recon_of(0), run.recon_of(1)]
    step = read_step(run, paths[0])
    assert step.volume.shape == step.binary.shape == step.truth.shape
    assert step.binary.dtype == bool and step.truth.any()
    offset, note = registration_offset(run, step.attrs)
    assert note.startswith("registered by the offset") and offset.shape == (3,)
    # registered, the truth overlaps the binary volume well (the validation's Dice is of that order)
    overlap = 2 * (step.truth & step.binary).sum() / (step.truth.sum() + step.binary.sum())
    assert overlap > 0.7


def test_no_reconstruction_is_missing(tmp_path):
    with pytest.raises(Missing, match="no reconstruction in recon/"):
        first_last(RunFolder(tmp_path))


def test_a_step_without_its_tilt_series_has_no_truth(tiny_run, tmp_path):
    run = RunFolder(shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("fit")))
    run.tilt(0).unlink()
    step = read_step(run, run.recon_of(0))
    assert step.truth is None and step.truth_note == "no tilts/t01.nc (which holds the true volume)"
