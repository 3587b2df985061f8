"""Twin experiments of an acquisition: specs with known truth that image like the run.

Pure functions of specs and Datasets (no file is read): the acquisition of a
run (:func:`acquisition_of_spec`, :func:`acquisition_of_tilts`) and the twin
experiment specs that match it (:func:`twin_specs`); docs/design.md,
"Calibration".
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ..checks import check_int
from ..errors import InputError

__all__ = [
    "DEFAULT_TWINS",
    "TWIN_N_SERIES",
    "TWIN_N_STACKED",
    "TWIN_SEED_BASE",
    "acquisition_of_spec",
    "acquisition_of_tilts",
    "estimate_dose_e_per_nm2",
    "twin_seeds",
    "twin_specs",
]

DEFAULT_TWINS = 4
"""Twins of a calibration (``sinter4d calibrate --twins``, ``[calibration] twins``). Four correct
held-out twins as well as more; more firm up the between-run scatter of the calibrated
observation model (their cost, how it scales and the choice: docs/validation.md, "Calibration
of the quick acquisition")."""
TWIN_SEED_BASE = 1001
"""Twin k has seed ``TWIN_SEED_BASE + k``: far from the seeds a user's runs and the
reported quick seeds (7, 11, 19, 23) take, so no twin images the run's own specimen."""
TWIN_N_SERIES = 3
"""Tilt series per twin: the run's first, middle and last (the necks' whole range, from
the initial contact to the plateau, at a third of the quick run's cost)."""
TWIN_N_STACKED = 1
"""Cores stacked on the first layer in each twin, so that every twin holds pairs
tilted out of the film's plane (elevations of ~40–65° besides the film's 0–8°)."""

_ACQUISITION_KEYS = ("pixel_size_nm", "bin", "image_pixels", "tilt_min_deg", "tilt_max_deg", "tilt_step_deg")


def twin_seeds(n_twins: int, *, first: int = TWIN_SEED_BASE) -> list[int]:
    """The seeds of ``n_twins`` twins: ``first``, ``first + 1``, …"""
    n = check_int(n_twins, "n_twins", minimum=1)
    return [int(first) + k for k in range(n)]


def _series_subset(n: int, n_series: int) -> list[int]:
    """Indices of ``n_series`` series spread over ``n``: first and last always in, one series the middle one."""
    if n <= n_series:
        return list(range(n))
    if n_series == 1:
        return [(n - 1) // 2]
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, n_series)})


def _field_cores(n_cores: int, run_pixels: int, twin_pixels: int, n_stacked: int) -> int:
    """Cores of a twin of ``twin_pixels`` a side cut from a run of ``run_pixels``: the run's cores
    per area, and at least two on the film besides the stacked ones."""
    return max(int(round(n_cores * (twin_pixels / run_pixels) ** 2)), 2 + int(n_stacked))


def acquisition_of_spec(spec_doc: dict) -> dict:
    """The acquisition of a simulated run, from its ``spec.json`` document.

    Returns
    -------
    dict
        The run's ``[acquisition]`` table as it was simulated, with
        ``dose_e_per_nm2`` (per series, e⁻/nm²) filled in from the current
        when the spec gave the current.
    """
    from ..experiments.spec import parse_spec

    spec = parse_spec(spec_doc, source="spec.json")
    acq = spec.acquisition
    doc = acq.model_dump(mode="json")
    doc["dose_e_per_nm2"] = float(acq.dose_e_per_nm2) if acq.dose_e_per_nm2 is not None else _dose_of(acq)
    return doc


def _dose_of(acq) -> float:
    """Dose per series (e⁻/nm²) of an acquisition given by its probe current."""
    from ..acquisition import dose_e_per_nm2

    return float(dose_e_per_nm2(acq.beam_current_pA, acq.dwell_time_ns, acq.image_pixels**2,
                                len(acq.angles_deg), acq.pixel_size_nm))


