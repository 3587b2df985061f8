"""What made a run: package versions, the code's fingerprint and git commit, and the time.

Every record a command writes beside its outputs (``run.json`` of a run, of
an imported experiment, of a sweep) takes these from here.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

__all__ = ["RECORDED_PACKAGES", "code_fingerprint", "code_record", "git_commit", "package_versions", "utc_timestamp"]

#: Packages whose versions a run records (the ones that shape its numbers).
RECORDED_PACKAGES = (
    "sinter4d", "numpy", "scipy", "numba", "scikit-image", "xarray", "netCDF4", "bm3d", "SimpleITK",
    "emcee", "arviz", "matplotlib", "pydantic", "dask", "distributed", "statsmodels",
)


def package_versions(names: tuple[str, ...] = RECORDED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (``"not installed"`` when missing), and Python's."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def code_fingerprint() -> str:
    """A SHA-256 of the installed sinter4d source: every file of the package, by path and content.

    Two runs made by the same code have the same fingerprint, whether or not
    the source is a git checkout, and an uncommitted edit changes it; a test
    (or a user) compares the run record's ``code.fingerprint`` with this to
    tell whether a run folder was made by the code installed now.
    """
    return _fingerprint(Path(__file__).resolve().parents[1])


@lru_cache(maxsize=None)
def _fingerprint(package: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                   and p.suffix not in (".pyc", ".pyo"))
    for path in files:
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def git_commit() -> dict | None:
    """``{"commit", "dirty"}`` of the git checkout the package is imported from, or None (no git, not a checkout).

    ``dirty``: the package's source differs from the commit (then only
    :func:`code_fingerprint` tells the code apart).
    """
    package = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=package, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    try:
        if not git("ls-files", "__init__.py"):  # an installed copy inside some other checkout
            return None
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--", "."))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def code_record() -> dict:
    """What made a run: the package's :func:`code_fingerprint` and its git commit (None outside a checkout)."""
    return {"fingerprint": code_fingerprint(), "git": git_commit()}


def utc_timestamp() -> str:
    """The time now in UTC, ISO 8601 to the second (``2026-11-23T22:26:45+00:00``)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
