"""The run report: one self-contained ``RUNDIR/report.html`` made from whatever the run folder holds.

:func:`build_report` reads the run folder (DESIGN.md, "Layout" and
"Conventions") and writes a single HTML file with inline CSS and every figure
embedded as a PNG data URI, in seven sections:

1. run metadata: spec, key settings, stage timings (``run.json``), versions;
2. the tilt series of the first time step, raw and BM3D-denoised;
3. orthogonal slices of the first and last reconstructions beside the truth;
4. 3D surfaces (marching cubes) of the first and last binary volumes;
5. the paper's Fig. 8 and Fig. 9(a) (``metrics_fig8.png``, ``metrics_fig9a.png``,
   ``validation_fig8.png``);
6. the validation table (``validation.nc``);
7. the fit (``fit/summary.csv``, ``summary.txt``, ``corner.png``, ``predictive.png``).

A part whose inputs are missing (a partial run) or unreadable shows one line
``not available: <why>``; the report itself never fails on them. Figures are
drawn by the pure functions of :mod:`.figures`, HTML put together by
:mod:`.html`; only this module touches files.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from .. import __version__
from ..errors import InputError
from ..io.atomic import write_text_atomic
from . import figures as fg
from . import html as hp

__all__ = ["SECTIONS", "build_report"]

logger = logging.getLogger(__name__)

#: (anchor, heading) of the report's sections, in order.
SECTIONS = (
    ("metadata", "1. Run metadata"),
    ("tilts", "2. Tilt series"),
    ("slices", "3. Orthogonal slices"),
    ("surface", "4. 3D surface rendering"),
    ("metrics", "5. Fig. 8 and Fig. 9(a)"),
    ("validation", "6. Validation against the truth"),
    ("fit", "7. Fit"),
)

_STEP = re.compile(r"^t\d+\.nc$")
_STAGES = ("simulate", "reconstruct", "measure", "validate", "fit", "report")
_LOG_TAIL_LINES = 60


class _Missing(Exception):
    """An input of a section is absent: the section shows ``not available: <message>``."""


# --------------------------------------------------------------------------
# reading the run folder (cached per report)
# --------------------------------------------------------------------------


class _Run:
    """The run folder and what has been read from it (each file read once per report)."""

    def __init__(self, path: Path):
        self.path = path
        self._cache: dict = {}

    def _cached(self, key, make: Callable):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def json(self, name: str) -> dict | None:
        """``RUNDIR/name`` parsed, or None when absent (a broken file raises)."""
        def read():
            path = self.path / name
            if not path.is_file():
                return None
            with open(path, encoding="utf-8") as fh:
                return json.load(fh)
        return self._cached(("json", name), read)

    def steps(self, folder: str) -> list[Path]:
        """``tNN.nc`` files of ``RUNDIR/folder``, in order."""
        def list_():
            d = self.path / folder
            return sorted(p for p in d.iterdir() if _STEP.match(p.name)) if d.is_dir() else []
        return self._cached(("steps", folder), list_)

    def attrs(self, path: Path) -> dict:
        """Global attributes of a netCDF file (its data are not read)."""
        def read():
            with xr.open_dataset(path) as ds:
                return dict(ds.attrs)
        return self._cached(("attrs", path), read)

    def dataset(self, name: str) -> xr.Dataset | None:
        """``RUNDIR/name`` loaded into memory, or None when absent."""
        def read():
            path = self.path / name
            if not path.is_file():
                return None
            with xr.open_dataset(path) as ds:
                return ds.load()
        return self._cached(("dataset", name), read)

    def step(self, name: str) -> dict:
        """The reconstruction ``recon/name`` and its truth on the same grid (None when absent)."""
        return self._cached(("step", name), lambda: _read_step(self, name))


def _read_step(run: _Run, name: str) -> dict:
    recon = run.path / "recon" / name
    with xr.open_dataset(recon) as ds:
        missing = [v for v in ("volume", "binary", "z", "y", "x") if v not in ds.variables]
        if missing:
            raise _Missing(f"{recon.name} lacks {', '.join(missing)}")
        out = {
            "volume": ds["volume"].values, "binary": ds["binary"].values != 0,
            "coords": tuple(ds[c].values.astype(float) for c in ("z", "y", "x")), "attrs": dict(ds.attrs),
        }
    out["truth"], out["truth_note"] = None, "no truth"
    tilts = run.path / "tilts" / name
    if not tilts.is_file():
        out["truth_note"] = f"no tilts/{name} (which holds the true volume)"
        return out
    with xr.open_dataset(tilts) as ds:
        if "true_label" not in ds or "z" not in ds.variables:
            out["truth_note"] = f"tilts/{name} holds no true_label volume (not a simulated series)"
            return out
        label = ds["true_label"].values
        coords = tuple(ds[c].values.astype(float) for c in ("z", "y", "x"))
    offset, out["truth_note"] = _registration_offset(run, out["attrs"])
    out["truth"] = fg.resample_mask(label, coords, out["coords"], offset_nm=offset)
    return out


def _registration_offset(run: _Run, recon_attrs: dict) -> tuple[np.ndarray, str]:
    """Offset (z, y, x nm) that takes reconstruction coordinates to true ones, from validation.nc."""
    try:
        val = run.dataset("validation.nc")
    except (OSError, ValueError, RuntimeError) as exc:  # what xarray/netCDF4 raise on a bad file
        return np.zeros(3), f"not registered (validation.nc unreadable: {exc})"
    if val is None or "registration_offset_nm" not in val:
        return np.zeros(3), "not registered (no validation.nc)"
    k = int(recon_attrs.get("time_index", 0))
    off = val["registration_offset_nm"]
    if "time" not in off.dims or k >= off.sizes["time"]:
        return np.zeros(3), "not registered"
    values = np.nan_to_num(off.isel(time=k).values.astype(float))
    return values, "registered by the offset of validation.nc (z, y, x = " + ", ".join(f"{v:+.1f}" for v in values) + " nm)"


def _first_last(run: _Run) -> list[str]:
    names = [p.name for p in run.steps("recon")]
    if not names:
        raise _Missing("no reconstruction in recon/ (run `sinter4d reconstruct RUNDIR`)")
    return list(dict.fromkeys([names[0], names[-1]]))


def _step_label(attrs: dict, name: str) -> str:
    parts = [name.removesuffix(".nc")]
    if "pt_time_s" in attrs:
        parts.append(f"processing time {float(attrs['pt_time_s']):g} s")
    if "temperature_C" in attrs:
        parts.append(f"{float(attrs['temperature_C']):g} °C")
    return ", ".join(parts)


# --------------------------------------------------------------------------
# 1. metadata
# --------------------------------------------------------------------------


def _duration(seconds) -> str:
    if seconds is None or not np.isfinite(float(seconds)):
        return "–"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    h, rem = divmod(round(s), 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d} min"


def _settings(run: _Run, spec: dict | None) -> dict:
    acq = (spec or {}).get("acquisition", {}) or {}
    pipe = (spec or {}).get("pipeline", {}) or {}
    tilts, recons = run.steps("tilts"), run.steps("recon")
    ta = run.attrs(tilts[0]) if tilts else {}
    ra = run.attrs(recons[0]) if recons else {}
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
    pixel = ta.get("pixel_size_nm", ra.get("pixel_size_nm"))
    if pixel is not None:
        note = ""
        if acq.get("bin", 1) not in (None, 1) and "pixel_size_nm" in acq:
            note = f" ({acq['pixel_size_nm']} nm × bin {acq['bin']})"
        items["pixel size (nm)"] = f"{float(pixel):g}{note}"
    method, iters = ra.get("method", pipe.get("method")), ra.get("iterations", pipe.get("iterations"))
    if method is not None:
        items["reconstruction"] = f"{method}, {iters} iterations"
    if ra or pipe:
        denoise = ra.get("denoise", pipe.get("denoise"))
        if denoise is not None and not int(denoise):
            items["denoising"] = "off"
        elif denoise is not None:
            sigma = float(ra.get("denoise_sigma_psd", np.nan))
            strength = float(ra.get("denoise_strength", pipe.get("denoise_strength", 1.0)))
            items["denoising"] = (f"BM3D, PSD {ra.get('denoise_psd', pipe.get('psd'))}, profile "
                                  f"{ra.get('denoise_profile', pipe.get('bm3d_profile'))}, stages "
                                  f"{ra.get('denoise_stages', pipe.get('bm3d_stages', 'all'))}"
                                  + (f", σ_psd = {sigma:.3g}" if np.isfinite(sigma) else "")
                                  + (f" × strength {strength:g}" if strength != 1.0 else ""))
        if "align_method" in ra or "align_method" in pipe:
            items["alignment"] = ra.get("align_method", pipe.get("align_method"))
        if "axis_offset_px" in ra:
            true = ta.get("true_axis_offset_px")
            items["tilt-axis offset found, first step (px)"] = (
                f"{float(ra['axis_offset_px']):+.2f}" + (f" (true {float(true):+.2f})" if true is not None else ""))
    items["time steps (tilts / recon)"] = f"{len(tilts)} / {len(recons)}"
    model = ((spec or {}).get("sintering") or {}).get("model")
    if model:
        items["sintering model card"] = model
    return items


def _stage_table(info: dict) -> str:
    stages = info.get("stages") or {}
    names = [s for s in _STAGES if s in stages] + [s for s in stages if s not in _STAGES]
    rows, classes = [], []
    for name in names:
        st = stages.get(name) or {}
        status = str(st.get("status", "–"))
        css = {"done": "ok", "skipped": "warn", "not run": "warn", "failed": "bad"}.get(status, "")
        rows.append([name, f'<span class="{css}">{hp.esc(status)}</span>', _duration(st.get("seconds")),
                     st.get("error") or ""])
        classes.append("bad" if status == "failed" else "")
    total = sum(float(s.get("seconds") or 0.0) for s in stages.values() if isinstance(s, dict))
    rows.append(["total", "", _duration(total), ""])
    classes.append("summary")
    return hp.table(["stage", "status", "time", "error"], rows, row_classes=classes, raw_html_columns=(1,))


def _recon_timings(run: _Run) -> str:
    recons = run.steps("recon")
    if not recons:
        return hp.not_available("no reconstruction in recon/")
    per: dict[str, list[float]] = {}
    for path in recons:
        for key, value in run.attrs(path).items():
            if key.startswith("seconds_"):
                per.setdefault(key.removeprefix("seconds_"), []).append(float(value))
    if not per:
        return hp.not_available("the reconstruction files record no seconds_* attributes")
    rows = [[k, float(np.median(v)), float(np.sum(v)), len(v)] for k, v in per.items()]
    rows.append(["all stages", float(np.sum([r[1] for r in rows])), float(np.sum([r[2] for r in rows])),
                 len(recons)])
    return hp.table(["stage", "median per step (s)", "total (s)", "steps"], rows,
                    row_classes=[""] * (len(rows) - 1) + ["summary"], digits=3)


def _log_tail(run: _Run) -> str:
    path = run.path / "run.log"
    if not path.is_file():
        return hp.not_available("no run.log")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    tail = lines[-_LOG_TAIL_LINES:]
    return hp.details(f"run.log: last {len(tail)} of {len(lines)} lines", hp.preformatted("\n".join(tail)))


def _section_metadata(run: _Run) -> str:
    parts = []
    spec = run.json("spec.json")
    info = run.json("run.json")
    items: dict = {}
    if spec is None:
        parts.append(hp.not_available("spec.json not found"))
    else:
        items.update({"name": spec.get("name", "–"), "description": spec.get("description", "–"),
                      "seed": spec.get("seed", "–")})
    if info is not None:
        items["spec file"] = info.get("spec_file", "–")
        items["started"] = info.get("started", "–")
        items["finished"] = info.get("finished") or "not finished"
        if info.get("seconds_last_invocation") is not None:
            items["wall time of the last invocation"] = _duration(info["seconds_last_invocation"])
    items["run folder"] = str(run.path)
    parts.append(hp.definition_table(items))
    parts.append(hp.heading("Key settings"))
    parts.append(hp.definition_table(_settings(run, spec)))
    parts.append(hp.heading("Stage timings (run.json)"))
    if info is None:
        parts.append(hp.not_available("no run.json (it is written by `sinter4d run`)"))
    else:
        parts.append(_stage_table(info))
    parts.append(hp.heading("Reconstruction time per step (recon/*.nc attributes)"))
    parts.append(_recon_timings(run))
    parts.append(hp.heading("Versions and host"))
    versions = (info or {}).get("versions") or {}
    host = (info or {}).get("host") or {}
    cols = []
    if versions:
        cols.append(hp.table(["package", "version"], sorted(versions.items())))
    else:
        recorded = {}
        for name in ("truth.nc", "metrics.nc", "validation.nc"):
            if (run.path / name).is_file():
                recorded[name] = run.attrs(run.path / name).get("sinter4d_version", "–")
        cols.append(hp.not_available("no versions recorded (no run.json)")
                    + (hp.table(["file", "sinter4d_version"], sorted(recorded.items())) if recorded else ""))
    if host:
        cols.append(hp.table(["host", ""], [[k, json.dumps(v) if isinstance(v, (dict, list)) else v]
                                           for k, v in host.items()]))
    parts.append('<div class="cols">' + "".join(f"<div>{c}</div>" for c in cols) + "</div>")
    parts.append(_log_tail(run))
    return "\n".join(parts)


# --------------------------------------------------------------------------
# 2. tilt series
# --------------------------------------------------------------------------


def _denoise_settings(run: _Run, name: str) -> tuple[dict, str]:
    """Keyword arguments of denoise_bm3d as the pipeline used them for step ``name``, and how."""
    recon = run.path / "recon" / name
    spec_pipe = ((run.json("spec.json") or {}).get("pipeline") or {})
    attrs = run.attrs(recon) if recon.is_file() else {}
    kwargs = {"psd": attrs.get("denoise_psd", spec_pipe.get("psd") or "g4"),
              "profile": attrs.get("denoise_profile", spec_pipe.get("bm3d_profile") or "np")}
    stages = attrs.get("denoise_stages", spec_pipe.get("bm3d_stages"))
    if stages is not None:
        kwargs["stages"] = stages
    sigma = float(attrs.get("denoise_sigma_psd", np.nan))
    strength = float(attrs.get("denoise_strength", spec_pipe.get("denoise_strength", 1.0)))
    if np.isfinite(sigma) and sigma > 0:
        kwargs["sigma_psd"] = strength * sigma
        how = f"σ_psd = {strength * sigma:.3g} as used by the reconstruction"
    else:
        how = "σ_psd estimated from the 0° image (the reconstruction records none)"
    return kwargs, how


def _section_tilts(run: _Run) -> str:
    from ..pipeline.denoise import denoise_bm3d

    tilts = run.steps("tilts")
    if not tilts:
        raise _Missing("no tilt series in tilts/ (run `sinter4d simulate`)")
    path = tilts[0]
    with xr.open_dataset(path) as ds:
        if "counts" not in ds or "tilt_angle" not in ds.variables:
            raise _Missing(f"tilts/{path.name} lacks counts or tilt_angle")
        angles = ds["tilt_angle"].values.astype(float)
        idx = fg.select_tilts(angles)
        raw = ds["counts"].isel({ds["counts"].dims[0]: idx}).values.astype(np.float32)
        attrs = dict(ds.attrs)
    win = fg.crop_window(raw)
    crop = np.ascontiguousarray(raw[:, win[0], win[1]])
    kwargs, how = _denoise_settings(run, path.name)
    t0 = time.perf_counter()
    denoised = denoise_bm3d(crop, n_jobs=-1, **kwargs)
    seconds = time.perf_counter() - t0
    pixel = float(attrs.get("pixel_size_nm", 1.0))
    fig = fg.tilt_montage(crop, denoised, angles[idx], pixel_size_nm=pixel)
    dose = attrs.get("dose_e_per_nm2")
    caption = (f"{_step_label(attrs, path.name)}; dose {float(dose):.0f} e⁻/nm² over {angles.size} images"
               if dose is not None else _step_label(attrs, path.name))
    caption += (f". Top: raw counts; bottom: BM3D ({kwargs['psd']} PSD, profile {kwargs['profile']}, "
                f"stages {kwargs.get('stages', 'all')}, {how}; "
                f"{crop.shape[2]} × {crop.shape[1]} px crop around the cluster, denoised in {seconds:.1f} s). "
                f"Each image has its own grey scale (0.5–99.5 percentiles).")
    return hp.image(fg.figure_png(fig), alt="tilt series montage", caption=caption)


# --------------------------------------------------------------------------
# 3. orthogonal slices, 4. surfaces
# --------------------------------------------------------------------------


def _section_slices(run: _Run) -> str:
    parts = []
    for name in _first_last(run):
        step = run.step(name)
        z, y, x = step["coords"]
        fig = fg.orthogonal_slices(step["volume"], step["binary"], step["truth"], z_nm=z, y_nm=y, x_nm=x,
                                   title=_step_label(step["attrs"], name))
        truth = ("right: true cores (white), " + step["truth_note"]) if step["truth"] is not None \
            else f"truth not available: {step['truth_note']}"
        caption = (f"Sections through the centre of mass of the binary volume (dotted lines: where the other "
                   f"sections cut). Left: reconstruction ({step['attrs'].get('method', '?')}) with the outline of "
                   f"its binarisation (orange); {truth}, with the same outline.")
        parts.append(hp.image(fg.figure_png(fig), alt=f"orthogonal slices {name}", caption=caption))
    return "\n".join(parts)


def _section_surface(run: _Run) -> str:
    meshes, colours, notes = [], [], []
    names = _first_last(run)
    for name in names:
        step = run.step(name)
        z, y, x = step["coords"]
        spacing = [float(np.median(np.diff(c))) if c.size > 1 else 1.0 for c in (z, y, x)]
        origin = [float(c[0]) for c in (z, y, x)]
        label = _step_label(step["attrs"], name)
        verts, faces = fg.surface_mesh(step["binary"], spacing_nm=spacing, origin_nm=origin)
        meshes.append((f"reconstruction, {label}", verts, faces))
        colours.append(fg.RECON_SURFACE)
        if step["truth"] is not None:
            verts, faces = fg.surface_mesh(step["truth"], spacing_nm=spacing, origin_nm=origin)
            meshes.append((f"truth, {label}", verts, faces))
            colours.append(fg.TRUTH_SURFACE)
        else:
            notes.append(f"{name}: truth not available ({step['truth_note']})")
    ncols = 2 if len(meshes) % 2 == 0 else min(len(meshes), 3)
    fig = fg.surface_figure(meshes, colours=colours, ncols=ncols)
    caption = ("Marching-cubes surfaces of the binary volumes (copper) and of the true cores on the same grid "
               "(blue), smoothed by a 1-voxel Gaussian for display and coarsened to about 30 000 triangles each; "
               "axes in nm, z along the beam at 0° tilt. " + " ".join(notes))
    return hp.image(fg.figure_png(fig), alt="3D surfaces", caption=caption)


# --------------------------------------------------------------------------
# 5. metrics figures
# --------------------------------------------------------------------------

_METRIC_FIGURES = (
    ("metrics_fig8.png",
     "Fig. 8: neck ratio r_n/r_p (a) and distance ratio d/2r_p (b) against processing time, as measured (metrics.nc)."),
    ("metrics_fig9a.png",
     ("Fig. 9(a): neck radius r_n against centre distance d, coloured by the aspect ratio H/W, with the "
      "volume-conserving two-sphere models.")),
    ("validation_fig8.png",
     "Fig. 8 of the pairs matched to the truth (validation.nc): measured (solid) and true (dashed) trajectories."),
)


def _status_counts(run: _Run) -> str:
    metrics = run.dataset("metrics.nc")
    if metrics is None or "status" not in metrics:
        return ""
    values, counts = np.unique(metrics["status"].values.astype(str), return_counts=True)
    meanings = {}
    try:
        meanings = json.loads(metrics["status"].attrs.get("meanings", "{}"))
    except ValueError:
        pass
    rows = [[v, int(c), meanings.get(v, "")] for v, c in zip(values, counts, strict=True)]
    n_time, n_pair = metrics["status"].shape
    return (hp.heading(f"Measurement status ({n_pair} pairs × {n_time} steps, metrics.nc)")
            + hp.table(["status", "pair-steps", "meaning"], rows))


def _section_metrics(run: _Run) -> str:
    parts = []
    for name, caption in _METRIC_FIGURES:
        path = run.path / name
        if path.is_file():
            parts.append(hp.image(fg.shrink_png(path.read_bytes(), max_width_px=1200), alt=name,
                                  caption=f"{name} — {caption}", width_px=None))
        else:
            stage = "validate" if name.startswith("validation") else "measure"
            parts.append(hp.not_available(f"{name} not found (made by `sinter4d {stage} RUNDIR`)"))
    parts.append(_status_counts(run))
    return "\n".join(parts)


# --------------------------------------------------------------------------
# 6. validation
# --------------------------------------------------------------------------

_PAIR_COLUMNS = (("neck_ratio", "r_n/r_p"), ("distance_ratio", "d/2r_p"))
_EXTRA_COLUMNS = (("neck_radius_nm", "r_n (nm)"), ("neck_radius_3d_nm", "r_n 3D (nm)"), ("distance_nm", "d (nm)"))


def _abs_stats(values: np.ndarray) -> tuple[float, float]:
    finite = np.abs(values[np.isfinite(values)])
    return (float(np.median(finite)), float(finite.max())) if finite.size else (np.nan, np.nan)


def _validation_pairs(val: xr.Dataset) -> str:
    names = [(v, lab) for v, lab in _PAIR_COLUMNS + _EXTRA_COLUMNS if v in val and val[v].dims == ("time", "pair")]
    if not names:
        raise _Missing("validation.nc holds no (time, pair) error variable")
    header = ["true pair", "measured as", "steps"]
    groups = [("", 3)]
    for _, lab in names:
        header += ["median", "max"]
        groups.append((f"|err| {lab}", 2))
    rows = []
    first = names[0][0]
    for k, pair in enumerate(val["pair"].values):
        matched = ""
        if "measured_pair" in val:
            labels = [str(s) for s in val["measured_pair"].values[:, k] if str(s)]
            matched = ", ".join(dict.fromkeys(labels)) or "not found"
        row = [str(pair), matched, int(np.isfinite(val[first].values[:, k]).sum())]
        for v, _ in names:
            row += list(_abs_stats(val[v].values[:, k]))
        rows.append(row)
    summary = ["all pairs", "", int(np.isfinite(val[first].values).sum())]
    for v, _ in names:
        med, mx = _abs_stats(val[v].values)
        summary += [float(val[f"{v}_median_abs_error"]) if f"{v}_median_abs_error" in val else med,
                    float(val[f"{v}_max_abs_error"]) if f"{v}_max_abs_error" in val else mx]
    rows.append(summary)
    return hp.table(header, rows, row_classes=[""] * (len(rows) - 1) + ["summary"], digits=3, header_groups=groups)


def _validation_variables(val: xr.Dataset) -> str:
    rows = []
    for name, var in val.data_vars.items():
        if var.dims != ("time", "pair") or var.dtype.kind != "f" or name == "tilt_axis_angle_deg":
            continue
        med, mx = _abs_stats(var.values)
        if f"{name}_median_abs_error" in val:
            med = float(val[f"{name}_median_abs_error"])
        if f"{name}_max_abs_error" in val:
            mx = float(val[f"{name}_max_abs_error"])
        quantity = str(var.attrs.get("long_name", "")).removeprefix("error of the ")
        rows.append([name, quantity, var.attrs.get("units", ""), med, mx, int(np.isfinite(var.values).sum())])
    if not rows:
        return ""
    return (hp.heading("Every variable: |measured − true| over all pairs and steps")
            + hp.table(["variable", "quantity", "units", "median |err|", "max |err|", "values"], rows, digits=3))


def _validation_steps(val: xr.Dataset) -> str:
    cols = [c for c in ("found", "missed", "spurious", "dice") if c in val and val[c].dims == ("time",)]
    if not cols:
        return hp.not_available("validation.nc holds no per-step counts or Dice")
    header = ["step", "time (s)", "T (°C)"] + ["Dice" if c == "dice" else f"pairs {c}" for c in cols]
    has_off = "registration_offset_nm" in val and val["registration_offset_nm"].dims[0] == "time"
    if has_off:
        header += ["registration offset z, y, x (nm)"]
    rows = []
    for k in range(val.sizes["time"]):
        row = [int(val["time"].values[k]) if "time" in val.coords else k,
               float(val["pt_time_s"].values[k]) if "pt_time_s" in val.coords else np.nan,
               float(val["temperature_C"].values[k]) if "temperature_C" in val.coords else np.nan]
        row += [val[c].values[k].item() for c in cols]
        if has_off:
            row.append(", ".join(f"{v:+.1f}" for v in val["registration_offset_nm"].values[k]))
        rows.append(row)
    classes = ["bad" if any(val[c].values[k] > 0 for c in ("missed", "spurious") if c in cols) else ""
               for k in range(len(rows))]
    return hp.heading("Per step: pairs and Dice of the binary against the true cores") + hp.table(
        header, rows, row_classes=classes, digits=3)


def _validation_orientation(val: xr.Dataset) -> str:
    need = ("neck_radius_nm_median_error", "neck_fill_nm2", "neck_fill_necks", "neck_fill_resolution_nm")
    if "orientation" not in val.dims or any(v not in val for v in need):
        return ""
    rows = [[str(o).replace("_", " "), *(val[v].values[k].item() for v in need)]
            for k, o in enumerate(val["orientation"].values)]
    return (hp.heading("Neck radius by the pair's angle to the tilt axis (< 45° along, ≥ 45° across)")
            + hp.table(["pairs", "median error (nm)", "fill K (nm²)", "necks", "blur giving K (nm)"], rows, digits=3)
            + hp.paragraph("Error is measured − true (signed). K is the median of r_measured² − r_true²; a Gaussian blur "
                           "of the given SD along the pair axis widens a neck by that much at half height.",
                           css_class="caption"))


def _section_validation(run: _Run) -> str:
    val = run.dataset("validation.nc")
    if val is None:
        reason = "no truth.nc" if not (run.path / "truth.nc").is_file() else "no validation.nc"
        raise _Missing(f"{reason} (run `sinter4d validate RUNDIR` on a simulated run)")
    a = val.attrs
    head = {}
    for key, label in (("pairs_true", "true pairs"), ("pairs_found", "found"), ("pairs_missed", "missed"),
                       ("pairs_spurious", "spurious"), ("gate_nm", "matching gate (nm)"), ("median_dice", "median Dice")):
        if key in a:
            head[label] = a[key].item() if hasattr(a[key], "item") else a[key]
    parts = []
    if head:
        parts.append(hp.definition_table(head))
    parts.append(hp.heading("Per true pair: |measured − true|"))
    parts.append(_validation_pairs(val))
    parts.append(hp.paragraph("Errors are measured − true for each true pair matched to a measured pair, over the "
                              "steps where both are finite; the summary row is over all pairs and steps "
                              "(validation.nc's *_median_abs_error / *_max_abs_error).", css_class="caption"))
    parts.append(_validation_orientation(val))
    parts.append(_validation_steps(val))
    parts.append(_validation_variables(val))
    return "\n".join(parts)


# --------------------------------------------------------------------------
# 7. fit
# --------------------------------------------------------------------------


def _true_parameters(run: _Run, names: list[str]) -> dict[str, float]:
    truth = run.dataset("truth.nc")
    out = {}
    if truth is not None:
        for n in names:
            if n in truth and truth[n].ndim == 0:
                out[n] = float(truth[n])
    return out


def _fit_table(run: _Run, path: Path) -> str:
    import pandas as pd

    table = pd.read_csv(path, index_col=0)
    names = [str(n) for n in table.index]
    if "truth" not in table.columns:
        truth = _true_parameters(run, names)
        if truth:
            table["truth"] = [truth.get(n, np.nan) for n in names]
    hdi = [c for c in table.columns if str(c).startswith("hdi_")]
    if "truth" in table.columns and len(hdi) == 2:
        lo, hi = table[hdi[0]].to_numpy(float), table[hdi[1]].to_numpy(float)
        t = table["truth"].to_numpy(float)
        table["truth in HDI"] = [("yes" if a <= v <= b else "no") if np.isfinite(v) else "–"
                                 for a, v, b in zip(lo, t, hi, strict=True)]
    classes = []
    if "r_hat" in table.columns:
        classes = ["bad" if float(r) > 1.1 else "" for r in table["r_hat"].to_numpy(float)]
    rows = [[name] + [v.item() if hasattr(v, "item") else v for v in table.loc[name].tolist()] for name in table.index]
    return hp.table(["parameter", *map(str, table.columns)], rows, row_classes=classes or None, digits=4)


def _section_fit(run: _Run) -> str:
    fit = run.path / "fit"
    if not fit.is_dir():
        raise _Missing("no fit/ folder (run `sinter4d fit RUNDIR/metrics.nc --spec SPEC --out RUNDIR/fit`)")
    parts = []
    txt = fit / "summary.txt"
    if txt.is_file():
        header = txt.read_text(encoding="utf-8").split("\n\n", 1)[0].strip()
        parts.append(hp.heading("Convergence"))
        parts.append(hp.preformatted(header) if header else hp.not_available("summary.txt has no header"))
    else:
        parts.append(hp.not_available("fit/summary.txt not found"))
    parts.append(hp.heading("Posterior summary (fit/summary.csv)"))
    csv = fit / "summary.csv"
    if csv.is_file():
        parts.append(_fit_table(run, csv))
        parts.append(hp.paragraph("Rows with R-hat > 1.1 are shaded; 'truth' is the value the run was simulated "
                                  "with (truth.nc), when known.", css_class="caption"))
    else:
        parts.append(hp.not_available("fit/summary.csv not found"))
    for name, label, width in (("corner.png", "Corner plot of the posterior", 900),
                               ("predictive.png", "Posterior predictive of the trajectories", None)):
        parts.append(hp.heading(label))
        path = fit / name
        if path.is_file():
            parts.append(hp.image(fg.shrink_png(path.read_bytes(), max_width_px=1240), alt=name,
                                  caption=f"fit/{name}", width_px=width))
        else:
            parts.append(hp.not_available(f"fit/{name} not found"))
    return "\n".join(parts)


# --------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------

_BUILDERS: dict[str, Callable[[_Run], str]] = {
    "metadata": _section_metadata,
    "tilts": _section_tilts,
    "slices": _section_slices,
    "surface": _section_surface,
    "metrics": _section_metrics,
    "validation": _section_validation,
    "fit": _section_fit,
}


def _render(anchor: str, run: _Run) -> str:
    """Body of one section; a missing or unreadable input becomes a 'not available' line."""
    try:
        return _BUILDERS[anchor](run)
    except _Missing as exc:
        return hp.not_available(str(exc))
    except Exception as exc:  # a partial or odd run folder must still give a report
        logger.warning("report section %r failed: %s", anchor, exc, exc_info=logger.isEnabledFor(logging.DEBUG))
        return hp.not_available(f"{type(exc).__name__}: {exc}")


def build_report(run_dir: str | Path, *, progress: bool = True) -> Path:
    """Write RUNDIR/report.html (atomically) from whatever the run folder holds; return its path.

    The report is one self-contained HTML file (inline CSS, figures as PNG
    data URIs, no scripts, no external links) with the sections of
    :data:`SECTIONS`. A section whose inputs are missing or unreadable shows
    ``not available: <why>`` instead of failing.

    Parameters
    ----------
    run_dir : str or Path
        A run folder (DESIGN.md, "Layout"): ``spec.json``, ``run.json``,
        ``tilts/``, ``recon/``, ``metrics.nc``, ``validation.nc``, ``fit/``...,
        any of which may be missing.
    progress : bool, optional
        Show a progress bar over the sections.

    Returns
    -------
    Path
        ``RUNDIR/report.html``.

    Raises
    ------
    InputError
        ``run_dir`` is not a folder.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise InputError(f"{run}: not a run folder (no such directory)")
    ctx = _Run(run)
    bodies = []
    t0 = time.perf_counter()
    for anchor, title in tqdm(SECTIONS, desc=f"report {run.name}", unit="section", disable=not progress):
        bodies.append((anchor, title, _render(anchor, ctx)))
    try:
        name = (ctx.json("spec.json") or {}).get("name") or run.name
    except ValueError:
        name = run.name
    subtitle = (f"{run.resolve()} — made {datetime.now().astimezone().isoformat(timespec='seconds')} by "
                f"sinter4d {__version__} in {time.perf_counter() - t0:.1f} s")
    text = hp.page(f"sinter4d run report: {name}", bodies, subtitle=subtitle)
    out = write_text_atomic(run / "report.html", text)
    logger.info("report written to %s (%.1f MB)", out, out.stat().st_size / 1e6)
    return out
