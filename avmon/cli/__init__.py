"""The ``avmon`` command: one module per command group, each thin (parse, call one core
function, render).

Every failure the user can cause ends as one line on stderr (``avmon: error: ...``) and a
non-zero exit; work already finished (a partial report) is still printed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from avmon import __version__
from avmon.cli import analysis, demo, economics, evaluation, pipeline
from avmon.cli.common import Parser
from avmon.errors import AvmonError

GROUPS = (analysis, evaluation, pipeline, economics, demo)

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
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("avmon: interrupted\n")
        return 130
    except BrokenPipeError:
        return 141


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
