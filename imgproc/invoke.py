"""`imgproc invoke EVENT.json`: run the deployed function's handler once on an SQS event, here.

Like ``sam local invoke -e``, minus the container: the function is found through the stack's
``FunctionName`` output, its configuration (environment, timeout, memory) is read from Lambda, and
``processor.handler.lambda_handler`` runs in this process with that environment against the same
endpoint, with this shell's credentials (not the function's role). The response goes to stdout, the
handler's logs to stderr.

Exit status: 0 when ``batchItemFailures`` is empty; 1 when some messages failed (SQS would deliver
them again), the handler raised (Lambda would retry the whole batch), or the stack or AWS could not be
read; 2 when the event file or the options could not be used.

An ObjectCreated event for a key that is not in the bucket is still invoked (the handler reconciles:
it deletes the renditions of a source that is gone), but with a warning: it is almost always a sample
event whose key was never uploaded.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
import traceback
from typing import Any

from botocore.exceptions import ClientError

from imgproc import function
from imgproc.boundary import UsageError
from processor.errors import InvalidEvent
from processor.events import ObjectRef, parse_body, parse_sqs_event
from toolkit import aws
from toolkit.function import FunctionConfig, load_function
from toolkit.stack import Output, read_outputs
from toolkit.terminal import is_terminal


class _CurrentStderr:
    """A stream that writes to whatever ``sys.stderr`` is at the time of each write.

    The handler configures its logger on stdout at cold start, and the logger keeps the stream it got;
    handing it this one sends the logs to stderr, now and in any later invocation in this process.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def read_event(path: str) -> dict[str, Any]:
    """The SQS event in ``path`` (``-`` for stdin), checked to be one the handler can take."""
    try:
        if path == "-":
            text, name = sys.stdin.read(), "stdin"
        else:
            with open(path, encoding="utf-8") as f:
                text, name = f.read(), path
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{name} is not JSON: {exc}") from None
    try:
        parse_sqs_event(event)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        hint = ""
        records = event.get("Records") if isinstance(event, dict) else None
        if isinstance(records, list) and records and isinstance(records[0], dict):
            if records[0].get("eventSource") == "aws:s3":
                hint = "; it is an S3 notification, which the function gets as the body of an SQS record"
            elif "messageId" not in records[0]:
                hint = "; every record needs a messageId"
        detail = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
        raise UsageError(
            f"{name} is not a Lambda SQS event ({detail}){hint}; see events/s3-put.json for one"
        ) from None
    return event


def parse_env(pairs: list[str]) -> dict[str, str]:
    """``["KEY=VALUE", …]`` → dict; an empty value is allowed (the handler reads it as unset)."""
    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--env {pair!r} is not KEY=VALUE")
        overrides[key.strip()] = value
    return overrides


def find_function(args: argparse.Namespace) -> FunctionConfig:
    """The deployed function named by the stack's ``FunctionName`` output (``StackNotFound`` and AWS
    errors go to the error boundary: exit status 1)."""
    cfn = aws.client(args, "cloudformation")
    outputs = read_outputs(cfn, args.stack_name, required=(Output.FUNCTION_NAME,))
    return load_function(aws.client(args, "lambda"), outputs.function_name)


def created_refs(event: dict[str, Any]) -> list[ObjectRef]:
    """The objects that the event's ObjectCreated records name (bodies that do not parse are the
    handler's to dead-letter, not ours to judge)."""
    refs = []
    for record in event["Records"]:
        try:
            notification = parse_body(str(record.get("body", "")))
        except InvalidEvent:
            continue
        refs += [ref for ref in notification.refs if ref.event_name.startswith("ObjectCreated:")]
    return refs


def missing_sources(s3: Any, refs: list[ObjectRef]) -> list[ObjectRef]:
    """Those of ``refs`` whose object is not in its bucket (HEAD says 404)."""
    missing = []
    for ref in refs:
        try:
            s3.head_object(Bucket=ref.bucket, Key=ref.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchBucket"):
                missing.append(ref)
    return missing


def warn_missing_sources(args: argparse.Namespace, event: dict[str, Any]) -> None:
    """One line on stderr per ObjectCreated record whose key does not exist: the handler would take it
    for a stale event and report the renditions deleted, which looks like success."""
    for ref in missing_sources(aws.client(args, "s3"), created_refs(event)):
        print(
            f"imgproc invoke: warning: s3://{ref.bucket}/{ref.key} does not exist, so this {ref.event_name} "
            "event is stale to the handler (it deletes the renditions); upload the object first or edit "
            "the event's key",
            file=sys.stderr,
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "The function's configuration comes from the stack; the handler runs in this process with your "
        "credentials and its logs go to stderr; a warning says when an ObjectCreated event names a key "
        "that does not exist. Exit status: 0 all messages succeeded; 1 some failed, the handler raised, "
        "or the stack or AWS could not be read; 2 unusable event file or options; 130 interrupted."
    )
    parser.add_argument(
        "event",
        metavar="EVENT.json",
        help="Lambda SQS event to invoke the handler with ('-' reads stdin); samples in events/",
    )
    aws.add_arguments(parser)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one of the function's environment variables (repeatable), e.g. LOG_LEVEL=DEBUG",
    )


def run(args: argparse.Namespace) -> int:
    try:
        event = read_event(args.event)
        overrides = parse_env(args.env)
    except UsageError as exc:
        print(f"imgproc invoke: {exc}", file=sys.stderr)
        return 2
    deployed = find_function(args)
    warn_missing_sources(args, event)
    target = dataclasses.replace(deployed, environment={**deployed.environment, **overrides})
    function.apply_environment(target, endpoint_url=args.endpoint_url, region=args.region)

    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(_CurrentStderr()):  # type: ignore[type-var]
            response = function.invoke(target, event, fresh=True)
    except Exception as exc:
        # What Lambda reports for an unhandled error; it would retry the whole batch.
        traceback.print_exc(file=sys.stderr)
        _print_json({"errorType": type(exc).__name__, "errorMessage": str(exc)}, args)
        return 1
    elapsed_ms = (time.monotonic() - started) * 1000

    failures = response.get("batchItemFailures") or []
    print(
        f"imgproc invoke: {target.name}: {len(event['Records'])} message(s), {len(failures)} failed, "
        f"{elapsed_ms:.0f} ms",
        file=sys.stderr,
    )
    _print_json(response, args)
    return 1 if failures else 0


def _print_json(doc: dict[str, Any], args: argparse.Namespace) -> None:
    pretty = is_terminal(sys.stdout) and not args.json
    print(json.dumps(doc, indent=2 if pretty else None), flush=True)
