"""Sections 2-4 of the report: the tilt series, orthogonal slices and 3D surfaces of the run."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import xarray as xr

from ..pipeline.settings import PipelineSpec
from ..figures import png, surface
from ..figures import run as fg
from ..pipeline.denoise import denoise_bm3d
from ..runfolder import RunFolder, step_index
from . import html as hp
from .folder import NO_TRUTH, Missing, first_last, netcdf_attrs, pipeline_settings, read_step, relative, step_label

__all__ = ["denoise_settings", "section_slices", "section_surface", "section_tilts"]


def denoise_settings(run: RunFolder, tilts: Path) -> tuple[PipelineSpec, float | None, str]:
    """The pipeline's settings for the step of ``tilts``, the BM3D level to run at, and how it was found.

    The run's settings (its spec, :attr:`RunFolder.spec`; the pipeline's
    defaults without one), with what the step's reconstruction records it
    used in their place; the level is the reconstruction's (times its
    strength), else the settings', else None (BM3D estimates it from the 0°
    image).
    """
    settings = pipeline_settings(run) or PipelineSpec()
    recon = run.recon_of(step_index(tilts))
    attrs = netcdf_attrs(recon) if recon.is_file() else {}
    used = {field: attrs[attr] for attr, field in (("denoise_psd", "psd"), ("denoise_profile", "bm3d_profile"),
                                                   ("denoise_stages", "bm3d_stages"),
                                                   ("denoise_strength", "denoise_strength")) if attr in attrs}
    settings = settings.model_copy(update=used)
    strength = float(settings.denoise_strength)
    sigma = float(attrs.get("denoise_sigma_psd", np.nan))
    if np.isfinite(sigma) and sigma > 0:
        return settings, strength * sigma, f"σ_psd = {strength * sigma:.3g} as used by the reconstruction"
    if settings.sigma_psd is not None:
        level = strength * settings.sigma_psd
        return settings, level, f"σ_psd = {level:.3g} from the run's settings (no reconstruction records one)"
    return settings, None, "σ_psd estimated from the 0° image (the reconstruction records none)"


def section_tilts(run: RunFolder) -> str:
    """Raw and BM3D-denoised images of the first tilt series, denoised as the pipeline did."""
    tilts = run.tilt_files()
    if not tilts:
        raise Missing(f"no tilt series in {relative(run, run.tilts)}/ (run `sinter4d simulate`)")
    path = tilts[0]
    with xr.open_dataset(path) as ds:
        if "counts" not in ds or "tilt_angle" not in ds.variables:
            raise Missing(f"{relative(run, path)} lacks counts or tilt_angle")
        angles = ds["tilt_angle"].values.astype(float)
        idx = fg.select_tilts(angles)
        raw = ds["counts"].isel({ds["counts"].dims[0]: idx}).values.astype(np.float32)
        attrs = dict(ds.attrs)
    win = fg.crop_window(raw)
    crop = np.ascontiguousarray(raw[:, win[0], win[1]])
    settings, sigma_psd, how = denoise_settings(run, path)
    t0 = time.perf_counter()
    denoised = denoise_bm3d(crop, settings, sigma_psd=sigma_psd, n_jobs=-1)
    seconds = time.perf_counter() - t0
    pixel = float(attrs.get("pixel_size_nm", 1.0))
    fig = fg.tilt_montage(crop, denoised, angles[idx], pixel_size_nm=pixel)
    dose = attrs.get("dose_e_per_nm2")
    caption = (f"{step_label(attrs, path)}; dose {float(dose):.0f} e⁻/nm² over {angles.size} images"
               if dose is not None else step_label(attrs, path))
    caption += (f". Top: raw counts; bottom: BM3D ({settings.psd} PSD, profile {settings.bm3d_profile}, "
                f"stages {settings.bm3d_stages}, {how}; "
                f"{crop.shape[2]} × {crop.shape[1]} px crop around the cluster, denoised in {seconds:.1f} s). "
                f"Each image has its own grey scale (0.5–99.5 percentiles).")
    return hp.image(png.figure_png(fig), alt="tilt series montage", caption=caption)


def section_slices(run: RunFolder) -> str:
    """Orthogonal sections of the first and last reconstructions beside the true cores."""
    parts = []
    for path in first_last(run):
        step = read_step(run, path)
        z, y, x = step.coords
        fig = fg.orthogonal_slices(step.volume, step.binary, step.truth, z_nm=z, y_nm=y, x_nm=x,
                                   title=step_label(step.attrs, path))
        truth = ("right: true cores (white), " + step.truth_note) if step.truth is not None \
            else (NO_TRUTH if step.truth_note == NO_TRUTH else f"truth not available: {step.truth_note}")
        caption = (f"Sections through the centre of mass of the binary volume (dotted lines: where the other "
                   f"sections cut). Left: reconstruction ({step.attrs.get('method', '?')}) with the outline of "
                   f"its binarisation (orange); {truth}, with the same outline.")
        parts.append(hp.image(png.figure_png(fig), alt=f"orthogonal slices {path.name}", caption=caption))
    return "\n".join(parts)


def section_surface(run: RunFolder) -> str:
    """Marching-cubes surfaces of the first and last binary volumes and of the true cores."""
    meshes, colours, notes = [], [], []
    for path in first_last(run):
        step = read_step(run, path)
        spacing = [float(np.median(np.diff(c))) if c.size > 1 else 1.0 for c in step.coords]
        origin = [float(c[0]) for c in step.coords]
        label = step_label(step.attrs, path)
        verts, faces = surface.surface_mesh(step.binary, spacing_nm=spacing, origin_nm=origin)
        meshes.append((f"reconstruction, {label}", verts, faces))
        colours.append(surface.RECON_SURFACE)
        if step.truth is not None:
            verts, faces = surface.surface_mesh(step.truth, spacing_nm=spacing, origin_nm=origin)
            meshes.append((f"truth, {label}", verts, faces))
            colours.append(surface.TRUTH_SURFACE)
        elif step.truth_note == NO_TRUTH:
            notes = [NO_TRUTH[0].upper() + NO_TRUTH[1:] + "."]
        else:
            notes.append(f"{path.name}: truth not available ({step.truth_note})")
    ncols = 2 if len(meshes) % 2 == 0 else min(len(meshes), 3)
    fig = surface.surface_figure(meshes, colours=colours, ncols=ncols)
    truth = " and of the true cores on the same grid (blue)" if any(m[0].startswith("truth") for m in meshes) else ""
    caption = (f"Marching-cubes surfaces of the binary volumes (copper){truth}, smoothed by a 1-voxel Gaussian "
               "for display and coarsened to about 30 000 triangles each; axes in nm, z along the beam at 0° tilt. "
               + " ".join(notes))
    return hp.image(png.figure_png(fig), alt="3D surfaces", caption=caption)
