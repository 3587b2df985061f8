"""A run's tilt series on a Dask LocalCluster of 1 and of 2 single-threaded workers.

Data: the quick spec (``experiments/quick.toml``: its specimen, dose, tilts,
microscope and pipeline settings, but cold: ``warm_start = false``, since a
warm run's series wait for each other) binned 8x instead of 4x (128² px of
8.32 nm) and cut to its first ``--series`` series (default 4). It is
simulated once into a cached temporary folder
(``$TMPDIR/sinter4d_bench_cluster/<series>x<bin>-<hash of the spec>``). Each repeat removes the
reconstructions and runs
:func:`~sinter4d.experiments.reconstruct_dask.reconstruct_series_dask` (what
``sinter4d reconstruct RUNDIR --workers N`` runs): cluster start, the run's
BM3D level in a task, one task per series, the files written by the workers.

Prints, with the load average: the median wall seconds of ``--repeats``
repeats (default 3) with 1 and with 2 workers, the speed-up 1 -> 2 workers
(the goal: near-linear, 2x), the summed wall and CPU seconds of the series'
tasks (on a loaded machine the CPU seconds show whether two tasks at once
cost more work than one), the workers' peak RSS; and, as the peer, the same run in this process with BM3D
and numba on every core (``sinter4d reconstruct RUNDIR``, the default).

Run: ``python benchmarks/bench_cluster.py [--series 4] [--bin 8] [--repeats 3] [--no-peer]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path

from sinter4d.experiments.reconstruct import pipeline_settings, reconstruct_path
from sinter4d.experiments.reconstruct_dask import peak_rss_bytes, reconstruct_series_dask
from sinter4d.io.toml import read_toml
from sinter4d.runfolder import RunFolder

from _common import QUICK, cached_run



def bench_run(n_series: int, binning: int) -> Path:
    """The reduced quick run, simulated once (resumed if cut short)."""
    doc = read_toml(QUICK)
    doc["heating"] = {k: v[:n_series] if isinstance(v, list) else v for k, v in doc["heating"].items()}
    doc["acquisition"]["bin"] = binning
    doc["pipeline"]["warm_start"] = False  # series in parallel: a warm run chains them (docs/design.md, "On a cluster")
    doc["name"] = f"bench_cluster_{n_series}x{binning}"
    return cached_run(doc, "sinter4d_bench_cluster", f"{n_series}x{binning}")


def one_repeat(run: Path, n_workers: int | None) -> tuple[float, list[dict]]:
    """Wall seconds of one reconstruction of every series (on ``n_workers``; None: in this process)."""
    shutil.rmtree(RunFolder(run).recon, ignore_errors=True)
    t0 = time.perf_counter()
    if n_workers is None:
        reconstruct_path(run, progress=False)
        return time.perf_counter() - t0, []
    folder = RunFolder(run)
    series = [(t, folder.recon / t.name) for t in folder.tilt_files()]
    results = reconstruct_series_dask(series, pipeline_settings(run), n_workers=n_workers, progress=False)
    return time.perf_counter() - t0, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=4)
    parser.add_argument("--bin", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true", help="skip the in-process peer")
    args = parser.parse_args()
    run = bench_run(args.series, args.bin)
    print(f"load average at start: {os.getloadavg()}")
    print(f"data: {run} ({args.series} series of the quick spec at bin {args.bin}); {args.repeats} repeats")
    medians = {}
    configs = [1, 2] + ([] if args.no_peer else [None])
    for n in configs:
        walls, task_s, cpu_s, rss = [], [], [], []
        for _ in range(args.repeats):
            wall, results = one_repeat(run, n)
            walls.append(wall)
            task_s.append(sum(r["seconds"] for r in results))
            cpu_s.append(sum(r["cpu_seconds"] for r in results))
            rss.append(max((r["peak_rss_bytes"] for r in results), default=0))
        medians[n] = statistics.median(walls)
        name = "in this process (peer)" if n is None else f"{n} worker{'s' * (n > 1)}"
        extra = "" if n is None else (f", tasks {statistics.median(task_s):.1f} s wall and "
                                      f"{statistics.median(cpu_s):.1f} s CPU summed, "
                                      f"worker peak RSS {max(rss) / 1e9:.2f} GB")
        print(f"{name}: median {medians[n]:.1f} s wall (repeats {', '.join(f'{w:.1f}' for w in walls)}){extra}")
    print(f"speed-up 1 -> 2 workers: {medians[1] / medians[2]:.2f}x (ideal 2x)")
    if None in medians:
        print(f"2 workers against this process on every core: {medians[None] / medians[2]:.2f}x")
    print(f"peak RSS of this process (client and peer): {peak_rss_bytes() / 1e9:.2f} GB")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
