"""One framework for every declarative input: experiment specs, model cards, fit specs, sweep specs.

Each kind of card is a pydantic model derived from :class:`Spec` (unknown
keys refused, values frozen after validation). :func:`parse` validates a
parsed TOML document and :func:`load` a file; both raise
:class:`~sinter4d.errors.SpecError` with one line,
``"<file>: <dotted.key>: <what is wrong>"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import SpecError
from .io.toml import read_toml

__all__ = ["Spec", "format_validation_error", "load", "parse"]


class Spec(BaseModel):
    """Base of every card: unknown keys are an error, and a validated card does not change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


S = TypeVar("S", bound=BaseModel)


def format_validation_error(source: str | Path, exc: ValidationError) -> str:
    """The first error of ``exc`` as one line: ``"<source>: <dotted.key>: <what is wrong>"``."""
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"{source}: {loc}: unknown key"
    if kind == "missing":
        return f"{source}: {loc}: missing key"
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    if kind != "value_error" and not isinstance(got, dict):
        msg = f"{msg} (got {got!r})"
    return f"{source}: {loc}: {msg}"


def parse(model: type[S], doc: dict, *, source: str | Path = "<spec>", context: dict | None = None) -> S:
    """Validate ``doc`` as a ``model``; a failure is one :class:`SpecError` line naming ``source`` and the key."""
    try:
        return model.model_validate(doc, context=context)
    except ValidationError as exc:
        raise SpecError(format_validation_error(source, exc)) from None


def load(model: type[S], path: str | Path, *, context: dict | None = None) -> S:
    """Read a TOML file and validate it as a ``model`` (see :func:`parse`)."""
    return parse(model, read_toml(path), source=path, context=context)
