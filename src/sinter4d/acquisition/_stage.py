"""The stage of a simulated microscope: tilt-axis rotation, tilt-angle errors, rotating drift, reference drift.

What the simulator does when ``[acquisition.stage] enabled = true``
(docs/design.md, "Acquisition", "Stage"):

* The tilt series is projected at the *true* tilt angles, ``nominal +
  N(0, tilt_angle_sd_deg)`` per image; the file keeps the nominal ones in
  ``tilt_angle`` and stores the true ones in ``tilt_angle_true``.
* Each image is first moved by its drift and the axis offset in the frame of
  the tilt axis (axis along y), then rotated about the image centre so that
  the axis runs along ``(dy, dx) = (cos a, sin a)`` with
  ``a = axis_rotation_deg + r_i``: ``a`` is in degrees from +y towards +x,
  the convention of :mod:`sinter4d.pipeline.axis_direction`. ``r_i`` is a
  random walk over the images (steps of ``rotation_step_sd_deg``) anchored
  at 0 at the image nearest 0 deg. Both moves are one spline resampling.
* The reference frames are each shifted by a random walk (steps of
  ``reference_drift_step_sd_nm`` per frame, starting at the raw image's
  position) before they are averaged.

The file records the truth (``tilt_axis_rotation_truth_deg``,
``true_axis_rotation``, ``tilt_angle_true``, ``true_reference_shift_y/x``)
and drops ``tilt_axis_rotation_deg``: the pipeline must find the axis.
With ``enabled = false`` nothing is drawn and nothing changes.
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
import xarray as xr
from pydantic import Field
from scipy import ndimage

from ..specs import Flag, NonNegative, Spec

__all__ = ["StageMotion", "StageSettings", "mean_of_shifted", "place_image", "random_walk"]


class StageSettings(Spec):
    """``[acquisition.stage]``: the goniometer and the stage drift beyond a pure translation.

    Attributes
    ----------
    enabled : bool
        Switch for everything below (default true; false: the perfect stage).
    axis_rotation_deg : float
        In-plane direction of the tilt axis in the images (deg from +y
        towards +x), within (-90, 90]. Default 3 deg: the scan frame is
        typically a few degrees off the tilt axis on a real microscope.
    tilt_angle_sd_deg : float
        S.d. of the goniometer's error on each tilt angle (deg). Default
        0.2 deg: typical goniometer accuracy is a few tenths of a degree.
    rotation_step_sd_deg : float
        S.d. of the step of the in-plane rotation between consecutive images
        (deg). Default 0.05 deg: a few tenths of a degree over 41 images.
    reference_drift_step_sd_nm : float
        S.d. of the drift step between consecutive reference frames, per axis
        (nm). Default 0.3 nm: the series' 2 nm per image (~30 s apart), as a
        diffusive walk, over one 0.52 s frame (2 nm × sqrt(0.52/30)).
    """

    enabled: Flag = True
    axis_rotation_deg: Annotated[float, Field(gt=-90.0, le=90.0, allow_inf_nan=False)] = 3.0
    tilt_angle_sd_deg: NonNegative = 0.2
    rotation_step_sd_deg: NonNegative = 0.05
    reference_drift_step_sd_nm: NonNegative = 0.3


def random_walk(n: int, step_sd: float, dims: int, rng: np.random.Generator, *, anchor: int = 0) -> np.ndarray:
    """``(n, dims)`` random walk with normal steps of s.d. ``step_sd``, 0 at index ``anchor``."""
    steps = rng.normal(0.0, step_sd, size=(max(n - 1, 0), dims)) if step_sd > 0 else np.zeros((max(n - 1, 0), dims))
    walk = np.concatenate([np.zeros((1, dims)), np.cumsum(steps, axis=0)])
    return walk - walk[anchor]


def place_image(image: np.ndarray, shift_px, rotation_deg: float, *, order: int = 3) -> np.ndarray:
    """Move an image's content by ``shift_px = (dy, dx)``, then rotate it about the centre (one resampling).

    A point at centred coordinates ``p`` goes to ``R(a) (p + shift)`` with
    ``R(a)`` taking +y to ``(cos a, sin a)``: the axis along y comes to lie
    at ``rotation_deg`` from +y towards +x. Content from outside the field
    is 0; values stay >= 0 when the input is >= 0.

    Parameters
    ----------
    image : (ny, nx) ndarray
    shift_px : (2,) array_like
        Where the content moves to before the rotation (px, +y, +x).
    rotation_deg : float
        Angle ``a`` (deg from +y towards +x).
    order : int, optional
        Spline order (3 = cubic, as the translation-only shift).

    Returns
    -------
    (ny, nx) ndarray
        Same dtype as ``image``.
    """
    a = math.radians(rotation_deg)
    c, s = math.cos(a), math.sin(a)
    inverse = np.array([[c, s], [-s, c]])  # R(-a): output -> input
    centre = (np.asarray(image.shape, dtype=float) - 1) / 2.0
    offset = centre - inverse @ centre - np.asarray(shift_px, dtype=float)
    out = ndimage.affine_transform(image, inverse, offset, order=order, mode="grid-constant", cval=0.0, prefilter=True)
    if image.min() >= 0:
        np.clip(out, 0, None, out=out)
    return out


def mean_of_shifted(image: np.ndarray, shifts_px: np.ndarray) -> np.ndarray:
    """Mean of copies of ``image`` moved by each ``(dy, dx)`` of ``shifts_px`` (Fourier shift, exact for band-limited images).

    The image is padded with its edge values by the largest shift, so that
    nothing wraps round.
    """
    shifts = np.atleast_2d(np.asarray(shifts_px, dtype=float))
    pad = int(math.ceil(np.abs(shifts).max(initial=0.0))) + 2
    big = np.pad(np.asarray(image, dtype=np.float64), pad, mode="edge")
    ky = np.fft.fftfreq(big.shape[0])[:, None]
    kx = np.fft.rfftfreq(big.shape[1])[None, :]
    kernel = np.zeros((ky.size, kx.size), dtype=np.complex128)
    for dy, dx in shifts:
        kernel += np.exp(-2j * np.pi * (ky * dy + kx * dx))
    out = np.fft.irfft2(np.fft.rfft2(big) * (kernel / len(shifts)), s=big.shape)
    return out[pad:-pad, pad:-pad]


class StageMotion:
    """What the stage did during one series: drawn by :meth:`draw`, applied and recorded by the simulator.

    Attributes
    ----------
    enabled : bool
    angles_deg : (n,) ndarray
        The true tilt angles (the nominal ones when disabled).
    rotation_deg : (n,) ndarray
        In-plane direction of the tilt axis in each image (deg from +y towards +x).
    reference_walk_px : (N, 2) ndarray
        ``(dy, dx)`` of each reference frame relative to the raw image (output px).
    """

    def __init__(self, settings: StageSettings, angles_deg, rotation_deg, reference_walk_px):
        self.settings = settings
        self.enabled = bool(settings.enabled)
        self.angles_deg = np.asarray(angles_deg, dtype=float)
        self.rotation_deg = np.asarray(rotation_deg, dtype=float)
        self.reference_walk_px = np.asarray(reference_walk_px, dtype=float).reshape(-1, 2)

    @classmethod
    def draw(cls, settings: StageSettings, angles_deg, *, anchor: int, reference_frames: int,
             pixel_size_nm: float, rng: np.random.Generator) -> StageMotion:
        """Draw the stage's errors for one series (nothing is drawn when disabled)."""
        nominal = np.asarray(angles_deg, dtype=float)
        if not settings.enabled:
            return cls(settings, nominal, np.zeros(nominal.size), np.zeros((0, 2)))
        true = nominal + (rng.normal(0.0, settings.tilt_angle_sd_deg, nominal.size) if settings.tilt_angle_sd_deg > 0 else 0.0)
        rotation = settings.axis_rotation_deg + random_walk(nominal.size, settings.rotation_step_sd_deg, 1, rng, anchor=anchor)[:, 0]
        walk = random_walk(int(reference_frames), settings.reference_drift_step_sd_nm / pixel_size_nm, 2, rng) if reference_frames > 0 else np.zeros((0, 2))
        return cls(settings, true, rotation, walk)

    def place(self, image: np.ndarray, shift_px, index: int | None, shift_image) -> np.ndarray:
        """Image ``index`` (None: the reference outside the series, at the anchor's rotation) moved and rotated.

        ``shift_image`` is the simulator's translation-only shift, used when disabled.
        """
        if not self.enabled:
            return shift_image(image, shift_px)
        rotation = self.settings.axis_rotation_deg if index is None else float(self.rotation_deg[index])
        return place_image(image, shift_px, rotation)

    def reference_mean(self, mean: np.ndarray) -> np.ndarray:
        """The expected reference: the mean of the frames' expected images, each moved by its walk step."""
        if not self.enabled or self.reference_walk_px.size == 0 or not np.any(self.reference_walk_px):
            return mean
        return np.clip(mean_of_shifted(mean, self.reference_walk_px), 0, None)

    def record(self, ds: xr.Dataset) -> None:
        """Write the stage's truth into a simulated tilt series (in place); nothing when disabled."""
        if not self.enabled:
            return
        s = self.settings
        ds.attrs.pop("tilt_axis_rotation_deg", None)  # the pipeline must find it
        ds.attrs.update(
            tilt_axis_rotation_truth_deg=float(s.axis_rotation_deg),
            stage_tilt_angle_sd_deg=float(s.tilt_angle_sd_deg),
            stage_rotation_step_sd_deg=float(s.rotation_step_sd_deg),
            stage_reference_drift_step_sd_nm=float(s.reference_drift_step_sd_nm),
        )
        ds["tilt_angle_true"] = ("tilt", self.angles_deg, {"units": "degree", "long_name": "true tilt angle (the goniometer's nominal one plus its error)"})
        ds["true_axis_rotation"] = ("tilt", self.rotation_deg, {"units": "degree", "long_name": "true in-plane direction of the tilt axis in each image (from +y towards +x)"})
        if self.reference_walk_px.size:
            for k, axis in enumerate("yx"):
                ds[f"true_reference_shift_{axis}"] = (
                    "reference_frame",
                    self.reference_walk_px[:, k],
                    {"units": "px", "long_name": f"true drift of each reference frame along {axis} from the raw image"},
                )
