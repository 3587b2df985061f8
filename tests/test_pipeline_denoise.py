"""BM3D denoising: PSNR gain at the paper's dose, PSNR-selected noise level, parallel = serial."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from sinter4d.errors import InputError
from sinter4d.pipeline import denoise as dn
from sinter4d.pipeline.denoise import denoise_bm3d, estimate_sigma_psd, noise_psd, select_sigma_psnr
from sinter4d.pipeline.settings import DenoiseSettings


def _discs(n: int, seed: int = 0) -> np.ndarray:
    """Noise-free image of a few discs (projected spheres) on a film, ~6 e-/px on average."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    img = np.full((n, n), 3.0)
    for _ in range(4):
        cy, cx = rng.uniform(0.2 * n, 0.8 * n, 2)
        r = rng.uniform(0.08 * n, 0.2 * n)
        img += 12.0 * np.sqrt(np.clip(1 - ((yy - cy) ** 2 + (xx - cx) ** 2) / r**2, 0, None))
    return img * (6.0 / img.mean())


def _psnr(a, ref):
    return dn._psnr(a, ref)


@pytest.mark.parametrize(("psd", "use_anscombe"), [("g4", False), ("g4", True), ("white", True)])
def test_psnr_gain_at_paper_dose(psd, use_anscombe):
    clean = _discs(96)
    noisy = np.random.default_rng(1).poisson(clean).astype(np.float32)
    out = denoise_bm3d(noisy, DenoiseSettings(psd=psd, anscombe=use_anscombe), n_jobs=1)
    assert out.dtype == np.float32 and out.shape == noisy.shape
    gain = _psnr(out, clean) - _psnr(noisy, clean)
    assert gain >= 5.0, gain  # measured: g4 +10.5 dB, g4 + Anscombe +13.5 dB


def test_hard_thresholding_alone_still_denoises_at_paper_dose():
    clean = _discs(96)
    noisy = np.random.default_rng(1).poisson(clean).astype(np.float32)
    both = denoise_bm3d(noisy, DenoiseSettings(bm3d_profile="lc"), n_jobs=1)
    hard = denoise_bm3d(noisy, DenoiseSettings(bm3d_profile="lc", bm3d_stages="hard"), n_jobs=1)
    assert not np.array_equal(hard, both)  # the Wiener stage was skipped
    gain_hard = _psnr(hard, clean) - _psnr(noisy, clean)
    gain_both = _psnr(both, clean) - _psnr(noisy, clean)
    assert gain_hard >= 5.0 and gain_hard >= gain_both - 1.5, (gain_hard, gain_both)


def test_psnr_selected_sigma_is_near_best_of_sweep():
    rng = np.random.default_rng(2)
    clean = _discs(64, seed=3)
    frame = rng.poisson(clean).astype(np.float64)
    reference = rng.poisson(clean, (50, 64, 64)).mean(axis=0)  # the 50-frame average
    s0 = estimate_sigma_psd(frame)
    chosen = select_sigma_psnr(frame, reference, bounds=(s0 / 4, 4 * s0), n_grid=5, n_refine=2)
    sweep = s0 * np.geomspace(0.25, 4.0, 7)
    scores = [_psnr(dn._denoise_one(frame, s, DenoiseSettings()), reference) for s in sweep]
    best = sweep[int(np.argmax(scores))]
    chosen_score = _psnr(dn._denoise_one(frame, chosen, DenoiseSettings()), reference)
    assert chosen_score >= max(scores) - 0.2
    assert 0.5 < chosen / best < 2.0


def test_reference_route_uses_psnr_selection(monkeypatch):
    calls = []

    def fake_select(image, reference, **kw):
        calls.append(image.copy())
        return 2.0

    monkeypatch.setattr(dn, "select_sigma_psnr", fake_select)
    stack = np.random.default_rng(0).poisson(6.0, (3, 32, 32)).astype(np.float32)
    denoise_bm3d(stack, reference=stack[1], reference_index=1, n_jobs=1)
    assert len(calls) == 1 and np.array_equal(calls[0], stack[1])
    # the level chosen is scaled by the strength: 0.5 x 2.0 is BM3D at 1.0
    weak = denoise_bm3d(stack, DenoiseSettings(denoise_strength=0.5), reference=stack[1], reference_index=1, n_jobs=1)
    np.testing.assert_array_equal(weak, denoise_bm3d(stack, sigma_psd=1.0, n_jobs=1))


