"""Old name of :mod:`sinter4d.figures`, kept until the importers are rewritten; delete this package then."""
