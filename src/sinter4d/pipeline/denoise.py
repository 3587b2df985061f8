"""BM3D denoising of a tilt series with a coloured-noise PSD (the paper's first step).

The paper denoised every raw frame with BM3D [Dabov2007]_ for correlated
noise [Makinen2020]_, with the pink noise profile ``g4`` of the BM3D authors'
experiments and a variance (137 in 8-bit units) chosen by maximising the PSNR
between a denoised raw frame and a 50-frame average at the same tilt
(docs/design.md, "Reconstruction notes"). This module does the same, with
the filter's settings (noise spectrum, Anscombe, preset, stages) taken from
a :class:`~sinter4d.pipeline.settings.DenoiseSettings`:

* :func:`noise_psd` builds the PSD handed to :func:`bm3d.bm3d` (``"g4"``:
  amplitude spectrum ``sqrt(c / (|f| + c))`` with ``|f|`` in frequency-index
  units and ``c = 0.01 sqrt(ny nx)``, exactly as the ``g4`` kernel of the
  BM3D demos; ``"white"``: flat);
* :func:`select_sigma_psnr` picks the noise level against a reference;
* :func:`estimate_sigma_psd` picks it from the data alone when there is no
  reference;
* :func:`denoise_bm3d` denoises every image of a series, in parallel;
* :func:`anscombe` / :func:`inverse_anscombe` (exact unbiased inverse;
  :mod:`sinter4d.pipeline.noise_model`, with the detector's measured noise
  for ``psd = "detector"``) for images in electron counts.

``sigma_psd`` is always the standard deviation (image units) of the noise of
one pixel: the PSD is scaled so that its mean is ``ny * nx * sigma_psd**2``,
the convention of :func:`bm3d.bm3d` (a white PSD of ``sigma`` equals the
scalar ``sigma``). With ``settings.anscombe`` it is the level in the
variance-stabilised domain, where Poisson noise has unit variance.

References
----------
.. [Dabov2007] K. Dabov, A. Foi, V. Katkovnik, K. Egiazarian, "Image denoising
   by sparse 3-D transform-domain collaborative filtering", IEEE Trans. Image
   Process. 16, 2080–2095 (2007). doi:10.1109/TIP.2007.901238
.. [Makinen2020] Y. Mäkinen, L. Azzari, A. Foi, "Collaborative filtering of
   correlated noise: exact transform-domain variance for improved shrinkage
   and patch matching", IEEE Trans. Image Process. 29, 8339–8354 (2020).
   doi:10.1109/TIP.2020.3014721
"""

from __future__ import annotations

import functools
import math
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np
from scipy import ndimage

from .._cores import worker_count
from ..checks import check_choice, check_int, check_positive
from ..errors import InputError
from .noise_model import _float_dtype, anscombe, inverse_anscombe
from .settings import DenoiseSettings

__all__ = [
    "anscombe",
    "denoise_bm3d",
    "estimate_sigma_psd",
    "inverse_anscombe",
    "noise_psd",
    "select_sigma_psnr",
]

#: BM3D runs (one image each) at once, unless a caller says otherwise.
DEFAULT_JOBS = 2


# --------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------


def _image_stack(images, name: str = "images") -> tuple[np.ndarray, bool]:
    """``images`` as a float ``(n, ny, nx)`` stack and whether it was a single 2D image."""
    arr = np.asarray(images)
    if arr.ndim not in (2, 3) or arr.dtype.kind not in "biuf":
        raise InputError(f"{name} must be a real (ny, nx) image or (n, ny, nx) stack, got shape {arr.shape} dtype {arr.dtype}")
    single = arr.ndim == 2
    arr = arr[None] if single else arr
    if min(arr.shape[1:]) < 8:
        raise InputError(f"{name} must be at least 8 x 8 pixels, got {arr.shape[1:]}")
    arr = arr.astype(_float_dtype(arr), copy=False)
    if not np.isfinite(arr).all():
        raise InputError(f"{name} hold NaN or infinite values")
    return arr, single


