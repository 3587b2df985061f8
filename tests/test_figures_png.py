"""Figures to pixels: PNG bytes, RGBA arrays, smaller PNGs."""

import io

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from sinter4d.figures.png import figure_png, figure_rgba, shrink_png


def _figure() -> Figure:
    fig = Figure(figsize=(4.0, 2.0))
    fig.add_subplot().plot([0, 1], [0, 1])
    return fig


def test_figure_png_is_figsize_times_dpi():
    data = figure_png(_figure(), dpi=50)
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG" and img.size == (200, 100)
    rgba = figure_rgba(_figure(), dpi=50)
    assert rgba.shape == (100, 200, 4) and rgba.dtype == np.uint8


def test_shrink_png_keeps_the_aspect_and_leaves_small_images_alone():
    data = figure_png(_figure(), dpi=50)
    assert shrink_png(data, max_width_px=400) is data
    with Image.open(io.BytesIO(shrink_png(data, max_width_px=50))) as img:
        assert img.size == (50, 25)
