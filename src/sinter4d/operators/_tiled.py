"""Tiled storage of the system matrix and the compiled kernels that apply it to all y slices.

The slice's voxels are cut into TILE x TILE tiles and the y slices into
blocks of BLOCK. A task copies one tile of one y block into a small
(voxel, BLOCK) buffer that stays in the core's cache, so that one matrix
entry costs one short vector operation over BLOCK slices. The direct kernel
walks the entries ordered (angle group, tile, row, column) and adds each
ray's partial sum into a (ray, BLOCK) buffer; the adjoint walks them ordered
(tile, column, row) and accumulates each voxel in registers. Both orders
hold the same float32 values, so the adjoint is the exact transpose. Tasks
(y block, angle group) and (y block, tile group) write disjoint outputs: no
locks, no reductions.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

__all__ = ["BLOCK", "TILE", "adjoint_kernel", "direct_kernel", "tiled", "tiled_formats"]

BLOCK = 64  # y slices per task: a multiple of the SIMD width (<= 32 vectorises poorly in numba)
TILE = 16  # voxels per tile edge: a tile row of float32 is one 64-byte cache line


@numba.njit(cache=True)
def tiled(ptr, idx, vals, major_group, minor_group, n_groups, major_map, minor_map):  # pragma: no cover
    """Re-order a compressed matrix (major = rows of a CSR or columns of a CSC).

    Entries are stably bucket-sorted by
    ``group = major_group[major] + minor_group[minor]`` and cut into segments
    of one major index within one group; indices are mapped through
    ``major_map`` / ``minor_map`` (e.g. to tile-local voxel indices).

    Returns ``(grp_ptr, seg_major, seg_ptr, minor, vals)``: group ``g`` holds
    segments ``grp_ptr[g]:grp_ptr[g + 1]``, segment ``s`` the entries
    ``seg_ptr[s]:seg_ptr[s + 1]``.
    """
    n_major = ptr.size - 1
    nnz = idx.size
    start = np.zeros(n_groups + 1, dtype=np.int64)
    for m in range(n_major):
        gm = major_group[m]
        for q in range(ptr[m], ptr[m + 1]):
            start[gm + minor_group[idx[q]] + 1] += 1
    for g in range(n_groups):
        start[g + 1] += start[g]
    pos = start[:-1].copy()
    out_major = np.empty(nnz, dtype=np.int64)
    out_minor = np.empty(nnz, dtype=np.int32)
    out_val = np.empty(nnz, dtype=np.float32)
    for m in range(n_major):
        gm = major_group[m]
        for q in range(ptr[m], ptr[m + 1]):
            g = gm + minor_group[idx[q]]
            p = pos[g]
            pos[g] += 1
            out_major[p] = m
            out_minor[p] = minor_map[idx[q]]
            out_val[p] = vals[q]
    is_new = np.zeros(nnz + 1, dtype=np.bool_)
    for g in range(n_groups + 1):
        is_new[start[g]] = True
    for p in range(1, nnz):
        if out_major[p] != out_major[p - 1]:
            is_new[p] = True
    n_seg = 0
    for p in range(nnz):
        if is_new[p]:
            n_seg += 1
    seg_ptr = np.empty(n_seg + 1, dtype=np.int64)
    seg_major = np.empty(n_seg, dtype=np.int32)
    grp_ptr = np.empty(n_groups + 1, dtype=np.int64)
    s = 0
    g = 0
    for p in range(nnz + 1):
        while g <= n_groups and start[g] == p:
            grp_ptr[g] = s
            g += 1
        if p < nnz and is_new[p]:
            seg_ptr[s] = p
            seg_major[s] = major_map[out_major[p]]
            s += 1
    seg_ptr[n_seg] = nnz
    return grp_ptr, seg_major, seg_ptr, out_minor, out_val


@numba.njit(inline="always")
def _tile_extent(t, ntx, nz, nx):  # pragma: no cover - compiled
    k0 = (t // ntx) * TILE
    j0 = (t % ntx) * TILE
    return k0, j0, min(TILE, nz - k0), min(TILE, nx - j0)


@numba.njit(parallel=True, fastmath=True, boundscheck=False, cache=True)
def direct_kernel(grp_ptr, seg_row, seg_ptr, col, val, vol, obuf, out, n_angles, n_det):  # pragma: no cover
    nz, ny, nx = vol.shape
    n_blocks = obuf.shape[0]
    ntx = (nx + TILE - 1) // TILE
    n_tiles = ((nz + TILE - 1) // TILE) * ntx
    n_parts = (grp_ptr.size - 1) // n_tiles
    bk = np.uint64(BLOCK)
    obuf[:] = 0.0
    for task in numba.prange(n_blocks * n_parts):
        blk = task // n_parts
        part = task % n_parts
        y0 = blk * BLOCK
        nb = min(BLOCK, ny - y0)
        ob = obuf[blk]
        xt = np.zeros(TILE * TILE * BLOCK, dtype=np.float32)
        acc = np.zeros(BLOCK, dtype=np.float32)
        for t in range(n_tiles):
            s0 = grp_ptr[part * n_tiles + t]
            s1 = grp_ptr[part * n_tiles + t + 1]
            if s0 == s1:
                continue
            k0, j0, kn, jn = _tile_extent(t, ntx, nz, nx)
            for kk in range(kn):
                for b in range(nb):
                    for jj in range(jn):
                        xt[np.uint64(kk * TILE + jj) * bk + np.uint64(b)] = vol[k0 + kk, y0 + b, j0 + jj]
            for s in range(s0, s1):
                for b in range(BLOCK):
                    acc[b] = 0.0
                q0 = seg_ptr[s]
                q1 = seg_ptr[s + 1]
                while q0 + 4 <= q1:  # four entries per pass: a quarter of the accumulator traffic
                    w0, w1, w2, w3 = val[q0], val[q0 + 1], val[q0 + 2], val[q0 + 3]
                    c0 = np.uint64(col[q0]) * bk
                    c1 = np.uint64(col[q0 + 1]) * bk
                    c2 = np.uint64(col[q0 + 2]) * bk
                    c3 = np.uint64(col[q0 + 3]) * bk
                    for b in range(BLOCK):
                        ub = np.uint64(b)
                        acc[b] += (w0 * xt[c0 + ub] + w1 * xt[c1 + ub]) + (w2 * xt[c2 + ub] + w3 * xt[c3 + ub])
                    q0 += 4
                for q in range(q0, q1):
                    w = val[q]
                    c = np.uint64(col[q]) * bk
                    for b in range(BLOCK):
                        acc[b] += w * xt[c + np.uint64(b)]
                o = np.uint64(seg_row[s]) * bk
                for b in range(BLOCK):
                    ob[o + np.uint64(b)] += acc[b]
    for task in numba.prange(n_blocks * n_angles):
        blk = task // n_angles
        a = task % n_angles
        y0 = blk * BLOCK
        nb = min(BLOCK, ny - y0)
        ob = obuf[blk]
        for b in range(nb):
            for i in range(n_det):
                out[a, y0 + b, i] = ob[np.uint64(a * n_det + i) * bk + np.uint64(b)]


@numba.njit(parallel=True, fastmath=True, boundscheck=False, cache=True)
def adjoint_kernel(grp_ptr, seg_col, seg_ptr, row, val, proj, pbuf, out, n_parts):  # pragma: no cover
    n_angles, ny, n_det = proj.shape
    nz, _, nx = out.shape
    n_blocks = pbuf.shape[0]
    ntx = (nx + TILE - 1) // TILE
    n_tiles = grp_ptr.size - 1
    bk = np.uint64(BLOCK)
    for task in numba.prange(n_blocks * n_angles):
        blk = task // n_angles
        a = task % n_angles
        y0 = blk * BLOCK
        nb = min(BLOCK, ny - y0)
        pb = pbuf[blk]
        for i in range(n_det):
            o = np.uint64(a * n_det + i) * bk
            for b in range(nb):
                pb[o + np.uint64(b)] = proj[a, y0 + b, i]
            for b in range(nb, BLOCK):
                pb[o + np.uint64(b)] = 0.0
    for task in numba.prange(n_blocks * n_parts):
        blk = task // n_parts
        part = task % n_parts
        y0 = blk * BLOCK
        nb = min(BLOCK, ny - y0)
        pb = pbuf[blk]
        xt = np.empty(TILE * TILE * BLOCK, dtype=np.float32)
        acc = np.zeros(BLOCK, dtype=np.float32)
        for t in range(part * n_tiles // n_parts, (part + 1) * n_tiles // n_parts):
            k0, j0, kn, jn = _tile_extent(t, ntx, nz, nx)
            if grp_ptr[t + 1] - grp_ptr[t] < kn * jn:  # some voxels meet no ray
                xt[:] = 0.0
            for s in range(grp_ptr[t], grp_ptr[t + 1]):
                for b in range(BLOCK):
                    acc[b] = 0.0
                q0 = seg_ptr[s]
                q1 = seg_ptr[s + 1]
                while q0 + 4 <= q1:
                    w0, w1, w2, w3 = val[q0], val[q0 + 1], val[q0 + 2], val[q0 + 3]
                    r0 = np.uint64(row[q0]) * bk
                    r1 = np.uint64(row[q0 + 1]) * bk
                    r2 = np.uint64(row[q0 + 2]) * bk
                    r3 = np.uint64(row[q0 + 3]) * bk
                    for b in range(BLOCK):
                        ub = np.uint64(b)
                        acc[b] += (w0 * pb[r0 + ub] + w1 * pb[r1 + ub]) + (w2 * pb[r2 + ub] + w3 * pb[r3 + ub])
                    q0 += 4
                for q in range(q0, q1):
                    w = val[q]
                    r = np.uint64(row[q]) * bk
                    for b in range(BLOCK):
                        acc[b] += w * pb[r + np.uint64(b)]
                o = np.uint64(seg_col[s]) * bk
                for b in range(BLOCK):
                    xt[o + np.uint64(b)] = acc[b]
            for kk in range(kn):
                for b in range(nb):
                    for jj in range(jn):
                        out[k0 + kk, y0 + b, j0 + jj] = xt[np.uint64(kk * TILE + jj) * bk + np.uint64(b)]


def tiled_formats(mat: sp.csr_matrix, nz: int, nx: int, n_angles: int, n_det: int, ny: int, n_threads: int):
    """Direct and adjoint orderings of ``mat`` for the kernels, and the adjoint's task count."""
    n_blocks = -(-ny // BLOCK)
    # enough tasks for every thread; angle groups cost cache reuse, tile groups cost nothing
    n_angle_groups = int(min(n_angles, max(1, -(-2 * n_threads // n_blocks))))
    ntz, ntx = -(-nz // TILE), -(-nx // TILE)
    n_tiles = ntz * ntx
    cols = np.arange(nz * nx, dtype=np.int64)
    kz, jx = cols // nx, cols % nx
    tile_of_col = (kz // TILE) * ntx + jx // TILE
    local_col = (kz % TILE) * TILE + jx % TILE
    rows = np.arange(n_angles * n_det, dtype=np.int64)
    angle_group_of_row = (rows // n_det) * n_angle_groups // n_angles
    fwd = tiled(
        mat.indptr.astype(np.int64),
        mat.indices.astype(np.int64),
        mat.data,
        angle_group_of_row * n_tiles,
        tile_of_col,
        n_angle_groups * n_tiles,
        rows,
        local_col,
    )
    csc = mat.tocsc()
    csc.sort_indices()
    bwd = tiled(
        csc.indptr.astype(np.int64),
        csc.indices.astype(np.int64),
        csc.data,
        tile_of_col,
        np.zeros(rows.size, dtype=np.int64),
        n_tiles,
        local_col,
        rows,
    )
    n_tile_groups = int(min(n_tiles, max(1, -(-8 * n_threads // n_blocks))))
    return fwd, bwd, n_tile_groups
