"""Figures to pixels: PNG bytes or an RGBA array of a Figure drawn on the Agg canvas, and PNGs made smaller."""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["DEFAULT_DPI", "figure_png", "figure_rgba", "shrink_png"]

DEFAULT_DPI = 90


def figure_png(fig: Figure, *, dpi: float = DEFAULT_DPI) -> bytes:
    """The PNG bytes of ``fig`` rendered at ``dpi``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    dpi : float, optional
        Resolution; the image is ``figsize * dpi`` pixels.

    Returns
    -------
    bytes
        A PNG file.
    """
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def figure_rgba(fig: Figure, *, dpi: float = DEFAULT_DPI) -> np.ndarray:
    """``fig`` rendered at ``dpi`` as an ``(H, W, 4)`` uint8 array (H, W = figsize * dpi)."""
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(dpi)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba()).copy()


def shrink_png(data: bytes, *, max_width_px: int = 1400) -> bytes:
    """``data`` (a PNG) scaled down to at most ``max_width_px`` wide; unchanged when narrower.

    Parameters
    ----------
    data : bytes
        A PNG file.
    max_width_px : int, optional

    Returns
    -------
    bytes
        A PNG file.
    """
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        if img.width <= max_width_px:
            return data
        height = max(1, round(img.height * max_width_px / img.width))
        small = img.convert("RGBA").resize((max_width_px, height), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
