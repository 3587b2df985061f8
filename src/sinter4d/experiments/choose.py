"""Pipeline settings chosen on twins (``sinter4d calibrate --choose CARD.toml``), on Dask.

The edge of :mod:`sinter4d.calibration`'s choice: the choosing twins are
simulated (one Dask task each), then every candidate of the card's grid is
reconstructed, measured and validated on every choosing twin. Work is shared
(:func:`sinter4d.calibration.candidates`): one Dask task per twin and BM3D /
alignment setting runs BM3D once per series, the reconstruction once per
reconstruction setting, and the binarisation per candidate. Every candidate
writes its own run folder (``NAME_choose/twin-<seed>/candidates/<name>/``,
:class:`sinter4d.runfolder.ChooseFolder`), so a rerun skips the candidates
validated before and the series reconstructed before (docs/design.md,
"Calibration").
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ..calibration import STAGE_GROUPS, ChooseSpec, best_candidate, candidates, group_key, score, twin_errors
from ..errors import InputError
from ..io.atomic import write_json_atomic
from ..io.netcdf import open_dataset_checked, write_dataset_atomic
from ..pipeline import PipelineSpec
from ..pipeline.chain import binarize_volume, prepare_tilt_series, recon_dataset, reconstruct_prepared
from ..runfolder import ChooseFolder, RunFolder
from .cluster import as_finished, dask_client, in_worker
from .spec import parse_spec

__all__ = ["candidate_name", "choose_settings", "run_candidates", "simulate_twin"]

log = logging.getLogger(__name__)


def candidate_name(candidate: dict) -> str:
    """A candidate's folder name: ``key-value`` joined by ``__`` (``denoise_strength-0.35__binarize_level-1``)."""
    def fmt(v):
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v).replace("/", "_")

    return "__".join(f"{k}-{fmt(v)}" for k, v in candidate.items())


def _settings(base: dict, candidate: dict) -> PipelineSpec:
    return PipelineSpec.model_validate({**base, **candidate})


def _fresh_candidate(run: RunFolder, settings: PipelineSpec) -> bool:
    """The candidate's folder holds a run of these settings (else it is emptied)."""
    record = ChooseFolder.candidate_record(run)
    want = settings.model_dump(mode="json")
    if record.is_file() and json.loads(record.read_text()) == want:
        return True
    if run.path.exists():
        shutil.rmtree(run.path)
    return False


def _candidate_folder(folder: ChooseFolder, seed: int, name: str, settings: PipelineSpec) -> RunFolder:
    """The candidate's run folder, made with its links to the twin and its record."""
    run = folder.candidate(seed, name)
    if _fresh_candidate(run, settings):
        return run
    run.path.mkdir(parents=True)
    twin = folder.twin(seed)
    for shared in ChooseFolder.SHARED:
        os.symlink(os.path.relpath(twin.path / shared, run.path), run.path / shared)
    write_json_atomic(ChooseFolder.candidate_record(run), settings.model_dump(mode="json"))
    return run


def _load(path: Path) -> xr.Dataset:
    """A reconstruction file, in memory."""
    with xr.open_dataset(path) as ds:
        return ds.load()


def simulate_twin(doc: dict, twin_dir: str, spec_path: str) -> float:
    """Simulate one choosing twin; its wall seconds."""
    from .run import run_experiment

    t0 = time.perf_counter()
    spec = parse_spec(doc, source=f"choosing twin {doc['seed']}")
    run_experiment(spec, twin_dir, spec_path=spec_path, stages=("simulate",), progress=False, n_jobs=1, mrc=())
    return time.perf_counter() - t0