def test_level_precedence():
    stack = np.random.default_rng(5).poisson(6.0, (2, 32, 32)).astype(np.float32)
    at = lambda sigma: denoise_bm3d(stack, sigma_psd=sigma, n_jobs=1)  # noqa: E731
    fixed = DenoiseSettings(sigma_psd=3.0, denoise_strength=0.5)
    assert fixed.applied_sigma_psd == 1.5 and DenoiseSettings().applied_sigma_psd is None
    # a level the settings fix runs at strength x level; an explicit level runs as it is
    np.testing.assert_array_equal(denoise_bm3d(stack, fixed, n_jobs=1), at(1.5))
    np.testing.assert_array_equal(denoise_bm3d(stack, fixed, sigma_psd=2.0, n_jobs=1), at(2.0))
    # with neither, the level is estimated on the middle image
    estimated = estimate_sigma_psd(stack[1])
    np.testing.assert_array_equal(denoise_bm3d(stack, n_jobs=1), at(estimated))


def test_parallel_equals_serial_and_progress():
    stack = np.random.default_rng(3).poisson(np.stack([_discs(48, seed=s) for s in range(4)])).astype(np.float32)
    seen = []
    serial = denoise_bm3d(stack, sigma_psd=3.0, n_jobs=1)
    parallel = denoise_bm3d(stack, sigma_psd=3.0, n_jobs=2, progress=lambda done, total: seen.append((done, total)))
    np.testing.assert_array_equal(serial, parallel)
    assert sorted(seen) == [(k, 4) for k in range(1, 5)]


def test_noise_psd_convention():
    white = noise_psd((16, 24), 2.0, psd="white")
    np.testing.assert_allclose(white, 16 * 24 * 4.0)
    pink = noise_psd((16, 24), 2.0, psd="g4")
    assert pink.mean() == pytest.approx(16 * 24 * 4.0)
    assert pink[0, 0] > pink[8, 12]  # pink: more power at low frequencies


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"sigma_psd": -1.0}, "sigma_psd=-1.0 must be finite and > 0"), ({"n_jobs": 0}, "n_jobs must be -1 \\(all cores\\) or a positive int, got 0")],
)
def test_bad_options(kwargs, match):
    with pytest.raises(InputError, match=match):
        denoise_bm3d(np.ones((2, 16, 16)), **kwargs)


@pytest.mark.parametrize(
    ("settings", "match"),
    [({"psd": "g5"}, r"(?s)psd.*'g4', 'white' or 'detector'"), ({"bm3d_profile": "fast"}, r"(?s)bm3d_profile.*'fast'"),
     ({"bm3d_stages": "wiener"}, r"(?s)bm3d_stages.*'wiener'"), ({"sigma_psd": -1.0}, r"(?s)sigma_psd.*greater than 0")],
)
def test_bad_settings(settings, match):
    with pytest.raises(ValueError, match=match):
        DenoiseSettings(**settings)


def test_noise_psd_refuses_an_unknown_spectrum():
    with pytest.raises(InputError, match="psd='g5' is not a known choice; use one of 'g4', 'white'"):
        noise_psd((16, 16), 1.0, psd="g5")


def test_bad_images():
    with pytest.raises(InputError, match="shape"):
        denoise_bm3d(np.ones(16))
    with pytest.raises(InputError, match="NaN"):
        denoise_bm3d(np.full((16, 16), np.nan))


@pytest.mark.parametrize(("profile", "side"), [("np", 8), ("vn", 11)])
def test_an_image_no_larger_than_a_block_is_refused_not_a_crash(profile, side):
    # the bm3d library ends the process (segmentation fault) on such an image
    images = np.random.default_rng(0).random((2, side, side + 5)).astype(np.float32)
    with pytest.raises(InputError, match=f"{side} x {side + 5} px are too small for BM3D"):
        denoise_bm3d(images, DenoiseSettings(bm3d_profile=profile), sigma_psd=0.1, n_jobs=1)
    one_more = np.random.default_rng(1).random((1, side + 1, side + 1)).astype(np.float32)
    settings = DenoiseSettings(bm3d_profile=profile)
    assert denoise_bm3d(one_more, settings, sigma_psd=0.1, n_jobs=1).shape == one_more.shape



def test_level_chosen_on_tiles_agrees_with_the_whole_frame():
    # 3 x 3 tiles of 48 px (56 % of the 192 px frame, seed 5): the level is within one refined grid
    # step (x/÷ sqrt 2) of the whole frame's, and it denoises the whole frame as well (0.3 dB)
    rng = np.random.default_rng(5)
    clean = _discs(192, seed=5)
    frame = rng.poisson(clean).astype(np.float64)
    reference = rng.poisson(clean, (50, *clean.shape)).mean(axis=0)
    fast = DenoiseSettings(bm3d_profile="lc", bm3d_stages="hard")
    s0 = estimate_sigma_psd(frame, fast)
    kw = {"bounds": (s0 / 2, 2 * s0), "n_grid": 3, "n_refine": 1, "n_jobs": 1}
    whole = select_sigma_psnr(frame, reference, fast, **kw)
    tiles = select_sigma_psnr(frame, reference, fast, tile_px=48, **kw)
    assert 1 / 1.42 <= tiles / whole <= 1.42, (tiles, whole)
    at = lambda sigma: _psnr(dn._denoise_one(frame, sigma, fast), clean)  # noqa: E731
    assert at(tiles) >= at(whole) - 0.3, (at(tiles), at(whole))


