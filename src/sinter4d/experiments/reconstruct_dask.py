"""A run's tilt series reconstructed on Dask (``sinter4d reconstruct RUNDIR --scheduler ADDR | --workers N``).

One Dask task per series (:func:`reconstruct_series_task`): it reads
``tilts/tNN.nc``, runs the chain of :func:`~sinter4d.experiments.reconstruct.reconstruct_file`
on one thread and writes ``recon/tNN.nc`` atomically from the worker, so the
workers must see the run folder. The run's one BM3D level is chosen first, in
a task of its own (:func:`~sinter4d.experiments.reconstruct.run_sigma_psd`),
and handed to every series. A series can be made to wait for the series
before it and receive its result (``after_previous``: the hook a warm start
from the previous series' volume needs). Finished reconstructions are skipped,
so an interrupted run resumes; docs/design.md, "On a cluster".
"""

from __future__ import annotations

import logging
import os
import resource
import socket
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

from .._cores import available_cores
from ..pipeline.settings import PipelineSpec
from .cluster import as_finished, captured_logs, dask_client, in_worker, limit_threads, replay_logs
from .reconstruct import reconstruct_file, run_sigma_psd, start_volume

__all__ = ["peak_rss_bytes", "reconstruct_series_dask", "reconstruct_series_task"]

