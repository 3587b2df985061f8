"""The calibrate stage of ``sinter4d run``: turned on by ``[calibration]``, applied by measure, resumable, forced.

The twins themselves (``calibrate_run``) are replaced by a stand-in that
writes a ``calibration.nc`` fitted to synthetic readings of a known reading
model (``tests/_readings.py``); everything else is the real runner on a copy
of the session's tiny run (or a folder that looks imported).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import xarray as xr

from _readings import synthetic_readings
from sinter4d.calibration import calibration_dataset, twin_specs
from sinter4d.experiments import calibrate as calibrate_module
from sinter4d.experiments import parse_spec, run_experiment, run_imported
from sinter4d.io.netcdf import write_dataset_atomic
from sinter4d.runfolder import SWEEP_CELL_STAGES, RunFolder


@pytest.fixture
def twins(monkeypatch):
    """Replace the twins with a synthetic calibration; record each call and whether old twins were still there."""
    calls = []

    def fake(source, out, *, n_twins, choose=None, **kwargs):
        run = RunFolder(source)
        calls.append({"source": run.path, "out": out, "n_twins": n_twins,
                      "old_twins": run.calibration_twins.path.exists()})
        if kwargs.get("twin_pixels") is not None:  # a cut field: recorded with the twins' series
            calls[-1]["twin_field"] = (kwargs["twin_pixels"], kwargs.get("twin_series"))
        if choose is not None:  # a choice card: the last value of each grid "wins"
            calls[-1]["choose"] = choose
        run.calibration_twins.cells.mkdir(parents=True, exist_ok=True)
        provenance = {"source": str(run.path), "twin_seeds": list(range(1001, 1001 + n_twins))}
        if choose is not None:
            provenance["chosen_settings"] = {key: values[-1] for key, values in choose.grid.items()}
        cal = calibration_dataset([synthetic_readings(seed=3)], provenance)
        return write_dataset_atomic(cal, out)

    monkeypatch.setattr(calibrate_module, "calibrate_run", fake)
    return calls


def _calibrated_copy(tiny_run, to, twins=3) -> tuple[dict, RunFolder]:
    """A copy of the tiny run made with [calibration] on, killed after the reconstruction."""
    run = RunFolder(shutil.copytree(tiny_run, to, ignore=shutil.ignore_patterns("fit")))
    spec = json.loads(run.spec.read_text())
    spec["calibration"] = {"enabled": True, "twins": twins}
    run.spec.write_text(json.dumps(spec))
    for path in (run.metrics, run.metrics_csv, run.metrics_fig8, run.metrics_fig9a, run.validation,
                 run.validation_fig8):
        path.unlink()
    return spec, run


def test_the_stage_calibrates_and_measure_applies_it(tiny_run, tmp_path, twins):
    spec, run = _calibrated_copy(tiny_run, tmp_path / "run")
    stages = ("simulate", "calibrate", "reconstruct", "measure", "validate")
    result = run_experiment(parse_spec(spec), run.path, stages=stages, progress=False, n_jobs=1)
    status = {s: e["status"] for s, e in result.stages.items()}
    assert status == {"simulate": "skipped", "calibrate": "done", "reconstruct": "skipped", "measure": "done",
                      "validate": "done"}  # without a choice card the reconstructions stand
    assert twins == [{"source": run.path, "out": run.calibration, "n_twins": 3, "old_twins": False}]
    with xr.open_dataset(run.metrics) as m, xr.open_dataset(run.calibration) as cal:
        assert json.loads(m.attrs["calibration"])["twin_seeds"] == cal.attrs["twin_seeds"]
        measured, calibrated = m["neck_radius_nm"].values, m["neck_radius_calibrated_nm"].values
    seen = measured > 0
    assert seen.any() and np.all(calibrated[seen] < measured[seen])  # the synthetic model reads every neck wide
    with xr.open_dataset(run.validation) as val:
        assert np.isfinite(float(val["neck_radius_calibrated_nm_median_abs_error"]))
    # a rerun skips the calibration; --force redoes it, its twins removed first
    again = run_experiment(parse_spec(spec), run.path, stages=("calibrate", "measure"), progress=False)
    assert {e["status"] for e in again.stages.values()} == {"skipped"} and len(twins) == 1
    forced = run_experiment(parse_spec(spec), run.path, stages=("calibrate",), force=True, progress=False)
    assert forced.stages["calibrate"]["status"] == "done" and twins[1]["old_twins"] is False
    # metrics older than the new calibration: measure is redone (the calibration applied anew)
    stamp = run.metrics.stat().st_mtime_ns
    assert run_experiment(parse_spec(spec), run.path, stages=("measure",), progress=False).stages["measure"][
        "status"] == "done"
    assert run.metrics.stat().st_mtime_ns > stamp


def test_off_by_default_the_stage_is_not_run_and_measure_is_as_before(tiny_run, tmp_path, twins):
    run = RunFolder(shutil.copytree(tiny_run, tmp_path / "run", ignore=shutil.ignore_patterns("fit")))
    spec = parse_spec(json.loads(run.spec.read_text()))
    assert not spec.calibration.enabled
    for path in (run.metrics, run.metrics_fig8):
        path.unlink()
    result = run_experiment(spec, run.path, stages=("calibrate", "measure"), progress=False)
    assert result.stages["calibrate"]["status"] == "not run" and "calibration is off" in result.stages["calibrate"][
        "reason"]
    assert not twins and not run.calibration.exists()
    with xr.open_dataset(run.metrics) as m:
        assert "neck_radius_calibrated_nm" not in m and "calibration" not in m.attrs


def test_an_imported_run_takes_the_calibration_from_its_settings(tmp_path, twins):
    run = RunFolder(tmp_path / "imported")
    run.tilts.mkdir(parents=True)
    run.manifest.write_text("stack,angles,pt_time_s,temperature_C\n")
    run.tilt(0).write_text("")  # the stand-in reads no tilt series
    card = tmp_path / "settings.toml"
    card.write_text("[calibration]\nenabled = true\ntwins = 4\ntwin_pixels = 512\ntwin_series = 1\n")
    result = run_imported(run.path, settings=card, stages=("calibrate",), progress=False)
    assert result.stages["calibrate"]["status"] == "done" and twins[0]["n_twins"] == 4
    assert twins[0]["twin_field"] == (512, 1)  # the card's twin field reaches the twins
    assert json.loads(run.settings.read_text())["calibration"] == {"enabled": True, "twins": 4, "choose": None,
                                                                  "twin_pixels": 512, "twin_series": 1}
    # a rerun without --spec keeps the recorded settings: the calibration is there, skipped
    again = run_imported(run.path, stages=("calibrate",), progress=False)
    assert again.stages["calibrate"]["status"] == "skipped" and len(twins) == 1
    # settings that turn it off: not run
    card.write_text("[calibration]\nenabled = false\n")
    off = run_imported(run.path, settings=card, stages=("calibrate",), force=True, progress=False)
    assert off.stages["calibrate"]["status"] == "not run"


def test_twins_and_sweep_cells_never_calibrate_themselves():
    assert "calibrate" not in SWEEP_CELL_STAGES
    doc = {"name": "run", "seed": 7, "calibration": {"enabled": True, "twins": 2}}
    for twin in twin_specs(doc, 2):
        assert parse_spec(twin).calibration.enabled is False


def test_a_choice_card_sets_the_settings_the_run_is_reconstructed_with(tiny_run, tmp_path, twins):
    """``[calibration] choose``: the card (relative to the spec) reaches the calibration, and the reconstruct
    stage, which runs after it, reconstructs at the settings it chose; a rerun skips both."""
    (tmp_path / "choose.toml").write_text("[choose]\ntwins = 2\nseed_base = 1005\n"
                                          "[choose.grid]\nbinarize_level = [1.0, 1.25]\n")
    spec, run = _calibrated_copy(tiny_run, tmp_path / "run")
    spec["calibration"]["choose"] = "choose.toml"
    run.spec.write_text(json.dumps(spec))  # the run was made from this spec
    with xr.open_dataset(run.recon_files()[0]) as before:
        assert before.attrs["binarize_level"] == 1.0
    result = run_experiment(parse_spec(spec), run.path, spec_path=tmp_path / "spec.toml",
                            stages=("calibrate", "reconstruct", "measure"), progress=False, n_jobs=1)
    assert [e["status"] for e in result.stages.values()] == ["done", "done", "done"]
    assert twins[0]["choose"].grid == {"binarize_level": [1.0, 1.25]} and twins[0]["choose"].seed_base == 1005
    for path in run.recon_files():  # made again (they predated the choice), at the chosen level
        with xr.open_dataset(path) as recon:
            assert recon.attrs["binarize_level"] == 1.25
    with xr.open_dataset(run.calibration) as cal:
        assert json.loads(cal.attrs["chosen_settings"]) == {"binarize_level": 1.25}
    again = run_experiment(parse_spec(spec), run.path, spec_path=tmp_path / "spec.toml",
                           stages=("calibrate", "reconstruct"), progress=False, n_jobs=1)
    assert [e["status"] for e in again.stages.values()] == ["skipped", "skipped"] and len(twins) == 1


def test_a_missing_choice_card_is_one_line_before_any_stage_runs(tiny_run, tmp_path, twins):
    from sinter4d.errors import InputError, SpecError

    spec, run = _calibrated_copy(tiny_run, tmp_path / "run")
    spec["calibration"]["choose"] = "no_such_card.toml"
    run.spec.write_text(json.dumps(spec))
    record = run.record.read_text()
    with pytest.raises((InputError, SpecError), match="no_such_card.toml") as err:
        run_experiment(parse_spec(spec), run.path, spec_path=tmp_path / "spec.toml", progress=False)
    assert "\n" not in str(err.value) and not twins and run.record.read_text() == record
