"""The errors operator tools raise for the CLI's error boundary (:mod:`imgproc.boundary`) to report,
and the one-line spelling of any message: here, so that a tool reports a usage error without
importing the command line that runs it."""

from __future__ import annotations

import html
import re

MAX_MESSAGE = 300  # characters of an error message shown (an HTML error page can be much longer)


class UsageError(Exception):
    """The command cannot run as asked (options, input files, template parameters): exit status 2.

    Not a ValueError on purpose: code that catches ValueError for its own parsing must not turn a
    usage error into a runtime failure.
    """


class StackNotFound(RuntimeError):
    """The stack does not exist (or has no outputs yet) at this endpoint and region."""


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` as one readable line: an HTML page (moto answers some errors with one) reduced to its
    title, other tags dropped, whitespace collapsed, clipped to ``limit`` characters."""
    if "<" in text and ">" in text:
        text = re.sub(r"<title>(.*?)</title>.*", r"\1", text, flags=re.S | re.I)
        text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S | re.I)
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
