"""Where the deployable project lives: the checkout holding ``cdk/``, ``functions/`` and
``statemachine/``.

The wheel installs only the ``avmon`` package; the simulation deploys the project's own CDK app
and runs its Lambda handlers, which live beside it in a source checkout. That checkout is the
parent of the ``avmon`` package (an editable or in-place install) or ``AVMON_PROJECT_ROOT``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from avmon.errors import ConfigError

_MARKERS = ("cdk/app.py", "functions/__init__.py", "statemachine/pipeline.asl.json")


def project_root() -> Path:
    """The checkout, put on ``sys.path`` so ``cdk`` and ``functions`` import.

    Raises ConfigError when there is none (avmon installed from a wheel, no checkout named)."""
    candidates = [os.environ.get("AVMON_PROJECT_ROOT", ""),
                  str(Path(__file__).resolve().parents[2])]
    for candidate in filter(None, candidates):
        root = Path(candidate).resolve()
        if all((root / m).is_file() for m in _MARKERS):
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            return root
    raise ConfigError("the local simulation deploys the CDK app in cdk/ and the handlers in"
                      " functions/: run it from a source checkout of avmon, or set"
                      " AVMON_PROJECT_ROOT to one")
