"""ParallelProjector against ASTRA's CPU SIRT, per iteration, for a 256-slice volume.

Geometry: one 256 x 256 slice, 41 tilts (-40..40 deg, step 2), 256 y slices.
ASTRA (CPU, 'linear' projector) runs its 'SIRT' algorithm slice by slice;
its time per iteration is measured on a few slices (median of repeats) and
scaled to 256 slices. sinter4d applies A then A^T to all 256 slices at once
(and, for a like-for-like figure, a whole SIRT update with the same buffers).

Run: ``python benchmarks/bench_projector.py [--repeats N] [--astra-slices N]``.
Prints wall-clock and process-CPU seconds; the ratio is ASTRA / sinter4d.
Wall times are only meaningful on an otherwise idle machine: the load average
is printed so a busy run can be recognised.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from sinter4d.operators import ParallelProjector

N = 256
NY = 256
ANGLES = np.arange(-40, 41, 2.0)


def _timed(fn, repeats):
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return float(np.median(wall)), float(np.median(cpu))


def bench_astra(n_slices: int, repeats: int, iterations: int = 10):
    """ASTRA CPU SIRT seconds per iteration per slice (wall, cpu), or None without astra."""
    try:
        import astra
    except ImportError:
        return None
    vg = astra.create_vol_geom(N, N)
    pg = astra.create_proj_geom("parallel", 1.0, N, np.deg2rad(ANGLES))
    pid = astra.create_projector("linear", pg, vg)
    rng = np.random.default_rng(0)
    algs, ids = [], []
    for _ in range(n_slices):
        sid, _ = astra.create_sino(rng.random((N, N)).astype(np.float32), pid)
        rid = astra.data2d.create("-vol", vg, 0)
        cfg = astra.astra_dict("SIRT")
        cfg["ProjectorId"], cfg["ProjectionDataId"], cfg["ReconstructionDataId"] = pid, sid, rid
        algs.append(astra.algorithm.create(cfg))
        ids += [sid, rid]

    def run():
        for alg in algs:
            astra.algorithm.run(alg, iterations)

    run()  # warm-up
    wall, cpu = _timed(run, repeats)
    for alg in algs:
        astra.algorithm.delete(alg)
    astra.data2d.delete(ids)
    astra.projector.delete(pid)
    return wall / (iterations * n_slices), cpu / (iterations * n_slices)


def bench_sinter4d(repeats: int):
    """Build time, and (wall, cpu) seconds for A+A^T and for a SIRT update on 256 slices."""
    t0 = time.perf_counter()
    op = ParallelProjector((N, N), NY, voxel_size_nm=1.0, angles_deg=ANGLES)
    build = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    vol = rng.random(op.domain_shape, dtype=np.float32)
    data = op.direct(vol)
    proj = np.empty(op.range_shape, np.float32)
    back = np.empty(op.domain_shape, np.float32)
    x = np.zeros(op.domain_shape, np.float32)
    rows = op.row_sums().astype(np.float32)[:, None, :]
    cols = op.column_sums().astype(np.float32)[:, None, :]
    inv_r = np.where(rows > 0, 1 / np.where(rows > 0, rows, 1), 0).astype(np.float32)
    inv_c = np.where(cols > 0, 1 / np.where(cols > 0, cols, 1), 0).astype(np.float32)

    def a_at():
        op.direct(vol, out=proj)
        op.adjoint(proj, out=back)

    def sirt_update():
        op.direct(x, out=proj)
        np.subtract(data, proj, out=proj)
        np.multiply(proj, inv_r, out=proj)
        op.adjoint(proj, out=back)
        np.multiply(back, inv_c, out=back)
        np.add(x, back, out=x)

    a_at()  # compile / warm-up
    return build, _timed(a_at, repeats), _timed(sirt_update, repeats)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--astra-slices", type=int, default=8)
    args = ap.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus")
    build, (w_aat, c_aat), (w_sirt, c_sirt) = bench_sinter4d(args.repeats)
    print(f"sinter4d build (256^2 slice, 41 angles): {build:.2f} s")
    print(f"sinter4d A+A^T, 256 slices:      wall {w_aat:.3f} s   cpu {c_aat:.3f} s")
    print(f"sinter4d SIRT update, 256 slices: wall {w_sirt:.3f} s   cpu {c_sirt:.3f} s")
    astra_res = bench_astra(args.astra_slices, max(3, args.repeats // 2))
    if astra_res is None:
        print("astra not installed: no comparison")
        return
    aw, ac = astra_res
    print(f"ASTRA CPU SIRT per iteration: {aw * 1e3:.1f} ms/slice wall ({ac * 1e3:.1f} ms cpu)"
          f" -> {aw * NY:.2f} s for {NY} slices")
    print(f"speed-up per iteration (ASTRA SIRT / sinter4d A+A^T):  wall {aw * NY / w_aat:.1f}x   cpu {ac * NY / c_aat:.1f}x")
    print(f"speed-up per iteration (ASTRA SIRT / sinter4d SIRT):   wall {aw * NY / w_sirt:.1f}x   cpu {ac * NY / c_sirt:.1f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