def run_candidates(folder: str, seed: int, base: dict, group: list[tuple[int, dict]]) -> dict:
    """Every candidate of one BM3D / alignment setting on one twin (one Dask task).

    BM3D and alignment run once per series, the reconstruction once per
    reconstruction setting, the binarisation per candidate. A series whose
    reconstructions every candidate holds is skipped, and a volume another
    candidate of the same reconstruction setting holds is read back rather
    than reconstructed. Then each candidate is measured and validated
    (skipped when fresh, :func:`~sinter4d.experiments.validate.validate_run`).

    Parameters
    ----------
    folder : str
        The choice's work folder (:class:`~sinter4d.runfolder.ChooseFolder`);
        the twin of ``seed`` must be simulated in it (:func:`simulate_twin`).
    seed : int
        The choosing twin.
    base : dict
        The run's ``[pipeline]`` settings.
    group : list of (int, dict)
        Candidate index and settings, all with the same ``prepare`` settings,
        in the order of :func:`sinter4d.calibration.candidates`.

    Returns
    -------
    dict
        ``errors``: candidate index -> (neck, distance) |errors| as lists;
        ``seconds``: wall time per stage group and of the validation.
    """
    from .reconstruct import run_sigma_psd
    from .validate import validate_run

    choose_folder = ChooseFolder(folder)
    runs = {i: _candidate_folder(choose_folder, seed, candidate_name(c), _settings(base, c)) for i, c in group}
    twin = choose_folder.twin(seed)
    seconds = dict.fromkeys((*STAGE_GROUPS, "validate"), 0.0)
    prep_settings = _settings(base, group[0][1])
    tilt_files = twin.tilt_files()
    sigma = prep_settings.sigma_psd
    for tilt_file in tilt_files:
        outs = {i: runs[i].recon / tilt_file.name for i, _ in group}
        if all(o.is_file() for o in outs.values()):
            continue
        todo = [(i, c) for i, c in group if not outs[i].is_file()]
        ds = open_dataset_checked(tilt_file, ["counts", "tilt_angle"])
        prep, volumes = None, {}
        for i, cand in todo:
            key = group_key(cand, "reconstruct")
            settings = _settings(base, cand)
            t0 = time.perf_counter()
            if key not in volumes:
                volumes.clear()  # candidates are ordered by reconstruction setting: one volume held at a time
                done = [outs[j] for j, c in group if group_key(c, "reconstruct") == key and outs[j].is_file()]
                if done:  # the volume of a candidate done before: only the binarisation differs
                    volumes[key] = _load(done[0])
                else:
                    if prep is None:
                        if sigma is None:  # one BM3D level per twin, chosen as a run chooses it (kept on a resume)
                            sigma = run_sigma_psd(tilt_files, [runs[j].recon / t.name for j, _ in group
                                                               for t in tilt_files], prep_settings, n_jobs=1)
                        prep = prepare_tilt_series(ds, prep_settings.model_copy(update={"sigma_psd": sigma}),
                                                   n_jobs=1, source=str(tilt_file))
                        seconds["prepare"] += time.perf_counter() - t0
                        t0 = time.perf_counter()
                    volume = reconstruct_prepared(prep, settings)
                    seconds["reconstruct"] += time.perf_counter() - t0
                    volumes[key] = recon_dataset(ds, prep, volume, volume.astype("uint8"),
                                                 settings.model_copy(update={"sigma_psd": sigma}),
                                                 {"reconstruct": time.perf_counter() - t0})
            t1 = time.perf_counter()
            recon = volumes[key].copy()
            rows = recon.attrs.get("support_rows")
            recon["binary"] = recon["binary"].copy(data=binarize_volume(
                recon["volume"].values, settings, voxel_size_nm=float(recon.attrs["pixel_size_nm"]),
                rows=None if rows is None else (int(rows[0]), int(rows[1]))))
            seconds["binarize"] += time.perf_counter() - t1
            recon.attrs.update(binarize_level=float(settings.binarize_level),
                               binarize_radius_nm=float(settings.binarize_radius_nm),
                               seconds_binarize=round(time.perf_counter() - t1, 3))
            outs[i].parent.mkdir(parents=True, exist_ok=True)
            write_dataset_atomic(recon, outs[i])
        ds.close()
    errors = {}
    for i, _ in group:
        t0 = time.perf_counter()
        with xr.open_dataset(validate_run(runs[i].path, progress=False)) as v:
            neck, dist = twin_errors(v.load())
        seconds["validate"] += time.perf_counter() - t0
        errors[i] = (neck.tolist(), dist.tolist())
    return {"seed": seed, "errors": errors, "seconds": seconds}


