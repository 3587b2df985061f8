"""Exceptions for bad user input.

Every error a user can cause (a bad spec or card, a bad stack, a file missing a
variable) is raised as one of these, with a message of one line that names the
file and the key or variable at fault. The command line prints that line and
exits non-zero; it never prints a traceback for them.
"""


class InputError(ValueError):
    """Bad input data: a file, an array or a table the user brought."""


class SpecError(InputError):
    """A declarative input (experiment spec, model card, fit spec) is invalid.

    The message reads ``"<file>: <key>: <what is wrong>"``.
    """
