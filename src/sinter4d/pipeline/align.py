"""Translational alignment of a tilt series (the paper's second step).

Each image is registered to its neighbour one tilt closer to the reference
(0 deg) image, and the pairwise translations are accumulated outwards from
the reference, as in the paper ("the NP positions accurately overlap between
image pairs with adjacent tilt angle values"). Two metrics:

``'xcorr'``
    FFT cross-correlation with sub-pixel refinement by upsampled DFT
    ([Guizar2008]_, :func:`skimage.registration.phase_cross_correlation`),
    on mean-free, Tukey-windowed images, repeated once after shifting the
    moving image back by the first estimate. ``normalization='none'`` (plain
    cross-correlation) is the default: at a few electrons per pixel the phase
    normalisation whitens the spectrum and lets the noise dominate.
``'mattes'``
    Mattes mutual information [Mattes2003]_ optimised by the (1+1)
    evolutionary strategy [Styner2000]_ over a translation, in SimpleITK with
    a three-level pyramid, as the paper's MATLAB ``imregister`` set-up.

With ``cosine_stretch`` the image further from 0 deg is first stretched along
x (perpendicular to the tilt axis) by ``cos(theta_near) / cos(theta_far)``,
so that objects near the specimen plane have the same width in both images.

Sign convention
---------------
``shifts[i] = (dy, dx)`` in pixels is the displacement of the content of
image ``i`` relative to the reference image: a feature at ``(y, x)`` in the
reference appears at ``(y + dy, x + dx)`` in image ``i`` (up to the true tilt
geometry). ``shifts[reference_index] = (0, 0)``.
``apply_shifts(images, -shifts)`` undoes the displacement.

A registration cannot tell drift from the rigid motion of the specimen's
centre of mass: errors of the form ``a (cos theta - 1) + b sin theta`` in x
amount to a translation of the reconstructed volume, and a constant to a
tilt-axis offset, which :func:`sinter4d.pipeline.tilt_axis.find_tilt_axis`
finds next.

References
----------
.. [Guizar2008] M. Guizar-Sicairos, S. T. Thurman, J. R. Fienup, "Efficient
   subpixel image registration algorithms", Opt. Lett. 33, 156–158 (2008).
   doi:10.1364/OL.33.000156
.. [Mattes2003] D. Mattes, D. R. Haynor, H. Vesselle, T. K. Lewellen,
   W. Eubank, "PET-CT image registration in the chest using free-form
   deformations", IEEE Trans. Med. Imaging 22, 120–128 (2003).
   doi:10.1109/TMI.2003.809072
.. [Styner2000] M. Styner, C. Brechbühler, G. Székely, G. Gerig, "Parametric
   estimate of intensity inhomogeneities applied to MRI", IEEE Trans. Med.
   Imaging 19, 153–165 (2000). doi:10.1109/42.845174
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from ..checks import check_choice
from ..errors import InputError
from .denoise import _image_stack
from .settings import ALIGN_METHODS, AlignSettings

__all__ = ["ALIGN_METHODS", "align_translations", "apply_shifts", "register_pair"]

NORMALIZATIONS = ("none", "phase")
SHIFT_METHODS = ("spline", "fourier")


# --------------------------------------------------------------------------
# shifting images
# --------------------------------------------------------------------------


def apply_shifts(images: np.ndarray, shifts: np.ndarray, *, method: str = "spline", mode: str = "nearest") -> np.ndarray:
    """Displace the content of each image by ``shifts`` (sub-pixel).

    ``out[i](y + dy_i, x + dx_i) = images[i](y, x)``; so
    ``apply_shifts(images, -align_translations(images, angles))`` aligns a
    series.

    Parameters
    ----------
    images : (n, ny, nx) or (ny, nx) ndarray
    shifts : (n, 2) or (2,) array_like
        ``(dy, dx)`` per image, in pixels.
    method : {'spline', 'fourier'}, optional
        ``'spline'``: cubic spline interpolation (:func:`scipy.ndimage.shift`),
        edges filled by ``mode``; ``'fourier'``: exact phase ramp, content
        wraps around the edges (periodic images only).
    mode : str, optional
        Edge mode of :func:`scipy.ndimage.shift` for ``'spline'``
        (``'nearest'`` repeats the edge pixels, ``'constant'`` fills 0).

    Returns
    -------
    ndarray
        Shifted images, same shape; float32 for float32 input, else float64.
    """
    check_choice(method, "method", SHIFT_METHODS)
    stack, single = _image_stack(images)
    sh = np.asarray(shifts, dtype=np.float64).reshape(-1, 2)
    if sh.shape[0] != stack.shape[0]:
        raise InputError(f"shifts must have shape ({stack.shape[0]}, 2), got {np.shape(shifts)}")
    out = np.empty_like(stack)
    for i, (img, s) in enumerate(zip(stack, sh)):
        if method == "fourier":
            f = ndimage.fourier_shift(np.fft.rfft2(img), s, n=img.shape[1])
            out[i] = np.fft.irfft2(f, s=img.shape)
        else:
            out[i] = ndimage.shift(img, s, order=3, mode=mode, prefilter=True)
    return out[0] if single else out


def _stretch_x(image: np.ndarray, factor: float, centre_x: float) -> np.ndarray:
    """``J(y, x) = I(y, centre_x + (x - centre_x) / factor)``: widen by ``factor`` along x."""
    if factor == 1.0:
        return image
    return ndimage.affine_transform(
        image, np.array([1.0, 1.0 / factor]), offset=(0.0, centre_x * (1.0 - 1.0 / factor)), order=1, mode="nearest"
    )


# --------------------------------------------------------------------------
# pairwise registration
# --------------------------------------------------------------------------


def _tukey2d(shape: tuple[int, int], alpha: float = 0.25) -> np.ndarray:
    from scipy.signal.windows import tukey

    return np.outer(tukey(shape[0], alpha), tukey(shape[1], alpha))


def _xcorr(fixed: np.ndarray, moving: np.ndarray, upsample_factor: int, normalization: str) -> np.ndarray:
    """Two passes: the second registers ``moving`` already shifted back by the first
    estimate, so that both images' content sits at the same place under the
    window (a fixed window otherwise pulls the peak towards zero shift)."""
    from skimage.registration import phase_cross_correlation

    w = _tukey2d(fixed.shape)
    a = (fixed - fixed.mean()) * w
    total = np.zeros(2)
    current = moving
    for _ in range(2):
        b = (current - current.mean()) * w
        shift, _, _ = phase_cross_correlation(
            a, b, upsample_factor=upsample_factor, normalization=None if normalization == "none" else "phase"
        )
        total -= shift  # skimage returns the correction; we want the displacement
        current = ndimage.shift(moving, -total, order=3, mode="nearest")
    return total


def _mattes(fixed: np.ndarray, moving: np.ndarray, bins: int, iterations: int, seed: int, sampling: float = 1.0) -> np.ndarray:
    import SimpleITK as sitk

    f = sitk.GetImageFromArray(np.ascontiguousarray(fixed, dtype=np.float32))
    m = sitk.GetImageFromArray(np.ascontiguousarray(moving, dtype=np.float32))
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=bins)
    # ``sampling`` x as many randomly placed (off-grid) sample points as pixels,
    # from a fixed seed: sampling only the pixel grid biases mutual information
    # towards whole-pixel shifts (interpolation smooths the noise of the moving
    # image at fractional shifts only).
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(float(sampling), seed)
    reg.SetInterpolator(sitk.sitkLinear)
    # search radius 1 px, x1.05 on success, x0.95 on failure, stop below 1e-3 px
    reg.SetOptimizerAsOnePlusOneEvolutionary(
        numberOfIterations=iterations, epsilon=1e-3, initialRadius=1.0, growthFactor=1.05, shrinkFactor=0.95, seed=seed
    )
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(sitk.TranslationTransform(2), inPlace=False)
    reg.SetNumberOfThreads(1)  # reproducible sums
    tx = reg.Execute(f, m)
    # The transform maps fixed points to moving points, x -> x + t: the
    # moving content is displaced by +t. SimpleITK orders (x, y).
    t = np.asarray(tx.GetParameters())
    return np.array([t[1], t[0]], dtype=np.float64)


def register_pair(
    fixed: np.ndarray,
    moving: np.ndarray,
    *,
    method: str,
    normalization: str = "none",
    upsample_factor: int = 20,
    mattes_bins: int = 32,
    mattes_iterations: int = 100,
    mattes_sampling: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Translation of the content of ``moving`` relative to ``fixed``.

    Parameters
    ----------
    fixed, moving : (ny, nx) ndarray
    method : {'xcorr', 'mattes'}
        See the module docstring.
    normalization : {'none', 'phase'}, optional
        ``'xcorr'`` only: plain or phase (whitened) cross-correlation.
    upsample_factor : int, optional
        ``'xcorr'`` only: sub-pixel precision ``1 / upsample_factor`` px.
    mattes_bins, mattes_iterations : int, optional
        ``'mattes'`` only: histogram bins; (1+1)-ES iterations per level.
    mattes_sampling : float, optional
        ``'mattes'`` only: random metric samples per pixel at every pyramid
        level, in (0, 1] (cost is proportional to it).
    seed : int, optional
        ``'mattes'`` only: seed of the (1+1)-ES (>= 1; 0 is replaced by 1,
        SimpleITK's 0 meaning the wall clock).

    Returns
    -------
    (2,) ndarray
        ``(dy, dx)`` in pixels: a feature at ``p`` in ``fixed`` is at
        ``p + (dy, dx)`` in ``moving``.
    """
    check_choice(method, "method", ALIGN_METHODS)
    check_choice(normalization, "normalization", NORMALIZATIONS)
    a = np.asarray(fixed, dtype=np.float64)
    b = np.asarray(moving, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise InputError(f"fixed and moving must be 2D images of one shape, got {a.shape} and {b.shape}")
    if method == "xcorr":
        return _xcorr(a, b, int(upsample_factor), normalization)
    if not 0.0 < float(mattes_sampling) <= 1.0:
        raise InputError(f"mattes_sampling={mattes_sampling} must lie in (0, 1]")
    return _mattes(a, b, int(mattes_bins), int(mattes_iterations), max(int(seed), 1), float(mattes_sampling))


def align_translations(
    images: np.ndarray,
    angles_deg: np.ndarray,
    settings: AlignSettings = AlignSettings(),
    *,
    reference_index: int | None = None,
    cosine_stretch: bool = True,
    normalization: str = "none",
    upsample_factor: int = 20,
    mattes_bins: int = 32,
    mattes_iterations: int = 100,
    seed: int = 0,
    centre_x: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Drift of every image of a tilt series, from registrations of adjacent tilts.

    Image ``i`` is registered to its neighbour ``j`` one step closer to the
    reference, and ``shifts[i] = shifts[j] + register_pair(images[j], images[i])``
    outwards on both sides of the reference.

    Parameters
    ----------
    images : (n, ny, nx) ndarray
        Tilt series (denoised images register better), in tilt order.
    angles_deg : (n,) array_like
        Tilt angles in degrees, monotonic.
    settings : AlignSettings, optional
        Its ``align_method``: FFT cross-correlation (``'xcorr'``) or Mattes
        mutual information with the (1+1) evolutionary optimiser
        (``'mattes'``, the paper's choice; much slower), and its
        ``mattes_sampling`` (:func:`register_pair`).
    reference_index : int, optional
        Image whose shift is 0; default the one closest to 0 deg.
    cosine_stretch : bool, optional
        Stretch the outer image of each pair along x by
        ``cos(theta_j) / cos(theta_i)`` about its estimated centre first.
    normalization, upsample_factor, mattes_bins, mattes_iterations, seed
        Passed to :func:`register_pair`.
    centre_x : float, optional
        Column (px, in ``images``) of the content's centre in the reference
        image, about which the cosine stretch scales; default the middle
        column. A crop of a series passes the full image's middle column in
        the crop's coordinates, so that its shifts are the full image's.
    progress : callable, optional
        ``progress(done, total)`` after each pair.

    Returns
    -------
    (n, 2) ndarray of float64
        ``(dy, dx)`` per image in pixels; ``apply_shifts(images, -shifts)``
        undoes the drift (see the module docstring for the convention).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((64, 64)); img[20:30, 25:40] = 1.0
    >>> series = apply_shifts(np.stack([img, img, img]), [(0, 0), (0, 0), (1.5, -2.0)])
    >>> np.round(align_translations(series, [-2, 0, 2], cosine_stretch=False), 1)
    array([[ 0. ,  0. ],
           [ 0. ,  0. ],
           [ 1.5, -2. ]])
    """
    check_choice(normalization, "normalization", NORMALIZATIONS)
    stack, single = _image_stack(images)
    angles = np.asarray(angles_deg, dtype=np.float64).ravel()
    n = stack.shape[0]
    if single or angles.shape != (n,):
        raise InputError(f"need an (n, ny, nx) stack and n angles, got shapes {np.shape(images)} and {np.shape(angles_deg)}")
    if n > 1 and not (np.all(np.diff(angles) > 0) or np.all(np.diff(angles) < 0)):
        raise InputError("angles_deg must be strictly monotonic (images in tilt order)")
    if np.any(np.abs(angles) >= 90):
        raise InputError("angles_deg must lie strictly between -90 and 90 degrees")
    ref = int(np.argmin(np.abs(angles))) if reference_index is None else int(reference_index) % n

    shifts = np.zeros((n, 2))
    centre_x = (stack.shape[2] - 1) / 2.0 if centre_x is None else float(centre_x)
    order = [(i, i - 1) for i in range(ref + 1, n)] + [(i, i + 1) for i in range(ref - 1, -1, -1)]
    for done, (i, j) in enumerate(order, start=1):
        moving = stack[i].astype(np.float64)
        factor = 1.0
        if cosine_stretch:
            factor = np.cos(np.deg2rad(angles[j])) / np.cos(np.deg2rad(angles[i]))
            # scale about where the content centre is estimated to lie in image j
            moving = _stretch_x(moving, factor, centre_x + shifts[j, 1])
        rel = register_pair(
            stack[j], moving, method=settings.align_method, normalization=normalization, upsample_factor=upsample_factor,
            mattes_bins=mattes_bins, mattes_iterations=mattes_iterations, mattes_sampling=settings.mattes_sampling,
            seed=seed + i,
        )
        rel[1] /= factor  # back from stretched to image pixels
        shifts[i] = shifts[j] + rel
        if progress is not None:
            progress(done, len(order))
    return shifts
