"""The forward simulator run: spec -> phantom -> sintering -> truth.nc + tilts/tNN.nc.

Writes, in a run folder (:class:`sinter4d.runfolder.RunFolder`), the
validated spec (a rerun with another spec is refused), ``truth.nc`` (true
geometry and pair metrics at every tilt-series time, variables from
:mod:`sinter4d.schema`) and one HAADF tilt series per time step.

Every file is written atomically and a finished file is never rewritten, so
an interrupted run resumes where it stopped; each time step draws its noise
from its own seed (spawned from the spec's seed), so a resumed run is
identical to one run straight through. The time steps are simulated side by
side in worker processes (one per core by default, each on one thread), with
the same files as one after another.
"""

from __future__ import annotations

import json
import logging
import math
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from .. import __version__, schema
from .._cores import worker_count
from ..acquisition import BLOCK_VOXELS, simulate_tilt_series
from ..errors import InputError, SpecError
from ..io.atomic import write_text_atomic
from ..io.netcdf import write_dataset_atomic
from ..operators import ParallelProjector
from ..phantom import Cluster, Grid, make_cluster, pair_truth, voxelize
from ..runfolder import RunFolder
from ..sintering import (
    HeatingLog,
    HeatingTruth,
    ModelCard,
    OvershootSettings,
    RigidMotion,
    StepTimeErrorSettings,
    load_model_card,
    rigid_bodies,
    sinter_cluster,
    true_heating,
)
from .cluster import process_pool
from .spec import ExperimentSpec, load_spec, parse_spec, resolve_model_card

log = logging.getLogger(__name__)

#: Voxels of the simulation grid from which the time steps go to worker processes: a worker
#: takes ~3 s to start (its imports), the cost of ~10 M voxels of one step here, so smaller
#: steps stay in this process. The quick spec's grid is 30 M voxels, the tests' 7 M.
POOL_MIN_VOXELS = 2**24


@dataclass(frozen=True)
class SimulationPlan:
    """Everything a run needs, derived from a validated spec (no files touched)."""

    spec: ExperimentSpec
    card: ModelCard
    parameters: dict[str, float]
    heating: HeatingLog
    clusters: list[Cluster]
    pairs: np.ndarray
    grid: Grid
    label_grid: Grid
    seeds: list[np.random.SeedSequence]
    rigid_displacement_nm: np.ndarray
    rigid_rotation_deg: np.ndarray
    heating_truth: HeatingTruth | None = None