def _psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """PSNR (dB) of ``image`` against ``reference``, peak = the reference's data range."""
    ref = reference.astype(np.float64)
    mse = float(np.mean((image.astype(np.float64) - ref) ** 2))
    peak = float(ref.max() - ref.min())
    return 10.0 * math.log10(peak**2 / max(mse, 1e-300))


def _bm3d_module():
    """Import :mod:`bm3d`, restoring ``numpy.trapz`` for bm4d <= 4.2.5 under NumPy 2.

    bm4d (which bm3d calls) uses ``np.trapz``, removed in NumPy 2.0, for
    coloured PSDs only. Only bm4d's own reference to numpy is replaced, by a
    module that forwards every attribute to numpy and adds ``trapz``.
    """
    import bm3d
    import bm4d

    if not hasattr(bm4d.np, "trapz"):
        compat = types.ModuleType("numpy_with_trapz")
        compat.__getattr__ = lambda name: getattr(np, name)  # PEP 562 forwarding
        compat.trapz = np.trapezoid
        bm4d.np = compat
    return bm3d


# --------------------------------------------------------------------------
# noise model
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _psd_shape(shape: tuple[int, int], psd: str, frame: tuple[int, int] | None = None) -> np.ndarray:
    """PSD of unit per-pixel variance (mean over frequencies 1), unshifted FFT order.

    ``frame`` is the image the noise was defined on (default ``shape``): a
    crop of it samples the frame's spectrum at its own frequencies.
    """
    ny, nx = shape
    if psd == "white":
        return np.ones(shape)
    fy, fx = shape if frame is None else frame
    ky = np.fft.fftfreq(ny) * fy  # frequency index of the frame, as in the BM3D demos' g4 kernel
    kx = np.fft.fftfreq(nx) * fx
    dist = np.hypot(ky[:, None], kx[None, :])
    c = 0.01 * math.sqrt(fy * fx)
    power = c / (dist + c)  # |amplitude|**2, amplitude = sqrt(c / (|f| + c))
    out = power / power.mean()
    out.setflags(write=False)
    return out


