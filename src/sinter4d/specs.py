"""One framework for every declarative input: experiment specs, model cards, fit specs, sweep specs.

Each kind of card is a pydantic model derived from :class:`Spec` (unknown
keys refused, values frozen after validation). :func:`parse` validates a
parsed TOML document and :func:`load` a file; both raise
:class:`~sinter4d.errors.SpecError` with one line,
``"<file>: <dotted.key>: <what is wrong>"``.

The field types here (:data:`Number`, :data:`Positive`, :func:`integer`,
:func:`choice`, ...) check a value as a TOML author wrote it (no coercion of
``"3"`` to 3 or of ``true`` to 1) and say what is wrong in the card's own
words. A check that spans several keys raises :func:`fail` naming the key it
is about, relative to the table being validated; :func:`nested` validates a
sub-table inside such a check and keeps the key of its first error.
"""

from __future__ import annotations

import math
from functools import lru_cache
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, PlainValidator, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from .errors import SpecError
from .io.toml import read_toml

__all__ = [
    "Elsewhere",
    "Flag",
    "NonNegative",
    "Number",
    "Positive",
    "Spec",
    "Text",
    "choice",
    "fail",
    "format_validation_error",
    "integer",
    "load",
    "nested",
    "number",
    "optional",
    "parse",
]


class Spec(BaseModel):
    """Base of every card: unknown keys are an error, and a validated card does not change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


S = TypeVar("S", bound=BaseModel)


# -- errors --------------------------------------------------------------------


def fail(what: str, *at: str | int) -> PydanticCustomError:
    """An error to raise from a validator: ``what`` is wrong at key ``at`` (relative to the table validated).

    ``at`` is a path of keys (str) and list indices (int); empty: the table itself.
    """
    return PydanticCustomError("spec", "{what}", {"what": what, "at": tuple(at)})


def _describe(err: dict) -> tuple[tuple, str]:
    """Key path and message of one pydantic error."""
    loc, kind = tuple(err["loc"]), err["type"]
    if kind == "spec":
        return loc + tuple(err["ctx"]["at"]), err["ctx"]["what"]
    if kind == "extra_forbidden":
        return loc, "unknown key"
    if kind == "missing":
        return loc, "missing key"
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    if kind != "value_error" and not isinstance(got, dict):
        msg = f"{msg} (got {got!r})"
    return loc, msg


def dotted(loc: Sequence[str | int]) -> str:
    """``("noise", "x", "exclude_series", 1)`` as ``"noise.x.exclude_series[1]"``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def format_validation_error(source: str | Path, exc: ValidationError) -> str:
    """The first error of ``exc`` as one line: ``"<source>: <dotted.key>: <what is wrong>"``."""
    loc, msg = _describe(exc.errors(include_url=False)[0])
    return f"{source}: {dotted(loc)}: {msg}"


def nested(model: Any, value: Any, *at: str | int, context: dict | None = None) -> Any:
    """Validate ``value`` as a ``model`` (or any field type) inside a validator; its first error is raised at
    ``at`` + its key."""
    try:
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model.model_validate(value, context=context)
        return _adapter(model).validate_python(value, context=context)
    except ValidationError as exc:
        loc, msg = _describe(exc.errors(include_url=False)[0])
        raise fail(msg, *at, *loc) from None


@lru_cache(maxsize=None)
def _adapter(field_type) -> TypeAdapter:
    return TypeAdapter(field_type)


def parse(model: type[S], doc: dict, *, source: str | Path = "<spec>", context: dict | None = None,
          at: Sequence[str | int] = ()) -> S:
    """Validate ``doc`` as a ``model``; a failure is one :class:`SpecError` line naming ``source`` and the key.

    The validators see ``source`` (as a str) in the validation context, with
    ``context``. ``at``: the key of ``doc`` in its file (a table of a larger
    document), put before the keys in the messages.
    """
    try:
        return model.model_validate(doc, context={"source": str(source), **(context or {})})
    except Elsewhere as exc:
        raise exc.error from None
    except ValidationError as exc:
        loc, msg = _describe(exc.errors(include_url=False)[0])
        raise SpecError(f"{source}: {dotted((*at, *loc))}: {msg}") from None


class Elsewhere(Exception):
    """Carries a :class:`SpecError` of another file (a card a spec names) out of a validator unchanged."""

    def __init__(self, error: SpecError):
        super().__init__(str(error))
        self.error = error


def load(model: type[S], path: str | Path, *, context: dict | None = None) -> S:
    """Read a TOML file and validate it as a ``model`` (see :func:`parse`)."""
    return parse(model, read_toml(path), source=path, context=context)


# -- field types -----------------------------------------------------------------


def check_number(value, *, positive: bool = False, allow_zero: bool = False) -> float:
    """``value`` (an int or float, not a bool) as a finite float; ``positive``: > 0 (>= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number (got {value!r})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"must be finite (got {value})")
    if positive and (value < 0 or (value == 0 and not allow_zero)):
        raise ValueError(f"must be {'>= 0' if allow_zero else 'positive'} (got {value:g})")
    return value


def number(*, positive: bool = False, allow_zero: bool = False):
    """A field type: a finite number (see :func:`check_number`)."""
    return Annotated[float, PlainValidator(lambda v: check_number(v, positive=positive, allow_zero=allow_zero))]


#: Any finite number.
Number = number()
#: A finite number > 0.
Positive = number(positive=True)
#: A finite number >= 0.
NonNegative = number(positive=True, allow_zero=True)


def check_integer(value, *, minimum: int = 1) -> int:
    """``value`` as an int of at least ``minimum`` (a bool or a float is refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be an integer (got {value!r})")
    if value < minimum:
        raise ValueError(f"must be at least {minimum} (got {value})")
    return int(value)


def optional(field_type):
    """``field_type`` (built by this module) that also takes None (the default of an optional key)."""
    base, check = field_type.__origin__, field_type.__metadata__[0].func
    return Annotated[base | None, PlainValidator(lambda v: None if v is None else check(v))]


def integer(minimum: int = 1):
    """A field type: an integer of at least ``minimum``."""
    return Annotated[int, PlainValidator(lambda v: check_integer(v, minimum=minimum))]


def check_text(value) -> str:
    """``value`` if it is a string."""
    if not isinstance(value, str):
        raise ValueError(f"must be a string (got {value!r})")
    return value


def _flag(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false (got {value!r})")
    return value


#: A string.
Text = Annotated[str, PlainValidator(check_text)]
#: ``true`` or ``false``.
Flag = Annotated[bool, PlainValidator(_flag)]


def check_choice(value, choices: Sequence[str], *, noun: str = "choice", verb: str = "choose") -> str:
    """``value`` if it is one of ``choices``; else ``"unknown <noun> 'x' (<verb> a, b)"``."""
    check_text(value)
    if value not in choices:
        raise ValueError(f"unknown {noun} {value!r} ({verb} {', '.join(choices)})")
    return value


def choice(choices: Sequence[str], *, noun: str = "choice", verb: str = "choose"):
    """A field type: one of ``choices`` (see :func:`check_choice`; a mapping is read when a value is checked)."""
    choices = choices if isinstance(choices, Mapping) else tuple(choices)
    return Annotated[str, PlainValidator(lambda v: check_choice(v, choices, noun=noun, verb=verb))]