def test_tiles_come_from_the_setting_and_spread_over_the_frame(monkeypatch):
    seen = []

    def fake(image, sigma, settings, noise=None):
        seen.append(image.shape)
        return image

    monkeypatch.setattr(dn, "_denoise_one", fake)
    frame = np.random.default_rng(0).random((256, 300))
    select_sigma_psnr(frame, frame, DenoiseSettings(sigma_tile_px=64), bounds=(1.0, 2.0), n_grid=3, n_refine=0, n_jobs=1)
    assert seen == [(64, 64)] * 27  # 3 levels x 3 x 3 tiles
    boxes = dn._tiles((256, 300), 64)
    assert (boxes[0][0].start, boxes[0][1].start, boxes[-1][0].stop, boxes[-1][1].stop) == (0, 0, 256, 300)
    assert dn._tiles((256, 300), 86) == [(slice(0, 256), slice(0, 300))]  # tiles that touch: the frame
    with pytest.raises(ValueError, match=r"(?s)sigma_tile_px.*greater than or equal to 64"):
        DenoiseSettings(sigma_tile_px=32)


def test_a_crops_psd_is_the_frames_noise_at_the_crops_frequencies():
    # the g4 noise's autocorrelation (the inverse FFT of its PSD, per unit variance) at small lags is a property
    # of the noise, not of the image it is drawn on: a crop told its frame has the frame's correlations,
    # a crop taken as a frame of its own a different one
    frame, crop = (240, 240), (96, 180)

    def correlation(psd):
        acf = np.fft.ifft2(psd).real
        return acf[0, 1] / acf[0, 0], acf[1, 0] / acf[0, 0], acf[2, 3] / acf[0, 0]

    whole = correlation(noise_psd(frame, 1.0, psd="g4"))
    told = correlation(noise_psd(crop, 1.0, psd="g4", frame_shape=frame))
    alone = correlation(noise_psd(crop, 1.0, psd="g4"))
    np.testing.assert_allclose(told, whole, atol=0.01)
    assert max(abs(a - w) for a, w in zip(alone, whole)) > 0.02
    np.testing.assert_array_equal(noise_psd(frame, 2.0, psd="g4", frame_shape=frame), noise_psd(frame, 2.0, psd="g4"))
    assert noise_psd(crop, 2.0, psd="g4", frame_shape=frame).mean() == pytest.approx(np.prod(crop) * 4.0)


def test_bm3d_on_a_box_denoises_it_as_the_whole_frame_and_smooths_the_rest():
    clean = _discs(128, seed=3)
    noisy = np.random.default_rng(4).poisson(np.stack([clean, clean[::-1]])).astype(np.float32)
    settings = DenoiseSettings(bm3d_profile="lc", bm3d_stages="hard")
    rows, cols = slice(20, 110), slice(10, 100)
    whole = denoise_bm3d(noisy, settings, sigma_psd=3.0, n_jobs=1)
    part = denoise_bm3d(noisy, settings, sigma_psd=3.0, n_jobs=1, box=(rows, cols))
    truth = np.stack([clean, clean[::-1]])
    inner = (slice(None), slice(rows.start + 8, rows.stop - 8), slice(cols.start + 8, cols.stop - 8))
    gain_whole = _psnr(whole[inner], truth[inner]) - _psnr(noisy[inner], truth[inner])
    gain_part = _psnr(part[inner], truth[inner]) - _psnr(noisy[inner], truth[inner])
    assert gain_part > 5.0 and abs(gain_part - gain_whole) < 0.5, (gain_part, gain_whole)  # measured +7.88 and +7.92 dB
    # outside the box: the raw image under a 1 px Gaussian
    outside = np.ones(noisy.shape[1:], bool)
    outside[rows, cols] = False
    for k in range(2):
        smooth = ndimage.gaussian_filter(noisy[k], dn.OUTSIDE_SIGMA_PX, mode="nearest")
        np.testing.assert_array_equal(part[k][outside], smooth[outside])
    # a box that is the whole frame is BM3D on every pixel
    np.testing.assert_array_equal(denoise_bm3d(noisy, settings, sigma_psd=3.0, n_jobs=1, box=(slice(None), slice(0, 128))),
                                  whole)


@pytest.mark.parametrize(("box", "match"), [((slice(0, 5), slice(None)), "at least 8 px"),
                                            ((slice(0, 40, 2), slice(None)), "unit-step"),
                                            ((slice(0, 40),), "pair of slices"), ((3, 4), "pair of slices")])
def test_a_bad_box_is_refused(box, match):
    with pytest.raises(InputError, match=match):
        denoise_bm3d(np.ones((2, 64, 64)), DenoiseSettings(psd="white"), sigma_psd=1.0, box=box)
