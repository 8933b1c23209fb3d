"""The ``avmon`` command: one module per command group, each thin (parse, call one core
function, render).

Every failure the user can cause ends as one line on stderr (``avmon: error: ...``) and a
non-zero exit; work already finished (a partial report) is still printed.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import sys
from collections.abc import Sequence

from avmon import __version__
from avmon.cli import analysis, demo, economics, evaluation, pipeline, serve, watch
from avmon.cli.common import Parser
from avmon.errors import EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, EXIT_INTERRUPTED, AvmonError

GROUPS = (analysis, watch, serve, evaluation, pipeline, economics, demo)

# What each optional extra brings, by the top-level module a command failed to import.
EXTRAS = {"boto3": "aws", "botocore": "aws", "aws_lambda_powertools": "aws", "moto": "sim",
          "aws_cdk": "sim", "cdk_nag": "sim", "constructs": "sim", "jsii": "sim",
          "matplotlib": "report", "prometheus_client": "serve", "yaml": "serve"}


def build_parser() -> Parser:
    parser = Parser(prog="avmon", description="Audio/video defect monitoring.")
    parser.add_argument("--version", action="version", version=f"avmon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (see the table "Exit codes" in README.md)."""
    # avmon makes no matrix products (numpy's BLAS is never called), yet OpenBLAS starts a thread
    # per core when numpy is imported, about 0.07 s of CPU on this 2-core machine: one thread is
    # enough. Set before the command imports numpy (nothing above does); a user's value stays.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except AvmonError as exc:
        sys.stderr.write(f"avmon: error: {exc}\n")
        return exc.exit_code
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top not in EXTRAS:
            raise
        sys.stderr.write(f"avmon: error: 'avmon {args.command}' needs {top}, from the"
                         f" '{EXTRAS[top]}' extra: pip install 'avmon[{EXTRAS[top]}]'\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("avmon: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`avmon ... | head`): nothing more can be shown, and Python's
        # final flush of stdout must not complain about it on stderr either.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        if exc.filename is None:  # not about a path the user named: a bug, keep the traceback
            raise
        # A path that went bad after the checks (disk full, removed folder): one line.
        sys.stderr.write(f"avmon: error: {exc.filename}: {exc.strerror or exc}\n")
        return EXIT_BAD_INPUT


def entry() -> int:
    """The ``avmon`` program (console script and ``python -m avmon``): ``main``, with a crash in
    native code (FFmpeg, numpy) reported as every thread's Python stack on stderr rather than a
    bare exit by signal (``faulthandler``; printed only on such a crash)."""
    if sys.stderr is not None and not faulthandler.is_enabled():
        faulthandler.enable()
    return main()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(entry())
