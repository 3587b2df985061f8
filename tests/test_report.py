"""The run report of a run folder the real producers made (the ``tiny_run`` fixture), and of partial runs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from sinter4d import InputError
from sinter4d.report import SECTIONS, build_report
from sinter4d.report.page import report_sections
from sinter4d.report import html as hp
from sinter4d.runfolder import STAGE_NAMES, RunFolder


def _sections(text: str) -> dict[str, str]:
    """Body of each section by anchor."""
    parts = re.split(r'<section id="', text)[1:]
    return {p.split('"', 1)[0]: p for p in parts}


def _cells(html: str) -> list[str]:
    """The text of every table cell, in order."""
    return re.findall(r"<td[^>]*>(.*?)</td>", html, flags=re.S)


@pytest.fixture(scope="module")
def full_run(tiny_run, tmp_path_factory) -> RunFolder:
    """A copy of the tiny run (the report writes into its folder)."""
    return RunFolder(shutil.copytree(tiny_run, tmp_path_factory.mktemp("report") / "run"))


@pytest.fixture(scope="module")
def full_html(full_run) -> str:
    return build_report(full_run.path, progress=False).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def sec(full_html) -> dict[str, str]:
    return _sections(full_html)


# --------------------------------------------------------------------------
# the whole page
# --------------------------------------------------------------------------


def test_report_is_written_atomically(full_run, full_html):
    assert full_run.report.is_file()
    assert full_html.startswith("<!DOCTYPE html>")
    assert not [p for p in full_run.path.iterdir() if p.name.endswith(".tmp")]


def test_report_is_self_contained(full_html):
    assert 'src="http' not in full_html and "href=\"http" not in full_html
    assert "<script" not in full_html and "<link" not in full_html
    sources = re.findall(r'<img [^>]*src="([^"]*)"', full_html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)


def test_report_has_every_section_and_image(full_run, full_html):
    shown = report_sections(full_run)
    assert [a for a, _ in shown] == [a for a, _ in SECTIONS if a != "calibration"]  # the run holds no calibration
    for anchor, title in shown:
        assert f'<section id="{anchor}">' in full_html
        assert f"<h2>{title}</h2>" in full_html.replace("&#x27;", "'")
    # montage 1, orthogonal slices 2 (first and last step), surfaces 1, metric PNGs 3, fit PNGs 2
    assert full_html.count("<img ") == 9
    assert "not available" not in full_html


# --------------------------------------------------------------------------
# the numbers shown are those of the run's files
# --------------------------------------------------------------------------


def test_metadata_shows_the_spec_and_the_record(full_run, sec):
    spec = json.loads(full_run.spec.read_text())
    record = json.loads(full_run.record.read_text())
    meta = sec["metadata"]
    assert f"<td>{hp.esc(spec['description'])}</td>" in meta  # escaped: "two cores &lt;tiny&gt;"
    assert "&lt;tiny&gt;" in meta and f"<td>{spec['seed']}</td>" in meta
    assert f"<td>{hp.esc(record['started'])}</td>" in meta
    cells = _cells(meta)
    for stage, entry in record["stages"].items():
        k = cells.index(stage)
        assert entry["status"] in cells[k + 1]
    assert [s for s in STAGE_NAMES if s in record["stages"]] == [c for c in cells if c in record["stages"]][
        : len(record["stages"])]
    assert f"<td>{record['versions']['numpy']}</td>" in meta
    last_line = full_run.log.read_text().splitlines()[-1]
    assert hp.esc(last_line) in meta


def test_key_settings_are_those_the_run_used(full_run, sec):
    spec = json.loads(full_run.spec.read_text())
    pipe = spec["pipeline"]
    with xr.open_dataset(full_run.recon_files()[0]) as recon:
        attrs = dict(recon.attrs)
    with xr.open_dataset(full_run.tilt_files()[0]) as tilts:
        angles = tilts["tilt_angle"].values
        ny, nx = tilts["counts"].shape[1:]
        pixel = tilts.attrs["pixel_size_nm"]
    meta = sec["metadata"]
    assert f"<td>{pipe['method']}, {pipe['iterations']} iterations</td>" in meta
    sigma = attrs["denoise_sigma_psd"]
    assert (f"BM3D, PSD {pipe['psd']}, profile {pipe['bm3d_profile']}, stages {pipe['bm3d_stages']}, "
            f"σ_psd = {sigma:.3g} × strength {pipe['denoise_strength']:g}") in meta
    assert f"{angles.min():+.0f}° … {angles.max():+.0f}° in 10° steps ({angles.size} images)" in meta
    assert f"<td>{ny} × {nx}</td>" in meta
    assert f"<td>{pixel:g} (" in meta
    assert f"<td>{attrs['axis_offset_px']:+.2f} (true " in meta
    assert "<td>2 / 2</td>" in meta


def test_a_denoise_box_is_named_with_the_denoising():
    from sinter4d.report.metadata import _pipeline_settings

    attrs = {"denoise": 1, "denoise_psd": "g4", "denoise_profile": "lc", "denoise_stages": "hard",
             "denoise_sigma_psd": 20.0, "denoise_strength": 0.35}
    plain = _pipeline_settings(attrs, {}, None)["denoising"]
    boxed = _pipeline_settings({**attrs, "denoise_box": np.array([49, 202, 62, 198])}, {}, None)["denoising"]
    assert plain == "BM3D, PSD g4, profile lc, stages hard, σ_psd = 20 × strength 0.35"
    assert boxed == plain + ", on the specimen's box (rows 49–201, columns 62–197)"


def test_tilt_series_is_denoised_at_the_reconstructions_level(full_run, sec):
    with xr.open_dataset(full_run.recon_files()[0]) as recon:
        level = recon.attrs["denoise_strength"] * recon.attrs["denoise_sigma_psd"]
    assert f"σ_psd = {level:.3g} as used by the reconstruction" in sec["tilts"]
    assert sec["tilts"].count("<img ") == 1


def test_slices_show_the_truth_registered_by_the_validation(full_run, sec):
    with xr.open_dataset(full_run.validation) as val:
        offsets = val["registration_offset_nm"].values
    for k in (0, -1):
        where = ", ".join(f"{v:+.1f}" for v in np.nan_to_num(offsets[k]))
        assert f"registered by the offset of validation.nc (z, y, x = {where} nm)" in sec["slices"]
    assert sec["slices"].count("<img ") == 2 and sec["surface"].count("<img ") == 1


def test_measurement_status_counts_are_those_of_metrics(full_run, sec):
    with xr.open_dataset(full_run.metrics) as metrics:
        status = metrics["status"].values.astype(str)
    values, counts = np.unique(status, return_counts=True)
    cells = _cells(sec["metrics"])
    for value, count in zip(values, counts, strict=True):
        assert cells[cells.index(value) + 1] == str(count)
    assert f"({status.shape[1]} pairs × {status.shape[0]} steps, metrics.nc)" in sec["metrics"]
    assert sec["metrics"].count("<img ") == 3


def test_validation_numbers_are_those_of_validation(full_run, sec):
    with xr.open_dataset(full_run.validation) as val:
        val = val.load()
    cells = _cells(sec["validation"])
    for key, label in (("pairs_true", "true pairs"), ("pairs_found", "found"), ("median_dice", "median Dice")):
        assert cells[cells.index(label) + 1] == hp.cell(val.attrs[key].item())
    # the summary row: pair-steps, then median and max |error| of each shown variable, as validation.nc holds them
    row = cells[cells.index("all pairs"):]
    assert row[2] == str(int(np.isfinite(val["neck_ratio"].values).sum()))
    assert row[3:5] == [hp.cell(float(val["neck_ratio_median_abs_error"]), digits=3),
                        hp.cell(float(val["neck_ratio_max_abs_error"]), digits=3)]
    assert row[5:7] == [hp.cell(float(val["distance_ratio_median_abs_error"]), digits=3),
                        hp.cell(float(val["distance_ratio_max_abs_error"]), digits=3)]
    for k, dice in enumerate(val["dice"].values):
        assert hp.cell(float(dice), digits=3) in cells
    assert "tilt_axis_angle_deg" not in sec["validation"]  # an angle, not an error


def test_fit_table_is_the_fits_summary(full_run, sec):
    table = pd.read_csv(full_run.fit.summary_csv, index_col=0)
    cells = _cells(sec["fit"])
    for name, row in table.iterrows():
        k = cells.index(name)
        assert cells[k + 1] == hp.cell(float(row["mean"]))
        assert cells[k + table.columns.get_loc("r_hat") + 1] == hp.cell(float(row["r_hat"]))
    shaded = len(re.findall(r'<tr class="bad">', sec["fit"]))
    assert shaded == int((table["r_hat"] > 1.1).sum())
    header = full_run.fit.summary_txt.read_text().split("\n\n", 1)[0].strip()
    assert hp.preformatted(header) in sec["fit"]


# --------------------------------------------------------------------------
# partial runs: a section whose inputs are missing says so, the rest stands
# --------------------------------------------------------------------------


def _copy(run: RunFolder, to: Path, **kwargs) -> RunFolder:
    return RunFolder(shutil.copytree(run.path, to, **kwargs))


def test_report_without_fit_or_validation(tiny_run, tmp_path):
    run = _copy(RunFolder(tiny_run), tmp_path / "partial")
    shutil.rmtree(run.fit.path)
    for path in (run.validation, run.validation_fig8, run.record):
        path.unlink()
    sec = _sections(build_report(run.path, progress=False).read_text(encoding="utf-8"))
    for anchor in ("fit", "validation"):
        assert '<p class="na">not available: ' in sec[anchor]
    assert "not available: no fit/ folder" in sec["fit"]
    assert "not available: no validation.nc (run `sinter4d validate RUNDIR`" in sec["validation"]
    assert "not available: no run.json" in sec["metadata"]
    assert "not available: validation_fig8.png not found (made by `sinter4d validate RUNDIR`)" in sec["metrics"]
    assert sum(s.count("<img ") for s in sec.values()) == 6
    assert "not registered (no validation.nc)" in sec["slices"]


def test_report_without_truth(tiny_run, tmp_path):
    run = _copy(RunFolder(tiny_run), tmp_path / "measured", ignore=shutil.ignore_patterns("fit", "*.png"))
    for path in (run.truth, run.validation):
        path.unlink()
    sec = _sections(build_report(run.path, progress=False).read_text(encoding="utf-8"))
    assert "not available: no truth.nc (run `sinter4d validate RUNDIR` on a simulated run)" in sec["validation"]


def test_report_of_a_bare_folder(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps({"name": "bare"}))
    sec = _sections(build_report(tmp_path, progress=False).read_text(encoding="utf-8"))
    assert set(sec) == {a for a, _ in SECTIONS} - {"calibration"}
    for anchor in ("tilts", "slices", "surface", "validation", "fit"):
        assert sec[anchor].count("not available") == 1, anchor
    assert "not available: no tilt series in tilts/" in sec["tilts"]
    assert "not available: no reconstruction in recon/" in sec["slices"]
    assert "<img " not in "".join(sec.values())


def test_report_survives_a_broken_file(tiny_run, tmp_path):
    run = _copy(RunFolder(tiny_run), tmp_path / "broken", ignore=shutil.ignore_patterns("fit", "*.png"))
    run.validation.write_text("not netCDF")
    run.tilt(1).unlink()
    sec = _sections(build_report(run.path, progress=False).read_text(encoding="utf-8"))
    assert "not available: " in sec["validation"]
    assert "validation.nc unreadable" in sec["slices"]  # first step: truth shown, not registered
    assert "truth not available: no tilts/t02.nc" in sec["slices"]  # last step: no truth
    assert sec["slices"].count("<img ") == 2 and sec["surface"].count("<img ") == 1


def test_report_of_an_invalid_pipeline_section(tiny_run, tmp_path):
    run = _copy(RunFolder(tiny_run), tmp_path / "odd", ignore=shutil.ignore_patterns("fit", "*.png"))
    spec = json.loads(run.spec.read_text())
    spec["pipeline"]["psd"] = "purple"
    run.spec.write_text(json.dumps(spec))
    sec = _sections(build_report(run.path, progress=False).read_text(encoding="utf-8"))
    assert "not valid: " in sec["metadata"] and "psd" in sec["metadata"]
    assert "not available: SpecError: " in sec["tilts"]


def test_report_needs_a_folder(tmp_path):
    with pytest.raises(InputError, match="not a run folder"):
        build_report(tmp_path / "nowhere", progress=False)
