"""The detector's noise model: photon transfer and dark level against closed forms, the (generalized) Anscombe transform."""

from __future__ import annotations

import numpy as np
import pytest

from sinter4d.acquisition import DetectorSettings, estimate_dark_level, estimate_dark_level_skewness, estimate_photon_transfer
from sinter4d.acquisition._detector import detector_readout
from sinter4d.errors import InputError
from sinter4d.pipeline import noise_model as nm
from sinter4d.pipeline.noise_model import DetectorNoise, anscombe, inverse_anscombe

#: The detector's defaults (gain 2.5, dark -31890, read 4.7, row 2.1), switched on.
DETECTOR = DetectorSettings(enabled=True)
FRAMES = 50


def _ramp_and_film(n=256, top=40.0, film=1.2):
    """Expected electrons per pixel: a film of ``film`` e- with a ramp of 0..``top`` e- on its right half."""
    lam = np.full((n, n), film)
    lam[:, n // 2 :] += np.linspace(0.0, top, n - n // 2)[None, :]
    return lam


def _frame_and_reference(lam, seed):
    rng = np.random.default_rng(seed)
    return detector_readout(lam, DETECTOR, rng), detector_readout(lam, DETECTOR, rng, frames=FRAMES)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_photon_transfer_recovers_gain_read_and_row_noise(seed):
    """var = gain (mean - dark) + read² + 1/12 (white) + row² (shared by a row): the closed form's coefficients."""
    raw, ref = _frame_and_reference(_ramp_and_film(), seed)
    ptc = estimate_photon_transfer(raw, ref, reference_frames=FRAMES)
    d = DETECTOR
    assert ptc.gain == pytest.approx(d.gain, rel=0.06)
    # the intercept at value 0 is read² + 1/12 - gain × dark; at the dark level it is read² + 1/12
    white_at_dark = ptc.white_variance_at_zero + ptc.gain * d.dark_level
    assert np.sqrt(white_at_dark - 1 / 12) == pytest.approx(d.read_noise_sd, rel=0.15)
    assert ptc.row_noise_sd == pytest.approx(d.row_noise_sd, rel=0.2)  # 256 rows: s.e. of the estimate ~ 10 %


def test_photon_transfer_sees_no_row_noise_when_there_is_none():
    d = DetectorSettings(enabled=True, row_noise_sd=0.0)
    lam = _ramp_and_film()
    rng = np.random.default_rng(4)
    ptc = estimate_photon_transfer(detector_readout(lam, d, rng), detector_readout(lam, d, rng, frames=FRAMES),
                                   reference_frames=FRAMES)
    assert ptc.row_noise_sd < 0.5


def test_photon_transfer_refuses_a_flat_field_and_bad_shapes():
    raw, ref = _frame_and_reference(np.full((64, 64), 3.0), 5)
    ref[:] = ref.mean()  # one level: no slope to fit
    with pytest.raises(InputError, match="too few signal levels"):
        estimate_photon_transfer(raw, ref, reference_frames=FRAMES)
    with pytest.raises(InputError, match="one shape"):
        estimate_photon_transfer(raw, ref[:32], reference_frames=FRAMES)
    with pytest.raises(InputError, match="reference_frames"):
        estimate_photon_transfer(raw, raw, reference_frames=1)


@pytest.mark.parametrize("seed", [6, 7])
def test_dark_level_of_a_field_of_film_from_skewness(seed):
    """A film of 1.2 e-/px and no vacuum: the darkest tiles read the film, kappa_3 / gain² finds the offset."""
    rng = np.random.default_rng(seed)
    n = 128
    yy, xx = np.mgrid[:n, :n]
    lam = np.full((n, n), 1.2) + 30.0 * (((yy - 64) ** 2 + (xx - 64) ** 2) < 30**2)  # one particle on the film
    stack = detector_readout(np.broadcast_to(lam, (20, n, n)), DETECTOR, rng)
    tiles = estimate_dark_level(stack)
    skew = estimate_dark_level_skewness(stack, DETECTOR.gain)
    assert tiles - DETECTOR.dark_level >= 1.0  # biased high, towards the film (3 units above the offset)
    assert abs(skew - DETECTOR.dark_level) < 0.6  # 0.1 of the pixel noise (5.2)


def test_the_stabilised_noise_has_unit_variance_at_every_level():
    """The generalized Anscombe transform of the measured model: var 1 for 0.5 to 50 e- (read noise dominates below)."""
    d = DetectorSettings(enabled=True, row_noise_sd=0.0)
    noise = DetectorNoise(d.gain, d.read_noise_sd**2 + 1 / 12, 0.0)  # data with the dark level removed
    rng = np.random.default_rng(8)
    for lam in (0.5, 5.0, 50.0):
        x = detector_readout(np.full((256, 256), lam), d, rng) - d.dark_level
        z = noise.stabilise(x)
        assert z.var() == pytest.approx(1.0, abs=0.08)
        assert noise.unstabilise(np.array(z.mean())) == pytest.approx(d.gain * lam, abs=0.05 * d.gain * lam + 0.3)


def test_row_part_of_the_psd():
    """A flat image: the row variance scales by the transform's squared slope, on the f_x = 0 column only."""
    noise = DetectorNoise(2.5, 25.0, 2.0)
    image = np.full((32, 48), 10.0)
    s2 = 4.0 / (2.5 * 10.0 + 25.0 + 0.375 * 2.5**2)
    assert noise.row_variance_stabilised(image) == pytest.approx(s2)
    psd = noise.psd(image, 0.5)
    assert psd[:, 1:] == pytest.approx(32 * 48 * 0.25)
    assert psd[:, 0] == pytest.approx(32 * 48 * 0.25 + 32 * 48**2 * s2)
    assert psd.mean() == pytest.approx(32 * 48 * (0.25 + s2))  # the bm3d convention: mean = ny nx var


@pytest.mark.parametrize("lam", [0.3, 1.0, 6.0, 40.0])
def test_anscombe_exact_inverse_is_unbiased_on_constant_images(lam):
    counts = np.random.default_rng(4).poisson(lam, (512, 512))
    ideal = anscombe(counts).mean()  # a perfect denoiser of a constant image returns its mean
    assert inverse_anscombe(np.array(ideal)) == pytest.approx(lam, rel=0.02)
    if lam <= 1.0:  # the algebraic inverse is badly biased at low counts
        assert abs((ideal / 2) ** 2 - 0.375 - lam) > 0.1 * lam


def test_inverse_anscombe_is_monotonic_and_continuous():
    d = np.linspace(0.0, 80.0, 4001)
    lam = inverse_anscombe(d)
    assert lam[0] == 0.0 and np.all(np.diff(lam) >= 0)
    top = nm._anscombe_table()[0][-1]  # switch from the table to the closed form
    assert inverse_anscombe(np.array([top - 1e-9, top + 1e-9])) == pytest.approx(inverse_anscombe(np.array(top)), rel=1e-5)
    assert anscombe(np.ones(3, np.float32)).dtype == np.float32
