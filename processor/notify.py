"""The optional SNS notifications (``NOTIFY_TOPIC_ARN``): one message per source rendered or dead-lettered.

Body (JSON)::

    {"source_bucket": "...", "source_key": "original/a.jpg", "source_etag": "...",
     "outcome": "rendered", "renditions": [{"key": ..., "width": ..., "height": ..., "bytes": ...,
     "format": "jpeg"}, ...], "processed_at": "2026-11-27T00:00:00Z"}

    {..., "outcome": "dead-lettered", "error_class": "CorruptImage", "error_message": "...", ...}

Message attributes, for subscription filter policies: ``outcome`` (String, ``rendered`` or
``dead-lettered``) and, for failures, ``error_class`` (String). Nothing is published for skips,
removals or ignored events. Delivery is at least once: see :mod:`processor.followups` for when a
retry publishes again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from observability.outcomes import Outcome
from processor.catalog import RenditionEntry
from processor.dead_letter import MAX_ERROR_MESSAGE_BYTES, truncate_utf8

OUTCOME = "outcome"  # message attribute names
ERROR_CLASS = "error_class"


def rendered_message(
    *, bucket: str, key: str, etag: str, renditions: Sequence[RenditionEntry], processed_at: str
) -> dict[str, Any]:
    return {
        "source_bucket": bucket,
        "source_key": key,
        "source_etag": etag,
        "outcome": Outcome.RENDERED,
        "renditions": [r.as_dict() for r in renditions],
        "processed_at": processed_at,
    }


def dead_letter_message(
    *, bucket: str, key: str, etag: str | None, error_class: str, error_message: str, processed_at: str
) -> dict[str, Any]:
    return {
        "source_bucket": bucket,
        "source_key": key,
        "source_etag": etag,
        "outcome": Outcome.DEAD_LETTERED,
        "error_class": error_class,
        "error_message": truncate_utf8(error_message, MAX_ERROR_MESSAGE_BYTES),
        "processed_at": processed_at,
    }


def attributes(message: dict[str, Any]) -> dict[str, dict[str, str]]:
    """``outcome`` and, for failures, ``error_class``: what subscribers filter on."""
    attrs = {OUTCOME: {"DataType": "String", "StringValue": message["outcome"]}}
    if message.get("error_class"):
        attrs[ERROR_CLASS] = {"DataType": "String", "StringValue": message["error_class"]}
    return attrs


def publish(sns: Any, topic_arn: str, message: dict[str, Any]) -> str:
    """Publish ``message``; returns SNS's message id. Raises when SNS did not take it."""
    response = sns.publish(
        TopicArn=topic_arn,
        Message=json.dumps(message, separators=(",", ":"), ensure_ascii=False),
        MessageAttributes=attributes(message),
    )
    return str(response["MessageId"])
