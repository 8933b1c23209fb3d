"""The one reader of settings files: JSON, TOML or YAML by suffix, errors as one line.

Every file a user hands in (detector configuration, pipeline configuration, prices, quotas,
saved usage, truth files, stream lists) is read here, so that a missing file, a directory,
binary bytes or a syntax error all end the same way: a ``ConfigError`` naming the file, what
it should hold, and the problem.
"""

from __future__ import annotations

import json
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from avmon.errors import ConfigError


def read_document(path: str | Path, what: str) -> Any:
    """Parse ``path`` (``.toml``, ``.yaml``/``.yml``, otherwise JSON) holding ``what``.

    Raises ConfigError for a file that cannot be read or parsed."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file ({what} expected)") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read {what} ({exc.strerror or exc})") from None
    return parse_document(text, p.suffix.lower(), f"{p}", what)


def packaged_document(name: str, what: str) -> Any:
    """One of the data files shipped in ``avmon/economics/data``."""
    text = resources.files("avmon.economics.data").joinpath(name).read_text(encoding="utf-8")
    return parse_document(text, Path(name).suffix, name, what)


def parse_document(text: str, suffix: str, where: str, what: str) -> Any:
    """Parse ``text`` by file suffix. Raises ConfigError naming ``where``."""
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except Exception as exc:  # each parser has its own error class; all mean "not this format"
        kind = {".toml": "TOML", ".yaml": "YAML", ".yml": "YAML"}.get(suffix, "JSON")
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{where}: not valid {kind} ({what} expected: {reason})") from None