def acquisition_of_tilts(tilts: xr.Dataset) -> dict:
    """The acquisition of an imported (or any) tilt series, as an ``[acquisition]`` table.

    Parameters
    ----------
    tilts : xarray.Dataset
        A tilt series file (docs/design.md, "Tilt series file"): ``counts``
        ``(tilt, y, x)``, the ``tilt_angle`` coordinate and the attribute
        ``pixel_size_nm``; ``dose_e_per_nm2`` when the file records it.

    Returns
    -------
    dict
        ``pixel_size_nm`` (the stored pixel, bin 1), ``image_pixels``,
        ``tilt_min_deg``, ``tilt_max_deg``, ``tilt_step_deg`` and
        ``dose_e_per_nm2`` (per series; from the file, else estimated from
        the images by :func:`estimate_dose_e_per_nm2`), plus
        ``dose_source`` (``"file"`` or ``"estimated"``).

    Raises
    ------
    InputError
        No pixel size, unevenly spaced tilts, images that are not square.
    """
    if "counts" not in tilts or "tilt_angle" not in tilts.coords:
        raise InputError("the tilt series lacks counts or tilt_angle")
    pixel = float(tilts.attrs.get("pixel_size_nm", float("nan")))
    if not np.isfinite(pixel) or pixel <= 0:
        raise InputError("the tilt series has no pixel_size_nm attribute")
    _, ny, nx = tilts["counts"].shape
    if ny != nx:
        raise InputError(f"twins are square fields; the images are {ny} x {nx} px")
    angles = np.asarray(tilts["tilt_angle"].values, dtype=float)
    steps = np.diff(np.sort(angles))
    if steps.size == 0 or np.ptp(steps) > 0.05 * float(np.median(steps)) + 1e-9:
        raise InputError("twins need evenly spaced tilt angles (a constant step)")
    dose = float(tilts.attrs.get("dose_e_per_nm2", float("nan")))
    source = "file"
    if not np.isfinite(dose) or dose <= 0:
        dose, source = estimate_dose_e_per_nm2(tilts), "estimated"
    return {"pixel_size_nm": pixel, "bin": 1, "image_pixels": int(nx), "tilt_min_deg": float(angles.min()),
            "tilt_max_deg": float(angles.max()), "tilt_step_deg": float(np.median(steps)),
            "dose_e_per_nm2": dose, "dose_source": source}


def estimate_dose_e_per_nm2(tilts: xr.Dataset) -> float:
    """Dose per series (e⁻/nm²) of a tilt series that does not record it, from its noise.

    Photon transfer of the frame at the reference's tilt against the
    reference (:func:`sinter4d.acquisition.estimate_photon_transfer`) gives
    the detector's gain (units per electron); the film's electrons per pixel
    are then its level above the dark level over the gain, over the HAADF
    fraction the film scatters (:class:`~sinter4d.acquisition.HaadfModel`,
    30 nm of Si₃N₄, docs/design.md "Acquisition"). Needs a ``reference``.
    """
    if "reference" not in tilts:
        raise InputError("the tilt series records no dose and has no reference frame to estimate it from")
    from ..acquisition import HaadfModel, estimate_photon_transfer

    angles = np.asarray(tilts["tilt_angle"].values, dtype=float)
    ref_tilt = float(tilts.attrs.get("reference_tilt_deg", tilts.attrs.get("tilt_angle_deg", 0.0)))
    k = int(np.argmin(np.abs(angles - ref_tilt)))
    dark = float(tilts.attrs.get("dark_level", 0.0))
    frame = np.asarray(tilts["counts"].values[k], dtype=float) - dark
    reference = np.asarray(tilts["reference"].values, dtype=float) - dark
    transfer = estimate_photon_transfer(frame, reference,
                                        reference_frames=int(tilts.attrs.get("reference_frames", 50)))
    gain = float(transfer.gain)
    film = float(np.percentile(reference, 25))  # the film: most of the field
    haadf = HaadfModel()
    thickness = float(tilts.attrs.get("film_thickness_nm", 30.0))
    scattered = haadf.scattered_fraction(0.0, thickness / np.cos(np.radians(angles[k])))
    per_pixel = film / gain / float(scattered)
    pixel = float(tilts.attrs["pixel_size_nm"])
    return per_pixel / pixel**2 * len(angles)


