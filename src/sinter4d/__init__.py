"""sinter4d: a simulation and data-assimilation testbed for in-situ (4D)
electron tomography of nanoparticle sintering.

One subpackage per stage of the data flow (see ``docs/design.md``):
:mod:`~sinter4d.phantom`, :mod:`~sinter4d.sintering`,
:mod:`~sinter4d.acquisition`, :mod:`~sinter4d.pipeline`,
:mod:`~sinter4d.measurement`, :mod:`~sinter4d.assimilation` and
:mod:`~sinter4d.experiments`; shared linear operators in
:mod:`~sinter4d.operators`; files only in :mod:`~sinter4d.io` and the
command line in :mod:`~sinter4d.cli`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sinter4d")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

from .errors import InputError, SpecError

__all__ = ["InputError", "SpecError", "__version__"]
