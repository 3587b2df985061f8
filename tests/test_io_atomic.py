"""Atomic writes: the old file or the new one, never a partial one, and no temporary left behind."""

import json

import pytest

from sinter4d.io.atomic import atomic_path, write_json_atomic, write_text_atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "table.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["table.txt"]


def test_a_finished_write_replaces_the_file_readable_by_all(tmp_path):
    target = tmp_path / "new" / "a.json"  # the folder is made
    write_json_atomic(target, {"x": 1, "path": tmp_path})
    assert json.loads(target.read_text()) == {"x": 1, "path": str(tmp_path)}
    assert target.stat().st_mode & 0o777 == 0o644
    write_json_atomic(target, [2])
    assert json.loads(target.read_text()) == [2]
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]


def test_a_figure_is_saved_as_png(tmp_path):
    from matplotlib.figure import Figure

    from sinter4d.io.atomic import save_figure_atomic

    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    path = save_figure_atomic(fig, tmp_path / "f.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    from sinter4d.io.atomic import atomic_folder

    target = tmp_path / "run"
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []
    target.mkdir()  # an empty folder is replaced
    with atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("whole")
        assert not (target / "a.txt").exists()
    assert (target / "a.txt").read_text() == "whole" and [p.name for p in tmp_path.iterdir()] == ["run"]
    with pytest.raises(FileExistsError):
        with atomic_folder(target):
            pass


def test_a_folder_or_a_file_as_folder_is_refused_before_writing(tmp_path):
    from sinter4d.errors import InputError

    (tmp_path / "out.nc").mkdir()
    (tmp_path / "plain").write_text("x")
    with pytest.raises(InputError, match="out.nc: is a folder"):
        write_text_atomic(tmp_path / "out.nc", "data")
    with pytest.raises(InputError, match="plain: is a file, not a folder to write t.txt in"):
        write_text_atomic(tmp_path / "plain" / "t.txt", "data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc", "plain"]
