"""Sweep specs: validation of the card and of each swept value, grid expansion."""

import pytest
from _sweeps import BAD_CELL
from _sweeps import write_sweep as _write

from sinter4d.errors import SpecError
from sinter4d.experiments.sweep_spec import load_sweep_spec


def test_shipped_sweep_specs_expand(root):
    dose = load_sweep_spec(root / "experiments" / "dose_sweep.toml")
    assert dose.dims == ("dose_e_per_nm2",)
    assert [c.spec.acquisition.dose_e_per_nm2 for c in dose.cells()] == [25, 80, 250, 800, 2500]
    tilt = load_sweep_spec(root / "experiments" / "tilt_sweep.toml")
    assert tilt.dims == ("tilt_range_deg", "tilt_step_deg") and tilt.shape == (3, 3)
    cells = tilt.cells()
    assert all(c.error is None for c in cells)
    for c in cells + dose.cells():
        assert c.spec.seed == tilt.base_spec.seed  # the same specimen in every cell
    assert [len(c.spec.acquisition.angles_deg) for c in cells] == [61, 31, 13, 101, 51, 21, 141, 71, 29]


def test_grid_expansion(tmp_path, root):
    sweep = load_sweep_spec(_write(tmp_path, root))
    cells = sweep.cells()
    assert [c.index for c in cells] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert cells[2].name == "tilt_range_deg-45__tilt_step_deg-10"
    acq = cells[2].spec.acquisition
    assert (acq.tilt_min_deg, acq.tilt_max_deg, acq.tilt_step_deg) == (-45.0, 45.0, 10.0)
    assert cells[3].spec.acquisition.angles_deg.size == 7
    bad = cells[1]
    assert bad.name == BAD_CELL and bad.spec is None
    assert "tilt_step_deg must divide" in bad.error and BAD_CELL in bad.error


def test_a_switch_of_a_nested_table_is_swept_and_named_by_its_table(root):
    sweep = load_sweep_spec(root / "experiments" / "ablation_sweep.toml")
    assert sweep.dims == ("oversample", "probe_enabled", "stage_enabled", "detector_enabled")
    assert sweep.shape == (2, 2, 2, 2)
    cells = sweep.cells()
    assert all(c.error is None for c in cells)
    last = cells[-1].spec.acquisition
    assert (last.oversample, last.probe.enabled, last.stage.enabled, last.detector.enabled) == (2, True, True, True)
    first = cells[0].spec.acquisition
    assert (first.oversample, first.probe.enabled, first.stage.enabled, first.detector.enabled) == (1, False, False, False)
    assert cells[1].name == "oversample-1__probe_enabled-false__stage_enabled-false__detector_enabled-true"


def test_unquoted_dotted_keys_are_the_same_setting(tmp_path, root):
    body = 'base = "base.toml"\n[sweep]\nacquisition.dose_e_per_nm2 = [25, 2500]\n'
    sweep = load_sweep_spec(_write(tmp_path, root, body))
    assert sweep.keys == ("acquisition.dose_e_per_nm2",)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ('base = "base.toml"\ncolour = 1\n[sweep]\n"seed" = [1, 2]', r"colour: unknown key"),
        ('base = "base.toml"\n[sweep]\n"acquisition.dose" = [1]', r"sweep\.acquisition\.dose: unknown setting"),
        ('base = "base.toml"\n[sweep]\n"acquisition.probe.colour" = [1]', r"acquisition\.probe\.colour: unknown setting"),
        ('base = "base.toml"\n[sweep]\n"acquisition.probe" = [1]', r"acquisition\.probe: is a section"),
        ('base = "base.toml"\n[sweep]\n"acquisition.probe.enabled" = ["yes"]', r"probe\.enabled\[0\]"),
        ('base = "base.toml"\n[sweep]\n"acquisition.dose_e_per_nm2" = [25, -1]',
         r"sweep\.acquisition\.dose_e_per_nm2\[1\]: .*greater than 0"),
        ('base = "base.toml"\n[sweep]\n"acquisition.bin" = ["four"]', r"sweep\.acquisition\.bin\[0\]"),
        ('base = "base.toml"\n[sweep]\n"acquisition.bin" = 4', r"sweep\.acquisition\.bin: must be a non-empty list"),
        ('base = "base.toml"\n[sweep]\n"acquisition.tilt_range_deg" = [95]', r"tilt_range_deg\[0\]: .*90"),
        ('base = "nowhere.toml"\n[sweep]\n"seed" = [1]', r"base: no such experiment spec"),
        ('[sweep]\n"seed" = [1]', r"base: missing key"),
        ('base = "base.toml"\n[sweep]', r"sweep: names no setting"),
    ],
)
def test_bad_sweep_spec_is_one_line_naming_the_key(tmp_path, root, body, match):
    with pytest.raises(SpecError, match=match) as info:
        load_sweep_spec(_write(tmp_path, root, body))
    assert "\n" not in str(info.value) and str(tmp_path / "sweep.toml") in str(info.value)
