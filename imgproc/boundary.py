"""The error boundary every `imgproc` command runs inside: one line on stderr, a documented exit status.

Commands handle the errors they can say something specific about (and clean up after themselves in
``finally`` blocks); whatever they let through ends here instead of as a traceback. An operator who
mistypes an endpoint, runs without credentials or presses Ctrl-C learns what happened in one line, and
scripts get an exit status that says whose fault it was:

- 0: done; 1: the environment is wrong or AWS refused (no stack, no credentials, endpoint down, a
  tool that failed, an extra the command needs not installed); 2: the command was used wrongly
  (options, files, parameters); 130: interrupted; 141: stdout was closed by its reader
  (``imgproc backfill --dry-run | head -1``): like other Unix tools the command then ends silently,
  with the status a shell reports for a writer killed by SIGPIPE (128 + 13).

A Ctrl-C or a closed stdout before the boundary is entered (while the command line's modules load) or
after it is left is caught by the console script's entry point, :mod:`imgproc.entry`, alike.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import NoRegionError

from imgproc.entry import EXIT_INTERRUPTED, stdout_closed
from imgproc.extras import COMMAND_EXTRAS, MissingExtra, extra_providing, require
from toolkit.errors import StackNotFound, UsageError, aws_message, one_line
from toolkit.terminal import is_terminal

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_STATUS_HELP = (
    "Exit status: 0 done; 1 the stack, AWS or the environment failed (no stack, no credentials, "
    "endpoint unreachable); 2 bad options or input; 130 interrupted."
)
DEBUG_VARIABLE = "IMGPROC_DEBUG"  # set to 1: let unexpected errors through with their traceback


def describe(exc: BaseException) -> tuple[str, int]:  # noqa: PLR0911 - one branch per kind of failure
    """The one-line message and the exit status for an error that reached the boundary."""
    if isinstance(exc, UsageError):
        return one_line(str(exc)), EXIT_USAGE
    if isinstance(exc, StackNotFound | MissingExtra):
        return one_line(str(exc)), EXIT_FAILED
    if isinstance(exc, ModuleNotFoundError) and extra_providing(exc.name):
        return str(MissingExtra(str(extra_providing(exc.name)))), EXIT_FAILED
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region or set AWS_REGION", EXIT_USAGE
    aws = aws_message(exc)
    if aws is not None:
        return aws, EXIT_FAILED
    if isinstance(exc, subprocess.CalledProcessError):
        command = exc.cmd if isinstance(exc.cmd, str) else " ".join(_short(exc.cmd))
        return f"`{command}` failed with exit status {exc.returncode} (its output is above)", EXIT_FAILED
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}", EXIT_FAILED
    return (
        f"unexpected {type(exc).__name__}: {one_line(str(exc), 200)} (a bug: rerun with "
        f"{DEBUG_VARIABLE}=1 for the traceback and report it)",
        EXIT_FAILED,
    )


def _short(command: list[object]) -> list[str]:
    """The first words of a command line, the program by its name only: enough to say what failed."""
    words = [str(word) for word in command]
    if words:
        words[0] = Path(words[0]).name
    return words[:4] + (["…"] if len(words) > 4 else [])


def run_command(name: str, run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``run(args)``'s exit status, or, for an error it let through, one line on stderr and the status
    :func:`describe` gives it. A command that needs an extra (:mod:`imgproc.extras`) checks it first."""
    try:
        if name in COMMAND_EXTRAS:
            require(COMMAND_EXTRAS[name])
        return int(run(args))
    except KeyboardInterrupt:
        fresh_line = "\n" if is_terminal(sys.stderr) else ""  # after the terminal's ^C
        print(f"{fresh_line}imgproc {name}: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of stdout is gone: nobody to tell, nothing more to write
        return stdout_closed()
    except Exception as exc:
        if os.environ.get(DEBUG_VARIABLE) and not isinstance(exc, UsageError | StackNotFound | MissingExtra):
            raise
        message, code = describe(exc)
        print(f"imgproc {name}: {message}", file=sys.stderr, flush=True)
        return code
