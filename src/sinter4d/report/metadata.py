"""Section 1 of the report: the run's spec, key settings, stage timings, versions and log."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ..errors import InputError
from ..pipeline.settings import PipelineSpec
from ..runfolder import STAGE_NAMES, STAGES, RunFolder
from . import html as hp
from .folder import NO_TRUTH, duration, netcdf_attrs, pipeline_settings, read_json, relative

__all__ = ["key_settings", "section_metadata"]

_LOG_TAIL_LINES = 60


def _acquisition_settings(acq: dict, ta: dict, tilts: list) -> dict:
    items: dict = {}
    if "dose_e_per_nm2" in ta:
        items["dose (e⁻/nm², whole series, first step)"] = float(ta["dose_e_per_nm2"])
    elif acq.get("dose_e_per_nm2") is not None:
        items["dose (e⁻/nm², whole series, spec)"] = acq["dose_e_per_nm2"]
    if "probe_current_pA" in ta or "probe_current_pA" in acq:
        items["probe current (pA)"] = ta.get("probe_current_pA", acq.get("probe_current_pA"))
    if "dwell_time_ns" in ta or "dwell_time_ns" in acq:
        dwell = float(ta.get("dwell_time_ns", acq.get("dwell_time_ns")))
        spec_dwell = acq.get("dwell_time_ns")
        note = f" ({spec_dwell:g} ns per detector pixel × binning)" if spec_dwell and spec_dwell != dwell else ""
        items["dwell time (ns per image pixel)"] = f"{dwell:g}{note}"
    if tilts:
        with xr.open_dataset(tilts[0]) as ds:
            angles = ds["tilt_angle"].values.astype(float) if "tilt_angle" in ds.variables else None
            shape = ds["counts"].shape if "counts" in ds else None
        if angles is not None and angles.size:
            step = np.median(np.diff(np.sort(angles))) if angles.size > 1 else float("nan")
            items["tilts"] = f"{angles.min():+.0f}° … {angles.max():+.0f}° in {step:g}° steps ({angles.size} images)"
        if shape is not None:
            items["images (px)"] = f"{shape[-2]} × {shape[-1]}"
    elif "tilt_min_deg" in acq:
        items["tilts (spec)"] = f"{acq['tilt_min_deg']:+g}° … {acq['tilt_max_deg']:+g}° in {acq.get('tilt_step_deg')}° steps"
    return items


def _box_text(box) -> str:
    """``", on the specimen's box (rows a–b, columns c–d)"`` of a recorded ``denoise_box`` (start, stop pairs),
    or ``""``."""
    if box is None:
        return ""
    y0, y1, x0, x1 = (int(v) for v in np.ravel(box))
    return f", on the specimen's box (rows {y0}–{y1 - 1}, columns {x0}–{x1 - 1})"


def _pipeline_settings(ra: dict, ta: dict, pipe: PipelineSpec | None) -> dict:
    """What the reconstruction used (its attributes), else what the run's settings say."""
    def used(attr: str, field: str):
        return ra.get(attr, getattr(pipe, field) if pipe is not None else None)

    items: dict = {}
    method, iters = used("method", "method"), used("iterations", "iterations")
    if method is not None:
        items["reconstruction"] = f"{method}, {iters} iterations"
    if not ra and pipe is None:
        return items
    denoise = used("denoise", "denoise")
    if denoise is not None and not int(denoise):
        items["denoising"] = "off"
    elif denoise is not None:
        sigma = float(ra.get("denoise_sigma_psd", np.nan))
        strength = float(used("denoise_strength", "denoise_strength"))
        items["denoising"] = (f"BM3D, PSD {used('denoise_psd', 'psd')}, profile {used('denoise_profile', 'bm3d_profile')}, "
                              f"stages {used('denoise_stages', 'bm3d_stages')}"
                              + (f", σ_psd = {sigma:.3g}" if np.isfinite(sigma) else "")
                              + (f" × strength {strength:g}" if strength != 1.0 else "")
                              + _box_text(ra.get("denoise_box")))
    if "align_method" in ra or pipe is not None:
        items["alignment"] = used("align_method", "align_method")
    if "axis_offset_px" in ra:
        true = ta.get("true_axis_offset_px")
        items["tilt-axis offset found, first step (px)"] = (
            f"{float(ra['axis_offset_px']):+.2f}" + (f" (true {float(true):+.2f})" if true is not None else ""))
    return items


