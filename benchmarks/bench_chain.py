"""The whole chain of one tilt series against ASTRA's bare CPU SIRT-300, slice by slice.

Data: series 0 of the quick spec (``experiments/quick.toml``: its specimen,
dose, tilts, microscope and seed) with the detector binned to ``--pixels``
px (default 160): ``bin = round(1024 / pixels)``, ``image_pixels = pixels *
bin``, so 160 px of 6.24 nm, a field of view within 7 % of quick's (and
``--pixels 256`` is quick's own 256 px of 4.16 nm). It is simulated once
into a cached temporary folder
(``$TMPDIR/sinter4d_bench_chain/<pixels>-<hash of the spec>``).

sinter4d, timed: :func:`~sinter4d.experiments.reconstruct.reconstruct_file`
(what ``sinter4d reconstruct FILE`` runs) from the run's tilt file to the
written file holding the volume and the binary volume: the BM3D level
chosen against the reference, BM3D on every image, the axis direction, the
alignment, the tilt axis, TV (``iterations``, cold: ``warm_start`` off),
the binarisation. Two rows: the quick spec's ``[pipeline]`` (``lc`` + hard
thresholding BM3D) and, unless ``--quick-only``, the paper spec's
(``experiments/paper_cu_350c.toml``: ``np`` + both stages, Mattes, a 360 nm
slab). The stage split is the file's own ``seconds_*`` record; the
level's search, which ``denoise`` includes, is timed once alone beside it.

Peer, timed: ASTRA's ``SIRT`` on the CPU (``linear`` projector, 300
iterations, ``MinConstraint`` 0), one y slice at a time (algorithm made,
run, result fetched), on the sinograms the chain reconstructs: the quick
row's prepared stack (denoised, aligned, axis-centred, the film's level
removed; :func:`~sinter4d.pipeline.chain.prepare_tilt_series`, not timed)
on two volumes per slice: the chain's slab (``slab_thickness_nm`` thick,
nz x nx voxels; the like-for-like peer, on which the goal is judged) and the
square nx x nx slice a bare slice-by-slice run reconstructs without knowing
the specimen's height. ``--astra-slices K`` (default 32; 0: all) times K slices spread over y
and scales to all (ASTRA's cost per slice does not depend on its content).

Prints, with the load average: each side's median wall and CPU seconds of
``--repeats`` repeats (default 3; CPU is what a shared machine distorts
least), the ratio ASTRA / chain against the goal (10x, issue 16), the
chain's median stage split and its peak RSS.

Run: ``python benchmarks/bench_chain.py [--pixels 160] [--repeats 3] [--quick-only] [--astra-slices K]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr

from sinter4d.experiments.reconstruct import reconstruct_file
from sinter4d.experiments.reconstruct_dask import peak_rss_bytes
from sinter4d.io.toml import read_toml
from sinter4d.pipeline.chain import prepare_tilt_series
from sinter4d.pipeline.series import check_tilt_series, reference_noise_level
from sinter4d.pipeline.settings import PipelineSpec
from sinter4d.runfolder import RunFolder
from sinter4d.specs import parse

from _common import EXPERIMENTS, QUICK, cached_run, first_series, timed

PAPER = EXPERIMENTS / "paper_cu_350c.toml"
GOAL = 10.0  # issue 16: the whole chain >= 10x ASTRA's CPU SIRT-300 on the same slices
ASTRA_ITERATIONS = 300


def bench_series(pixels: int) -> Path:
    """Series 0 of the quick spec at about ``pixels`` px, simulated once (its ``tilts/t00.nc``)."""
    doc = first_series(read_toml(QUICK))
    binning = max(1, round(doc["acquisition"]["image_pixels"] / pixels))
    doc["acquisition"]["bin"] = binning
    doc["acquisition"]["image_pixels"] = pixels * binning
    doc["name"] = f"bench_chain_{pixels}"
    return RunFolder(cached_run(doc, "sinter4d_bench_chain", str(pixels))).tilt_files()[0]


def settings_of(spec: Path) -> PipelineSpec:
    """A spec's ``[pipeline]``, cold (``warm_start`` off: one series, and the paper's protocol)."""
    table = dict(read_toml(spec).get("pipeline", {}), warm_start=False)
    return parse(PipelineSpec, table, source=f"{spec} [pipeline]")


def bench_chain(tilts: Path, settings: PipelineSpec, repeats: int) -> dict:
    """Median wall/CPU seconds of the chain from ``tilts`` to its written reconstruction, and its stage split."""
    out = Path(tempfile.mkdtemp(prefix="bench_chain_")) / tilts.name
    walls, cpus, stages = [], [], []
    for _ in range(repeats):
        out.unlink(missing_ok=True)
        _, wall, cpu = timed(lambda: reconstruct_file(tilts, out, settings, progress=False, mrc=()))
        walls.append(wall)
        cpus.append(cpu)
        with xr.open_dataset(out) as done:
            stages.append({k[len("seconds_"):]: float(v) for k, v in done.attrs.items() if k.startswith("seconds_")})
    out.unlink(missing_ok=True)
    split = {k: statistics.median(s[k] for s in stages) for k in stages[0]}
    with xr.open_dataset(tilts) as ds:
        images, angles, _ = check_tilt_series(ds)
        _, level_wall, _ = timed(lambda: reference_noise_level(ds, images, angles, settings))
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "walls": walls, "split": split,
            "level": level_wall}


def bench_astra(signal: np.ndarray, angles_deg: np.ndarray, nz: int, repeats: int, n_slices: int | None) -> dict | None:
    """Median wall/CPU seconds of ASTRA's CPU SIRT-300 over every y slice of ``signal`` (None without astra)."""
    try:
        import astra
    except ImportError:
        return None
    n_angles, ny, nx = signal.shape
    vg = astra.create_vol_geom(nz, nx)  # rows along the beam at 0 deg (z), columns across it (x)
    pg = astra.create_proj_geom("parallel", 1.0, nx, np.deg2rad(angles_deg))
    pid = astra.create_projector("linear", pg, vg)
    rows = np.arange(ny) if not n_slices else np.unique(np.linspace(0, ny - 1, n_slices).round().astype(int))

    def run():
        for y in rows:
            sid = astra.data2d.create("-sino", pg, np.ascontiguousarray(signal[:, y, :], dtype=np.float32))
            rid = astra.data2d.create("-vol", vg, 0)
            cfg = astra.astra_dict("SIRT")
            cfg["ProjectorId"], cfg["ProjectionDataId"], cfg["ReconstructionDataId"] = pid, sid, rid
            cfg["option"] = {"MinConstraint": 0.0}
            alg = astra.algorithm.create(cfg)
            astra.algorithm.run(alg, ASTRA_ITERATIONS)
            astra.data2d.get(rid)
            astra.algorithm.delete(alg)
            astra.data2d.delete([sid, rid])

    walls, cpus = [], []
    for _ in range(repeats):
        _, wall, cpu = timed(run)
        walls.append(wall * ny / len(rows))
        cpus.append(cpu * ny / len(rows))
    astra.projector.delete(pid)
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "walls": walls, "slices": len(rows)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pixels", type=int, default=160)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick-only", action="store_true", help="skip the paper spec's pipeline settings")
    parser.add_argument("--astra-slices", type=int, default=32, help="time this many slices and scale (0: all)")
    args = parser.parse_args(argv)
    tilts = bench_series(args.pixels)
    print(f"load average at start: {os.getloadavg()} on {os.cpu_count()} cores", flush=True)
    with xr.open_dataset(tilts) as ds:
        n, ny, nx = ds["counts"].shape
        print(f"data: {tilts} ({n} tilts of {ny}x{nx} px at {float(ds.attrs['pixel_size_nm']):.2f} nm); "
              f"{args.repeats} repeats", flush=True)
    rows = {"quick": settings_of(QUICK)} | ({} if args.quick_only else {"paper": settings_of(PAPER)})
    chains = {}
    for name, settings in rows.items():
        r = chains[name] = bench_chain(tilts, settings, args.repeats)
        print(f"chain, {name} spec's pipeline ({settings.method} {settings.iterations} iterations, BM3D "
              f"{settings.bm3d_profile}/{settings.bm3d_stages}, {settings.align_method}): median {r['wall']:.1f} s wall, "
              f"{r['cpu']:.1f} s CPU (repeats {', '.join(f'{w:.1f}' for w in r['walls'])})", flush=True)
        split = ", ".join(f"{k} {v:.1f}" for k, v in r["split"].items())
        rest = r["wall"] - sum(r["split"].values())
        print(f"  stages (median wall s): {split}; read/write and the rest {rest:.1f}; "
              f"the level's search alone (in denoise) {r['level']:.1f}", flush=True)
    quick = rows["quick"]
    with xr.open_dataset(tilts) as ds:
        prep = prepare_tilt_series(ds, quick)
    for volume, nz in (("the chain's slab", quick.slab_voxels(prep.pixel_size_nm)), ("the square slice", nx)):
        peer = bench_astra(prep.signal, prep.angles_deg, nz, args.repeats, args.astra_slices or None)
        if peer is None:
            print("astra not installed (the bench extra): no comparison")
            return
        scaled = "" if peer["slices"] == ny else f", scaled from {peer['slices']} slices"
        print(f"ASTRA CPU SIRT-{ASTRA_ITERATIONS} (linear, MinConstraint 0) on {volume}, {ny} slices of {nz}x{nx} voxels, "
              f"the quick row's prepared stack: median {peer['wall']:.1f} s wall, {peer['cpu']:.1f} s CPU "
              f"(repeats {', '.join(f'{w:.1f}' for w in peer['walls'])}{scaled})", flush=True)
        for name, r in chains.items():
            goal = f" (goal >= {GOAL:g}x)" if volume == "the chain's slab" else ""
            print(f"  ratio ASTRA / chain ({name}): {peer['wall'] / r['wall']:.1f}x wall, "
                  f"{peer['cpu'] / r['cpu']:.1f}x CPU{goal}", flush=True)
    print(f"peak RSS of this process: {peak_rss_bytes() / 1e9:.2f} GB")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
