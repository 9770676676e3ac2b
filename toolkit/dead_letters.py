"""Reading dead-letter messages: what failed, why, when, and for which keys.

Shared by `imgproc status` (recent failures) and the `imgproc dlq` commands. Everything here works on
messages as SQS ``ReceiveMessage`` returns them through boto3 (``MessageId``, ``Body``, ``Attributes``,
``MessageAttributes``); only :func:`peek` talks to SQS.

Two kinds of messages end up on the DLQ (docs/design.md, "Contract: dead-letter messages"): those the
handler sent for a permanent failure, with ``error-class``, ``error-message``, ``failed-at``,
``original-message-id`` and ``replay-count`` attributes, and those SQS itself redrove after
``maxReceiveCount`` deliveries, which carry none of them and are shown as ``RetriesExhausted``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from processor.dead_letter import ERROR_CLASS, ERROR_MESSAGE, FAILED_AT, ORIGINAL_MESSAGE_ID, REPLAY_COUNT
from processor.errors import InvalidEvent
from processor.events import parse_body

ATTRIBUTE_NAMES = (ERROR_CLASS, ERROR_MESSAGE, FAILED_AT, ORIGINAL_MESSAGE_ID, REPLAY_COUNT)

RETRIES_EXHAUSTED = "RetriesExhausted"  # the class of messages that SQS redrove (no attributes)

MAX_RECEIVE = 10  # SQS ReceiveMessage limit


def attribute(message: Mapping[str, Any], name: str) -> str | None:
    """The string value of message attribute ``name``, or None when the message does not carry it."""
    value = (message.get("MessageAttributes") or {}).get(name) or {}
    text = value.get("StringValue")
    return None if text is None else str(text)


def error_class(message: Mapping[str, Any]) -> str:
    """The handler's ``error-class``, or ``RetriesExhausted`` for a message SQS redrove."""
    return attribute(message, ERROR_CLASS) or RETRIES_EXHAUSTED


def replay_count(message: Mapping[str, Any]) -> int:
    """How many times ``imgproc dlq replay`` has put this message back (0 when never)."""
    try:
        return int(attribute(message, REPLAY_COUNT) or 0)
    except ValueError:
        return 0


def failure_id(message: Mapping[str, Any]) -> str:
    """The id of the failure a message stands for: ``original-message-id`` (kept by the handler and by
    replays across every round trip through the ingest queue), else its own message id."""
    return attribute(message, ORIGINAL_MESSAGE_ID) or str(message["MessageId"])


def sent_timestamp_ms(message: Mapping[str, Any]) -> int | None:
    """``SentTimestamp`` in epoch milliseconds, or None when the message does not carry it."""
    try:
        return int((message.get("Attributes") or {})["SentTimestamp"])
    except (KeyError, TypeError, ValueError):
        return None


def sent_at(message: Mapping[str, Any]) -> datetime | None:
    """When the message was sent (``SentTimestamp``), as an aware UTC datetime.

    For a message the handler dead-lettered, that is when it failed; for one SQS redrove, it is when
    the message was first sent to the ingest queue (a redrive keeps the original timestamp).
    """
    millis = sent_timestamp_ms(message)
    return None if millis is None else datetime.fromtimestamp(millis / 1000, UTC)


def age_seconds(message: Mapping[str, Any], now: datetime | None = None) -> float | None:
    """Seconds since :func:`sent_at` (never negative), or None without a ``SentTimestamp``."""
    sent = sent_at(message)
    if sent is None:
        return None
    return max(0.0, ((now or datetime.now(UTC)) - sent).total_seconds())


