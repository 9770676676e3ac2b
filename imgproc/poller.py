"""A poller that behaves like Lambda's SQS event source mapping, for the embedded AWS.

Each worker process long-polls the ingest queue, fills a batch up to the mapping's batch size within
its batching window, invokes ``processor.handler.lambda_handler`` with the exact event Lambda builds
and a context counting down from the function's timeout, then deletes every message that is not in
``batchItemFailures``. Failed messages are left alone: they come back after the visibility timeout,
and SQS's redrive moves them to the DLQ after ``maxReceiveCount``. A handler exception, a response
naming an unknown message, or a run past the timeout fails the whole batch, as in Lambda.

This module is the mapping's semantics; :mod:`imgproc.worker` is one worker process running them,
and :mod:`imgproc.workers` starts, replaces and stops those processes.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from toolkit.function import FunctionConfig, load_function
from toolkit.stack import StackOutputs


@dataclass(frozen=True)
class Mapping:
    """What the poller needs to know of the deployed function and its event source mapping."""

    endpoint_url: str
    region: str
    queue_url: str
    queue_arn: str
    batch_size: int
    window_seconds: float
    function: FunctionConfig


def load_mapping(endpoint_url: str, region: str, outputs: dict[str, str], lam: Any = None) -> Mapping:
    """Read the mapping and the function configuration from the deployed stack's ``outputs`` (two cheap
    calls: the local runtime reads them every few seconds to notice a redeploy)."""
    lam = lam or boto3.client("lambda", endpoint_url=endpoint_url, region_name=region)
    stack = StackOutputs("local", outputs)
    fn = load_function(lam, stack.function_name)
    mappings = lam.list_event_source_mappings(FunctionName=stack.function_name)["EventSourceMappings"]
    mapping = next(m for m in mappings if m["EventSourceArn"] == stack.queue_arn)
    return Mapping(
        endpoint_url=endpoint_url,
        region=region,
        queue_url=stack.queue_url,
        queue_arn=stack.queue_arn,
        batch_size=int(mapping.get("BatchSize", 10)),
        window_seconds=float(mapping.get("MaximumBatchingWindowInSeconds", 0)),
        function=fn,
    )


def lambda_event(messages: Iterable[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping passes to the function for ``messages``."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {
                    name: _lambda_attribute(value) for name, value in m.get("MessageAttributes", {}).items()
                },
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),  # noqa: S324
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def _lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """SQS API attribute shape → Lambda event shape (camelCase keys, list fields present)."""
    converted: dict[str, Any] = {
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = value["BinaryValue"]
    return converted


def settle(messages: list[dict[str, Any]], response: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Which messages to delete, and which failed, given the handler's response.

    As Lambda: an empty or absent ``batchItemFailures`` means all succeeded; a malformed response or
    an identifier that is not in the batch fails the whole batch.
    """
    ids = [m["MessageId"] for m in messages]
    if response is None:  # a null response reports no failures
        return list(messages), []
    try:
        failed = {str(item["itemIdentifier"]) for item in response.get("batchItemFailures") or []}
    except (AttributeError, KeyError, TypeError):
        return [], ids
    if not failed <= set(ids):
        return [], ids
    return [m for m in messages if m["MessageId"] not in failed], [i for i in ids if i in failed]


@dataclass
class BatchReport:
    received: int = 0
    deleted: int = 0
    failed: int = 0
    batch_error: str | None = None
    outcomes: dict[str, int] = field(default_factory=dict)


def receive_batch(sqs: Any, mapping: Mapping, wait_seconds: int) -> list[dict[str, Any]]:
    """Long-poll up to the batch size, collecting for at most the batching window."""
    deadline = time.monotonic() + mapping.window_seconds
    messages: list[dict[str, Any]] = []
    while len(messages) < mapping.batch_size:
        got = sqs.receive_message(
            QueueUrl=mapping.queue_url,
            MaxNumberOfMessages=min(10, mapping.batch_size - len(messages)),
            WaitTimeSeconds=0 if messages else wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        messages.extend(got)
        if not messages or not got or time.monotonic() >= deadline:
            break
    return messages


def run_batch(
    sqs: Any,
    mapping: Mapping,
    messages: list[dict[str, Any]],
    invoke: Callable[[dict[str, Any]], Any],
    *,
    retry_after: int | None = None,
) -> BatchReport:
    """Invoke the handler on ``messages`` and settle them with SQS, as the event source mapping does."""
    report = BatchReport(received=len(messages))
    started = time.monotonic()
    try:
        response = invoke(lambda_event(messages, mapping.queue_arn, mapping.region))
    except Exception as exc:
        response, report.batch_error = None, f"{type(exc).__name__}: {exc}"
    if report.batch_error is None and time.monotonic() - started > mapping.function.timeout_seconds:
        report.batch_error = f"Task timed out after {mapping.function.timeout_seconds} seconds"
    if report.batch_error is not None:
        done, failed = [], [m["MessageId"] for m in messages]
    else:
        done, failed = settle(messages, response)
    for start in range(0, len(done), 10):
        chunk = done[start : start + 10]
        result = sqs.delete_message_batch(
            QueueUrl=mapping.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
        )
        report.deleted += len(result.get("Successful", []))
    report.failed = len(failed)
    if retry_after is not None and failed:
        # Local convenience (off by default): bring failures back sooner than the visibility timeout.
        handles = {m["MessageId"]: m["ReceiptHandle"] for m in messages}
        for message_id in failed:
            sqs.change_message_visibility(
                QueueUrl=mapping.queue_url, ReceiptHandle=handles[message_id], VisibilityTimeout=retry_after
            )
    return report


@dataclass(frozen=True)
class WorkerOptions:
    log_dir: Path
    retry_after: int | None = None
    fault_spec: str | None = None
    wait_seconds: int = 1  # short long-polls so that a stop request is noticed within a second
