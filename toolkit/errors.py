"""The errors operator tools raise for the CLI's error boundary (:mod:`imgproc.boundary`) to report,
and the one-line spelling of any message: here, so that a tool reports a usage error without
importing the command line that runs it."""

from __future__ import annotations

import html
import re

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

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


def aws_error_message(exc: ClientError) -> str:
    """``Code: Message`` of an AWS error response, without botocore's "An error occurred (...) when
    calling the X operation" wrapping, HTML or line breaks."""
    error = exc.response.get("Error", {})
    code = error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
    message = one_line(str(error.get("Message") or ""))
    operation = getattr(exc, "operation_name", "")
    where = f" ({operation})" if operation else ""
    return f"AWS refused{where}: {code}" + (f": {message}" if message else "")


def aws_message(exc: BaseException) -> str | None:  # noqa: PLR0911 - one branch per kind of failure
    """What an operator should read for an AWS SDK error, in one line (None: not an AWS SDK error).

    One wording for every command: the CLI's boundary and the tools that report an error in their own
    summary (``imgproc dlq``) say the same thing about the same failure.
    """
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(the embedded AWS of `imgproc up` needs none: pass its --endpoint-url)"
        )
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        endpoint = getattr(exc, "kwargs", {}).get("endpoint_url", "")
        return (
            f"cannot reach {endpoint or 'the AWS endpoint'}: is it running (`imgproc up`), and are "
            "--endpoint-url / AWS_ENDPOINT_URL right?"
        )
    if isinstance(exc, ReadTimeoutError):
        return f"the AWS endpoint did not answer in time: {one_line(str(exc))}"
    if isinstance(exc, ResponseParserError):
        return f"unreadable answer from the AWS endpoint: {one_line(str(exc), 160)}"
    if isinstance(exc, ClientError):
        return aws_error_message(exc)
    if isinstance(exc, BotoCoreError):
        return one_line(str(exc))
    return None
