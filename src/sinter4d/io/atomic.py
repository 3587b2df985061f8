"""Atomic writes: a temporary file in the destination's folder, renamed over it when complete.

An interrupted write leaves the old file or none, never a partial one, so
every command can resume by looking at which files exist (docs/design.md).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError


def check_target(path: str | Path) -> Path:
    """``path`` as a Path a file can be written to: not a folder, its parent not a file.

    Commands call it before long work, so a bad ``--out`` is refused at once.

    Raises
    ------
    InputError
        One line naming the path.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give the name of a file to write")
    if path.parent.exists() and not path.parent.is_dir():
        raise InputError(f"{path.parent}: is a file, not a folder to write {path.name} in")
    return path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed over it when the block ends without error.

    Parameters
    ----------
    path : str or Path
        Destination; its folder is created when missing.

    Yields
    ------
    Path
        Where to write (same folder, hidden name). It is removed if the block
        raises.

    Examples
    --------
    >>> with atomic_path("out/table.csv") as tmp:  # doctest: +SKIP
    ...     frame.to_csv(tmp)
    """
    path = check_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """A temporary folder beside ``path``, renamed to ``path`` when the block ends without error.

    A folder written in several steps (every file of an imported run)
    appears whole or not at all.

    Parameters
    ----------
    path : str or Path
        Destination folder: it must not exist, or be empty (it is then
        replaced). Its parent is created when missing.

    Yields
    ------
    Path
        The folder to fill (same parent, hidden name). It is removed with
        everything in it if the block raises.

    Raises
    ------
    FileExistsError
        ``path`` exists and is not an empty folder (checked before and again
        at the rename).
    """
    path = Path(path)
    if path.exists() and not (path.is_dir() and not any(path.iterdir())):
        raise FileExistsError(f"{path}: exists and is not an empty folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        os.rename(tmp, path)  # fails when path appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | Path, data) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically (values JSON cannot hold as their ``str``)."""
    return write_text_atomic(path, json.dumps(data, indent=2, default=str))


def save_figure_atomic(fig, path: str | Path, *, dpi: int = 100) -> Path:
    """Save a matplotlib figure as PNG to ``path`` atomically; returns ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return Path(path)
