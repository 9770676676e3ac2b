"""Send a permanently failing message to the DLQ ourselves, with the reason attached.

SQS's own redrive would get it there too, but only after ``maxReceiveCount`` pointless retries and
without saying why; operators filter and replay by these attributes (``imgproc dlq``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from processor.errors import ProcessingError
from processor.events import ORIGINAL_MESSAGE_ID_ATTRIBUTE as ORIGINAL_MESSAGE_ID
from processor.events import REPLAY_COUNT_ATTRIBUTE as REPLAY_COUNT
from processor.events import SqsMessage
from processor.markers import utc_timestamp

MAX_ERROR_MESSAGE_BYTES = 1024
# Message attribute names (docs/design.md, "Contract: dead-letter messages"); the operators' tools
# read them back.
ERROR_CLASS = "error-class"
ERROR_MESSAGE = "error-message"
FAILED_AT = "failed-at"


def attributes(message: SqsMessage, error: ProcessingError, now: datetime | None = None) -> dict[str, Any]:
    """The dead-letter attributes of docs/design.md; ``replay-count`` and ``original-message-id`` carry over
    what a replayed message brought, so the cap and the chain back to the first failure hold."""

    def text(value: str) -> dict[str, str]:
        return {"DataType": "String", "StringValue": value}

    return {
        ERROR_CLASS: text(error.error_class),
        ERROR_MESSAGE: text(
            truncate_utf8(_sqs_text(str(error)) or error.error_class, MAX_ERROR_MESSAGE_BYTES)
        ),
        FAILED_AT: text(utc_timestamp(now)),
        ORIGINAL_MESSAGE_ID: text(message.original_message_id or message.message_id),
        REPLAY_COUNT: {"DataType": "Number", "StringValue": str(message.replay_count)},
    }


def send(sqs: Any, dlq_url: str, message: SqsMessage, error: ProcessingError) -> None:
    """Put the unchanged body on the DLQ; raises if SQS did not take it (the caller then retries)."""
    sqs.send_message(QueueUrl=dlq_url, MessageBody=message.body, MessageAttributes=attributes(message, error))


def truncate_utf8(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes without splitting a character."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode(errors="ignore") + "..."


def _sqs_text(text: str) -> str:
    """SQS rejects attribute values with control characters other than tab, LF and CR."""
    return "".join(c if c in "\t\n\r" or " " <= c <= "\ud7ff" or c >= "\ue000" else "?" for c in text)
