"""The one validation layer: every file and setting a user hands in is checked here, by pydantic.

Rules everywhere: numbers are finite (no NaN, no infinity), within a range that makes sense for
their unit (the unit is in the name: ``_s`` seconds, ``_ms`` milliseconds, ``_mb`` megabytes,
``_dbfs`` decibels below full scale), and of the declared type with no coercion (``"false"`` is
not a boolean, ``2.5`` is not an integer, ``true`` is not a number). A value that breaks a rule
is one line naming the setting, the value and what is allowed::

    cfg.json: black.min_fraction = 1.5: must be <= 1

Frozen dataclasses stay the types the code uses (attribute access, hashable); this module builds
a strict pydantic model of each one to check a mapping before the dataclass is made.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import tempfile
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model
from pydantic_core import ErrorDetails

from avmon.errors import ConfigError

# What every model of user input shares: no coercion, no NaN or infinity, no unknown keys.
STRICT = ConfigDict(strict=True, allow_inf_nan=False, extra="forbid", frozen=True)
# The same for records avmon wrote itself and reads back (saved runs): extra keys are fine.
STRICT_OPEN = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore", frozen=True)

Fraction = Annotated[float, Field(ge=0, le=1)]


class DefectRecord(BaseModel):
    """A defect as avmon writes it (reports, truth files, saved runs), read back."""

    model_config = STRICT_OPEN

    detector: str
    start_s: float
    end_s: float
    confidence: Fraction = 1.0
    details: dict[str, Any] = Field(default_factory=dict)


_MESSAGES: dict[str, Callable[[dict[str, Any]], str]] = {
    "finite_number": lambda c: "must be a finite number",
    "greater_than_equal": lambda c: f"must be >= {c['ge']}",
    "greater_than": lambda c: f"must be > {c['gt']}",
    "less_than_equal": lambda c: f"must be <= {c['le']}",
    "less_than": lambda c: f"must be < {c['lt']}",
    "int_type": lambda c: "must be a whole number",
    "int_from_float": lambda c: "must be a whole number",
    "float_type": lambda c: "must be a number",
    "bool_type": lambda c: "must be true or false (not a string or a number)",
    "string_type": lambda c: "must be a string",
    "dict_type": lambda c: "must be a table (an object of settings)",
    "model_type": lambda c: "must be a table (an object of settings)",
    "list_type": lambda c: "must be a list",
    "extra_forbidden": lambda c: "is not a known setting",
    "missing": lambda c: "is missing",
    "literal_error": lambda c: f"must be one of {c['expected']}",
}


def _describe(err: ErrorDetails) -> str:
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    for k, v in ctx.items():  # 0.0 -> 0 in messages: the bound as a user would write it
        if isinstance(v, float) and v.is_integer():
            ctx[k] = int(v)
    render = _MESSAGES.get(err["type"])
    if render is not None:
        return render(ctx)
    return str(err["msg"]).replace("Input should be", "must be").replace("Value error, ", "")


def _shown(value: Any) -> str:
    """The offending value as the user wrote it, cut short if long (binary junk, huge lists)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def error_line(exc: ValidationError, where: str, prefix: str = "",
               model: type[BaseModel] | None = None) -> str:
    """The first error of ``exc`` as ``where: prefix.field = value: what is allowed``.

    One line even when several settings are wrong: the first is fixed, then the next shows up.
    With ``model``, an unknown top-level setting is answered with the known ones.
    """
    err = exc.errors()[0]
    if model is not None and err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
        err["msg"] = f"is not a known setting; known: {', '.join(model.model_fields)}"
        err["type"] = "known_settings"
    field = ".".join(str(p) for p in err["loc"])
    name = f"{prefix}.{field}" if prefix and field else (prefix or field)
    head = f"{where}: " if where else ""
    more = len(exc.errors()) - 1
    tail = f" (and {more} more)" if more else ""
    if err["type"] == "missing":
        return f"{head}{name} is missing{tail}"
    if not name:
        return f"{head}{_shown(err['input'])}: {_describe(err)}{tail}"
    return f"{head}{name} = {_shown(err['input'])}: {_describe(err)}{tail}"


