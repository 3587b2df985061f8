"""The report's calibration section and its figure, on a calibration.nc fitted to synthetic readings of a known model."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import xarray as xr

from _readings import synthetic_readings
from sinter4d.calibration import calibration_dataset
from sinter4d.figures.calibration import READING_CLASSES, reading_class, reading_curves_figure
from sinter4d.io.netcdf import write_dataset_atomic
from sinter4d.report import build_report
from sinter4d.report.page import report_sections
from sinter4d.runfolder import RunFolder

SEEDS = [1001, 1002, 1003]


@pytest.fixture(scope="module")
def calibration() -> xr.Dataset:
    provenance = {"source": "synthetic", "twin_seeds": SEEDS, "twins_failed": [], "twin_seconds": 754.0,
                  "wall_seconds": 401.0, "acquisition": {"dose_e_per_nm2": 236.6, "pixel_size_nm": 1.04, "bin": 4,
                                                         "tilt_min_deg": -70.0, "tilt_max_deg": 70.0,
                                                         "tilt_step_deg": 2.0}}
    return calibration_dataset([synthetic_readings(seed=5)], provenance)


def _sections(text: str) -> dict[str, str]:
    return {p.split('"', 1)[0]: p for p in re.split(r'<section id="', text)[1:]}


def test_reading_classes_of_known_orientations():
    got = reading_class([10.0, 80.0, 10.0, 80.0, 10.0], [2.0, 2.0, 60.0, 5.0, 31.0], [0, 0, 1, 1, 0])
    assert list(got) == ["along", "across", "out_of_plane", "bridged", "out_of_plane"]


def test_the_figure_draws_each_class_and_the_model_that_made_the_readings(calibration):
    fig = reading_curves_figure(calibration)
    axes = fig.axes
    assert len(axes) == 2 * len(READING_CLASSES)
    table = synthetic_readings(seed=5)
    classes = reading_class(table["in_plane_deg"], table["elevation_deg"], table["bridged"])
    for c, (key, _) in enumerate(READING_CLASSES):
        sel = classes == key
        for ax in (axes[c], axes[len(READING_CLASSES) + c]):  # neck row, distance row
            assert sum(len(coll.get_offsets()) for coll in ax.collections[:2]) == sel.sum()
        # the neck's line is the generating model at the class's median orientation (tests/_readings.py)
        a, e = np.radians(np.median(table["in_plane_deg"][sel])), np.radians(np.median(table["elevation_deg"][sel]))
        x, y = axes[c].lines[0].get_data()
        expected = np.sqrt(x**2 + 200 + 80 * np.cos(2 * a) + 150 * np.sin(e) ** 2 - 100 * (key == "bridged"))
        np.testing.assert_allclose(y, expected, atol=1.0)
        # the distance row shows measured - true: 1 nm + 0.5 cos 2α
        _, d = axes[len(READING_CLASSES) + c].lines[0].get_data()
        np.testing.assert_allclose(d, 1.0 + 0.5 * np.cos(2 * a), atol=0.15)


def test_the_section_appears_iff_the_run_holds_a_calibration(tmp_path, calibration):
    run = RunFolder(tmp_path)
    run.spec.write_text(json.dumps({"name": "bare"}))
    assert "calibration" not in dict(report_sections(run))
    assert 'id="calibration"' not in build_report(run.path, progress=False).read_text(encoding="utf-8")
    write_dataset_atomic(calibration, run.calibration)
    titles = dict(report_sections(run))
    assert titles["calibration"] == "7. Calibration" and titles["fit"] == "8. Fit"
    sec = _sections(build_report(run.path, progress=False).read_text(encoding="utf-8"))["calibration"]
    assert "3 (seeds 1001, 1002, 1003)" in sec and "12:34 min" in sec  # the twins, their summed stage time
    assert sec.count("<img ") == 1 and "not available: errors before and after correction (no validation.nc)" in sec
    gain = float(calibration["coefficient"].sel(metric="neck_radius_nm", term="true"))
    assert f"{gain:.4g} ± " in sec
    # with a validation holding the errors after correction, the before/after table
    val = xr.Dataset({f"{v}_{s}_abs_error": ((), float(k)) for k, (v, s) in enumerate(
        (v, s) for v in ("neck_radius_nm", "neck_radius_calibrated_nm") for s in ("median", "max"))})
    val["neck_radius_nm"] = ((), 0.0, {"units": "nm"})
    write_dataset_atomic(val, run.validation)
    sec = _sections(build_report(run.path, progress=False).read_text(encoding="utf-8"))["calibration"]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", sec.split("Errors before and after")[1])
    assert cells == ["neck_radius_nm", "nm", "0", "1", "2", "3"]


def test_a_choice_of_settings_shows_the_chosen_settings_and_the_candidates_best_first(tmp_path, calibration):
    from sinter4d.calibration import choice_variables

    cands = [{"binarize_level": 0.85}, {"binarize_level": 1.0}, {"binarize_level": 1.15}]
    scores = [{"score": s, "neck_ratio_error": s - 0.01, "distance_ratio_error": 0.01, "unread": 0.0}
              for s in (0.116, 0.096, 0.081)]
    cal = calibration.assign(choice_variables(cands, scores, 2))
    cal.attrs.update(chosen_settings=json.dumps(cands[2]), choosing_twin_seeds=json.dumps([2001, 2002]))
    run = RunFolder(tmp_path)
    run.spec.write_text(json.dumps({"name": "bare"}))
    write_dataset_atomic(cal, run.calibration)
    sec = _sections(build_report(run.path, progress=False).read_text(encoding="utf-8"))["calibration"]
    assert "binarize_level = 1.15" in sec and "2 (seeds 2001, 2002)" in sec
    assert "each twin" not in sec  # no twin spec recorded
    table = sec.split("Settings chosen on the choosing twins")[1].split("</table>")[0]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", table)
    assert cells[:7] == ["1.15", "0.081", "0.071", "0.01", "0", "chosen", "1"]


def test_twins_cut_from_a_larger_field_say_so(tmp_path, calibration, root):
    from sinter4d.calibration import acquisition_of_spec, twin_specs
    from sinter4d.experiments import load_spec

    paper = json.loads(load_spec(root / "experiments" / "paper_cu_350c.toml").to_json())
    cal = calibration.copy()
    cal.attrs.update(acquisition=json.dumps(acquisition_of_spec(paper)),
                     twin_spec=json.dumps(twin_specs(paper, 1, image_pixels=512, n_series=1)[0]))
    run = RunFolder(tmp_path)
    run.spec.write_text(json.dumps({"name": "bare"}))
    write_dataset_atomic(cal, run.calibration)
    sec = _sections(build_report(run.path, progress=False).read_text(encoding="utf-8"))["calibration"]
    assert "512 px a side (cut from 1024), 3 cores, series at 41 s" in sec