def noise_psd(shape: tuple[int, int], sigma_psd: float, *, psd: str,
              frame_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Noise power spectral density in the convention of :func:`bm3d.bm3d`.

    Parameters
    ----------
    shape : (ny, nx) tuple of int
        Image shape in pixels.
    sigma_psd : float
        Per-pixel noise standard deviation (image units).
    psd : {'g4', 'white'}
        ``'g4'``: the pink noise of the BM3D demos (``get_experiment_kernel``),
        amplitude ``sqrt(c / (|f| + c))`` with ``|f|`` the distance from DC in
        frequency-index units and ``c = 0.01 sqrt(ny nx)``; ``'white'``: flat.
    frame_shape : (ny, nx) tuple of int, optional
        The whole frame when ``shape`` is a crop of it: the noise is the
        frame's (``|f|`` and ``c`` in the frame's units), sampled at the
        crop's frequencies, so a crop is denoised for the same noise.
        Default ``shape``.

    Returns
    -------
    (ny, nx) ndarray of float64
        PSD in unshifted FFT order with mean ``ny * nx * sigma_psd**2``.
    """
    check_choice(psd, "psd", ("g4", "white"))  # 'detector' is measured: noise_model.DetectorNoise.psd
    check_positive(sigma_psd, "sigma_psd")
    ny, nx = shape
    frame = None if frame_shape is None else (int(frame_shape[0]), int(frame_shape[1]))
    return _psd_shape((int(ny), int(nx)), psd, frame) * (ny * nx * float(sigma_psd) ** 2)


def estimate_sigma_psd(image: np.ndarray, settings: DenoiseSettings = DenoiseSettings()) -> float:
    """Noise level of one image from the data alone (no reference).

    The finest-scale wavelet estimator of :func:`skimage.restoration.estimate_sigma`
    (median absolute deviation of the diagonal detail band) measures the noise
    at the highest frequencies. For ``settings.psd == 'white'`` that is
    ``sigma_psd``; for ``'g4'`` the pink PSD is scaled so that its mean over
    the same band (``|f_y|, |f_x| >= 1/4`` cycle/px) equals the measured
    level, which puts its (larger) total variance above the white estimate.
    With ``settings.anscombe`` the level is that of the stabilised image
    (``image`` in electron counts).

    Parameters
    ----------
    image : (ny, nx) ndarray
    settings : DenoiseSettings, optional
        Its ``psd`` and ``anscombe`` are read.

    Returns
    -------
    float
        ``sigma_psd`` for :func:`denoise_bm3d`.
    """
    from skimage.restoration import estimate_sigma

    img = np.asarray(image, dtype=np.float64)
    if settings.anscombe:
        img = anscombe(img)
    sigma_hf = float(estimate_sigma(img))
    if sigma_hf <= 0:
        sigma_hf = float(np.std(img)) or 1.0
    fy = np.abs(np.fft.fftfreq(img.shape[0]))[:, None] >= 0.25
    fx = np.abs(np.fft.fftfreq(img.shape[1]))[None, :] >= 0.25
    band = _psd_shape(img.shape, settings.psd)[fy & fx]
    return sigma_hf / math.sqrt(float(band.mean()))


# --------------------------------------------------------------------------
# BM3D on one image and on a series
# --------------------------------------------------------------------------


def _denoise_one(image: np.ndarray, sigma_psd: float, settings: DenoiseSettings, noise=None,
                 frame_shape: tuple[int, int] | None = None) -> np.ndarray:
    """BM3D of one 2D image at ``sigma_psd``, single-threaded (deterministic), same dtype.

    With ``noise`` (a :class:`~sinter4d.pipeline.noise_model.DetectorNoise`,
    required by ``psd = 'detector'``) BM3D runs on its stabilised image with its PSD.
    ``frame_shape``: the frame ``image`` was cut from (:func:`noise_psd`).
    """
    bm3d = _bm3d_module()
    pro = _profile(bm3d, settings.bm3d_profile)
    pro.num_threads = 1
    block = max(pro.bs_ht, pro.bs_wiener)
    if min(image.shape) <= block:  # the bm3d library crashes the process on such an image
        raise InputError(f"images of {image.shape[0]} x {image.shape[1]} px are too small for BM3D "
                         f"(profile {settings.bm3d_profile!r}: {block} px blocks); denoise needs more than {block} px a side")
    if settings.psd == "detector":
        if noise is None:
            raise InputError("psd = 'detector' needs a measured noise model (a series with its reference)")
        z, arg = noise.stabilise(image), noise.psd(image, sigma_psd)
    else:
        z = anscombe(image).astype(np.float64) if settings.anscombe else image.astype(np.float64)
        arg = sigma_psd if settings.psd == "white" else noise_psd(z.shape, sigma_psd, psd=settings.psd,
                                                                  frame_shape=frame_shape)
    stage_arg = bm3d.BM3DStages.ALL_STAGES if settings.bm3d_stages == "all" else bm3d.BM3DStages.HARD_THRESHOLDING
    out = bm3d.bm3d(z, arg, profile=pro, stage_arg=stage_arg)
    if settings.psd == "detector":
        out = noise.unstabilise(out)
    elif settings.anscombe:
        out = inverse_anscombe(out)
    return np.asarray(out, dtype=image.dtype)


def _profile(bm3d, name: str):
    """A fresh :class:`bm3d.BM3DProfile` of the named preset."""
    presets = {
        "np": bm3d.BM3DProfile,
        "refilter": bm3d.BM3DProfileRefilter,
        "vn": bm3d.BM3DProfileVN,
        "high": bm3d.BM3DProfileHigh,
        "lc": bm3d.BM3DProfileLC,
    }
    return presets[name]()


def _map(fn: Callable, items: list, n_jobs: int, progress: Callable[[int, int], None] | None) -> list:
    """``[fn(item) for item in items]`` on a thread pool, in order; ``progress(done, total)``.

    Threads suffice: BM3D runs in a C library called through ctypes, which
    releases the GIL, and threads avoid copying images between processes.
    """
    total = len(items)
    workers = worker_count(n_jobs, total)
    results: list = [None] * total
    if workers == 1:
        for i, item in enumerate(items):
            results[i] = fn(item)
            if progress is not None:
                progress(i + 1, total)
        return results
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        for done, fut in enumerate(as_completed(futures), start=1):
            results[futures[fut]] = fut.result()
            if progress is not None:
                progress(done, total)
    return results


#: Gaussian (px) that smooths the pixels outside :func:`denoise_bm3d`'s ``box``: film and vacuum,
#: whose white noise it cuts ~3.5x; a stray particle there stays, blurred by a pixel.
OUTSIDE_SIGMA_PX = 1.0


def _checked_box(box, frame: tuple[int, int]) -> tuple[slice, slice]:
    """``box`` as two unit-step slices within ``frame``, each at least 8 px long."""
    try:
        spans = [slice(*s.indices(n)) for s, n in zip(box, frame, strict=True)]
    except (AttributeError, TypeError, ValueError):
        raise InputError(f"box must be a (rows, columns) pair of slices, got {box!r}") from None
    if any(s.step != 1 or s.stop - s.start < 8 for s in spans):
        raise InputError(f"box {box!r} must be unit-step slices of at least 8 px within the {frame} images")
    return spans[0], spans[1]


#: Tiles per side when the level is chosen on tiles (``sigma_tile_px``): 3 x 3 spread over the frame.
SIGMA_TILES = 3


def _tiles(shape: tuple[int, int], tile_px: int | None) -> list[tuple[slice, slice]]:
    """Boxes the level is scored on: SIGMA_TILES² tiles of ``tile_px`` spread evenly, or the whole
    frame when the tiles would not leave gaps between them (they would cost as much as the frame)."""
    ny, nx = shape
    if tile_px is None or SIGMA_TILES * tile_px >= min(ny, nx):
        return [(slice(0, ny), slice(0, nx))]
    ys = np.linspace(0, ny - tile_px, SIGMA_TILES).round().astype(int)
    xs = np.linspace(0, nx - tile_px, SIGMA_TILES).round().astype(int)
    return [(slice(y, y + tile_px), slice(x, x + tile_px)) for y in ys for x in xs]


def select_sigma_psnr(
    image: np.ndarray,
    reference: np.ndarray,
    settings: DenoiseSettings = DenoiseSettings(),
    *,
    bounds: tuple[float, float] | None = None,
    n_grid: int = 5,
    n_refine: int = 3,
    n_jobs: int = DEFAULT_JOBS,
    tile_px: int | None = None,
) -> float:
    """Noise level that maximises the PSNR of the denoised ``image`` against ``reference``.

    The paper's protocol: denoise one raw frame with several noise levels and
    keep the one whose result is closest (in PSNR, peak = the reference's data
    range) to the multi-frame average acquired at the same tilt. The search
    runs on a logarithmic grid of ``n_grid`` levels over ``bounds``, then
    ``n_refine`` rounds that each evaluate the two midpoints (in log sigma)
    between the best level and its neighbours and keep the best of the three
    (the bracket halves each round; the two evaluations run in parallel).

    Parameters
    ----------
    image : (ny, nx) ndarray
        One raw frame.
    reference : (ny, nx) ndarray
        Multi-frame average of the same view, same units.
    settings : DenoiseSettings, optional
        The filter (``psd``, ``anscombe``, ``bm3d_profile``, ``bm3d_stages``);
        its level and strength are not read. With ``anscombe`` the PSNR is
        still computed in image units.
    bounds : (float, float), optional
        Search range of ``sigma_psd``; default ``(s/4, 4 s)`` around
        :func:`estimate_sigma_psd`.
    n_grid, n_refine : int, optional
        Grid size (>= 3) and refinement rounds (>= 0).
    n_jobs : int, optional
        Parallel BM3D runs (-1: all cores).
    tile_px : int, optional
        Score the levels on :data:`SIGMA_TILES` × :data:`SIGMA_TILES` tiles of
        ``tile_px`` px a side spread evenly over the frame (each denoised on
        its own; the PSNR of their pooled squared error) instead of the whole
        frame; default ``settings.sigma_tile_px`` (None: the whole frame, the
        paper's protocol). Tiles that would touch (``3 tile_px >= min(ny, nx)``)
        are the whole frame.
        docs/design.md, "Reconstruction notes" (Denoise).

    Returns
    -------
    float
        The selected ``sigma_psd``.
    """
    img, single = _image_stack(image, "image")
    ref, _ = _image_stack(reference, "reference")
    if not single or ref.shape != img.shape:
        raise InputError(
            f"image and reference must be 2D images of one shape, got {np.shape(image)} and {np.shape(reference)}"
        )
    check_int(n_grid, "n_grid", minimum=3)
    check_int(n_refine, "n_refine", minimum=0)
    img, ref = img[0], ref[0]
    if bounds is None:
        s0 = estimate_sigma_psd(img, settings)
        bounds = (s0 / 4.0, s0 * 4.0)
    lo, hi = float(bounds[0]), float(bounds[1])
    if not 0 < lo < hi:
        raise InputError(f"bounds must satisfy 0 < low < high, got {bounds}")

    tile = settings.sigma_tile_px if tile_px is None else check_int(tile_px, "tile_px", minimum=1)
    boxes = _tiles(img.shape, tile)
    peak = float(ref.max() - ref.min())
    scores: dict[float, float] = {}

    def score(t: float) -> float:  # PSNR of the pooled squared error over the boxes (peak: the whole reference)
        sq = [np.square(_denoise_one(img[b], math.exp(t), settings).astype(np.float64) - ref[b]).mean() for b in boxes]
        return 10.0 * math.log10(peak**2 / max(float(np.mean(sq)), 1e-300))

    def evaluate(log_sigmas: list[float]) -> None:
        todo = [t for t in log_sigmas if t not in scores]
        scores.update(zip(todo, _map(score, todo, n_jobs, None)))

    grid = list(np.linspace(math.log(lo), math.log(hi), n_grid))
    evaluate(grid)
    best = max(grid, key=scores.__getitem__)
    step = grid[1] - grid[0]
    for _ in range(n_refine):
        step /= 2.0
        evaluate([best - step, best + step])
        best = max((best - step, best, best + step), key=scores.__getitem__)
    return math.exp(best)


def denoise_bm3d(
    images: np.ndarray,
    settings: DenoiseSettings = DenoiseSettings(),
    *,
    sigma_psd: float | None = None,
    reference: np.ndarray | None = None,
    reference_index: int | None = None,
    n_jobs: int = DEFAULT_JOBS,
    progress: Callable[[int, int], None] | None = None,
    noise=None,
    box: tuple[slice, slice] | None = None,
) -> np.ndarray:
    """Denoise every image of a tilt series with BM3D for coloured noise.

    BM3D runs at ``sigma_psd`` when it is given. Otherwise at
    ``settings.denoise_strength`` times a level that is, in order of
    precedence: ``settings.sigma_psd``; with a ``reference``, the level that
    maximises the PSNR of the denoised frame ``reference_index`` against it
    (:func:`select_sigma_psnr`, the paper's protocol); else
    :func:`estimate_sigma_psd` of that frame. One level serves the whole
    series.

    Parameters
    ----------
    images : (n, ny, nx) or (ny, nx) ndarray
        Raw images in any (linear) detector units; electron counts with
        ``settings.anscombe`` (the result is then the exact unbiased
        inverse, i.e. estimated mean counts).
    settings : DenoiseSettings, optional
        The filter (noise spectrum ``psd``, ``anscombe``, ``bm3d_profile``,
        ``bm3d_stages``: both BM3D stages, or hard thresholding alone at half
        the cost) and the level; ``settings.denoise`` is not read.
    sigma_psd : float, optional
        Per-pixel noise standard deviation BM3D runs at (image units, or
        stabilised units with ``anscombe``), see :func:`noise_psd`.
    reference : (ny, nx) ndarray, optional
        Multi-frame average at the tilt of frame ``reference_index``.
    reference_index : int, optional
        Frame matching ``reference`` and used to set the level; default the
        middle frame ``n // 2`` (0 deg for a symmetric series).
    n_jobs : int, optional
        Images denoised at once (-1: all cores). Each BM3D run is
        single-threaded, so the result does not depend on ``n_jobs``.
    progress : callable, optional
        Called as ``progress(done, total)`` after each image.
    noise : DetectorNoise, optional
        The measured noise (:func:`~sinter4d.pipeline.noise_model.measure_detector_noise`),
        required by ``settings.psd == 'detector'``: BM3D then runs on the
        stabilised images with the measured PSD, ``sigma_psd`` (default 1)
        scaling its white part.
    box : (slice, slice), optional
        Rows and columns of the rectangle BM3D runs on, in every image (the
        specimen's, :func:`~sinter4d.pipeline.support.specimen_box`), for the
        whole frame's noise (``frame_shape`` of :func:`noise_psd`); the pixels
        outside it, film and vacuum, are smoothed by a Gaussian of
        :data:`OUTSIDE_SIGMA_PX` instead, at a small share of BM3D's cost.
        The level is still chosen (``reference``) on the whole frame.
        Default: BM3D on every pixel (the paper's).

    Returns
    -------
    ndarray
        Denoised images, the shape of ``images``; float32 for float32 input,
        float64 otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> clean = np.zeros((32, 32)); clean[8:24, 8:24] = 10.0
    >>> noisy = rng.poisson(clean + 2.0).astype(np.float32)
    >>> out = denoise_bm3d(noisy, DenoiseSettings(psd="white"), n_jobs=1)
    >>> out.shape, out.dtype
    ((32, 32), dtype('float32'))
    """
    stack, single = _image_stack(images)
    n = stack.shape[0]
    k = n // 2 if reference_index is None else int(reference_index)
    if not -n <= k < n:
        raise InputError(f"reference_index={reference_index} is outside the {n} images")
    if sigma_psd is not None:
        sigma = check_positive(sigma_psd, "sigma_psd")
    elif settings.psd == "detector":
        sigma = settings.denoise_strength * (1.0 if settings.sigma_psd is None else settings.sigma_psd)
    elif settings.sigma_psd is not None:
        sigma = settings.applied_sigma_psd
    elif reference is not None:
        sigma = settings.denoise_strength * select_sigma_psnr(stack[k], reference, settings=settings, n_jobs=n_jobs)
    else:
        sigma = settings.denoise_strength * estimate_sigma_psd(stack[k], settings)
    result = np.empty_like(stack)  # each image is written in place: no list of images, then a stack of them
    frame = stack.shape[1:]
    rows, cols = (slice(None), slice(None)) if box is None else _checked_box(box, frame)
    whole = box is None or (rows.stop - rows.start, cols.stop - cols.start) == frame

    def denoise_into(k: int) -> None:
        if whole:
            result[k] = _denoise_one(stack[k], sigma, settings, noise)
            return
        result[k] = ndimage.gaussian_filter(stack[k], OUTSIDE_SIGMA_PX, mode="nearest")
        result[k, rows, cols] = _denoise_one(stack[k, rows, cols], sigma, settings, noise, frame_shape=frame)

    _map(denoise_into, list(range(n)), n_jobs, progress)
    return result[0] if single else result
