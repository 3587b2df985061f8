"""Reading TOML cards and specs with one clear error line."""

from __future__ import annotations

import tomllib
from pathlib import Path

from ..checks import check_file
from ..errors import SpecError


def read_toml(path: str | Path) -> dict:
    """Read a TOML file into a dict.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    dict
        The parsed document.

    Raises
    ------
    SpecError
        If the file is missing, unreadable or not valid TOML; the message
        names the file (and the line for a syntax error).
    """
    path = check_file(path, error=SpecError)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not a TOML text file (byte {exc.start} is not UTF-8)") from None
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror}") from None
