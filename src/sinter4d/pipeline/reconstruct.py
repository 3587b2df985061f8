"""The reconstruction stage: :func:`reconstruct` and the rules it applies.

:func:`reconstruct` builds one :class:`~sinter4d.operators.ParallelProjector`
for the slab that holds the specimen and runs one of the solvers of
:mod:`sinter4d.pipeline.algorithms`:

``fbp``
    :func:`~sinter4d.pipeline.algorithms.fbp` with the Hann-windowed ramp.
``sirt``
    :class:`~sinter4d.pipeline.algorithms.SIRT`.
``tv``
    :class:`~sinter4d.pipeline.algorithms.AlternatingTV`, the paper's scheme (default).
``pdhg``
    :class:`~sinter4d.pipeline.algorithms.ChambollePock`, its TV weight from
    :func:`tv_weight_rule`.

The rules: :func:`estimate_noise_sigma` and :func:`tv_weight_rule` (the TV
weight of Chambolle–Pock relative to the data's noise) and :func:`slab_for`
(the slab that holds film and particles).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ..checks import check_choice, check_int, check_number
from ..errors import InputError
from ..operators import LinearOperator, ParallelProjector
from .algorithms import SIRT, Algorithm, AlternatingTV, ChambollePock, fbp, system_sums
from .algorithms.alternating_tv import DEFAULT_TV_FRACTION

# The solvers and callbacks lived here before the split; they stay importable from here.
from .callbacks import Callback, LoggingCallback, ObjectiveCallback, ProgressCallback  # noqa: F401

__all__ = [
    "DEFAULT_TV_KAPPA",
    "METHODS",
    "estimate_noise_sigma",
    "reconstruct",
    "slab_for",
    "tv_weight_rule",
]

logger = logging.getLogger(__name__)

METHODS = ("tv", "pdhg", "sirt", "fbp")
#: Default multiplier ``kappa`` of :func:`tv_weight_rule` for :class:`ChambollePock`.
DEFAULT_TV_KAPPA = 0.75


def estimate_noise_sigma(sinogram: np.ndarray) -> float:
    """Noise standard deviation of projections from differences along the detector.

    ``sigma = sqrt(mean(diff(b, axis=-1)^2) / 2)``: exact for white noise on
    a locally flat signal, and an over-estimate by the signal's own
    roughness otherwise (small for projections of particles a few pixels
    wide or more). Works for Poisson counts, whose many zeros defeat a
    median-based estimate.

    Parameters
    ----------
    sinogram : (n_angles, ny, n_det) ndarray

    Returns
    -------
    float
    """
    b = np.asarray(sinogram)
    if b.ndim != 3 or b.shape[-1] < 2:
        raise InputError(f"sinogram must be (n_angles, ny, n_det) with n_det >= 2, got shape {b.shape}")
    step = max(1, b.shape[1] // 64)  # at most ~64 detector rows per view are enough
    d = np.diff(b[:, ::step, :].astype(np.float64), axis=-1)
    return float(np.sqrt(0.5 * np.mean(d * d)))


def tv_weight_rule(sinogram: np.ndarray, operator: LinearOperator, *, kappa: float = DEFAULT_TV_KAPPA) -> float:
    """TV weight ``lambda`` for :class:`ChambollePock` relative to the data's noise.

    At the minimiser ``A^T (b - A x) = lambda * (a subgradient of TV)``,
    whose entries are of order 1. A residual of white noise ``sigma``
    back-projects to entries of order ``sigma * sqrt(n_angles) * w``
    (``w`` the per-view column sum of ``A``, ``h^2/d`` in nm), so

        ``lambda = kappa * sigma * sqrt(n_angles) * w``

    with ``sigma`` from :func:`estimate_noise_sigma`; ``kappa`` is what a
    spec sets. The default, 0.75, is what binarises sphere phantoms best
    over the doses of the sweep (docs/validation.md).

    Parameters
    ----------
    sinogram : (n_angles, ny, n_det) ndarray
    operator : LinearOperator
    kappa : float, optional

    Returns
    -------
    float
    """
    check_number(kappa, "kappa", minimum=0.0)
    n_angles = int(operator.range_shape[0])
    _, cols = system_sums(operator)
    w = float(np.median(cols)) / n_angles
    return float(kappa) * estimate_noise_sigma(sinogram) * math.sqrt(n_angles) * w


def slab_for(z_min_nm: float, z_max_nm: float, *, voxel_size_nm: float, margin_nm: float = 0.0) -> tuple[int, float]:
    """Slab thickness (voxels) and centre (nm) that hold ``[z_min_nm, z_max_nm]``.

    For a specimen on a film, ``z_min`` is the bottom of the film and
    ``z_max`` the film top plus the largest particle height.

    Returns
    -------
    (int, float)
        ``slab_nz`` and ``z_centre_nm`` for :func:`reconstruct`.
    """
    if not z_max_nm > z_min_nm:
        raise InputError(f"z_max_nm must exceed z_min_nm, got {z_min_nm!r}, {z_max_nm!r}")
    if not voxel_size_nm > 0 or margin_nm < 0:
        raise InputError(f"voxel_size_nm must be > 0 and margin_nm >= 0, got {voxel_size_nm!r}, {margin_nm!r}")
    lo, hi = z_min_nm - margin_nm, z_max_nm + margin_nm
    nz = int(math.ceil((hi - lo) / voxel_size_nm))
    return nz, 0.5 * (lo + hi)


def reconstruct(
    tilt_images: np.ndarray,
    angles_deg: Sequence[float],
    *,
    method: str = "tv",
    iterations: int = 300,
    slab_nz: int | None = None,
    voxel_size_nm: float,
    z_centre_nm: float = 0.0,
    axis_offset_px: float = 0.0,
    tv_weight: float | None = None,
    tol: float | None = None,
    initial: np.ndarray | None = None,
    callbacks: Iterable[Callable[[Algorithm], None]] = (),
) -> np.ndarray:
    """Reconstruct the slab holding the specimen from an aligned tilt series.

    Builds one :class:`~sinter4d.operators.ParallelProjector` for the slab
    (voxel = pixel, the tilt axis along y) and runs the chosen method.

    Parameters
    ----------
    tilt_images : (n_tilt, ny, nx) ndarray
        Aligned (and denoised) tilt series, signal proportional to the
        projected density (HAADF counts).
    angles_deg : (n_tilt,) sequence of float
        Tilt angles in degrees, each in (-90, 90).
    method : {'tv', 'pdhg', 'sirt', 'fbp'}, optional
        ``'tv'``: :class:`AlternatingTV` (the paper's scheme, default);
        ``'pdhg'``: :class:`ChambollePock`; ``'sirt'``: :class:`SIRT`;
        ``'fbp'``: :func:`fbp` with the Hann-windowed ramp.
    iterations : int, optional
        Iterations of the iterative methods (the paper: 300).
    slab_nz : int, optional
        Voxels along z (default ``nx``: a cube). Give the thickness that
        holds film and particles (see :func:`slab_for`): cost and memory
        scale with it.
    voxel_size_nm : float
        Pixel size of the tilt images = voxel size, nm.
    z_centre_nm : float, optional
        z of the slab's middle relative to the tilt axis, nm.
    axis_offset_px : float, optional
        Where the tilt axis lands on the detector, pixels right of its middle.
    tv_weight : float, optional
        Strength of the TV term: for ``'tv'`` the ratio of each TV step to
        the data step per iteration (default 3); for ``'pdhg'`` the
        multiplier ``kappa`` of :func:`tv_weight_rule` (default 0.75). Ignored otherwise.
    tol : float, optional
        Stop early when the relative change of the iterate is below ``tol``.
    initial : (slab_nz, ny, nx) ndarray, optional
        Start of the iterative methods (default zeros; copied): a warm start,
        e.g. the previous series' volume (:mod:`sinter4d.pipeline.warm_start`).
        Not for ``'fbp'``.
    callbacks : sequence of callables, optional
        Called after each iteration (e.g. :class:`ProgressCallback`).

    Returns
    -------
    (slab_nz, ny, nx) float32 ndarray
        Values per nm of projected path (density in the data's units / nm).

    Notes
    -----
    Memory for ``'tv'`` and ``'sirt'``: the volume, one work volume and two
    projection-sized arrays; ``'pdhg'`` adds three volumes.

    Examples
    --------
    >>> import numpy as np
    >>> b = np.zeros((3, 4, 16), np.float32)
    >>> reconstruct(b, [-30, 0, 30], method="sirt", iterations=2, slab_nz=8, voxel_size_nm=1.0).shape
    (8, 4, 16)
    """
    check_choice(method, "method", METHODS)
    b = np.asarray(tilt_images)
    if b.ndim != 3:
        raise InputError(f"tilt_images must be (n_tilt, ny, nx), got shape {b.shape}")
    angles = np.asarray(angles_deg, dtype=float).ravel()
    if angles.size != b.shape[0]:
        raise InputError(f"angles_deg has {angles.size} angles but tilt_images has {b.shape[0]} images")
    iterations = check_int(iterations, "iterations", minimum=0)
    n_tilt, ny, nx = b.shape
    nz = nx if slab_nz is None else check_int(slab_nz, "slab_nz", minimum=1)
    op = ParallelProjector(
        (nz, nx), ny, voxel_size_nm=voxel_size_nm, angles_deg=angles, n_det=nx,
        z_centre_nm=z_centre_nm, axis_offset_px=axis_offset_px,
    )  # fmt: skip
    if method == "fbp":
        if initial is not None:
            raise InputError("method='fbp' takes no initial volume (it is not iterative)")
        return fbp(b, op, angles_deg=angles, filter="hann")
    if method == "sirt":
        alg: Algorithm = SIRT(op, b, tol=tol, initial=initial)
    elif method == "tv":
        frac = DEFAULT_TV_FRACTION if tv_weight is None else tv_weight
        alg = AlternatingTV(op, b, tv_fraction=frac, tol=tol, initial=initial)
    else:
        kappa = DEFAULT_TV_KAPPA if tv_weight is None else tv_weight
        alg = ChambollePock(op, b, tv_weight=tv_weight_rule(b, op, kappa=kappa), tol=tol, initial=initial)
    logger.info("reconstruct: %s, %d iterations from %s, slab %s, %r", method, iterations,
                "zeros" if initial is None else "an initial volume", op.domain_shape, op)
    return alg.run(iterations, callbacks=callbacks)