def key_settings(run: RunFolder, spec: dict | None) -> dict:
    """The settings that shape the run's numbers, as recorded by its files (name: value)."""
    acq = (spec or {}).get("acquisition", {}) or {}
    tilts, recons = run.tilt_files(), run.recon_files()
    ta = netcdf_attrs(tilts[0]) if tilts else {}
    ra = netcdf_attrs(recons[0]) if recons else {}
    items = _acquisition_settings(acq, ta, tilts)
    pixel = ta.get("pixel_size_nm", ra.get("pixel_size_nm"))
    if pixel is not None:
        note = ""
        if acq.get("bin", 1) not in (None, 1) and "pixel_size_nm" in acq:
            note = f" ({acq['pixel_size_nm']} nm × bin {acq['bin']})"
        items["pixel size (nm)"] = f"{float(pixel):g}{note}"
    try:
        pipe = pipeline_settings(run)
    except InputError as exc:
        pipe, items["pipeline settings"] = None, f"not valid: {exc}"
    items.update(_pipeline_settings(ra, ta, pipe))
    items[f"time steps ({relative(run, run.tilts)} / {relative(run, run.recon)})"] = f"{len(tilts)} / {len(recons)}"
    model = ((spec or {}).get("sintering") or {}).get("model")
    if model:
        items["sintering model card"] = model
    return items


def _stage_table(info: dict) -> str:
    stages = info.get("stages") or {}
    names = [s for s in STAGE_NAMES if s in stages] + [s for s in stages if s not in STAGE_NAMES]
    rows, classes = [], []
    for name in names:
        st = stages.get(name) or {}
        status = str(st.get("status", "–"))
        css = {"done": "ok", "skipped": "warn", "not run": "warn", "failed": "bad"}.get(status, "")
        rows.append([name, f'<span class="{css}">{hp.esc(status)}</span>', duration(st.get("seconds")),
                     st.get("error") or st.get("reason") or ""])
        classes.append("bad" if status == "failed" else "")
    total = sum(float(s.get("seconds") or 0.0) for s in stages.values() if isinstance(s, dict))
    rows.append(["total", "", duration(total), ""])
    classes.append("summary")
    return hp.table(["stage", "status", "time", "error or reason"], rows, row_classes=classes, raw_html_columns=(1,))


def _recon_timings(run: RunFolder) -> str:
    recons = run.recon_files()
    if not recons:
        return hp.not_available(f"no reconstruction in {relative(run, run.recon)}/")
    per: dict[str, list[float]] = {}
    for path in recons:
        for key, value in netcdf_attrs(path).items():
            if key.startswith("seconds_"):
                per.setdefault(key.removeprefix("seconds_"), []).append(float(value))
    if not per:
        return hp.not_available("the reconstruction files record no seconds_* attributes")
    rows = [[k, float(np.median(v)), float(np.sum(v)), len(v)] for k, v in per.items()]
    rows.append(["all stages", float(np.sum([r[1] for r in rows])), float(np.sum([r[2] for r in rows])),
                 len(recons)])
    return hp.table(["stage", "median per step (s)", "total (s)", "steps"], rows,
                    row_classes=[""] * (len(rows) - 1) + ["summary"], digits=3)


def _log_tail(run: RunFolder) -> str:
    name = relative(run, run.log)
    if not run.log.is_file():
        return hp.not_available(f"no {name}")
    lines = run.log.read_text(encoding="utf-8", errors="replace").splitlines()
    tail = lines[-_LOG_TAIL_LINES:]
    return hp.details(f"{name}: last {len(tail)} of {len(lines)} lines", hp.preformatted("\n".join(tail)))


