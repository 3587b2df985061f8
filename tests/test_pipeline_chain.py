"""The chain on one tilt series: input checks, film level, settings recorded, denoising strength, reference level."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from _synthetic import sphere_layout, sphere_series

from sinter4d.errors import InputError
from sinter4d.pipeline import series
from sinter4d.pipeline.chain import prepare_tilt_series, process_tilt_series
from sinter4d.pipeline.series import check_tilt_series, reference_noise_level, subtract_background
from sinter4d.pipeline.denoise import denoise_bm3d
from sinter4d.pipeline.settings import PipelineSpec, recorded_settings
from sinter4d.validation import registered_dice

ANGLES = np.arange(-40.0, 41.0, 4.0)  # 21 tilts
PIXEL = 2.0


def _series(images=None, angles=ANGLES, **attrs) -> xr.Dataset:
    images = sphere_series(angles, axis_offset_px=1.5, seed=4) if images is None else images
    return xr.Dataset(
        {"counts": (("tilt", "y", "x"), np.asarray(images, dtype=np.float32))},
        coords={"tilt_angle": ("tilt", np.asarray(angles, dtype=float))},
        attrs={"pixel_size_nm": PIXEL, "tilt_axis_rotation_deg": 0.0, **attrs},
    )


def _sphere_dice(out: xr.Dataset) -> float:
    """Dice of a reconstruction's binary against the analytic spheres of ``sphere_series(seed=4)`` (160 rows)."""
    centres, radii = sphere_layout(4)
    z, y, x = np.meshgrid(out.z.values / PIXEL, np.arange(160) - 79.5, out.x.values / PIXEL, indexing="ij")
    truth = np.zeros(z.shape, bool)
    for (cx, cy, cz), r in zip(centres, radii):
        truth |= (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= r * r
    return registered_dice(out.binary.values.astype(bool), truth, max_shift_vox=3)[0]


@pytest.fixture(scope="module")
def counts():
    clean = sphere_series(ANGLES, axis_offset_px=1.5, seed=4)
    return np.random.default_rng(2).poisson(clean).astype(np.float32)


def test_check_tilt_series_returns_images_angles_pixel():
    images, angles, pixel = check_tilt_series(_series())
    assert images.dtype == np.float32 and images.shape == (21, 96, 96)
    np.testing.assert_array_equal(angles, ANGLES)
    assert pixel == PIXEL


@pytest.mark.parametrize(
    ("broken", "match"),
    [
        (lambda ds: ds.drop_vars("counts"), "missing variable counts"),
        (lambda ds: ds.drop_vars("tilt_angle"), "missing coordinate tilt_angle"),
        (lambda ds: ds.drop_attrs(), "missing attribute pixel_size_nm"),
        (lambda ds: ds.isel(tilt=0), "counts must be"),
        (lambda ds: ds.assign(counts=ds.counts.where(ds.x != 3)), r"counts hold 2016 NaN"),  # a column: 21 x 96
        (lambda ds: ds.assign_coords(tilt_angle=("tilt", np.ones(21))), "tilt angles must be strictly monotonic"),
        (lambda ds: ds.assign_coords(tilt_angle=("tilt", ANGLES * 2.5)), "tilt angles must be strictly monotonic within ±90"),
    ],
)
def test_check_tilt_series_refuses(broken, match):
    with pytest.raises(InputError, match="^series.nc: " + match):
        check_tilt_series(broken(_series()), source="series.nc")


def test_angle_count_must_match_the_images():
    ds = _series().isel(tilt=slice(0, 5))
    ds = xr.Dataset({"counts": ds.counts.rename(tilt="image")}, coords={"tilt_angle": ("tilt", ANGLES)},
                    attrs=ds.attrs)
    with pytest.raises(InputError, match="21 tilt angles for 5 images"):
        check_tilt_series(ds)


def test_subtract_background_removes_each_images_film_level():
    levels = np.array([3.0, 5.5, 8.25])
    yy, xx = np.mgrid[:40, :40]
    disc = 50.0 * ((yy - 20) ** 2 + (xx - 18) ** 2 <= 8**2)  # a tenth of the field
    images = levels[:, None, None] + disc[None]
    out = subtract_background(images)
    assert out.dtype == np.float32
    # the film-only pixels read zero; the particle keeps its height above the film
    np.testing.assert_array_equal(out[:, disc == 0], 0.0)
    np.testing.assert_allclose(out[:, disc > 0], 50.0)


def test_process_records_its_settings_and_the_series_attributes():
    settings = PipelineSpec(denoise=False, method="fbp", slab_thickness_nm=64.0, slab_z_centre_nm=8.0,
                            binarize_radius_nm=2.0, align_method="xcorr", axis_search_px=5.0)
    ds = _series(pt_time_s=12.0, temperature_C=370.0, run="t", unrelated="x")
    out = process_tilt_series(ds, settings, n_jobs=1)
    nz = int(round(64.0 / PIXEL))
    assert out.volume.shape == out.binary.shape == (nz, 96, 96)
    assert out.binary.dtype == np.uint8 and 0 < int(out.binary.sum()) < out.binary.size
    # the slab is centred on slab_z_centre_nm, voxels of one pixel
    assert float(out.z.mean()) == pytest.approx(8.0) and np.diff(out.z.values) == pytest.approx(PIXEL)
    # a drift-free series: no shift along y; along x only a rigid motion of the specimen,
    # a (cos - 1) + b sin (the registration cannot tell it from drift)
    assert np.abs(out.shift_y.values).max() < 0.2
    t = np.deg2rad(ANGLES)
    basis = np.column_stack([np.cos(t) - 1, np.sin(t)])
    fit, *_ = np.linalg.lstsq(basis, out.shift_x.values, rcond=None)
    assert np.abs(out.shift_x.values - basis @ fit).max() < 0.1
    # what it records reads back as the settings it ran with
    assert recorded_settings(out.attrs, {"slab_thickness_nm": 64.0, "slab_z_centre_nm": 8.0,
                                         "axis_search_px": 5.0}) == settings
    assert {k: out.attrs[k] for k in ("pt_time_s", "temperature_C", "run")} == {"pt_time_s": 12.0,
                                                                              "temperature_C": 370.0, "run": "t"}
    assert "unrelated" not in out.attrs


def test_denoise_strength_scales_the_chosen_level(counts):
    ds = _series(counts)
    lc = {"bm3d_profile": "lc", "bm3d_stages": "hard", "sigma_psd": 3.0}
    full = prepare_tilt_series(ds, PipelineSpec(**lc), n_jobs=1)
    half = prepare_tilt_series(ds, PipelineSpec(**lc, denoise_strength=0.5), n_jobs=1)
    assert full.sigma_psd == half.sigma_psd == 3.0  # the level chosen is recorded, not the scaled one
    # the same images as BM3D run at 1.5 directly, then the undenoised chain
    direct = denoise_bm3d(counts, PipelineSpec(**lc), sigma_psd=1.5, n_jobs=1)
    raw = prepare_tilt_series(_series(direct), PipelineSpec(denoise=False))
    np.testing.assert_array_equal(half.signal, raw.signal)
    assert np.isnan(raw.sigma_psd)


def test_reference_level_is_chosen_on_the_frame_at_the_reference_tilt(counts, monkeypatch):
    seen = []

    def fake_select(image, reference, **kwargs):
        seen.append((image.copy(), kwargs["settings"].bm3d_profile))
        return 2.0

    monkeypatch.setattr(series, "select_sigma_psnr", fake_select)
    ds = _series(counts, reference_tilt_deg=8.0).assign(reference=(("y", "x"), counts[12]))
    settings = PipelineSpec(bm3d_profile="lc")
    assert reference_noise_level(ds, counts, ANGLES, settings, n_jobs=1) == 2.0
    k = int(np.flatnonzero(ANGLES == 8.0)[0])
    np.testing.assert_array_equal(seen[0][0], counts[k])
    assert seen[0][1] == "lc"


def test_a_series_with_a_dark_level_prepares_like_one_without(counts):
    offset = -31900.0  # a signed detector: raw values = offset + signal, float32-exact for these integers
    plain = prepare_tilt_series(_series(counts), PipelineSpec(denoise=False))
    dark = prepare_tilt_series(_series(counts + np.float32(offset), dark_level=offset), PipelineSpec(denoise=False))
    np.testing.assert_array_equal(dark.signal, plain.signal)
    np.testing.assert_array_equal(dark.shifts_px, plain.shifts_px)
    # without the attribute the offset would reach the chain
    images, _, _ = check_tilt_series(_series(counts + np.float32(offset)))
    assert images.max() < 0


def test_fewer_than_three_tilts_are_refused():
    with pytest.raises(InputError, match=r"^two.nc: 2 tilt image\(s\); the pipeline needs at least 3$"):
        prepare_tilt_series(_series().isel(tilt=slice(0, 2)), PipelineSpec(denoise=False), source="two.nc")


def test_support_margin_reconstructs_the_specimens_rows_only():
    # spheres in rows 53-117 of 160 (analytic), in a field wider than they are; the rows of film above and
    # below are left empty
    clean = sphere_series(ANGLES, shape=(160, 140), axis_offset_px=1.5, seed=4)
    ds = _series(np.random.default_rng(3).poisson(clean))
    base = dict(denoise=False, method="tv", iterations=40, slab_thickness_nm=64.0, binarize_radius_nm=2.0,
                axis_search_px=5.0)
    whole = process_tilt_series(ds, PipelineSpec(**base), n_jobs=1)
    settings = PipelineSpec(**base, support_margin_nm=8.0)
    part = process_tilt_series(ds, settings, n_jobs=1)
    start, stop = (int(v) for v in part.attrs["support_rows"])
    assert start <= 53 and stop >= 118 and stop - start <= 118 - 53 + 2 * 4 + 2  # the spheres, a 4 px margin
    assert list(whole.attrs["support_rows"]) == [0, 160]
    # the drift was registered on the specimen's box, padded, and the series has none: y RMS 0.27-0.66 px on
    # four draws of these raw (not denoised) counts, the whole field 0.26-0.80 px
    assert "align_box" not in whole.attrs
    y0, y1, x0, x1 = (int(v) for v in part.attrs["align_box"])
    assert y0 <= 53 and y1 >= 118 and (y1 - y0) * (x1 - x0) < 0.8 * 160 * 140
    assert np.sqrt(np.mean(part.shift_y.values ** 2)) < 1.0
    outside = np.r_[0:start, stop:160]
    assert not part.volume.values[:, outside].any() and not part.binary.values[:, outside].any()
    # against the analytic spheres, the rows alone binarise as well as the whole field
    dice_part, dice_whole = (_sphere_dice(out) for out in (part, whole))
    assert dice_whole > 0.8 and dice_part > dice_whole - 0.01, (dice_part, dice_whole)
    assert recorded_settings(part.attrs, {"slab_thickness_nm": 64.0, "axis_search_px": 5.0}) == settings


def test_denoise_margin_runs_bm3d_on_the_specimens_box_only():
    # spheres in rows 53-117 and (at any tilt) columns ~35-125 of a 160 x 200 field of film; BM3D on their box
    # of the raw images binarises as well as BM3D on every pixel
    clean = sphere_series(ANGLES, shape=(160, 200), axis_offset_px=1.5, seed=4)
    ds = _series(np.random.default_rng(3).poisson(clean))
    base = dict(bm3d_profile="lc", bm3d_stages="hard", sigma_psd=2.5, method="tv", iterations=40,
                slab_thickness_nm=64.0, binarize_radius_nm=2.0, axis_search_px=5.0)
    whole = process_tilt_series(ds, PipelineSpec(**base), n_jobs=1)
    settings = PipelineSpec(**base, denoise_margin_nm=8.0)
    part = process_tilt_series(ds, settings, n_jobs=1)
    assert "denoise_box" not in whole.attrs
    y0, y1, x0, x1 = (int(v) for v in part.attrs["denoise_box"])
    on = (clean - 4.0 > 0).any(axis=0)
    rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
    assert y0 <= rows[0] and y1 > rows[-1] and x0 <= cols[0] and x1 > cols[-1]  # every sphere in every image
    assert (y1 - y0) * (x1 - x0) < 0.5 * 160 * 200
    dice_part, dice_whole = (_sphere_dice(out) for out in (part, whole))
    assert dice_whole > 0.8 and abs(dice_part - dice_whole) < 0.03, (dice_part, dice_whole)  # measured 0.862, 0.843
    assert recorded_settings(part.attrs, {"slab_thickness_nm": 64.0, "axis_search_px": 5.0}) == settings
