"""`imgproc`: one command for operators, on-call engineers and newcomers.

Each subcommand's module owns its arguments (``add_arguments``) and its work (``run``); this module
lists them and runs each inside the one error boundary (:mod:`imgproc.boundary`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

import backfill
from dlq_replayer import arguments as dlq_arguments
from dlq_replayer import dlq
from imgproc import boundary, dashboard, demo, deploy, enqueue, explain, invoke, local, package, status

Command = tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]

# name -> (help line, add_arguments(parser), run(args) -> exit code)
COMMANDS: dict[str, Command] = {
    "up": (
        "Run the pipeline on an embedded AWS on this machine until Ctrl-C.",
        local.add_up_arguments,
        local.run_up,
    ),
    "demo": (
        "Run the pipeline locally on sample images and show the results.",
        demo.add_arguments,
        demo.run,
    ),
    "package": ("Build the Lambda zip for Linux (arm64 or x86_64).", package.add_arguments, package.run),
    "deploy": ("Package and deploy the stack, then print its outputs.", deploy.add_arguments, deploy.run),
    "invoke": (
        "Run the function's handler here once on an SQS event file; print its response.",
        invoke.add_arguments,
        invoke.run,
    ),
    "status": (
        "Queue depth, in flight, DLQ depth, oldest message age, recent failures.",
        status.add_arguments,
        status.run,
    ),
    "dashboard": (
        "Draw the on-call dashboard of a local run (metrics, failures, queues) to a PNG or HTML file.",
        dashboard.add_arguments,
        dashboard.run,
    ),
    "dlq": (
        "Inspect, replay or purge the dead-letter queue.",
        dlq_arguments.add_arguments,
        dlq.run,
    ),
    "backfill": (
        "Enqueue existing source keys for processing (filters, dry run, rate, resumable).",
        backfill.add_arguments,
        backfill.run,
    ),
    "explain": (
        "Why a key's renditions are missing or old (source, renditions, DLQ, catalog, logs) and the fix.",
        explain.add_arguments,
        explain.run,
    ),
    "enqueue": (
        "Put one synthetic S3 event per key on the ingest queue, so the function reconciles it again.",
        enqueue.add_arguments,
        enqueue.run,
    ),
}


def _version() -> str:
    try:
        return version("imgproc")
    except PackageNotFoundError:
        return "unknown"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line naming the (sub)command they concern.

    argparse lets a subcommand's parser return the arguments it does not know to the top-level parser,
    which then reports them with the top-level usage (``imgproc status --bogus`` would point at
    ``imgproc``, not at ``imgproc status``): here the innermost parser that met them reports them.
    Subparsers are created with the class of their parent, so nested commands (``dlq replay``) behave
    alike.
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras

    def error(self, message: str) -> NoReturn:
        self.exit(boundary.EXIT_USAGE, f"{self.prog}: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="imgproc",
        description="Event-driven image resizing on AWS: S3 -> SQS -> Lambda -> S3 + CloudFront.",
        epilog="Run 'imgproc COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help_line, add_arguments, run) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_line, description=help_line)
        add_arguments(sub)
        if not sub.epilog:
            sub.epilog = boundary.EXIT_STATUS_HELP
        sub.set_defaults(run=run, command_name=name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, then run the command inside the error boundary: one line on stderr and the documented
    exit status for anything it lets through, never a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return boundary.EXIT_USAGE
    return boundary.run_command(args.command_name, args.run, args)


if __name__ == "__main__":
    sys.exit(main())
