"""The benchmarks: scripts run as ``.venv/bin/python benchmarks/NAME.py`` (see the README)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


def run(main: Callable[[], int | None]) -> NoReturn:
    """Run a benchmark's ``main`` as a script: Ctrl-C ends it with one line and exit 130
    instead of a traceback. Rows printed before stand as measured; the table or result file
    that comes at the end is not written."""
    try:
        code = main()
    except KeyboardInterrupt:
        print(f"{Path(sys.argv[0]).name}: interrupted before the end; the run is incomplete",
              file=sys.stderr)
        raise SystemExit(130) from None
    raise SystemExit(code)
