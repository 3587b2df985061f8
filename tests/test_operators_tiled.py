"""The tiled orderings of the system matrix hold the same entries, and the kernels apply it."""

import numpy as np
import scipy.sparse as sp

from sinter4d.operators._tiled import BLOCK, adjoint_kernel, direct_kernel, tiled_formats


def _random_matrix(rng, n_rows, n_cols):
    m = sp.random(n_rows, n_cols, density=0.2, random_state=np.random.RandomState(0), format="csr")
    m.data = rng.random(m.nnz).astype(np.float32)
    m = m.astype(np.float32)
    m.sort_indices()
    return m


def test_kernels_equal_the_sparse_product_on_every_slice():
    rng = np.random.default_rng(0)
    nz, nx, n_angles, n_det, ny = 19, 21, 3, 11, 70  # tiles and y blocks that do not divide evenly
    mat = _random_matrix(rng, n_angles * n_det, nz * nx)
    fwd, bwd, n_tile_groups = tiled_formats(mat, nz, nx, n_angles, n_det, ny, 2)
    # the direct ordering holds every entry once
    assert fwd[4].size == mat.nnz and np.isclose(fwd[4].sum(dtype=np.float64), mat.data.sum(dtype=np.float64))
    vol = rng.random((nz, ny, nx)).astype(np.float32)
    work = np.empty((-(-ny // BLOCK), n_angles * n_det * BLOCK), np.float32)
    out = np.empty((n_angles, ny, n_det), np.float32)
    direct_kernel(*fwd, vol, work, out, n_angles, n_det)
    dense = mat.toarray().astype(np.float64)
    for j in (0, 37, 69):
        ref = (dense @ vol[:, j, :].ravel()).reshape(n_angles, n_det)
        np.testing.assert_allclose(out[:, j, :], ref, rtol=1e-5, atol=1e-5)
    proj = rng.random((n_angles, ny, n_det)).astype(np.float32)
    back = np.empty((nz, ny, nx), np.float32)
    adjoint_kernel(*bwd, proj, work, back, n_tile_groups)
    for j in (0, 64, 69):
        ref = (dense.T @ proj[:, j, :].ravel()).reshape(nz, nx)
        np.testing.assert_allclose(back[:, j, :], ref, rtol=1e-5, atol=1e-5)
