"""Paper-size tilt series through the chain: each stage's time, peak memory, Dice against the truth.

Not a ``bench_*`` script (``make bench`` does not run it): at the paper's size
(1024² px, 41 tilts) it takes tens of minutes and several GB. Data: simulated
tilt files with their truth (``true_label``); without them, the first
``--series`` series of ``experiments/paper_cu_350c.toml`` with ``--seed``
(default the spec's), simulated once into ``$TMPDIR/sinter4d_paper_series``
(about 20 min a series on 2 cores)::

    python benchmarks/paper_series.py --seed 101
    python benchmarks/paper_series.py TILTS.nc --set support_margin_nm=none
    python benchmarks/paper_series.py t01.nc t02.nc --set warm_start=true

Several series run in order, as ``sinter4d reconstruct RUNDIR`` runs them in
one process: the BM3D level is chosen on the first and kept, and with
``warm_start`` each later series starts from the volume before it.

The pipeline settings are the spec's ``[pipeline]`` (``--spec``, default the
paper's) with ``--set KEY=VALUE`` overrides (TOML values; ``none`` removes a
key). Prints one JSON line per series: the settings changed, wall seconds of each stage
and in all, CPU seconds, the load average before and after, the process's peak
RSS of the chain (each series' own where the OS lets it be reset; the Dice's 3D
FFTs, after it, take several times more), the rows reconstructed, and the Dice of the binary against the truth
after the best integer translation, as ``sinter4d validate`` scores it
(``validation.validation_dice``). Figures: docs/validation.md ("Speed at the
paper's scale").
"""

from __future__ import annotations

import argparse
import json
import os
import time
import tomllib
from pathlib import Path

import numpy as np
import xarray as xr

from sinter4d.experiments.reconstruct_dask import peak_rss_bytes
from sinter4d.io.toml import read_toml
from sinter4d.pipeline.chain import process_tilt_series
from sinter4d.pipeline.settings import PipelineSpec
from sinter4d.runfolder import RunFolder
from sinter4d.specs import parse
from sinter4d.validation import truth_on_grid, validation_dice

from _common import EXPERIMENTS, cached_run, first_series

PAPER = EXPERIMENTS / "paper_cu_350c.toml"


def paper_series(seed: int | None, n_series: int = 1) -> list[Path]:
    """The first ``n_series`` series of the paper spec (with ``seed``), simulated once: their tilt files."""
    doc = first_series(read_toml(PAPER), n_series)
    if seed is not None:
        doc["seed"] = seed
    name = f"seed{doc['seed']}" if n_series == 1 else f"seed{doc['seed']}-{n_series}"
    return RunFolder(cached_run(doc, "sinter4d_paper_series", name)).tilt_files()[:n_series]


def _settings(spec: Path, overrides: list[str]) -> tuple[PipelineSpec, dict]:
    pipeline = read_toml(spec)["pipeline"]
    changed = {}
    for item in overrides:
        key, _, text = item.partition("=")
        value = None if text.strip().lower() == "none" else tomllib.loads(f"v = {text}")["v"]
        changed[key] = value
        if value is None:
            pipeline.pop(key, None)
        else:
            pipeline[key] = value
    return parse(PipelineSpec, pipeline, source=f"{spec} [pipeline]"), changed


def _reset_peak() -> bool:
    """Reset this process's peak RSS (Linux: ``VmHWM`` through ``/proc/self/clear_refs``); False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_bytes(reset: bool) -> int:
    """Peak RSS since :func:`_reset_peak` when it worked (``VmHWM``), else since the process began."""
    if reset:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return peak_rss_bytes()


def _one_series(tilts: Path, settings: PipelineSpec, changed: dict, previous) -> xr.Dataset:
    """Run one series through the chain and print its JSON line; the reconstruction."""
    load0 = os.getloadavg()[0]
    with xr.open_dataset(tilts) as ds:
        ds = ds.load()
    reset = _reset_peak()  # each series' own peak, not the Dice's FFTs of the one before
    t0, c0 = time.perf_counter(), time.process_time()
    out = process_tilt_series(ds, settings, source=str(tilts), previous=previous)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _peak_bytes(reset)  # the chain's; the Dice's FFTs below take several times more
    truth = truth_on_grid(ds.true_label.values, ds.z.values, out.z.values)
    dice = validation_dice(out.binary.values.astype(bool), truth, voxel_size_nm=float(out.attrs["pixel_size_nm"]))
    seconds = {k[len("seconds_"):]: v for k, v in out.attrs.items() if k.startswith("seconds_")}
    print(json.dumps({
        "tilts": str(tilts), "changed": changed, "warm": previous is not None, "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1), "seconds": seconds, "peak_rss_gb": round(peak / 2**30, 2),
        "load_before_after": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "support_rows": [int(v) for v in np.atleast_1d(out.attrs["support_rows"])],
        "dice": round(float(dice), 4),
    }), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tilts", type=Path, nargs="*", help="simulated tilt files with true_label, run in order "
                        "(default: the first --series of the paper spec, simulated once)")
    parser.add_argument("--seed", type=int, default=None, help="the paper spec's seed when simulating")
    parser.add_argument("--series", type=int, default=1, help="series to simulate when no file is given")
    parser.add_argument("--spec", type=Path, default=PAPER, help="experiment spec whose [pipeline] is used")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a [pipeline] override")
    args = parser.parse_args(argv)
    settings, changed = _settings(args.spec, args.set)
    previous = None
    for tilts in args.tilts or paper_series(args.seed, args.series):
        out = _one_series(tilts, settings, changed, previous)
        if settings.denoise and settings.sigma_psd is None:  # a run chooses its level once (run_sigma_psd)
            settings = settings.model_copy(update={"sigma_psd": float(out.attrs["denoise_sigma_psd"])})
        previous = out.volume.values if settings.warm_start else None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