def twin_specs(
    spec_doc: dict,
    n_twins: int,
    *,
    seeds: list[int] | None = None,
    n_series: int = TWIN_N_SERIES,
    n_stacked: int = TWIN_N_STACKED,
    acquisition: dict | None = None,
    image_pixels: int | None = None,
) -> list[dict]:
    """Experiment spec documents of ``n_twins`` twins of a run.

    Each twin is the run's spec with another seed (another specimen, with its
    truth), ``n_stacked`` cores stacked out of the film's plane, the run's
    first, middle and last series only (``n_series``), no fit and no
    calibration of its own; the
    acquisition (pixel size, dose per nm², tilts, noise, microscope) and the
    pipeline settings are the run's.

    Parameters
    ----------
    spec_doc : dict
        The run's experiment spec document (its ``spec.json``), or, for an
        imported run, any experiment spec whose ``[acquisition]`` is replaced
        by ``acquisition``.
    n_twins : int
        How many twins (>= 1).
    seeds : list of int, optional
        Their seeds (default :func:`twin_seeds`); must not hold the run's.
    n_series, n_stacked : int, optional
        Series per twin and stacked cores (defaults :data:`TWIN_N_SERIES`,
        :data:`TWIN_N_STACKED`). Two or more series start at the run's
        first (its initial state), the steps between those kept merged into
        one; one series is the run's middle one, reached through the run's
        log up to it (``[heating] imaged_series``: only it is imaged).
    acquisition : dict, optional
        Keys of the ``[acquisition]`` table to set (an imported run's, from
        :func:`acquisition_of_tilts`; ``dose_source`` is dropped).
    image_pixels : int, optional
        A smaller field for the twins: detector pixels a side (a multiple of
        the run's ``bin``, at most the run's), at the run's pixel size, dose
        per nm² and tilts, with the run's cores per area (at least two on the
        film besides the stacked ones). The twins' cost goes as the field's
        area; for an acquisition too large to simulate whole (the paper's
        1024² px: docs/design.md, "Calibration").

    Returns
    -------
    list of dict
        Valid experiment spec documents (``parse_spec`` accepts them), named
        ``<run>-twin-<seed>``.
    """
    from ..experiments.spec import parse_spec

    n = check_int(n_twins, "n_twins", minimum=1)
    seeds = twin_seeds(n) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != n or len(set(seeds)) != n:
        raise InputError(f"need {n} distinct twin seeds, got {seeds}")
    base = json.loads(json.dumps(spec_doc))
    if base.get("seed") in seeds:
        raise InputError(f"twin seeds {seeds} hold the run's own seed {base['seed']}")
    if acquisition is not None:
        base.setdefault("acquisition", {}).update({k: v for k, v in acquisition.items() if k != "dose_source"})
        base["acquisition"].pop("axis_offset_px", None)
    else:
        base.setdefault("acquisition", {})["axis_offset_px"] = None  # drawn anew per twin
    heating = base.get("heating") or {}
    pt, temp = heating.get("pt_time_s"), heating.get("temperature_C")
    if pt is None or temp is None:  # an imported run's spec: the default (the paper's) log
        from ..experiments.spec import HeatingSpec

        default = HeatingSpec()
        pt, temp = list(default.pt_time_s), list(default.temperature_C)
    keep = _series_subset(len(pt), check_int(n_series, "n_series", minimum=1))
    heating.pop("imaged_series", None)
    if keep[0] == 0:  # the first series is the initial state; the steps between those kept merge into one
        heating.update(pt_time_s=[pt[i] for i in keep], temperature_C=[temp[i] for i in keep])
    else:  # the specimen sinters through the run's log up to the last kept series; only those are imaged
        heating.update(pt_time_s=pt[: keep[-1] + 1], temperature_C=temp[: keep[-1] + 1], imaged_series=keep)
    base["heating"] = heating
    n_cores = int((base.get("phantom") or {}).get("n_cores", 7))
    if image_pixels is not None:
        acq = base.setdefault("acquisition", {})
        run_pixels = int(acq.get("image_pixels", 1024))
        field = check_int(image_pixels, "twin image_pixels", minimum=1)
        if field > run_pixels or field % int(acq.get("bin", 1)):
            raise InputError(f"twin image_pixels={field} must be at most the run's {run_pixels} and a multiple of "
                             f"its bin ({acq.get('bin', 1)})")
        n_cores = _field_cores(n_cores, run_pixels, field, n_stacked)
        acq["image_pixels"] = field
        base.setdefault("phantom", {})["n_cores"] = n_cores
    base.setdefault("phantom", {})["n_stacked"] = min(int(n_stacked), max(n_cores - 2, 0))
    base["fit"] = {}
    base["calibration"] = {}  # a twin never calibrates itself
    out = []
    for seed in seeds:
        doc = {**base, "seed": seed, "name": f"{base.get('name', 'run')}-twin-{seed}",
               "description": f"calibration twin of {base.get('name', 'run')} (seed {seed})"}
        out.append(json.loads(parse_spec(doc, source=f"twin {seed}").to_json()))
    return out
