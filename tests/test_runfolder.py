"""The run folder: step files, roles, the stage table and what makes a stage complete."""

import shutil

import pytest

from sinter4d.runfolder import (
    IMPORTED_STAGES,
    STAGE_NAMES,
    STAGES,
    SWEEP_CELL_STAGES,
    FitFolder,
    RunFolder,
    SweepFolder,
    choose_folder,
    recon_beside,
    role_label,
    stage,
    step_files,
    step_index,
    step_name,
    twins_folder,
)


def test_step_names_have_two_digits_then_more():
    assert [step_name(k) for k in (0, 8, 98, 99, 100)] == ["t01.nc", "t09.nc", "t99.nc", "t100.nc", "t101.nc"]
    with pytest.raises(ValueError, match="step"):
        step_name(-1)


@pytest.mark.parametrize(("name", "index"), [("t01.nc", 0), ("t99.nc", 98), ("t100.nc", 99), ("dir/t07.nc", 6),
                                             ("t1.nc", None), ("t01.nc.tmp", None), (".t01.nc.x.tmp", None),
                                             ("s01.nc", None), ("t01.h5", None), ("tab.nc", None)])
def test_step_index_inverts_step_name(name, index):
    assert step_index(name) == index
    if index is not None:
        assert step_name(index) == name.rsplit("/", 1)[-1]


def test_step_files_sort_by_number_and_skip_the_rest(tmp_path):
    assert step_files(tmp_path / "missing") == []
    for k in (99, 0, 98, 100, 9):
        (tmp_path / step_name(k)).write_text("")
    for other in ("notes.txt", "t1.nc", ".t02.nc.abc.tmp"):
        (tmp_path / other).write_text("")
    (tmp_path / "t03.nc").mkdir()  # a folder is not a step file
    assert [p.name for p in step_files(tmp_path)] == ["t01.nc", "t10.nc", "t99.nc", "t100.nc", "t101.nc"]


def test_roles_are_files_of_the_run_folder(tmp_path):
    run = RunFolder(str(tmp_path))
    assert run.path == tmp_path
    assert run.tilt(0) == run.tilts / "t01.nc" and run.recon_of(99) == run.recon / "t100.nc"
    assert isinstance(run.fit, FitFolder) and run.fit.posterior.parent == run.fit.path == tmp_path / "fit"
    paths = [run.spec, run.record, run.log, run.truth, run.tilts, run.recon, run.metrics, run.metrics_fig8,
             run.metrics_fig9a, run.validation, run.validation_fig8, run.fit.path, run.report, run.manifest,
             run.settings]
    assert len(set(paths)) == len(paths) and all(p.parent == tmp_path for p in paths)
    assert role_label("truth") == run.truth.name and role_label("tilts") == f"{run.tilts.name}/tNN.nc"
    assert role_label("fit") == "fit/"
    assert recon_beside(tmp_path / "series.nc") == tmp_path / "series_recon.nc"
    assert recon_beside(tmp_path / "series.nc") not in paths


def test_the_stage_table():
    assert STAGE_NAMES == ("simulate", "calibrate", "reconstruct", "measure", "validate", "fit", "report")
    assert SWEEP_CELL_STAGES == ("simulate", "reconstruct", "measure", "validate", "fit")  # no cell calibrates
    assert stage("measure") is STAGES[3]
    with pytest.raises(KeyError, match="simulate, calibrate, reconstruct"):
        stage("polish")
    written = {}
    for s in STAGES:
        for role in s.inputs:
            assert role in written, f"{s.name} reads {role} before a stage writes it"
        for role in s.outputs:
            written.setdefault(role, s.name)
    # each output is written by one stage only
    assert sum(len(s.outputs) for s in STAGES) == len(written)
    # an imported run has tilt series and no truth: it runs the stages that neither make nor read one
    truth_roles = {"truth", "validation", "validation_fig8"}
    for s in STAGES:
        assert s.needs_truth == bool(truth_roles & {*s.inputs, *s.outputs}), s.name
    assert IMPORTED_STAGES == ("calibrate", "reconstruct", "measure", "fit", "report")


def test_an_imported_run_is_told_by_its_manifest(tmp_path):
    run = RunFolder(tmp_path)
    assert not run.imported  # empty
    run.manifest.write_text("stack,angles,pt_time_s,temperature_C\n")
    assert run.imported


def test_output_paths_and_complete(tmp_path):
    run = RunFolder(tmp_path)
    simulate, reconstruct, fit, report = (stage(n) for n in ("simulate", "reconstruct", "fit", "report"))
    assert simulate.output_paths(run) == [run.truth, run.tilts]
    assert fit.output_paths(run) == [run.fit.path] and report.output_paths(run) == [run.report]
    assert not simulate.complete(run, 2)
    run.truth.write_text("")
    run.tilts.mkdir()
    run.tilt(0).write_text("")
    assert not simulate.complete(run, 2)  # one step of two
    run.tilt(1).write_text("")
    assert simulate.complete(run, 2) and not simulate.complete(run, 3)
    assert not reconstruct.complete(run, 2)
    run.recon.mkdir()
    for k in range(2):
        run.recon_of(k).write_text("")
    assert reconstruct.complete(run, 2)
    run.fit.path.mkdir()
    run.fit.chain.write_text("")
    assert not fit.complete(run, 2)  # a chain alone is a fit that did not finish
    run.fit.posterior.write_text("")
    assert fit.complete(run, 2)


def test_sweep_folder(tmp_path):
    sweep = SweepFolder(tmp_path)
    cell = sweep.cell("dose-25")
    assert isinstance(cell, RunFolder) and cell.path.parent == sweep.cells
    assert SweepFolder.cell_record(cell).parent == cell.path != SweepFolder.worker_log(cell).parent.parent
    assert len({sweep.dataset, sweep.record, sweep.log, sweep.cells}) == 4


def test_the_calibration_is_complete_without_its_twins_and_force_removes_both(tmp_path):
    run = RunFolder(tmp_path)
    calibrate = stage("calibrate")
    assert run.calibration == tmp_path / "calibration.nc"
    assert run.calibration_twins.path == tmp_path / "calibration_twins" == twins_folder(run.calibration).path
    assert run.calibration_choose.path == tmp_path / "calibration_choose" == choose_folder(run.calibration).path
    assert calibrate.output_paths(run) == [run.calibration, run.calibration_twins.path, run.calibration_choose.path]
    assert role_label("calibration") == "calibration.nc" and role_label("calibration_twins") == "calibration_twins/"
    assert role_label("calibration_choose") == "calibration_choose/"
    run.calibration_twins.cells.mkdir(parents=True)
    assert not calibrate.complete(run, 2)  # twins alone: the model was not written
    run.calibration.write_text("")
    shutil.rmtree(run.calibration_twins.path)
    assert calibrate.complete(run, 2)  # the twins are working files: the calibration stands without them
