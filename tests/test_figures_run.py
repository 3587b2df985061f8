"""Figures of a run's images: tilt montage, orthogonal slices, and the picking and cropping behind them."""

import numpy as np
import pytest

from sinter4d import InputError
from sinter4d.figures import run as fg
from sinter4d.figures.png import figure_png, figure_rgba


def test_select_tilts_picks_the_nearest_without_repeats():
    angles = np.arange(-40.0, 41.0, 2.0)
    np.testing.assert_array_equal(angles[fg.select_tilts(angles)], [-40, -20, 0, 20, 40])
    narrow = np.array([-10.0, 0.0, 10.0])
    np.testing.assert_array_equal(fg.select_tilts(narrow), [0, 1, 2])
    with pytest.raises(InputError, match="angles_deg"):
        fg.select_tilts([])


def test_bounding_box_and_cluster_centre():
    mask = np.zeros((10, 12), dtype=bool)
    mask[3:5, 6:9] = True
    assert fg.bounding_box(mask) == (slice(3, 5), slice(6, 9))
    assert fg.bounding_box(mask, margin=4) == (slice(0, 9), slice(2, 12))
    assert fg.bounding_box(np.zeros((3, 4), dtype=bool)) == (slice(0, 3), slice(0, 4))
    assert fg.cluster_centre(mask) == (4, 7)  # mean (3.5, 7) rounded half to even
    assert fg.cluster_centre(np.zeros((4, 6), dtype=bool)) == (2, 3)


def test_crop_window_boxes_the_bright_object():
    images = np.ones((3, 200, 200))
    images[:, 90:110, 40:60] = 50.0
    ys, xs = fg.crop_window(images, margin_px=8, min_px=32, max_px=160)
    assert ys.start <= 90 and ys.stop >= 110 and xs.start <= 40 and xs.stop >= 60
    assert 32 <= ys.stop - ys.start <= 160 and 32 <= xs.stop - xs.start <= 160
    with pytest.raises(InputError, match="min_px, max_px"):
        fg.crop_window(images, min_px=50, max_px=40)


def test_tilt_montage_has_a_panel_per_image():
    raw = np.random.default_rng(1).poisson(3.0, (3, 24, 24)).astype(np.float32)
    fig = fg.tilt_montage(raw, raw, np.array([-20.0, 0.0, 20.0]), pixel_size_nm=4.0)
    assert len(fig.axes) == 6
    w_in, h_in = fig.get_size_inches()
    assert figure_rgba(fig, dpi=30).shape == (round(h_in * 30), round(w_in * 30), 4)
    with pytest.raises(InputError, match="one shape"):
        fg.tilt_montage(raw, raw[:2], np.array([-20.0, 0.0, 20.0]), pixel_size_nm=4.0)


@pytest.mark.parametrize("with_truth", [True, False])
def test_orthogonal_slices_image_shape(two_spheres, with_truth):
    label, (z, y, x) = two_spheres
    fig = fg.orthogonal_slices(label.astype(np.float32), label > 0, label > 0 if with_truth else None,
                               z_nm=z, y_nm=y, x_nm=x, title="t01")
    w_in, h_in = fig.get_size_inches()
    assert figure_rgba(fig, dpi=40).shape == (round(h_in * 40), round(w_in * 40), 4)
    assert len(fig.axes) == (8 if with_truth else 4)  # xy, yz, xz and a note per block
    assert figure_png(fig, dpi=40).startswith(b"\x89PNG")


def test_orthogonal_slices_checks_shapes():
    c4, c5, c6 = (np.arange(n) * 4.0 for n in (4, 5, 6))
    with pytest.raises(InputError, match="one shape"):
        fg.orthogonal_slices(np.zeros((4, 5, 6)), np.zeros((4, 5, 5)), None, z_nm=c4, y_nm=c5, x_nm=c6)
    with pytest.raises(InputError, match="grid"):
        fg.orthogonal_slices(np.zeros((4, 5, 6)), np.zeros((4, 5, 6)), np.zeros((4, 5, 5)), z_nm=c4, y_nm=c5,
                             x_nm=c6)
    with pytest.raises(InputError, match="do not fit"):
        fg.orthogonal_slices(np.zeros((4, 5, 6)), np.zeros((4, 5, 6)), None, z_nm=c4, y_nm=c5, x_nm=c5)
