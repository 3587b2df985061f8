"""Marching-cubes surfaces of binary volumes and their shaded views."""

import numpy as np
import pytest

from sinter4d import InputError
from sinter4d.figures.png import figure_rgba
from sinter4d.figures.surface import surface_figure, surface_mesh


def test_surface_mesh_lies_on_the_spheres(two_spheres):
    label, (z, y, x) = two_spheres
    spacing, origin = (4.0, 4.0, 4.0), (z[0], y[0], x[0])
    verts, faces = surface_mesh(label, spacing_nm=spacing, origin_nm=origin, max_faces=2000)
    assert verts.shape[1] == 3 and faces.shape[1] == 3 and 100 < len(faces) <= 4000
    # spheres of radius 6.5 voxels = 26 nm centred at x = -24 and +24 nm: the surface is within a voxel or two of them
    r = np.minimum(np.linalg.norm(verts - [0.0, 0.0, -24.0], axis=1), np.linalg.norm(verts - [0.0, 0.0, 24.0], axis=1))
    assert np.all(np.abs(r - 26.0) < 2 * 4.0)


def test_surface_of_nothing_and_bad_arguments():
    empty_v, empty_f = surface_mesh(np.zeros((4, 5, 6)))
    assert empty_v.shape == (0, 3) and empty_f.shape == (0, 3)
    with pytest.raises(InputError, match="max_faces"):
        surface_mesh(np.ones((4, 5, 6)), max_faces=10)
    with pytest.raises(InputError, match="smooth_px"):
        surface_mesh(np.ones((4, 5, 6)), smooth_px=-1.0)
    with pytest.raises(InputError, match=r"\(z, y, x\)"):
        surface_mesh(np.ones((4, 5)))


def test_surface_figure_has_a_panel_per_mesh(two_spheres):
    label, _ = two_spheres
    verts, faces = surface_mesh(label, max_faces=2000)
    empty = (np.zeros((0, 3)), np.zeros((0, 3), dtype=int))
    fig = surface_figure([("a", verts, faces), ("b", *empty)], ncols=2)
    assert len(fig.axes) == 2
    w_in, h_in = fig.get_size_inches()
    assert figure_rgba(fig, dpi=30).shape == (round(h_in * 30), round(w_in * 30), 4)
    with pytest.raises(InputError, match="empty"):
        surface_figure([])
    with pytest.raises(InputError, match="colours"):
        surface_figure([("a", verts, faces)], colours=["r", "b"])
