"""Parse Lambda's SQS event into plain dataclasses: which objects to look at, and message bookkeeping.

Pure: dicts in, dataclasses out.  A record is only a hint ("look at key K"); what to do with K is
decided by :mod:`processor.reconcile` from the source's current state, so the event name is kept
for logs only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from processor.errors import InvalidEvent

BACKFILL_MARKER = "imgprocBackfill"  # set on records that `imgproc backfill` enqueues
REPLAY_COUNT_ATTRIBUTE = "replay-count"  # message attribute `imgproc dlq replay` increments
ORIGINAL_MESSAGE_ID_ATTRIBUTE = "original-message-id"  # set when dead-lettered, kept by replays


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object named by a notification record."""

    bucket: str
    key: str  # URL-decoded
    event_name: str  # e.g. "ObjectCreated:Put"; informational only
    etag: str | None = None  # as the event saw it (absent on removals)
    sequencer: str | None = None
    backfill: bool = False


@dataclass(frozen=True)
class Notification:
    """What one SQS message body says: S3 records, or an ``s3:TestEvent`` (no records)."""

    refs: tuple[ObjectRef, ...]
    test_event: bool = False


@dataclass(frozen=True)
class SqsMessage:
    """One record of Lambda's SQS event, with the fields the batch needs."""

    message_id: str
    body: str
    receive_count: int
    replay_count: int  # from the `replay-count` attribute set by `imgproc dlq replay`
    original_message_id: str | None = None  # kept by a replay: the message that first failed


def parse_sqs_event(event: Any) -> list[SqsMessage]:
    """The SQS records of a Lambda event.  A malformed envelope is a bug upstream: raise ValueError."""
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list):
        raise ValueError("not an SQS event: no Records list")
    return [_sqs_message(record) for record in event["Records"]]


def _sqs_message(record: dict[str, Any]) -> SqsMessage:
    attributes = record.get("attributes") or {}
    message_attributes = record.get("messageAttributes") or {}
    replay = message_attributes.get(REPLAY_COUNT_ATTRIBUTE) or {}
    original = message_attributes.get(ORIGINAL_MESSAGE_ID_ATTRIBUTE) or {}
    return SqsMessage(
        message_id=str(record["messageId"]),
        body=str(record.get("body", "")),
        receive_count=_int_or_zero(attributes.get("ApproximateReceiveCount")),
        replay_count=_int_or_zero(replay.get("stringValue")),
        original_message_id=original.get("stringValue") or None,
    )


def parse_body(body: str) -> Notification:
    """Parse an SQS message body holding an S3 notification (directly or wrapped by SNS).

    Raises :class:`InvalidEvent` for anything else: such a message can never succeed, so it is
    dead-lettered with its reason rather than retried.
    """
    try:
        doc = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"body is not JSON: {exc}") from None
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        return parse_body(doc["Message"])  # S3 -> SNS -> SQS fan-out
    if not isinstance(doc, dict):
        raise InvalidEvent("body is not a JSON object")
    if doc.get("Event") == "s3:TestEvent":
        return Notification(refs=(), test_event=True)
    records = doc.get("Records")
    if not isinstance(records, list) or not records:
        raise InvalidEvent("body has no S3 Records")
    return Notification(refs=tuple(_object_ref(i, r) for i, r in enumerate(records)))


def _object_ref(index: int, record: Any) -> ObjectRef:
    try:
        if record.get("eventSource") != "aws:s3":
            raise InvalidEvent(
                f"Records[{index}] is not an S3 event (eventSource={record.get('eventSource')!r})"
            )
        s3 = record["s3"]
        obj = s3["object"]
        key = unquote_plus(str(obj["key"]))
        bucket = str(s3["bucket"]["name"])
        event_name = str(record["eventName"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidEvent(f"Records[{index}] lacks {exc}") from None
    if not key or not bucket:
        raise InvalidEvent(f"Records[{index}] has an empty bucket or key")
    return ObjectRef(
        bucket=bucket,
        key=key,
        event_name=event_name,
        etag=obj.get("eTag") or None,
        sequencer=obj.get("sequencer") or None,
        backfill=bool(record.get(BACKFILL_MARKER)),
    )


def _int_or_zero(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