def choose_settings(
    twin_docs: list[dict],
    base_pipeline: dict,
    card: ChooseSpec,
    folder: ChooseFolder,
    *,
    spec_path: str | Path,
    scheduler: str | None,
    n_workers: int,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Score every candidate of ``card``'s grid on the choosing twins and choose the best.

    Parameters
    ----------
    twin_docs : list of dict
        The choosing twins' experiment specs (:func:`sinter4d.calibration.twin_specs`
        with :func:`sinter4d.calibration.choosing_seeds`).
    base_pipeline : dict
        The run's ``[pipeline]`` settings; a candidate replaces the grid's keys.
    card : ChooseSpec
        The grid.
    folder : ChooseFolder
        The work folder (a rerun resumes it).
    spec_path : str or Path
        Where the twins' relative names are looked up.
    scheduler : str, optional
        A running Dask scheduler; default a LocalCluster of ``n_workers``.
    force : bool, optional
        Redo the twins and candidates (the folder is removed first).
    progress : bool, optional
        A progress bar over the tasks (a choosing twin and the candidates that share
        its BM3D and alignment) as they finish.

    Returns
    -------
    dict
        ``candidates`` (list of dict), ``scores`` (list of dict,
        :func:`sinter4d.calibration.score`), ``chosen`` (index),
        ``seeds`` (the choosing twins'), ``seconds`` (wall time per stage
        group, summed over tasks, and ``wall``).
    """
    from .simulate import same_spec

    t_start = time.perf_counter()
    if force and folder.path.exists():
        shutil.rmtree(folder.path)
    folder.path.mkdir(parents=True, exist_ok=True)
    grid_candidates = candidates(card.grid)
    seeds = [int(d["seed"]) for d in twin_docs]
    sims = []
    for doc in twin_docs:
        twin = folder.twin(doc["seed"])
        spec = parse_spec(doc, source=f"choosing twin {doc['seed']}")
        if twin.spec.is_file() and not same_spec(twin.spec, spec):
            raise InputError(f"{twin.path}: holds a twin of another spec; rerun with --force")
        if not (twin.truth.is_file() and len(twin.tilt_files()) == len(spec.heating.imaged)):
            sims.append(doc)
    groups: dict[tuple, list[tuple[int, dict]]] = {}
    for i, cand in enumerate(grid_candidates):
        groups.setdefault(group_key(cand, "prepare"), []).append((i, cand))
    tasks = [(seed, group) for seed in seeds for group in groups.values()]
    seconds = dict.fromkeys((*STAGE_GROUPS, "validate", "simulate"), 0.0)
    with dask_client(scheduler, min(n_workers, max(len(tasks), 1))) as client:
        simulations = [client.submit(in_worker, simulate_twin, d, str(folder.twin(d["seed"]).path), str(spec_path),
                                     pure=False) for d in sims]
        for fut, lost in as_finished(client, simulations):  # no worker left for 120 s: raised, not waited on
            if lost is not None:
                raise lost
            seconds["simulate"] += fut.result()
        log.info("choose: %d twins simulated, %d tasks of %d candidates", len(sims), len(tasks), len(grid_candidates))
        futures = [client.submit(in_worker, run_candidates, str(folder.path), seed, dict(base_pipeline), group,
                                 pure=False) for seed, group in tasks]
        per_candidate: dict[int, list] = {i: [] for i in range(len(grid_candidates))}
        with tqdm(total=len(futures), desc="choose", unit="task", disable=not progress) as bar:
            for fut, lost in as_finished(client, futures):
                if lost is not None:
                    raise lost
                result = fut.result()
                for k, v in result["seconds"].items():
                    seconds[k] += v
                for i, (neck, dist) in result["errors"].items():
                    per_candidate[int(i)].append((neck, dist))
                bar.update(1)
    scores = [score([(np.asarray(n, float), np.asarray(d, float)) for n, d in per_candidate[i]])
              for i in range(len(grid_candidates))]
    chosen = best_candidate(scores)
    seconds["wall"] = time.perf_counter() - t_start
    for i, (cand, s) in enumerate(zip(grid_candidates, scores)):
        log.info("candidate %d %s: score %.4f (neck %.4f, distance %.4f, unread %.2f)%s", i, cand, s["score"],
                 s["neck_ratio_error"], s["distance_ratio_error"], s["unread"], " <- chosen" if i == chosen else "")
    return {"candidates": grid_candidates, "scores": scores, "chosen": chosen, "seeds": seeds,
            "seconds": {k: round(v, 1) for k, v in seconds.items()}}
