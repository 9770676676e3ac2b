"""Reading a queue's attributes (``GetQueueAttributes``): the counts and names every tool shows or
waits on, read here only, so that they are spelled and converted alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

VISIBLE = "ApproximateNumberOfMessages"
IN_FLIGHT = "ApproximateNumberOfMessagesNotVisible"
DELAYED = "ApproximateNumberOfMessagesDelayed"
RETENTION = "MessageRetentionPeriod"
ARN = "QueueArn"


def read_attributes(sqs: Any, url: str, *names: str) -> tuple[dict[str, str], Mapping[str, Any]]:
    """The queue's attributes ``names`` (as SQS spells them, values as strings), and the whole
    response (its HTTP headers date the reading)."""
    response = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names))
    return dict(response.get("Attributes") or {}), response


def count(attributes: Mapping[str, str], name: str) -> int:
    """An approximate count from ``attributes``; 0 when SQS left it out."""
    return int(attributes.get(name, 0))


class QueueCounts(NamedTuple):
    visible: int
    in_flight: int
    delayed: int


def queue_counts(sqs: Any, url: str) -> QueueCounts:
    """Visible, in flight and delayed messages of the queue at ``url``."""
    attributes, _ = read_attributes(sqs, url, VISIBLE, IN_FLIGHT, DELAYED)
    return QueueCounts(count(attributes, VISIBLE), count(attributes, IN_FLIGHT), count(attributes, DELAYED))


def visible_messages(sqs: Any, url: str) -> int:
    """Messages waiting to be received (``ApproximateNumberOfMessages``)."""
    attributes, _ = read_attributes(sqs, url, VISIBLE)
    return count(attributes, VISIBLE)


def queue_arn(sqs: Any, url: str) -> str:
    attributes, _ = read_attributes(sqs, url, ARN)
    return attributes[ARN]
