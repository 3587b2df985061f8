"""Quality of a reconstruction against the simulator's truth.

Registration cannot tell the stage's drift from the specimen's own parallax,
so shifts and tilt axis are found only up to a rigid translation of the
volume (``a cos θ + b sin θ + c`` in the x shifts); a reconstruction is
therefore compared with the truth after registering the two volumes, and
shifts after removing that unobservable component.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft

from ..pipeline.binarize import dice

#: Largest translation (nm, along each axis) a validation lets :func:`registered_dice` apply: the
#: rigid motion the alignment leaves open reaches ~20 nm at the paper's 1.04 nm voxels, where
#: a cap of 8 voxels cut it short (docs/validation.md, "Speed at the paper's scale").
DICE_MAX_SHIFT_NM = 50.0


def truth_on_grid(true_label: np.ndarray, z_true_nm: np.ndarray, z_nm: np.ndarray) -> np.ndarray:
    """The true core mask resampled (nearest voxel) onto another z grid.

    Parameters
    ----------
    true_label : (nz_true, ny, nx) ndarray
        Core labels of the truth (0 = no core), on the same y/x grid.
    z_true_nm : (nz_true,) ndarray
        Its z coordinates (nm, uniform spacing).
    z_nm : (nz,) ndarray
        The z coordinates wanted (nm).

    Returns
    -------
    (nz, ny, nx) bool ndarray
        False where ``z_nm`` lies outside the truth's slab.
    """
    step = float(z_true_nm[1] - z_true_nm[0])
    index = np.round((np.asarray(z_nm) - z_true_nm[0]) / step).astype(int)
    inside = (index >= 0) & (index < len(z_true_nm))
    out = np.zeros((len(z_nm), *true_label.shape[1:]), dtype=bool)
    out[inside] = true_label[index[inside]] > 0
    return out


def registered_dice(binary: np.ndarray, truth: np.ndarray, *, max_shift_vox: int = 8) -> tuple[float, tuple[int, ...]]:
    """Dice of a binary volume against the truth after the best integer translation.

    The translation is found by FFT cross-correlation of the two masks and
    limited to ``max_shift_vox`` voxels along each axis.

    Returns
    -------
    dice : float
    shift : tuple of int
        Voxels by which ``binary`` was rolled, ``(z, y, x)``.
    """
    # the integer peak of the masks' cross-correlation, as skimage's phase_cross_correlation
    # (normalization=None) finds it, in single precision with real FFTs: a paper-size volume
    # (346 x 1024^2) then needs ~4 volumes of complex64 instead of ~4 of complex128 at twice the size
    spectrum = fft.rfftn(truth.astype(np.float32))
    spectrum *= np.conj(fft.rfftn(binary.astype(np.float32)))
    correlation = fft.irfftn(spectrum, s=truth.shape, overwrite_x=True)
    del spectrum
    peak = np.unravel_index(int(np.argmax(correlation)), correlation.shape)
    shift = tuple(int(np.clip(p - n if p > n // 2 else p, -max_shift_vox, max_shift_vox))
                  for p, n in zip(peak, truth.shape))
    return dice(np.roll(binary, shift, axis=tuple(range(binary.ndim))), truth), shift


def validation_dice(binary: np.ndarray, truth: np.ndarray, *, voxel_size_nm: float) -> float:
    """Dice as a validation scores it: :func:`registered_dice` with shifts of at most :data:`DICE_MAX_SHIFT_NM`.

    Parameters
    ----------
    binary, truth : (nz, ny, nx) bool ndarray
        The binarised reconstruction and the true mask on its grid.
    voxel_size_nm : float
        Voxel edge, nm (the cap is ``ceil(DICE_MAX_SHIFT_NM / voxel_size_nm)`` voxels).
    """
    cap = math.ceil(DICE_MAX_SHIFT_NM / float(voxel_size_nm))
    return registered_dice(binary, truth, max_shift_vox=cap)[0]


def rigid_residual(shift_error_x_px: np.ndarray, angles_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split an x-shift error into its rigid part and the residual.

    Parameters
    ----------
    shift_error_x_px : (n,) ndarray
        Found minus true x shift of each image (px).
    angles_deg : (n,) ndarray

    Returns
    -------
    residual : (n,) ndarray
        The error left after the least-squares fit of ``a cos θ + b sin θ + c``.
    coefficients : (3,) ndarray
        ``(a, b, c)``: a volume translation of ``-a`` px along x and ``-b`` px
        along z, and an axis offset of the aligned series ``c`` px from the
        true one (the found axis should be ``true_axis_offset_px - c``).
    """
    theta = np.deg2rad(np.asarray(angles_deg, dtype=float))
    design = np.stack([np.cos(theta), np.sin(theta), np.ones_like(theta)], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, shift_error_x_px, rcond=None)
    return shift_error_x_px - design @ coefficients, coefficients