def source_keys(body: str) -> list[str]:
    """The S3 keys (URL-decoded) that a message body names; ``[]`` for anything that names none.

    A body the handler can parse gives exactly the keys it would process. Otherwise (a malformed
    record among good ones, a body that is not an S3 event at all, which is how ``InvalidEvent``
    messages look) every key that can be found is returned, and nothing raises.
    """
    try:
        return [ref.key for ref in parse_body(body).refs]
    except InvalidEvent:
        pass
    try:
        doc = json.loads(body)
    except (TypeError, ValueError):
        return []
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        return source_keys(doc["Message"])  # S3 -> SNS -> SQS
    records = doc.get("Records") if isinstance(doc, dict) else None
    keys = []
    for record in records if isinstance(records, list) else []:
        try:
            key = record["s3"]["object"]["key"]
        except (KeyError, TypeError):
            continue
        if isinstance(key, str) and key:
            keys.append(unquote_plus(key))
    return keys


def summary(message: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """A JSON-ready description of one dead letter: its class, reason, time and keys.

    ``error_message``, ``failed_at`` and ``original_message_id`` are None on messages SQS redrove.
    """
    sent, age = sent_at(message), age_seconds(message, now)
    return {
        "message_id": message.get("MessageId"),
        "error_class": error_class(message),
        "error_message": attribute(message, ERROR_MESSAGE),
        "failed_at": attribute(message, FAILED_AT),
        "sent_at": None if sent is None else sent.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "age_seconds": None if age is None else round(age, 3),
        "original_message_id": attribute(message, ORIGINAL_MESSAGE_ID),
        "replay_count": replay_count(message),
        "keys": source_keys(str(message.get("Body", ""))),
    }


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter as the operator tools reason about it (the fields of :func:`summary`): the
    failure `imgproc explain` shows for a key, the one `dlq replay --follow` sees come back."""

    message_id: str
    error_class: str  # RetriesExhausted for a message SQS redrove
    error_message: str | None
    failed_at: str | None = None  # None on a message SQS redrove
    sent_at: str | None = None
    replay_count: int = 0
    original_message_id: str | None = None

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> DeadLetter:
        return cls(
            message_id=str(summary["message_id"]),
            error_class=str(summary["error_class"]),
            error_message=summary.get("error_message"),
            failed_at=summary.get("failed_at"),
            sent_at=summary.get("sent_at"),
            replay_count=int(summary.get("replay_count") or 0),
            original_message_id=summary.get("original_message_id"),
        )

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> DeadLetter:
        return cls.from_summary(summary(message))

    @property
    def when(self) -> str:
        """When it failed: ``failed-at``, else (SQS redrove it) when it was sent."""
        return self.failed_at or (self.sent_at or "")[:19] + ("Z" if self.sent_at else "")


def newest_first(messages: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``messages`` ordered by ``SentTimestamp``, newest first; those without one come last."""
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(messages, key=lambda m: sent_at(m) or epoch, reverse=True)


def peek(
    sqs: Any,
    queue_url: str,
    max_messages: int = MAX_RECEIVE,
    *,
    expected: int | None = None,
    wait_seconds: int = 1,
    attempts: int = 3,
) -> list[dict[str, Any]]:
    """Up to ``max_messages`` (at most 10) messages of ``queue_url``, left on the queue and visible.

    Received with ``VisibilityTimeout=0``, so other consumers see them at once and nothing is deleted;
    but every receive still increments the messages' ``ApproximateReceiveCount``, which on a queue
    with a redrive policy would push them towards *its* dead-letter queue. Use it on the DLQ only,
    never on the ingest queue.

    SQS returns a sample of the queue's messages on each receive, so up to ``attempts`` receives are
    made, until ``min(max_messages, expected)`` distinct messages are in hand or a receive brings
    nothing new. ``expected`` is the queue depth when known (0 skips SQS altogether).
    """
    want = max(0, min(max_messages, MAX_RECEIVE, max_messages if expected is None else expected))
    found: dict[str, dict[str, Any]] = {}
    for _ in range(attempts if want else 0):
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=want,
            VisibilityTimeout=0,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["SentTimestamp"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        new = [m for m in batch if m["MessageId"] not in found]
        found.update((m["MessageId"], m) for m in new)
        if not new or len(found) >= want:
            break
    return list(found.values())[:want]