def plan_simulation(spec: ExperimentSpec, spec_path: str | Path | None = None) -> SimulationPlan:
    """Validate a spec against its model card and simulate the true geometry.

    Parameters
    ----------
    spec : ExperimentSpec
    spec_path : str or Path, optional
        Where the spec came from (to find its model card and name errors).

    Returns
    -------
    SimulationPlan

    Raises
    ------
    SpecError
        Unknown card, or a parameter the card does not have.
    """
    source = spec_path if spec_path is not None else spec.name
    card = load_model_card(resolve_model_card(spec.sintering.model, spec_path))
    unknown = sorted(set(spec.sintering.parameters) - set(card.parameter_names))
    if unknown:
        raise SpecError(
            f"{source}: sintering.parameters.{unknown[0]}: not a parameter of model card "
            f"{card.name!r} (it has {', '.join(card.parameter_names)})"
        )
    parameters = {**card.default_parameters, **spec.sintering.parameters}

    root = np.random.SeedSequence(spec.seed)
    phantom_seed, axis_seed, *step_seeds = root.spawn(2 + len(spec.heating.pt_time_s))
    ph = spec.phantom
    cluster0 = make_cluster(
        n_cores=ph.n_cores,
        rng=np.random.default_rng(phantom_seed),
        mean_diameter_nm=ph.mean_diameter_nm,
        diameter_sigma_log=ph.diameter_sigma_log,
        aspect_ratio_range=tuple(ph.aspect_ratio_range),
        shell_thickness_nm=ph.shell_thickness_nm,
        shell_particle_diameter_nm=tuple(ph.shell_particle_diameter_nm),
        shell_packing_fraction=ph.shell_packing_fraction,
        film_thickness_nm=ph.film_thickness_nm,
        n_stacked=ph.n_stacked,
        n_gap_pairs=ph.n_gap_pairs,
    )
    heating = HeatingLog(
        pt_time_s=np.asarray(spec.heating.pt_time_s, dtype=float),
        temperature_C=np.asarray(spec.heating.temperature_C, dtype=float),
        standby_temperature_C=spec.heating.standby_temperature_C,
        standby_s=spec.heating.standby_s,
    )
    # spawned after the others, so that the streams of the phantom, the axis and the steps are unchanged
    motion = RigidMotion(
        spec.sintering.rigid_motion,
        np.random.default_rng(root.spawn(1)[0]),
        bridging_distance_nm=2.0 * ph.shell_thickness_nm,
    )
    # the step-time errors: a stream of their own, spawned last (only when drawn)
    hs = spec.heating
    truth_heating = true_heating(
        heating,
        step_time_error=hs.step_time_error,
        overshoot=hs.overshoot,
        rng=np.random.default_rng(root.spawn(1)[0]) if hs.step_time_error.enabled else None,
    )
    clusters = sinter_cluster(
        cluster0,
        card,
        parameters,
        truth_heating.true,
        shell_thickness_nm=ph.shell_thickness_nm,
        between_series=motion if spec.sintering.rigid_motion.enabled else None,
    )
    displacement, rotation = _rigid_record(motion, len(clusters), cluster0.n_cores)
    pairs = np.asarray(clusters[0].contact, dtype=int)

    acq = spec.acquisition
    pixel = acq.output_pixel_size_nm
    n = acq.output_pixels
    field = n * pixel
    extent = _cluster_extent_nm(clusters)
    if max(abs(extent[1][0]), abs(extent[1][1]), abs(extent[2][0]), abs(extent[2][1])) > 0.45 * field:
        raise SpecError(
            f"{source}: acquisition: the cluster ({extent[2][1] - extent[2][0]:.0f} nm wide) does not fit "
            f"in the {field:.0f} nm field of view; raise image_pixels or pixel_size_nm, or lower phantom.n_cores"
        )
    zlo = clusters[0].film_top_nm - 2 * pixel
    zhi = extent[0][1] + 4 * pixel
    nz = int(math.ceil((zhi - zlo) / pixel))
    nz += nz % 2
    z_centre = 0.5 * (zlo + zhi)
    label_grid = Grid((nz, n, n), pixel, z_centre)
    ov = acq.oversample
    grid = Grid((nz * ov, n * ov, n * ov), pixel / ov, z_centre)

    if acq.axis_offset_px is not None:
        axis_offset = acq.axis_offset_px
    else:
        r = np.random.default_rng(axis_seed)
        axis_offset = float(r.uniform(-acq.axis_offset_max_px, acq.axis_offset_max_px))
    spec = spec.model_copy(update={"acquisition": acq.model_copy(update={"axis_offset_px": axis_offset})})
    return SimulationPlan(
        spec, card, parameters, heating, clusters, pairs, grid, label_grid, step_seeds, displacement, rotation,
        truth_heating,
    )


