"""The `imgproc` console script: a Ctrl-C or a closed stdout at any moment ends in one line, never a
traceback.

Loading :mod:`imgproc.cli` takes a noticeable part of a second (boto3, botocore, rich, Pillow...), and a
Ctrl-C pressed meanwhile would land before the error boundary (:mod:`imgproc.boundary`) is entered:
Python would print the whole ``KeyboardInterrupt`` traceback of the import. So the entry point is this
module, which imports only the standard library's ``os`` and ``sys``, and imports the real command
line inside its ``try``.

A reader that stops reading early (``imgproc backfill --dry-run | head -1``) closes the pipe: like
other Unix tools the command then ends silently with status 141 (128 + SIGPIPE, what a shell reports
for a writer the signal killed). Python ignores SIGPIPE and raises ``BrokenPipeError`` instead, and
would report it again while flushing stdout at exit ("Exception ignored ... BrokenPipeError"), unless
stdout is pointed at the null device first, as the Python documentation's recipe does
(:func:`stdout_closed`).
"""

from __future__ import annotations

import os
import sys

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE


def stdout_closed() -> int:
    """What a command does when its reader closed stdout: nothing more is written there (the output
    left in Python's buffer goes to the null device at exit, silently); the exit status is 141."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a file descriptor (stdout replaced, as in tests): nothing to do
        pass
    return EXIT_BROKEN_PIPE


def interrupted(argv: list[str]) -> int:
    """The boundary's line for a Ctrl-C that came before it (or after it, at the last moment)."""
    name = f"imgproc {argv[0]}" if argv and not argv[0].startswith("-") else "imgproc"
    fresh_line = "\n" if sys.stderr.isatty() else ""  # after the terminal's ^C
    print(f"{fresh_line}{name}: interrupted", file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


def main() -> int:
    """Import the command line and run it; a Ctrl-C at any moment, the import included, exits 130
    with one line, a closed stdout 141 with none."""
    try:
        from imgproc import cli  # noqa: PLC0415 - the heavy import, inside the try on purpose

        try:
            return cli.main()
        finally:  # `--help` too (SystemExit): a closed pipe shows here, not in Python's flush at exit
            sys.stdout.flush()
    except KeyboardInterrupt:
        return interrupted(sys.argv[1:])
    except BrokenPipeError:
        return stdout_closed()


if __name__ == "__main__":
    sys.exit(main())
