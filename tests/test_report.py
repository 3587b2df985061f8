"""The run report: a self-contained HTML page that degrades gracefully on partial runs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

from sinter4d import InputError
from sinter4d.report import SECTIONS, build_report
from sinter4d.report import figures as fg
from sinter4d.report import html as hp

VOXEL_NM = 4.0
SHAPE = (16, 32, 32)


# --------------------------------------------------------------------------
# a tiny synthetic run folder
# --------------------------------------------------------------------------


def _spheres(shape=SHAPE, gap_px=0.0) -> np.ndarray:
    """Label volume of two touching spheres of radius 6 px (labels 1, 2)."""
    zz, yy, xx = np.indices(shape, dtype=float)
    cz, cy = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    cx = (shape[2] - 1) / 2
    out = np.zeros(shape, dtype=np.uint8)
    for label, dx in ((1, -6.0 - gap_px / 2), (2, 6.0 + gap_px / 2)):
        out[(zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx - dx) ** 2 <= 6.5**2] = label
    return out


def _coords(n: int) -> np.ndarray:
    return (np.arange(n) - (n - 1) / 2) * VOXEL_NM


def _png() -> bytes:
    fig = Figure(figsize=(2.0, 1.0))
    fig.add_subplot().plot([0, 1], [0, 1])
    return fg.figure_png(fig, dpi=40)


def _tilts(label: np.ndarray, k: int, rng: np.random.Generator) -> xr.Dataset:
    angles = np.array([-20.0, 0.0, 20.0])
    proj = (label > 0).sum(axis=0).astype(float)
    counts = rng.poisson(2.0 + 3.0 * proj[None].repeat(3, axis=0)).astype(np.float32)
    nz, ny, nx = label.shape
    return xr.Dataset(
        {
            "counts": (("tilt", "y", "x"), counts, {"units": "counts", "long_name": "HAADF detector counts per pixel"}),
            "reference": (("y", "x"), (2.0 + 3.0 * proj).astype(np.float32), {"units": "counts"}),
            "true_label": (("z", "y", "x"), label, {"units": "1"}),
        },
        coords={"tilt_angle": ("tilt", angles, {"units": "degree"}), "z": _coords(nz), "y": _coords(ny),
                "x": _coords(nx)},
        attrs={"pixel_size_nm": VOXEL_NM, "dose_e_per_nm2": 250.0, "probe_current_pA": 2.0, "dwell_time_ns": 500.0,
               "pt_time_s": float(5 * k), "temperature_C": 370.0, "true_axis_offset_px": 0.0, "time_index": k},
    )


def _recon(label: np.ndarray, k: int, rng: np.random.Generator) -> xr.Dataset:
    # a taller slab than the truth, as the pipeline reconstructs
    nz = label.shape[0] + 4
    inside = np.pad(label > 0, ((2, 2), (0, 0), (0, 0)))
    volume = (inside + 0.1 * rng.standard_normal(inside.shape)).astype(np.float32)
    return xr.Dataset(
        {"volume": (("z", "y", "x"), volume, {"units": "1"}),
         "binary": (("z", "y", "x"), inside.astype(np.uint8), {"units": "1"})},
        coords={"z": _coords(nz), "y": _coords(label.shape[1]), "x": _coords(label.shape[2])},
        attrs={"pixel_size_nm": VOXEL_NM, "method": "tv", "iterations": 20, "denoise": 1, "denoise_psd": "g4",
               "denoise_profile": "np", "denoise_sigma_psd": 1.0, "axis_offset_px": 0.5, "align_method": "xcorr",
               "seconds_denoise": 1.0, "seconds_reconstruct": 2.0, "pt_time_s": float(5 * k),
               "temperature_C": 370.0, "time_index": k},
    )


def _validation() -> xr.Dataset:
    err = np.array([[0.01, -0.02], [0.03, np.nan]])
    coords = {"time": [0, 1], "pt_time_s": ("time", [0.0, 5.0]), "temperature_C": ("time", [370.0, 370.0]),
              "pair": ["P1", "P2"], "axis": ["z", "y", "x"]}
    data = {}
    for name, units in (("neck_ratio", "1"), ("distance_ratio", "1"), ("neck_radius_nm", "nm")):
        data[name] = (("time", "pair"), err, {"units": units, "long_name": f"error of the {name} (measured - true)"})
        data[f"{name}_median_abs_error"] = ((), float(np.nanmedian(np.abs(err))), {"units": units})
        data[f"{name}_max_abs_error"] = ((), float(np.nanmax(np.abs(err))), {"units": units})
    data.update({
        "measured_pair": (("time", "pair"), np.array([["P2", "P1"], ["P2", ""]])),
        "found": ("time", [2, 1]), "missed": ("time", [0, 1]), "spurious": ("time", [0, 0]),
        "dice": ("time", [0.91, 0.88]),
        "registration_offset_nm": (("time", "axis"), np.zeros((2, 3))),
        "tilt_axis_angle_deg": (("time", "pair"), np.array([[10.0, 80.0], [12.0, 79.0]]), {"units": "degree"}),
        "neck_radius_nm_median_error": ("orientation", [6.25, -3.5, 1.0]),
        "neck_fill_nm2": ("orientation", [426.0, -142.0, 385.0]),
        "neck_fill_necks": ("orientation", [3, 1, 4]),
        "neck_fill_resolution_nm": ("orientation", [3.9, np.nan, 3.6]),
    })
    coords["orientation"] = ["along_tilt_axis", "across_tilt_axis", "all"]
    return xr.Dataset(data, coords=coords, attrs={"pairs_true": 2, "pairs_found": 2, "pairs_missed": 0,
                                                   "pairs_spurious": 0, "median_dice": 0.895})


def _make_run(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"name": "tiny", "description": "two spheres <test>", "seed": 1,
            "acquisition": {"tilt_min_deg": -20, "tilt_max_deg": 20, "tilt_step_deg": 20, "pixel_size_nm": 4.0},
            "pipeline": {"method": "tv", "iterations": 20}, "sintering": {"model": "toy_card"}}
    (folder / "spec.json").write_text(json.dumps(spec))
    for k, gap in enumerate((1.0, 0.0)):
        label = _spheres(gap_px=gap)
        name = f"t{k + 1:02d}.nc"
        for sub, ds in (("tilts", _tilts(label, k, rng)), ("recon", _recon(label, k, rng))):
            (folder / sub).mkdir(exist_ok=True)
            ds.to_netcdf(folder / sub / name)
    _validation().to_netcdf(folder / "validation.nc")
    xr.Dataset({"k_param": ((), 1.5)}).to_netcdf(folder / "truth.nc")
    for name in ("metrics_fig8.png", "metrics_fig9a.png", "validation_fig8.png"):
        (folder / name).write_bytes(_png())
    fit = folder / "fit"
    fit.mkdir()
    (fit / "summary.csv").write_text(",mean,sd,hdi_3%,hdi_97%,r_hat\nk_param,1.4,0.1,1.2,1.6,1.01\n")
    (fit / "summary.txt").write_text("model card: toy_card\nN/tau = 60\n\n          mean\nk_param   1.4\n")
    for name in ("corner.png", "predictive.png"):
        (fit / name).write_bytes(_png())
    run = {"spec_file": "tiny.toml", "started": "2025-01-01T00:00:00", "finished": None,
           "versions": {"sinter4d": "0.1.0", "numpy": np.__version__}, "host": {"cpus": 2},
           "stages": {"simulate": {"status": "done", "seconds": 1.5, "error": None},
                      "reconstruct": {"status": "failed", "seconds": 0.2, "error": "boom <&>"}}}
    (folder / "run.json").write_text(json.dumps(run))
    (folder / "run.log").write_text("line one\nline two\n")
    return folder


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> Path:
    return _make_run(tmp_path_factory.mktemp("report") / "run")


@pytest.fixture(scope="module")
def full_html(full_run) -> str:
    return build_report(full_run, progress=False).read_text(encoding="utf-8")


def _sections(text: str) -> dict[str, str]:
    """Body of each section by anchor."""
    parts = re.split(r'<section id="', text)[1:]
    return {p.split('"', 1)[0]: p for p in parts}


# --------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------


def test_report_is_written_atomically(full_run, full_html):
    assert (full_run / "report.html").is_file()
    assert full_html.startswith("<!DOCTYPE html>")
    assert not [p for p in full_run.iterdir() if p.name.endswith(".tmp")]


def test_report_is_self_contained(full_html):
    assert 'src="http' not in full_html and "href=\"http" not in full_html
    assert "<script" not in full_html and "<link" not in full_html
    sources = re.findall(r'<img [^>]*src="([^"]*)"', full_html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)


def test_report_has_every_section_and_image(full_html):
    for anchor, title in SECTIONS:
        assert f'<section id="{anchor}">' in full_html
        assert f"<h2>{title}</h2>" in full_html.replace("&#x27;", "'")
    # montage 1, orthogonal slices 2 (first and last step), surfaces 1, metric PNGs 3, fit PNGs 2
    assert full_html.count("<img ") == 9
    assert "not available" not in full_html


def test_report_content(full_html):
    sec = _sections(full_html)
    assert "two spheres &lt;test&gt;" in sec["metadata"]  # escaped
    assert "boom &lt;&amp;&gt;" in sec["metadata"] and "failed" in sec["metadata"]
    assert "line two" in sec["metadata"]
    assert "all pairs" in sec["validation"] and "0.91" in sec["validation"]
    assert "along tilt axis" in sec["validation"] and "6.25" in sec["validation"] and "-142" in sec["validation"]
    assert "tilt_axis_angle_deg" not in sec["validation"]  # an angle, not an error
    assert "k_param" in sec["fit"] and "truth in HDI" in sec["fit"] and "N/tau = 60" in sec["fit"]


def test_report_without_fit_or_validation(full_run, tmp_path):
    run = tmp_path / "partial"
    shutil.copytree(full_run, run)
    shutil.rmtree(run / "fit")
    for name in ("validation.nc", "validation_fig8.png", "run.json", "report.html"):
        (run / name).unlink()
    sec = _sections(build_report(run, progress=False).read_text(encoding="utf-8"))
    for anchor in ("fit", "validation"):
        assert '<p class="na">not available: ' in sec[anchor]
    assert "not available: no run.json" in sec["metadata"]
    assert "not available: validation_fig8.png not found" in sec["metrics"]
    assert sum(s.count("<img ") for s in sec.values()) == 6
    assert "not registered" in sec["slices"]


def test_report_of_a_bare_folder(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps({"name": "bare"}))
    sec = _sections(build_report(tmp_path, progress=False).read_text(encoding="utf-8"))
    assert set(sec) == {a for a, _ in SECTIONS}
    for anchor in ("tilts", "slices", "surface", "validation", "fit"):
        assert sec[anchor].count("not available") == 1, anchor
    assert "<img " not in "".join(sec.values())


def test_report_survives_a_broken_file(full_run, tmp_path):
    run = tmp_path / "broken"
    shutil.copytree(full_run, run, ignore=shutil.ignore_patterns("fit", "*.png"))
    (run / "validation.nc").write_text("not netCDF")
    (run / "tilts" / "t02.nc").unlink()
    sec = _sections(build_report(run, progress=False).read_text(encoding="utf-8"))
    assert "not available: " in sec["validation"]
    assert "validation.nc unreadable" in sec["slices"]  # first step: truth shown, not registered
    assert "truth not available: no tilts/t02.nc" in sec["slices"]  # last step: no truth
    assert sec["slices"].count("<img ") == 2 and sec["surface"].count("<img ") == 1


def test_report_needs_a_folder(tmp_path):
    with pytest.raises(InputError, match="not a run folder"):
        build_report(tmp_path / "nowhere", progress=False)


# --------------------------------------------------------------------------
# figures and pieces
# --------------------------------------------------------------------------


@pytest.mark.parametrize("with_truth", [True, False])
def test_orthogonal_slices_image_shape(with_truth):
    label = _spheres()
    z, y, x = (_coords(n) for n in SHAPE)
    fig = fg.orthogonal_slices(label.astype(np.float32), label > 0, label > 0 if with_truth else None,
                               z_nm=z, y_nm=y, x_nm=x, title="t01")
    w_in, h_in = fig.get_size_inches()
    rgba = fg.figure_rgba(fig, dpi=40)
    assert rgba.shape == (round(h_in * 40), round(w_in * 40), 4)
    assert len(fig.axes) == (8 if with_truth else 4)  # xy, yz, xz and a note per block
    assert fg.figure_png(fig, dpi=40).startswith(b"\x89PNG")


def test_orthogonal_slices_checks_shapes():
    with pytest.raises(ValueError, match="one shape"):
        fg.orthogonal_slices(np.zeros((4, 5, 6)), np.zeros((4, 5, 5)), None, z_nm=_coords(4), y_nm=_coords(5),
                             x_nm=_coords(6))


def test_surface_mesh_and_figure():
    label = _spheres()
    spacing, origin = (VOXEL_NM,) * 3, tuple(_coords(n)[0] for n in SHAPE)
    verts, faces = fg.surface_mesh(label, spacing_nm=spacing, origin_nm=origin, max_faces=2000)
    assert verts.shape[1] == 3 and faces.shape[1] == 3 and 100 < len(faces) <= 4000
    # the spheres (radius 6.5 px, centred) lie inside the grid
    assert np.all(np.abs(verts[:, 1]) < 8 * VOXEL_NM) and np.all(np.abs(verts[:, 0]) < 8 * VOXEL_NM)
    empty_v, empty_f = fg.surface_mesh(np.zeros(SHAPE))
    assert empty_v.shape == (0, 3) and empty_f.shape == (0, 3)
    fig = fg.surface_figure([("a", verts, faces), ("b", empty_v, empty_f)], ncols=2)
    w_in, h_in = fig.get_size_inches()
    assert fg.figure_rgba(fig, dpi=30).shape == (round(h_in * 30), round(w_in * 30), 4)


def test_tilt_montage_shape():
    raw = np.random.default_rng(1).poisson(3.0, (3, 24, 24)).astype(np.float32)
    fig = fg.tilt_montage(raw, raw, np.array([-20.0, 0.0, 20.0]), pixel_size_nm=4.0)
    assert len(fig.axes) == 6
    w_in, h_in = fig.get_size_inches()
    assert fg.figure_rgba(fig, dpi=30).shape == (round(h_in * 30), round(w_in * 30), 4)


def test_resample_mask_shifts_by_the_offset():
    label = _spheres()
    z, y, x = (_coords(n) for n in SHAPE)
    same = fg.resample_mask(label, (z, y, x), (z, y, x))
    np.testing.assert_array_equal(same, label > 0)
    shifted = fg.resample_mask(label, (z, y, x), (z, y, x), offset_nm=(0.0, 0.0, VOXEL_NM))
    np.testing.assert_array_equal(shifted[:, :, :-1], (label > 0)[:, :, 1:])
    assert not shifted[:, :, -1].any()
    taller = fg.resample_mask(label, (z, y, x), (_coords(SHAPE[0] + 4), y, x))
    np.testing.assert_array_equal(taller[2:-2], label > 0)


def test_select_tilts():
    angles = np.arange(-40.0, 41.0, 2.0)
    np.testing.assert_array_equal(angles[fg.select_tilts(angles)], [-40, -20, 0, 20, 40])
    narrow = np.array([-10.0, 0.0, 10.0])
    np.testing.assert_array_equal(fg.select_tilts(narrow), [0, 1, 2])


def test_html_pieces_escape_and_format():
    assert hp.not_available("<x>") == '<p class="na">not available: &lt;x&gt;</p>'
    assert hp.cell(float("nan")) == "–" and hp.cell(0.0123456) == "0.01235" and hp.cell(3050.2) == "3050"
    assert 'src="data:image/png;base64,' in hp.image(_png(), alt="a")
    assert fg.shrink_png(_png(), max_width_px=40).startswith(b"\x89PNG")