def _rigid_record(motion: RigidMotion, n_time: int, n_cores: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative rigid displacement ``(time, particle, axis)`` (nm) and turn ``(time, particle)`` (deg)."""
    steps = np.zeros((n_time, n_cores, 3))
    turns = np.zeros((n_time, n_cores))
    if motion.displacement_nm:
        steps[1:] = np.stack(motion.displacement_nm)
        turns[1:] = np.stack(motion.rotation_deg)
    return np.cumsum(steps, axis=0), np.cumsum(turns, axis=0)


def _cluster_extent_nm(clusters: list[Cluster]) -> list[tuple[float, float]]:
    """(min, max) of the cores' bounding boxes along z, y, x over all times (nm)."""
    lo = np.min([(c.centre_nm - c.radius_nm[:, None] * 1.3).min(axis=0) for c in clusters], axis=0)
    hi = np.max([(c.centre_nm + c.radius_nm[:, None] * 1.3).max(axis=0) for c in clusters], axis=0)
    return [(float(a), float(b)) for a, b in zip(lo, hi)]


def pair_labels(n: int) -> list[str]:
    """Pair labels ``P1 .. Pn`` as in the paper."""
    return [f"P{k + 1}" for k in range(n)]


def truth_dataset(plan: SimulationPlan) -> xr.Dataset:
    """The true geometry, pair metrics and parameters of a planned run.

    Returns
    -------
    xarray.Dataset
        The variables of :data:`sinter4d.schema.PAIR_METRICS` and
        :data:`sinter4d.schema.TRUTH`: dims ``(time, pair)`` for the pair
        metrics, ``(time, particle, axis)`` for the core centres, ``(time,
        contact)`` for every neck (NaN before the contact forms); the
        parameter values the truth was made with as 0-d variables named as in
        the model card.
    """
    spec, clusters, pairs = plan.spec, plan.clusters, plan.pairs
    n_time, n_pair = len(clusters), len(pairs)
    metrics = {name: np.full((n_time, n_pair), np.nan) for name in schema.PAIR_METRICS}
    third = np.zeros((n_time, n_pair), dtype=np.int16)
    for k, cluster in enumerate(clusters):
        for name, values in pair_truth(cluster, pairs).items():
            if name in metrics:
                metrics[name][k] = values
        third[k] = _third_contacts(cluster.contact, pairs)
    contacts = clusters[-1].contact
    necks = np.full((n_time, len(contacts)), np.nan)
    for k, cluster in enumerate(clusters):
        necks[k, : cluster.n_contacts] = cluster.neck_radius_nm

    coords = {
        "time": np.arange(n_time),
        "pt_time_s": np.asarray(spec.heating.pt_time_s, float),
        "temperature_C": np.asarray(spec.heating.temperature_C, float),
        "pair": pair_labels(n_pair),
        "particle": np.arange(clusters[0].n_cores),
        "axis": ["z", "y", "x"],
    }
    coords = {name: schema.coordinate(name, v, table=schema.TRUTH) for name, v in coords.items()}
    joint = spec.sintering.rigid_motion.joint_gap_nm
    values = dict(metrics)
    values.update(
        status=np.full((n_time, n_pair), "ok", dtype=object),
        n_third_contacts=third,
        pair_particles=pairs,
        centre_nm=np.stack([c.centre_nm for c in clusters]),
        radius_nm=np.stack([c.radius_nm for c in clusters]),
        initial_radius_nm=clusters[0].initial_radius_nm,
        core_aspect_ratio=clusters[0].aspect_ratio,
        core_axis=np.stack([c.axis for c in clusters]),
        rigid_body=np.stack([rigid_bodies(c, joint_gap_nm=joint) for c in clusters]),
        rigid_displacement_nm=plan.rigid_displacement_nm,
        rigid_rotation_deg=plan.rigid_rotation_deg,
        contact_particles=contacts,
        contact_neck_radius_nm=necks,
        **_heating_record(plan),
    )
    data = {name: schema.variable(name, v, table=schema.TRUTH) for name, v in values.items()}
    for name, value in plan.parameters.items():
        long_name = schema.MODEL_PARAMETER_LONG_NAME.format(name=name, card=plan.card.name)
        data[name] = ((), float(value), {"long_name": long_name, "units": "1"})
    attrs = {
        "title": f"sinter4d truth of run {spec.name}",
        "model_card": plan.card.name,
        "parameter_names": json.dumps(list(plan.parameters)),
        "film_top_nm": float(clusters[0].film_top_nm),
        "film_thickness_nm": float(clusters[0].film_thickness_nm),
        "spec": spec.to_json(),
        "sinter4d_version": __version__,
    }
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    ds["status"] = ds["status"].astype(str)
    return ds


def _heating_record(plan: SimulationPlan) -> dict[str, np.ndarray]:
    """The true heating beside the logged one: step errors, true times, each step's trace (truth.nc)."""
    truth = plan.heating_truth
    if truth is None:  # a plan made without one: the log as the truth (nothing to draw)
        truth = true_heating(plan.heating, step_time_error=StepTimeErrorSettings(), overshoot=OvershootSettings())
    true = truth.true
    temp, dur, ends = true.segments(include_standby=False)
    return dict(
        true_pt_time_s=true.pt_time_s,
        pt_step_error_s=np.concatenate([[0.0], truth.step_error_s]),
        heating_trace_time_s=true.pt_time_s[0] + np.concatenate([[0.0], np.cumsum(dur)[:-1]])[: dur.size],
        heating_trace_duration_s=dur,
        heating_trace_temperature_C=temp,
        heating_trace_series=np.repeat(np.arange(1, true.n_series), np.diff(ends)),
    )


def _third_contacts(contact: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """For each pair, how many contacts join one of its cores to another core."""
    out = np.zeros(len(pairs), dtype=np.int16)
    for p, (i, j) in enumerate(pairs):
        touches = np.isin(contact, (i, j)).any(axis=1)
        itself = np.all(np.sort(contact, axis=1) == sorted((i, j)), axis=1)
        out[p] = int(np.count_nonzero(touches & ~itself))
    return out


def tilt_series_dataset(plan: SimulationPlan, step: int, projector=None) -> xr.Dataset:
    """Simulate the tilt series of one time step (a dataset, no file)."""
    spec, acq = plan.spec, plan.spec.acquisition
    cluster = plan.clusters[step]

    def cu_rows(start: int, stop: int) -> np.ndarray:  # a block of the projection grid's rows
        phantom = voxelize(cluster, plan.grid.rows(start, stop), neck_shape=spec.phantom.neck_shape)
        return phantom.core + phantom.shell

    ds = simulate_tilt_series(
        cu_rows,
        None,
        plan.grid,
        acq.scan_settings(),
        film_thickness_nm=cluster.film_thickness_nm,
        rng=np.random.default_rng(plan.seeds[step]),
        projector=projector,
        pt_time_s=float(spec.heating.pt_time_s[step]),
        temperature_C=float(spec.heating.temperature_C[step]),
    )
    label = voxelize(cluster, plan.label_grid, neck_shape=spec.phantom.neck_shape).label
    z, _, _ = plan.label_grid.coords_nm()
    ds = ds.assign_coords(z=("z", z, {"units": "nm", "long_name": "height above the tilt axis"}))
    ds["true_label"] = (("z", "y", "x"), label.astype(np.uint8), {"units": "1", "long_name": "true core owning each voxel (0 = none)"})
    ds.attrs.update(
        voltage_kV=float(acq.voltage_kV),
        time_index=int(step),
        run=spec.name,
        spec=spec.to_json(),
        sinter4d_version=__version__,
    )
    return ds


def same_spec(stamp: Path, spec: ExperimentSpec) -> bool:
    """Whether a run folder's ``spec.json`` (if any) was made from ``spec``.

    The simulator records the tilt-axis offset it drew; a spec leaving it
    open matches whatever was drawn.
    """
    if not stamp.is_file():
        return True
    try:  # a spec.json written before a key existed holds no value for it: its default
        stored = json.loads(parse_spec(json.loads(stamp.read_text()), source=stamp).to_json())
    except (ValueError, SpecError):
        return False
    if spec.acquisition.axis_offset_px is None:
        stored.get("acquisition", {})["axis_offset_px"] = None
    return stored == json.loads(spec.to_json())


def simulate_run(
    spec: str | Path | ExperimentSpec,
    out_dir: str | Path,
    *,
    spec_path: str | Path | None = None,
    progress: bool = True,
    n_jobs: int = 1,
) -> Path:
    """Simulate a whole run from a spec file into ``out_dir`` (resumable).

    Parameters
    ----------
    spec : str or Path or ExperimentSpec
        Experiment spec: a TOML file, or one already validated.
    out_dir : str or Path
        Run folder. Created only once the spec is valid; finished files in it
        are kept, so an interrupted run resumes.
    spec_path : str or Path, optional
        Where relative names in a validated ``spec`` are looked up (the
        model card); default: ``spec`` itself when it is a file.
    progress : bool, optional
        Show a progress bar over the time steps.
    n_jobs : int, optional
        Time steps simulated at once, each in a worker process on one thread
        (-1: one per core this process may use; 1: one after another in this
        process, on every core). The files do not depend on it. A grid of
        fewer than :data:`POOL_MIN_VOXELS` voxels is simulated in this process
        (a worker's start would cost more than it saves). Workers are
        started with ``spawn``, so a script calling this with ``n_jobs != 1``
        needs the ``if __name__ == "__main__":`` guard. Each worker holds one
        time step's simulation (docs/design.md, "Acquisition").

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    SpecError
        Invalid spec (nothing is written).
    InputError
        ``out_dir`` holds a run made from another spec.
    """
    worker_count(n_jobs)  # a bad n_jobs is refused before anything is written
    if not isinstance(spec, ExperimentSpec):
        spec_path = spec
        spec = load_spec(spec)
    plan = plan_simulation(spec, spec_path)
    out = Path(out_dir)
    run = RunFolder(out)
    if not same_spec(run.spec, plan.spec):
        raise InputError(f"{out}: holds a run of a different spec; choose another --out or remove it")
    out.mkdir(parents=True, exist_ok=True)
    if not run.spec.is_file():
        write_text_atomic(run.spec, plan.spec.to_json())
    if not run.truth.is_file():
        write_dataset_atomic(truth_dataset(plan), run.truth)
    todo = [k for k in plan.spec.heating.imaged if not run.tilt(k).is_file()]
    workers = worker_count(n_jobs, len(todo)) if math.prod(plan.grid.shape) >= POOL_MIN_VOXELS else 1
    bar = tqdm(total=len(todo), desc=f"simulate {spec.name}", unit="step", disable=not progress)
    with bar:
        if workers > 1:  # each worker builds its own projector
            with process_pool(workers) as pool:
                futures = [pool.submit(_write_tilt_series, plan, k, run.tilt(k)) for k in todo]
                for done in as_completed(futures):
                    done.result()
                    bar.update()
            return out
        projector = None  # one for every series, when the stage's true angles do not differ per series
        if todo and not plan.spec.acquisition.stage.enabled and math.prod(plan.grid.shape) <= BLOCK_VOXELS:
            projector = ParallelProjector.from_grid(plan.grid, plan.spec.acquisition.angles_deg)
        for k in todo:
            _write_tilt_series(plan, k, run.tilt(k), projector)
            bar.update()
    return out


def _write_tilt_series(plan: SimulationPlan, step: int, path: Path, projector=None) -> None:
    """Simulate time step ``step`` and write it to ``path`` atomically (a worker's task)."""
    write_dataset_atomic(tilt_series_dataset(plan, step, projector=projector), path)


def tilt_path(run_dir: str | Path, step: int) -> Path:
    """Path of the tilt series of time step ``step`` (0-based) in a run folder (:meth:`RunFolder.tilt`)."""
    return RunFolder(run_dir).tilt(step)