def check(model: type[BaseModel], data: Any, where: str, prefix: str = "") -> Any:
    """``model.model_validate(data)``; raises ConfigError with one line naming the bad setting."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(error_line(exc, where, prefix, model)) from None


# -- frozen dataclasses -----------------------------------------------------------------------

UnitRules = Callable[[str, type], dict[str, Any]]


@functools.cache
def dataclass_model(cls: type, rules: UnitRules | None = None) -> type[BaseModel]:
    """A strict pydantic model with the fields, types and defaults of dataclass ``cls``.

    ``Annotated[..., Field(...)]`` constraints on the dataclass's fields are kept; ``rules``
    adds constraints by field name and type (the unit rules of the detector settings) to the
    fields that have none of their own."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        # a field with its own Annotated constraint keeps it; the others get the unit rules
        own = typing.get_origin(hint) is Annotated
        extra = rules(f.name, hint) if rules and not own else {}
        if extra:
            hint = Annotated[hint, Field(**extra)]
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (hint, f.default)
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = (hint, Field(default_factory=f.default_factory))
        else:
            fields[f.name] = (hint, ...)
    model: type[BaseModel] = create_model(cls.__name__, __config__=STRICT, **fields)
    return model


def build_dataclass(cls: type, values: Mapping[str, Any], where: str, prefix: str = "",
                    rules: UnitRules | None = None) -> Any:
    """Validate ``values`` against ``cls``'s model, then make the dataclass. Raises ConfigError."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where + ': ' if where else ''}{prefix or cls.__name__} ="
                          f" {_shown(values)}: must be a table (an object of settings)")
    model = dataclass_model(cls, rules)
    checked = check(model, dict(values), where, prefix)
    return cls(**{name: getattr(checked, name) for name in model.model_fields})


# -- command-line numbers ---------------------------------------------------------------------

def number(kind: type[int] | type[float], *, ge: float | None = None, gt: float | None = None,
           le: float | None = None, what: str = "") -> Callable[[str], Any]:
    """An argparse ``type=``: a finite ``kind`` within bounds, or one line saying what is allowed.

    ``int`` refuses ``2.5`` and ``1e3``; ``float`` refuses ``nan`` and ``inf``."""
    spec: Any = Annotated[kind, Field(ge=ge, gt=gt, le=le, allow_inf_nan=False, strict=True)]
    adapter: TypeAdapter[Any] = TypeAdapter(spec)
    allowed = _bounds_text(kind, ge, gt, le)

    def parse(text: str) -> Any:
        try:
            value = int(text, 10) if kind is int else float(text)
            if kind is float and not math.isfinite(value):
                raise ValueError
            return adapter.validate_python(value)
        except (ValueError, ValidationError):
            raise argparse.ArgumentTypeError(
                f"{text!r} is not allowed: {allowed}{' ' + what if what else ''}") from None

    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


def _num(x: float | None) -> str:
    return str(int(x)) if x is not None and float(x).is_integer() else f"{x:g}"


def _bounds_text(kind: type, ge: float | None, gt: float | None, le: float | None) -> str:
    noun = "a whole number" if kind is int else "a finite number"
    lo = f">= {_num(ge)}" if ge is not None else f"> {_num(gt)}" if gt is not None else ""
    hi = f"<= {_num(le)}" if le is not None else ""
    bounds = " and ".join(b for b in (lo, hi) if b)
    return f"{noun} {bounds}" if bounds else noun


# -- output paths -----------------------------------------------------------------------------

def writable_dir(path: Path, what: str) -> None:
    """Check, before any work, that folder ``path`` exists or can be created and written to.

    Nothing is left behind: the check writes one temporary file in the nearest existing folder
    and removes it. Raises ConfigError naming the path and the problem."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path}: {what} must be a folder, but this is a file")
    _probe(path, what)


def writable_file(path: Path, what: str, suffixes: tuple[str, ...] = ()) -> None:
    """Check, before any work, that file ``path`` can be written (its folder created if needed).

    Raises ConfigError for a path that is a folder, a wrong suffix, or a folder that cannot be
    created or written."""
    if path.is_dir() or str(path).endswith(os.sep):
        raise ConfigError(f"{path}: {what} must be a file name, but this is a folder")
    if suffixes and path.suffix.lower() not in suffixes:
        raise ConfigError(f"{path}: {what} must end in {', '.join(suffixes)}")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{path}: {what} exists and cannot be overwritten")
    _probe(path.parent, what)


def _probe(folder: Path, what: str) -> None:
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{folder}: cannot write {what} there: {existing} is a file,"
                          " not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot write {what} there"
                          f" ({exc.strerror or exc})") from None
