"""The run report: one self-contained HTML page made from whatever the run folder holds.

:func:`build_report` writes it (:mod:`.page`), one section per module
(:mod:`.metadata`, :mod:`.images`, :mod:`.results`, :mod:`.fit`) over the run
folder's files (:mod:`.folder`), in HTML from :mod:`.html`.
"""

from .page import SECTIONS, build_report

__all__ = ["SECTIONS", "build_report"]
