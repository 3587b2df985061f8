"""Binarisation: global threshold + opening by a ball; the Dice coefficient."""

import numpy as np
import pytest
from scipy import ndimage
from skimage.morphology import ball

from sinter4d.errors import InputError
from sinter4d.pipeline.binarize import dice, threshold_binary


def _blobs(seed=0, shape=(40, 40, 40)):
    rng = np.random.default_rng(seed)
    m = ndimage.gaussian_filter(rng.random(shape), 2) > 0.5
    m[:5] = m[-5:] = 0
    m[:, :5] = m[:, -5:] = 0
    m[:, :, :5] = m[:, :, -5:] = 0
    return m


def test_otsu_separates_two_noisy_levels():
    rng = np.random.default_rng(1)
    z, y, x = np.indices((40, 40, 40))
    truth = np.zeros((40, 40, 40), bool)
    for cz, cy, cx, r in [(12, 12, 12, 7), (26, 25, 24, 8), (12, 28, 10, 6)]:
        truth |= (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r * r
    vol = (truth * 1.0 + 0.25 * rng.standard_normal(truth.shape)).astype(np.float32)
    out = threshold_binary(vol)
    assert out.dtype == np.uint8 and set(np.unique(out)) <= {0, 1}
    # Otsu alone lets through the background's noise tail (measured Dice 0.58) ...
    assert dice(out, truth) < 0.7
    # ... which the opening removes while keeping the spheres (measured 0.987)
    assert dice(threshold_binary(vol, radius_nm=2.0, voxel_size_nm=2.0), truth) > 0.97


def _exact_otsu(values):
    """Otsu's cut by brute force over every gap between sorted values (no histogram)."""
    v = np.sort(values.ravel().astype(np.float64))
    n = v.size
    k = np.arange(1, n)
    s = np.cumsum(v)[:-1]
    mu0, mu1 = s / k, (v.sum() - s) / (n - k)
    best = int(np.argmax(k * (n - k) * (mu0 - mu1) ** 2))
    return v[best], v[best + 1]  # any threshold in [v[best], v[best + 1]) makes the same classes


def test_otsu_is_not_coarsened_by_a_few_bright_voxels():
    # film ~0 and particles ~0.12 with overlapping noise, as a reconstruction's values, and 4 voxels
    # 30x brighter: they stretch the value range (256 bins of 0.016 here), not Otsu's classes
    rng = np.random.default_rng(7)
    shape = (40, 60, 60)
    vol = np.where(rng.random(shape) < 0.15, rng.normal(0.12, 0.03, shape), rng.normal(0.0, 0.03, shape))
    vol = vol.astype(np.float32)
    vol.ravel()[rng.choice(vol.size, 4, replace=False)] = rng.uniform(3.0, 4.0, 4)
    lo, _ = _exact_otsu(vol)
    exact = int((vol > lo).sum())
    # the exact cut's voxels to 0.2 % (scikit-image's default 256 bins: 30 % more here)
    assert abs(int(threshold_binary(vol).sum()) - exact) <= 0.002 * exact


@pytest.mark.parametrize("radius_vox", [1, 2, 3])
def test_opening_equals_scipy_with_a_ball(radius_vox):
    m = _blobs(seed=radius_vox)
    ours = threshold_binary(m.astype(np.float32), radius_nm=radius_vox * 1.5, voxel_size_nm=1.5, threshold=0.5)
    ref = ndimage.binary_opening(m, structure=ball(radius_vox))
    np.testing.assert_array_equal(ours.astype(bool), ref)


def test_opening_keeps_big_spheres_and_removes_specks():
    z, y, x = np.indices((30, 30, 30))
    vol = (((z - 15) ** 2 + (y - 15) ** 2 + (x - 15) ** 2) <= 64).astype(np.float32)  # r = 8
    vol[2, 2, 2] = vol[2, 3, 2] = 1.0  # a speck
    out = threshold_binary(vol, radius_nm=2.0, voxel_size_nm=1.0)
    assert out[2, 2, 2] == 0
    assert dice(out, vol > 0.5) > 0.95
    # a radius under half a voxel means no opening
    np.testing.assert_array_equal(threshold_binary(vol, radius_nm=0.4, voxel_size_nm=1.0), vol > 0.5)


def test_other_methods_and_constant_volume():
    truth = _blobs(seed=4)
    vol = truth.astype(np.float32) * 3.0 + 1.0
    for method in ("li", "yen", "isodata"):
        assert dice(threshold_binary(vol, method=method), truth) == 1.0
    assert not threshold_binary(np.ones((4, 4, 4))).any()


def test_dice_values():
    a = np.zeros((4, 4, 4), bool)
    b = np.zeros((4, 4, 4), bool)
    assert dice(a, b) == 1.0
    a[0, 0, :2] = True
    assert dice(a, b) == 0.0
    b[0, 0, 1:3] = True
    assert dice(a, b) == pytest.approx(0.5)
    assert dice(a, a) == 1.0


def test_bad_input():
    vol = np.zeros((4, 4, 4), np.float32)
    with pytest.raises(InputError, match="method='mean' is not a known choice; use one of 'otsu'"):
        threshold_binary(vol, method="mean")
    with pytest.raises(InputError, match="radius_nm"):
        threshold_binary(vol, radius_nm=-1.0)
    with pytest.raises(InputError, match="voxel_size_nm"):
        threshold_binary(vol, voxel_size_nm=0.0)
    with pytest.raises(InputError, match=r"\(nz, ny, nx\)"):
        threshold_binary(vol[0])
    with pytest.raises(InputError, match="NaN"):
        threshold_binary(np.full((2, 2, 2), np.nan))
    with pytest.raises(InputError, match="same shape"):
        dice(vol, vol[:2])


@pytest.mark.parametrize("block_voxels", [1, 30 * 7 * 5, 10**9])
def test_blockwise_opening_equals_one_transform_of_the_whole_volume(monkeypatch, block_voxels):
    from scipy import ndimage

    from sinter4d.pipeline import binarize

    rng = np.random.default_rng(3)
    mask = ndimage.gaussian_filter(rng.normal(size=(30, 7, 40)), 1.5) > 0.05  # blobs cut by every face
    radius = 1.7
    eroded = ndimage.distance_transform_edt(mask) > radius  # the opening in one piece, as scipy gives it
    expected = ndimage.distance_transform_edt(~eroded) <= radius
    monkeypatch.setattr(binarize, "BLOCK_VOXELS", block_voxels)
    got = binarize._opening(mask, radius)
    assert 0 < expected.sum() < mask.sum()
    np.testing.assert_array_equal(got, expected)
