"""[acquisition.probe]: the probe's size, the beam broadening, the depth-resolved blur, and the switch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from sinter4d.acquisition import AcquisitionSpec, ScanSettings, simulate_tilt_series
from sinter4d.acquisition._probe import (
    ProbeSettings,
    airy_intensity,
    beam_broadening_nm,
    electron_wavelength_pm,
    mass_thickness_above,
    probe_fwhm_nm,
)
from sinter4d.errors import SpecError
from sinter4d.operators import ParallelProjector
from sinter4d.phantom import Grid
from sinter4d.specs import parse

# CODATA 2018
H, M_E, E, C = 6.62607015e-34, 9.1093837015e-31, 1.602176634e-19, 299792458.0


def test_wavelength_is_the_relativistic_one():
    v = 300e3
    lam = H / math.sqrt(2 * M_E * E * v * (1 + E * v / (2 * M_E * C**2)))
    assert electron_wavelength_pm(300.0) == pytest.approx(lam * 1e12, rel=1e-6)
    assert electron_wavelength_pm(300.0) == pytest.approx(1.9687, abs=1e-4)


def test_probe_fwhm_and_first_zero_against_airy_closed_forms():
    lam_nm = electron_wavelength_pm(300.0) * 1e-3
    alpha = 1.2e-3
    # textbook Airy numbers: FWHM 1.029 lambda / (2 alpha) = 0.5145 lambda / alpha; first zero 0.61 lambda / alpha
    assert probe_fwhm_nm(300.0, 1.2) == pytest.approx(0.5145 * lam_nm / alpha, rel=1e-3)
    r = np.linspace(0.0, 1.5, 30001)  # nm
    profile = airy_intensity(2 * np.pi * alpha * r / lam_nm)
    first_zero = r[np.argmin(np.where(r < 1.2, profile, 1.0))]
    assert first_zero == pytest.approx(0.61 * lam_nm / alpha, rel=2e-3)  # 1.00 nm: the "~1 nm"
    half = r[np.argmax(profile < 0.5)]
    assert 2 * half == pytest.approx(probe_fwhm_nm(300.0, 1.2), abs=1e-4)


def test_broadening_closed_form_at_two_thicknesses():
    def goldstein_cm(t_cm, e0_eV):
        return 6.25e5 * (29 / e0_eV) * math.sqrt(8.96 / 63.546) * t_cm**1.5

    for t in (50.0, 150.0):
        b = float(beam_broadening_nm(t, 300.0, relativistic=False))
        assert b == pytest.approx(goldstein_cm(t * 1e-7, 300e3) * 1e7, rel=1e-9)
    b50, b150 = beam_broadening_nm([50.0, 150.0], 300.0, relativistic=False)
    assert b150 / b50 == pytest.approx(3**1.5, rel=1e-12)
    assert b150 == pytest.approx(13.18, abs=0.01)  # the "10-15 nm at the exit"
    # relativistic: E0 -> p v / 2, so b grows by (1 + E0/mc2) / (1 + E0/2mc2)
    r = 300.0 / 510.99895
    rel = beam_broadening_nm(150.0, 300.0) / b150
    assert rel == pytest.approx((1 + r) / (1 + r / 2), rel=1e-12)


def test_mass_thickness_above_a_tilted_slab():
    h = 2.0
    vol = np.ones((20, 2, 80), np.float32)  # a 40 nm slab
    for angle in (0.0, 30.0, -45.0):
        above = mass_thickness_above(vol, h, angle)
        depth = (19 - np.arange(20) + 0.5) * h  # from the top surface to each voxel centre
        inner = above[:, 0, 30:50]  # away from the side edges, where rays leave the slab
        expected = np.broadcast_to((depth / math.cos(math.radians(angle)))[:, None], inner.shape)
        np.testing.assert_allclose(inner, expected, rtol=1e-5)


def test_mass_thickness_above_follows_the_projector_rays():
    # a block on top shadows the voxels below it along u = x cos + z sin (at 45 deg, one voxel per layer)
    nz, nx = 10, 40
    vol = np.zeros((nz, 1, nx), np.float32)
    vol[nz - 1, 0, 10] = 1.0
    above = mass_thickness_above(vol, 1.0, 45.0)[:, 0, :]
    shadow = [int(np.argmax(above[k])) for k in range(nz - 1)]
    assert shadow == [10 + (nz - 1 - k) for k in range(nz - 1)]
    z = np.arange(nz) - (nz - 1) / 2
    x = np.arange(nx) - (nx - 1) / 2
    u = x[shadow] * math.cos(math.pi / 4) + z[: nz - 1] * math.sin(math.pi / 4)
    np.testing.assert_allclose(u, u[0])


def test_mass_thickness_above_into_a_reused_buffer_is_the_fresh_result():
    # every voxel of `out` is overwritten: what an earlier tilt left there does not leak
    rng = np.random.default_rng(4)
    vol = (rng.random((12, 3, 30)) < 0.4).astype(np.float32)
    buf = np.full(vol.shape, np.nan, np.float32)
    for angle in (-70.0, 35.0, 0.0, 80.0):
        got = mass_thickness_above(vol, 1.5, angle, out=buf)
        assert got is buf
        np.testing.assert_array_equal(got, mass_thickness_above(vol, 1.5, angle))
    with pytest.raises(ValueError, match="out must be"):
        mass_thickness_above(vol, 1.5, 10.0, out=np.empty(vol.shape, np.float64))


def _grid_and_op(nz, nx, h, angles, ny=4):
    grid = Grid((nz, ny, nx), h)
    return grid, ParallelProjector.from_grid(grid, angles)


def test_blur_keeps_the_total_and_no_blur_is_the_projection():
    angles = [-30.0, 0.0, 30.0]
    grid, op = _grid_and_op(120, 96, 1.0, angles, ny=8)
    rng = np.random.default_rng(1)
    vol = np.zeros(grid.shape, np.float32)
    vol[5:115, :, 30:66] = rng.uniform(0.2, 1.0, size=(110, 8, 36))
    plain = op.direct(vol)
    probe = ProbeSettings(enabled=True).probe(300.0)
    blurred, deepest = probe.project(vol, op)
    np.testing.assert_allclose(blurred.sum(axis=(1, 2)), plain.sum(axis=(1, 2)), rtol=1e-5)
    assert np.abs(blurred - plain).max() > 0.05 * plain.max()
    assert np.all(deepest > 0)
    # uniform slab across the whole field: unchanged by the blur
    slab = np.zeros(grid.shape, np.float32)
    slab[10:110] = 1.0
    flat, _ = probe.project(slab, op)
    np.testing.assert_allclose(flat[1], op.direct(slab)[1], rtol=1e-5)
    # at an absurd voltage neither blur is felt: the node split alone must give back the projection
    for broadening in (False, True):
        sharp = ProbeSettings(enabled=True, broadening=broadening).probe(1e9)
        np.testing.assert_allclose(sharp.project(vol, op)[0], plain, rtol=1e-5, atol=1e-4)


def test_a_wire_under_a_slab_is_broadened_by_the_computed_sigma():
    h, nz, nx = 1.0, 110, 128
    grid, op = _grid_and_op(nz, nx, h, [0.0], ny=2)
    vol = np.zeros(grid.shape, np.float32)
    vol[nz - 100 :] = 1.0  # 100 nm of Cu on top, across the field
    vol[nz - 101, :, nx // 2] = 1.0  # a 1 nm wire along y just below it
    probe = ProbeSettings(enabled=True).probe(300.0)
    blurred, deepest = probe.project(vol, op)
    t_wire = 100.5  # nm above the wire's centre: the deepest node
    assert deepest[0] == pytest.approx(t_wire, rel=1e-6)
    slab_only = vol.copy()
    slab_only[nz - 101] = 0.0
    profile = (blurred - probe.project(slab_only, op)[0])[0, 0]
    assert profile.sum() == pytest.approx(1.0, rel=1e-4)  # 1 nm of Cu in one 1 nm pixel
    u = np.arange(nx) - nx // 2
    sd_nm = math.sqrt(float((profile * u**2).sum() / profile.sum())) * h
    b = float(beam_broadening_nm(t_wire, 300.0))
    expected = math.sqrt(probe.sigma_nm**2 + (b / (2 * math.sqrt(2 * math.log(10)))) ** 2)
    assert expected > 2.0  # ~2.5 nm: well resolved on 1 nm pixels
    assert sd_nm == pytest.approx(expected, rel=0.02)


def _small_simulation(scan: ScanSettings):
    grid = Grid((16, 32, 32), 4.0)
    z, y, x = grid.coords_nm()
    core = ((z[:, None, None] ** 2 + y[None, :, None] ** 2 + x[None, None, :] ** 2) < 25.0**2).astype(np.float32)
    return simulate_tilt_series(core, None, grid, scan, film_thickness_nm=20.0, rng=3, store_expected=True)


def _acq(**probe):
    doc = dict(image_pixels=32, pixel_size_nm=4.0, oversample=1, tilt_min_deg=-20.0, tilt_max_deg=20.0, tilt_step_deg=10.0,
               axis_offset_px=1.5, reference_frames=5, reference_tilt_deg=5.0)
    if probe:
        doc["probe"] = probe
    return parse(AcquisitionSpec, doc, source="spec.toml", at=("acquisition",))


def test_switch_off_is_bit_identical_and_absent_is_on():
    off, off_too = _acq(enabled=False), _acq(enabled=False, convergence_semiangle_mrad=5.0, depth_slabs=3)
    assert off.scan_settings() == off_too.scan_settings()
    assert off.scan_settings().probe is None
    a, b = _small_simulation(off.scan_settings()), _small_simulation(off_too.scan_settings())
    xr.testing.assert_identical(a, b)
    assert "probe_fwhm_nm" not in a.attrs
    assert _acq().scan_settings().probe == _acq(enabled=True).scan_settings().probe  # the table's default is on
    on = _small_simulation(_acq().scan_settings())
    assert on.attrs["probe_fwhm_nm"] == pytest.approx(0.844, abs=1e-3)
    assert on.attrs["probe_max_cu_above_nm"].shape == (5,)
    assert not np.array_equal(on.expected_counts.values, a.expected_counts.values)
    assert on.reference.shape == a.reference.shape


@pytest.mark.parametrize(
    ("probe", "match"),
    [
        ({"enabled": 1}, r"acquisition\.probe\.enabled: must be true or false"),
        ({"convergence_semiangle_mrad": 0.0}, r"acquisition\.probe\.convergence_semiangle_mrad: must be positive"),
        ({"depth_slabs": 1}, r"acquisition\.probe\.depth_slabs: must be at least 2"),
        ({"size": 1}, r"acquisition\.probe\.size: unknown key"),
    ],
)
def test_bad_probe_keys_are_one_line_spec_errors(probe, match):
    with pytest.raises(SpecError, match=match):
        _acq(**probe)


@pytest.mark.parametrize("probe", [None, "point", "broadening"])
def test_a_grid_projected_by_blocks_of_rows_equals_it_projected_whole(probe):
    """A large grid is drawn and projected by blocks of rows (the paper's grid at oversample 2
    would not fit in memory whole): the blocks' halo and shared depth nodes make the images
    those of the whole volume."""
    from sinter4d.acquisition import project_cu_thickness
    from sinter4d.acquisition._probe import Probe
    from sinter4d.phantom import make_cluster, voxelize

    cluster = make_cluster(n_cores=3, rng=0)
    grid = Grid((48, 96, 96), 2.0, 30.0)
    whole = voxelize(cluster, grid)
    volume = whole.core + whole.shell
    drawn = []

    def rows(start, stop):
        drawn.append((start, stop))
        part = voxelize(cluster, grid.rows(start, stop))
        return part.core + part.shell

    p = {None: None, "point": Probe(voltage_kV=300.0, broadening=False), "broadening": Probe(voltage_kV=300.0)}[probe]
    angles = [-30.0, 0.0, 25.0]
    ref, ref_deepest = project_cu_thickness(volume, grid, angles, p)
    got, deepest = project_cu_thickness(rows, grid, angles, p, max_voxels=48 * 96 * 20)
    assert volume.max() > 0.99 and ref.max() > 100.0  # cores drawn, ~100 nm of Cu projected
    assert max(b - a for a, b in drawn) < 96  # never the whole grid
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)
    np.testing.assert_allclose(deepest, ref_deepest, rtol=1e-6)


def test_the_rows_of_a_grid_are_drawn_as_in_the_whole_grid():
    from sinter4d.phantom import make_cluster, voxelize

    cluster = make_cluster(n_cores=3, rng=0)
    grid = Grid((48, 96, 96), 2.0, 30.0)
    whole = voxelize(cluster, grid)
    part = voxelize(cluster, grid.rows(33, 71))
    np.testing.assert_allclose(part.core, whole.core[:, 33:71], atol=1e-6)
    np.testing.assert_allclose(part.shell, whole.shell[:, 33:71], atol=1e-6)
    np.testing.assert_array_equal(grid.rows(33, 71).coords_nm()[1], grid.coords_nm()[1][33:71])
    with pytest.raises(ValueError, match="outside"):
        grid.rows(90, 100)