log = logging.getLogger(__name__)


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (bytes; ``getrusage``, kB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def reconstruct_series_task(
    tilts: str,
    out: str,
    settings: dict,
    sigma_psd: float | None,
    n_jobs: int = 1,
    mrc: tuple[str, ...] = ("volume",),
    previous: dict | None = None,
) -> dict:
    """Reconstruct one tilt series into ``out`` (one Dask task; written atomically).

    Parameters
    ----------
    tilts, out : str
        The tilt-series file and the reconstruction file to write.
    settings : dict
        The pipeline settings (``PipelineSpec.model_dump(mode="json")``).
    sigma_psd : float or None
        The run's BM3D level (replaces the settings'; None: the series
        chooses its own, :func:`~sinter4d.pipeline.chain.prepare_tilt_series`).
    n_jobs : int, optional
        Images BM3D denoises at once; at 1 (the default) numba's loops run on
        one thread too (:func:`~sinter4d.experiments.cluster.limit_threads`).
    mrc : tuple of str, optional
        Variables also written as MRC beside ``out``.
    previous : dict, optional
        The result of the previous series' task (its ``out``) when the
        dispatcher chains the series (``after_previous``): with
        ``warm_start`` the series starts from that volume
        (:func:`~sinter4d.experiments.reconstruct.start_volume`); recorded.

    Returns
    -------
    dict
        ``series``, ``out``, ``previous`` (the previous series' ``out`` or
        None), ``seconds`` (wall), ``cpu_seconds`` (the worker process's
        CPU time meanwhile), ``started`` and ``finished`` (epoch s),
        ``peak_rss_bytes`` (the worker process's peak so far: an upper bound
        of the task's), ``worker`` (host:pid) and ``logs`` (the package's
        log records, :func:`~sinter4d.experiments.cluster.replay_logs`).
    """
    started, cpu = time.time(), time.process_time()
    if n_jobs == 1:
        limit_threads()
    with captured_logs() as logs:
        spec = PipelineSpec.model_validate({**settings, "sigma_psd": sigma_psd})
        start = None if previous is None else start_volume(Path(previous["out"]), spec)
        reconstruct_file(Path(tilts), Path(out), spec, progress=False, n_jobs=n_jobs, mrc=tuple(mrc), previous=start)
    finished = time.time()
    return {"series": Path(out).stem, "out": str(out), "previous": None if previous is None else previous["out"],
            "seconds": finished - started, "cpu_seconds": time.process_time() - cpu, "started": started,
            "finished": finished,
            "peak_rss_bytes": peak_rss_bytes(), "worker": f"{socket.gethostname()}:{os.getpid()}", "logs": logs}


def _run_level(tilts: list[str], outs: list[str], settings: dict) -> float | None:
    """The run's BM3D level (:func:`run_sigma_psd` on one thread), in a worker."""
    return run_sigma_psd([Path(t) for t in tilts], [Path(o) for o in outs], PipelineSpec.model_validate(settings),
                         n_jobs=1)


def reconstruct_series_dask(
    series: list[tuple[Path, Path]],
    settings: PipelineSpec,
    *,
    scheduler: str | None = None,
    n_workers: int | None = None,
    resume: bool = True,
    one_level: bool = True,
    after_previous: bool = False,
    n_jobs: int = 1,
    mrc: tuple[str, ...] = ("volume",),
    progress: bool = True,
    label: str = "reconstruct",
) -> list[dict]:
    """Reconstruct tilt series as Dask tasks, gathered as they finish.

    Parameters
    ----------
    series : list of (Path, Path)
        Every ``(tilts, out)`` of the run, in time order.
    settings : PipelineSpec
        The pipeline settings.
    scheduler : str, optional
        A running Dask scheduler's address (its workers must see the files);
        default a LocalCluster of ``n_workers`` single-threaded processes.
    n_workers : int, optional
        The LocalCluster's workers (default one per core, at most one per
        series to run); ignored with ``scheduler``.
    resume : bool, optional
        Skip the series whose ``out`` exists (default); else redo every one.
    one_level : bool, optional
        Choose one BM3D level for all of them first, in a task
        (:func:`~sinter4d.experiments.reconstruct.run_sigma_psd`), when the
        settings leave it open (default); else each series chooses its own.
    after_previous : bool, optional
        Each series' task waits for the previous series and receives its
        result as ``previous`` (the first one to run: the previous series'
        existing ``out``, if any). Default False: the series run in parallel.
    n_jobs : int, optional
        Images BM3D denoises at once in a task (default 1: one thread per task).
    mrc : tuple of str, optional
        Variables also written as MRC beside each reconstruction.
    progress : bool, optional
        A progress bar over the series as they finish.
    label : str, optional
        The bar's name.

    Returns
    -------
    list of dict
        The results of the series run (:func:`reconstruct_series_task`,
        without ``logs``), in the order they finished.

    Raises
    ------
    InputError
        A bad tilt series (one line; raised as the worker raised it, after
        the other tasks are cancelled; finished series are kept, no partial file).
    """
    todo = [(k, Path(t), Path(o)) for k, (t, o) in enumerate(series) if not (resume and Path(o).is_file())]
    bar = tqdm(total=len(series), initial=len(series) - len(todo), desc=label, unit="step", disable=not progress)
    results: list[dict] = []
    if not todo:
        bar.close()
        return results
    doc = settings.model_dump(mode="json")
    submitted: dict[int, object] = {}  # series index -> its task's future
    try:
        with dask_client(scheduler, min(n_workers or available_cores(), len(todo))) as client:
            log.info("%s: %d series on %s, %d workers", label, len(todo),
                     "scheduler " + scheduler if scheduler else "a LocalCluster",
                     len(client.scheduler_info().get("workers", {})))
            sigma = settings.sigma_psd
            if one_level and settings.denoise and sigma is None:
                sigma = client.submit(in_worker, _run_level, [str(t) for t, _ in series],
                                      [str(o) for _, o in series], doc, pure=False, key=_key("bm3d-level"))
            for k, tilts, out in todo:
                previous = None
                if after_previous and k > 0:
                    before = Path(series[k - 1][1])
                    if k - 1 in submitted:  # Dask runs this task after that one and passes its result
                        previous = submitted[k - 1]
                    elif before.is_file():
                        previous = {"out": str(before)}
                submitted[k] = client.submit(reconstruct_series_task, str(tilts), str(out), doc, sigma, n_jobs,
                                             tuple(mrc), previous, pure=False, key=_key(f"reconstruct-{out.stem}"))
            try:
                for fut, lost in as_finished(client, list(submitted.values())):
                    if lost is not None:
                        raise lost
                    result = fut.result()  # a worker's InputError is raised here as it was raised there
                    replay_logs(result.pop("logs"))
                    log.info("%s: %.1f s on %s, peak RSS %.2f GB", result["series"], result["seconds"],
                             result["worker"], result["peak_rss_bytes"] / 1e9)
                    results.append(result)
                    bar.update(1)
            finally:
                client.cancel(list(submitted.values()))
    finally:
        bar.close()
    return results


def _key(name: str) -> str:
    """A unique Dask key that names the task on the dashboard."""
    return f"{name}-{os.urandom(4).hex()}"