def _versions(run: RunFolder, info: dict | None) -> str:
    versions = (info or {}).get("versions") or {}
    host = (info or {}).get("host") or {}
    cols = []
    if versions:
        cols.append(hp.table(["package", "version"], sorted(versions.items())))
    else:
        recorded = {relative(run, path): netcdf_attrs(path).get("sinter4d_version", "–")
                    for path in (run.truth, run.metrics, run.validation) if path.is_file()}
        cols.append(hp.not_available(f"no versions recorded (no {relative(run, run.record)})")
                    + (hp.table(["file", "sinter4d_version"], sorted(recorded.items())) if recorded else ""))
    if host:
        cols.append(hp.table(["host", ""], [[k, json.dumps(v) if isinstance(v, (dict, list)) else v]
                                           for k, v in host.items()]))
    return '<div class="cols">' + "".join(f"<div>{c}</div>" for c in cols) + "</div>"


def _imported(run: RunFolder, info: dict | None) -> str:
    """What an imported run was made from: the manifest, and per step its stack and where each value came from."""
    skipped = ", ".join(s.name for s in STAGES if s.needs_truth)
    parts = [hp.paragraph(f"{NO_TRUTH[0].upper()}{NO_TRUTH[1:]} ({relative(run, run.manifest)}): the stages that "
                          f"need one ({skipped}) are not run, and nothing here is compared with a truth.",
                          css_class="na")]
    manifest = (info or {}).get("manifest") or {}
    rows = []
    for path in run.tilt_files():
        attrs = netcdf_attrs(path)
        try:
            prov = json.loads(attrs.get("provenance", "{}"))
        except ValueError:
            prov = {}
        stack = prov.get("stack") or {}
        rows.append([relative(run, path), attrs.get("manifest_row", "–"),
                     str(stack.get("file", attrs.get("source_file", "–"))),
                     str(stack.get("sha256", attrs.get("source_sha256", "–")))[:12],
                     float(attrs.get("pt_time_s", np.nan)), float(attrs.get("temperature_C", np.nan)),
                     (prov.get("angles") or {}).get("from", "–"),
                     (prov.get("pixel_size_nm") or {}).get("from", "–"),
                     (prov.get("reference") or {}).get("file", "") or "none"])
    parts.append(hp.heading(f"Imported from {manifest.get('file', relative(run, run.manifest))}"))
    parts.append(hp.table(["step", "row", "stack", "sha256", "pt_time_s (s)", "T (°C)", "angles from",
                           "pixel size from", "reference"], rows))
    return "\n".join(parts)


def section_metadata(run: RunFolder) -> str:
    """Spec, key settings, stage timings (the run's record), reconstruction times, versions, log tail."""
    parts = []
    spec = read_json(run.spec)
    info = read_json(run.record)
    items: dict = {}
    if run.imported:
        parts.append(_imported(run, info))
        items["settings file"] = (info or {}).get("settings_file") or "none (the pipeline's defaults or those recorded)"
        items["fit spec"] = (info or {}).get("fit_spec_file") or "none"
    elif spec is None:
        parts.append(hp.not_available(f"{relative(run, run.spec)} not found"))
    else:
        items.update({"name": spec.get("name", "–"), "description": spec.get("description", "–"),
                      "seed": spec.get("seed", "–")})
    if info is not None and not run.imported:
        items["spec file"] = info.get("spec_file", "–")
    if info is not None:
        items["started"] = info.get("started", "–")
        items["finished"] = info.get("finished") or "not finished"
        if info.get("seconds_last_invocation") is not None:
            items["wall time of the last invocation"] = duration(info["seconds_last_invocation"])
    items["run folder"] = str(run.path)
    parts.append(hp.definition_table(items))
    parts.append(hp.heading("Key settings"))
    parts.append(hp.definition_table(key_settings(run, spec)))
    parts.append(hp.heading(f"Stage timings ({relative(run, run.record)})"))
    if info is None:
        parts.append(hp.not_available(f"no {relative(run, run.record)} (it is written by `sinter4d run`)"))
    else:
        parts.append(_stage_table(info))
    parts.append(hp.heading(f"Reconstruction time per step ({relative(run, run.recon)}/*.nc attributes)"))
    parts.append(_recon_timings(run))
    parts.append(hp.heading("Versions and host"))
    parts.append(_versions(run, info))
    parts.append(_log_tail(run))
    return "\n".join(parts)
