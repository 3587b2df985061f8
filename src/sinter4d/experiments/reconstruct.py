"""Reconstruction of a run folder or of one tilt-series file (resumable, atomic).

Each reconstruction ``NAME.nc`` gets an MRC copy of its volume beside it,
``NAME.mrc`` (:func:`sinter4d.runfolder.mrc_beside`; IMOD conventions, see
:mod:`sinter4d.io.volumes`), and of its binary on request.

A run folder's series are prepared (denoised, turned, aligned) ahead in worker
processes, one per core, each on one thread, while this process reconstructs
them in order (:func:`prepared_ahead`): the warm start chains the
reconstructions, but not the preparations. The files are those of one series
after another.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from .._cores import worker_count
from ..errors import InputError
from ..io.atomic import check_target
from ..io.netcdf import open_dataset_checked, write_dataset_atomic
from ..io.volumes import write_volume_mrc
from ..pipeline.chain import PreparedSeries, prepare_tilt_series, process_tilt_series
from ..pipeline.series import check_tilt_series, reference_noise_level
from ..pipeline.callbacks import ProgressCallback
from ..runfolder import RunFolder, mrc_beside, recon_beside, role_label
from ..checks import MIN_TILTS, check_int
from ..specs import parse
from ..pipeline.settings import PipelineSpec
from .cluster import process_pool

log = logging.getLogger(__name__)

#: Pixels of a tilt series (images x rows x columns) from which :func:`prepared_ahead` uses
#: workers: a worker takes ~3 s to start, about the preparation of 0.5 M pixels here, so
#: smaller series stay in this process. The quick spec's are 2.7 M (41 x 256^2), the tests' 0.15 M.
POOL_MIN_PIXELS = 2**20


def check_tilt_count(counts: xr.DataArray, source: str | Path) -> None:
    """Refuse a ``counts`` variable not laid out ``(tilt, y, x)`` or with fewer than :data:`~sinter4d.checks.MIN_TILTS` images.

    Raises
    ------
    InputError
        One line naming ``source``.
    """
    if counts.dims != ("tilt", "y", "x"):
        raise InputError(f"{source}: variable counts has dims {counts.dims}; expected (tilt, y, x)")
    if counts.sizes["tilt"] < MIN_TILTS:
        raise InputError(f"{source}: {counts.sizes['tilt']} tilt image(s); a reconstruction needs at least {MIN_TILTS}")


def recorded_pipeline(run_dir: str | Path) -> tuple[dict | None, str]:
    """The pipeline table a run folder records, and where: its spec's ``[pipeline]`` (a simulated run), or
    ``settings.json`` (an imported run); ``(None, "")`` when it records none."""
    run = RunFolder(run_dir)
    for path in (run.spec, run.settings):
        if path.is_file():
            return dict(json.loads(path.read_text()).get("pipeline") or {}), f"{path} [pipeline]"
    return None, ""


def pipeline_settings(run_dir: Path | None, overrides: dict | None = None) -> PipelineSpec:
    """The pipeline settings of a run folder (its recorded spec or settings), with overrides.

    Parameters
    ----------
    run_dir : Path or None
        A run folder (:func:`recorded_pipeline`); None for the defaults.
    overrides : dict, optional
        Settings given on the command line (None values are ignored).

    Raises
    ------
    SpecError
        A setting out of range (one line naming the run's spec, or the
        command line's settings, and the key).
    """
    base, source = (None, "") if run_dir is None else recorded_pipeline(run_dir)
    base, source = (base, source) if base is not None else ({}, "pipeline settings")
    base.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return parse(PipelineSpec, base, source=source)


def open_tilts(tilts: str | Path) -> xr.Dataset:
    """A tilt-series file opened for the chain, its images checked (:func:`check_tilt_count`); closed if refused.

    Read lazily and uncached: the chain reads the images once, and frees them once prepared.
    """
    ds = open_dataset_checked(tilts, ["counts", "tilt_angle"], load=False, cache=False)
    try:
        check_tilt_count(ds["counts"], tilts)
    except InputError:
        ds.close()
        raise
    return ds


def reconstruct_file(
    tilts: str | Path,
    out: str | Path,
    settings: PipelineSpec,
    *,
    progress: bool = True,
    n_jobs: int = -1,
    mrc: tuple[str, ...] = ("volume",),
    previous: np.ndarray | None = None,
    prepared: PreparedSeries | None = None,
) -> Path:
    """Reconstruct one tilt-series file into ``out`` (written atomically).

    ``n_jobs`` BM3D threads (-1: all cores); ``mrc`` the variables also
    written as MRC beside ``out`` (:func:`export_mrc`); ``previous`` the
    previous series' volume, the start of a warm start (:func:`previous_volume`);
    ``prepared`` the series already prepared (:func:`prepare_file`).
    """
    ds = open_tilts(tilts)
    callbacks = (ProgressCallback(desc=f"{settings.method} {Path(tilts).stem}", leave=False),) if progress else ()
    try:
        volume = process_tilt_series(ds, settings, n_jobs=n_jobs, callbacks=callbacks, source=str(tilts),
                                     previous=previous, prepared=prepared)
    finally:
        ds.close()
    volume.attrs["source"] = str(tilts)
    write_dataset_atomic(volume, out)
    for variable in mrc:
        write_volume_mrc(volume, mrc_beside(out, binary=variable == "binary"), variable=variable, source=str(out))
    return Path(out)


def prepare_file(tilts: str | Path, settings: PipelineSpec, n_jobs: int = 1) -> PreparedSeries:
    """Read one tilt-series file and prepare it (:func:`~sinter4d.pipeline.chain.prepare_tilt_series`).

    The task of :func:`prepared_ahead`'s workers; ``n_jobs`` BM3D threads.
    """
    ds = open_tilts(tilts)
    try:
        return prepare_tilt_series(ds, settings, n_jobs=n_jobs, source=str(tilts))
    finally:
        ds.close()


def _pixels(tilts: Path) -> int:
    """Images x rows x columns of a tilt-series file (0 when it cannot be read: the series' own error comes later)."""
    try:
        with xr.open_dataset(tilts) as ds:
            return int(np.prod(ds["counts"].shape))
    except (OSError, ValueError, KeyError):
        return 0


@contextmanager
def prepared_ahead(tilts: list[Path], settings: PipelineSpec, n_jobs: int = -1) -> Iterator[Iterator]:
    """The tilt series prepared ahead, in order, by worker processes (a context: the workers stop after it).

    Yields an iterator over ``tilts`` giving each series' :class:`PreparedSeries`
    (:func:`prepare_file`, one thread per worker); at most one series per
    worker waits, prepared, in memory. With one worker (``n_jobs = 1``, one
    core or one series) or series of fewer than :data:`POOL_MIN_PIXELS`
    pixels (the first one's) it gives None for each: the caller prepares in
    this process, on ``n_jobs`` threads. A worker's error is raised when its
    series is reached. Workers are started with ``spawn``: a script calling
    this needs the ``if __name__ == "__main__":`` guard.
    """
    workers = worker_count(n_jobs, len(tilts))
    if tilts and _pixels(tilts[0]) < POOL_MIN_PIXELS:
        workers = 1
    if workers == 1:
        yield iter([None] * len(tilts))
        return
    with process_pool(workers) as pool:

        def ordered():
            pending = [pool.submit(prepare_file, str(t), settings) for t in tilts[:workers]]
            for k in range(len(tilts)):
                if k + workers < len(tilts):
                    pending.append(pool.submit(prepare_file, str(tilts[k + workers]), settings))
                yield pending[k].result()
                pending[k] = None  # the main process holds only the series it reconstructs

        try:
            yield ordered()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def export_mrc(recon: str | Path, out: str | Path | None = None, *, variable: str = "volume") -> Path:
    """Write one variable of a reconstruction file as MRC (IMOD conventions, :mod:`sinter4d.io.volumes`).

    Parameters
    ----------
    recon : str or Path
        A reconstruction file (``volume`` and ``binary`` over ``(z, y, x)``).
    out : str or Path, optional
        The MRC file (default :func:`sinter4d.runfolder.mrc_beside`).
    variable : {'volume', 'binary'}, optional

    Returns
    -------
    Path
        The MRC file.
    """
    out = Path(out) if out is not None else mrc_beside(recon, binary=variable == "binary")
    ds = open_dataset_checked(recon, [variable, "z", "y", "x"], load=False)
    try:
        return write_volume_mrc(ds, out, variable=variable, source=str(recon))
    finally:
        ds.close()


def previous_volume(outs: list[Path], k: int, settings: PipelineSpec) -> np.ndarray | None:
    """The volume series ``k`` of a run starts from: series ``k - 1``'s, read from its file.

    None (a cold start) without ``warm_start``, for the first series, or
    when ``outs[k - 1]`` is not written. Reading it from the file, not from
    memory, lets an interrupted run resume warm.
    """
    return None if k == 0 else start_volume(outs[k - 1], settings)


def start_volume(before: Path, settings: PipelineSpec) -> np.ndarray | None:
    """The volume of the reconstruction ``before`` as a warm start; None without ``warm_start``
    or when ``before`` is not written (:func:`previous_volume`; a Dask task gets ``before`` itself)."""
    if not settings.warm_start or not Path(before).is_file():
        return None
    with xr.open_dataset(before) as done:
        return np.asarray(done["volume"].values, dtype=np.float32)


def run_sigma_psd(tilts: list[Path], outs: list[Path], settings: PipelineSpec, *, n_jobs: int = -1) -> float | None:
    """One BM3D noise level for a whole run, as the paper tuned it once and kept it.

    The level already used by a finished reconstruction of the run is reused
    (so a resumed run denoises like the first part); otherwise it is chosen
    on the first tilt series holding a reference average (maximum PSNR, see
    :func:`~sinter4d.pipeline.denoise.select_sigma_psnr`). None when the
    settings fix it, skip denoising, or no series has a reference.
    """
    if not settings.denoise or settings.sigma_psd is not None:
        return settings.sigma_psd
    for out in outs:
        if out.is_file():
            with xr.open_dataset(out) as done:
                sigma = float(done.attrs.get("denoise_sigma_psd", np.nan))
            if np.isfinite(sigma):
                return sigma
    for path in tilts:
        ds = open_dataset_checked(path, ["counts", "tilt_angle"])
        if "reference" not in ds:
            continue
        images, angles, _ = check_tilt_series(ds, source=str(path))
        return reference_noise_level(ds, images, angles, settings, n_jobs=n_jobs)
    return None


def reconstruct_path(
    path: str | Path,
    *,
    out: str | Path | None = None,
    overrides: dict | None = None,
    progress: bool = True,
    n_jobs: int = -1,
    mrc: tuple[str, ...] = ("volume",),
    scheduler: str | None = None,
    n_workers: int | None = None,
) -> list[Path]:
    """Reconstruct a run folder (every tilt series) or one tilt-series file.

    A folder's finished reconstructions are kept, so an
    interrupted run resumes, and one BM3D noise level serves the whole run
    (:func:`run_sigma_psd`). With ``warm_start`` the series run in order,
    each from the one before (:func:`previous_volume`); a file is reconstructed into ``out`` (default:
    beside it, :func:`sinter4d.runfolder.recon_beside`).

    ``n_jobs`` is the number of images BM3D denoises at once (-1: every
    core this process may use; a sweep running one cell per core passes 1)
    and, for a folder, of the worker processes preparing its series ahead
    (:func:`prepared_ahead`).
    ``mrc`` names the variables (``"volume"``, ``"binary"``) also written
    as MRC beside each reconstruction (``()``: none); a finished
    reconstruction missing its MRC gets it written from its file.

    With ``scheduler`` (a running Dask scheduler's address) or ``n_workers``
    (a LocalCluster of that many single-threaded workers) the series run as
    Dask tasks, one thread each, ``n_jobs`` aside
    (:func:`~sinter4d.experiments.reconstruct_dask.reconstruct_series_dask`);
    the files are the same (docs/design.md, "On a cluster").

    Returns
    -------
    list of Path
        The reconstruction files.
    """
    path = Path(path)
    on_dask = scheduler is not None or n_workers is not None
    if n_workers is not None:
        n_workers = check_int(n_workers, "n_workers", minimum=1)
    if path.is_dir():
        run = RunFolder(path)
        tilts = run.tilt_files()
        if not tilts:
            raise InputError(f"{path}: no tilt series ({role_label('tilts')}) in this folder")
        settings = pipeline_settings(path, overrides)
        outs = [run.recon / t.name for t in tilts]
        todo = [(t, o) for t, o in zip(tilts, outs) if not o.is_file()]
        if todo and on_dask:  # the level, then the series, as Dask tasks
            from .reconstruct_dask import reconstruct_series_dask

            reconstruct_series_dask(list(zip(tilts, outs)), settings, scheduler=scheduler, n_workers=n_workers,
                                    after_previous=settings.warm_start, mrc=mrc, progress=progress,
                                    label=f"reconstruct {path.name}")
        elif todo:
            sigma = run_sigma_psd(tilts, outs, settings, n_jobs=n_jobs)
            settings = settings.model_copy(update={"sigma_psd": sigma})
            with prepared_ahead([t for t, _ in todo], settings, n_jobs) as preps:
                bar = tqdm(todo, desc=f"reconstruct {path.name}", unit="step", disable=not progress)
                for (t, o), prep in zip(bar, preps):
                    reconstruct_file(t, o, settings, progress=progress, n_jobs=n_jobs, mrc=mrc,
                                     previous=previous_volume(outs, outs.index(o), settings), prepared=prep)
        for o in outs:
            for variable in mrc:
                if not mrc_beside(o, binary=variable == "binary").is_file():
                    export_mrc(o, variable=variable)
        return outs
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder")
    settings = pipeline_settings(None, overrides)
    target = check_target(out if out is not None else recon_beside(path))
    if on_dask:
        from .reconstruct_dask import reconstruct_series_dask

        reconstruct_series_dask([(path, target)], settings, scheduler=scheduler, n_workers=n_workers, resume=False,
                                one_level=False, mrc=mrc, progress=progress, label=f"reconstruct {path.name}")
        return [target]
    return [reconstruct_file(path, target, settings, progress=progress, n_jobs=n_jobs, mrc=mrc)]
