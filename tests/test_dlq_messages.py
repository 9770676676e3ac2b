"""toolkit.dead_letters: reading dead letters as SQS returns them (moto), and peeking without loss."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import Aws, s3_body, s3_record

from processor import dead_letter
from processor.errors import CorruptImage, NotAnImage
from processor.events import SqsMessage
from toolkit import dead_letters


def receive_all(aws: Aws, url: str) -> list[dict[str, Any]]:
    """Every message on ``url``, received (and hidden for 5 minutes) the way an operator's tool would."""
    return aws.sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=300,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])


def count_receives(aws: Aws) -> Counter[str]:
    calls: Counter[str] = Counter()
    aws.sqs.meta.events.register("before-call.sqs.ReceiveMessage", lambda **_: calls.update(["receive"]))
    return calls


def test_the_attribute_names_are_the_ones_the_handler_writes() -> None:
    sent = dead_letter.attributes(SqsMessage("m", "{}", 1, 0), NotAnImage("x"))
    assert set(dead_letters.ATTRIBUTE_NAMES) == set(sent)


def test_summary_of_a_message_the_handler_dead_lettered(aws: Aws) -> None:
    body = s3_body(s3_record("original/cats/a b+c.jpg"))
    dead_letter.send(
        aws.sqs,
        aws.dlq_url,
        SqsMessage(message_id="orig-1", body=body, receive_count=1, replay_count=2),
        NotAnImage("not an image: looks like text/html"),
    )
    (message,) = dead_letters.peek(aws.sqs, aws.dlq_url)
    sent = datetime.fromtimestamp(int(message["Attributes"]["SentTimestamp"]) / 1000, UTC)
    now = sent + timedelta(seconds=90, milliseconds=250)

    summary = dead_letters.summary(message, now)

    assert summary == {
        "message_id": message["MessageId"],
        "error_class": "NotAnImage",
        "error_message": "not an image: looks like text/html",
        "failed_at": message["MessageAttributes"]["failed-at"]["StringValue"],
        "sent_at": sent.strftime("%Y-%m-%dT%H:%M:%S.") + f"{sent.microsecond // 1000:03d}Z",
        "age_seconds": 90.25,
        "original_message_id": "orig-1",
        "replay_count": 2,
        "keys": ["original/cats/a b+c.jpg"],  # URL-decoded, as the handler reads them
    }
    assert dead_letters.error_class(message) == "NotAnImage"
    assert dead_letters.sent_at(message) == sent
    assert dead_letters.age_seconds(message, now) == 90.25
    assert dead_letters.age_seconds(message, sent - timedelta(seconds=5)) == 0.0  # clock skew: never negative


def test_summary_of_a_message_sqs_redrove(aws: Aws) -> None:
    body = s3_body(s3_record("original/slow.png"), s3_record("original/slower.png"))
    aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody=body)  # a redrive copies the body, nothing else
    (message,) = dead_letters.peek(aws.sqs, aws.dlq_url)

    summary = dead_letters.summary(message)

    assert summary["error_class"] == "RetriesExhausted"
    assert summary["error_message"] is None
    assert summary["failed_at"] is None
    assert summary["original_message_id"] is None
    assert summary["replay_count"] == 0
    assert summary["keys"] == ["original/slow.png", "original/slower.png"]
    assert dead_letters.attribute(message, "error-class") is None


def test_a_message_without_sent_timestamp_has_no_time() -> None:
    message = {"MessageId": "x", "Body": "not json"}
    assert dead_letters.sent_at(message) is None
    assert dead_letters.age_seconds(message) is None
    summary = dead_letters.summary(message)
    assert (summary["sent_at"], summary["age_seconds"], summary["keys"]) == (None, None, [])


def test_a_replay_count_that_is_not_a_number_counts_as_0() -> None:
    message = {"MessageAttributes": {"replay-count": {"DataType": "Number", "StringValue": "many"}}}
    assert dead_letters.replay_count(message) == 0


def record(key: str, **changes: Any) -> dict[str, Any]:
    return {**s3_record(key), **changes}


@pytest.mark.parametrize(
    ("body", "keys"),
    [
        (
            s3_body(s3_record("original/a.jpg"), s3_record("original/b c.jpg")),
            ["original/a.jpg", "original/b c.jpg"],
        ),
        (
            json.dumps({"Records": [{"s3": {"object": {"key": "original/100%25+%2B.jpg"}}}]}),
            ["original/100% +.jpg"],
        ),
        # SNS fan-out wraps the S3 notification in its own envelope.
        (
            json.dumps({"Type": "Notification", "Message": s3_body(s3_record("original/sns.jpg"))}),
            ["original/sns.jpg"],
        ),
        # One malformed record among good ones: the handler rejects the body, the keys are still shown.
        (
            json.dumps({"Records": [record("original/ok.jpg"), {"eventSource": "aws:s3"}]}),
            ["original/ok.jpg"],
        ),
        (
            json.dumps({"Records": [record("original/other.jpg", eventSource="aws:sqs")]}),
            ["original/other.jpg"],
        ),
        (json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}), []),
        (json.dumps({"Records": []}), []),
        (json.dumps({"Records": [{"s3": {"object": {"key": ""}}}, {"s3": None}, "x"]}), []),
        (json.dumps(["original/a.jpg"]), []),
        (json.dumps({"hello": "world"}), []),
        ("not json at all", []),
        ("", []),
    ],
)
def test_source_keys_tolerates_any_body(body: str, keys: list[str]) -> None:
    assert dead_letters.source_keys(body) == keys


def test_newest_first_orders_by_sent_time(aws: Aws) -> None:
    for key in ("original/1.jpg", "original/2.jpg", "original/3.jpg"):
        aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody=s3_body(s3_record(key)))
        time.sleep(0.01)  # distinct SentTimestamps (milliseconds)
    peeked = dead_letters.peek(aws.sqs, aws.dlq_url)
    undated = {"MessageId": "undated", "Body": ""}

    ordered = dead_letters.newest_first([*peeked, undated])

    assert [dead_letters.source_keys(m.get("Body", "")) for m in ordered] == [
        ["original/3.jpg"],
        ["original/2.jpg"],
        ["original/1.jpg"],
        [],
    ]
    assert ordered[-1] is undated


def test_peek_leaves_every_message_visible_on_the_queue(aws: Aws) -> None:
    for i in range(12):
        aws.sqs.send_message(QueueUrl=aws.dlq_url, MessageBody=s3_body(s3_record(f"original/{i}.jpg")))

    peeked = dead_letters.peek(aws.sqs, aws.dlq_url, 10)

    assert len(peeked) == 10
    assert len({m["MessageId"] for m in peeked}) == 10
    assert all(set(m["Attributes"]) == {"SentTimestamp"} for m in peeked)
    attributes = aws.sqs.get_queue_attributes(QueueUrl=aws.dlq_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "12"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    # Nothing was deleted or hidden: a consumer gets them all at once. But each peek counts as a
    # receive, which is why peek() is for the DLQ only.
    received = receive_all(aws, aws.dlq_url) + receive_all(aws, aws.dlq_url)
    assert len(received) == 12
    counts = Counter(m["Attributes"]["ApproximateReceiveCount"] for m in received)
    assert counts == {"2": 10, "1": 2}


def test_peek_receives_only_as_much_as_it_needs(aws: Aws) -> None:
    calls = count_receives(aws)
    assert dead_letters.peek(aws.sqs, aws.dlq_url, expected=0) == []
    assert calls["receive"] == 0  # an empty queue (by its attributes) is not received from at all

    for i in range(3):
        dead_letter.send(aws.sqs, aws.dlq_url, SqsMessage(f"m{i}", "{}", 1, 0), CorruptImage("truncated"))
    assert len(dead_letters.peek(aws.sqs, aws.dlq_url, expected=3)) == 3
    assert calls["receive"] == 1  # had all it expected after one receive

    assert len(dead_letters.peek(aws.sqs, aws.dlq_url, 2)) == 2
    assert calls["receive"] == 2

    # Without a depth to expect, it stops at the first receive that brings nothing new.
    assert len(dead_letters.peek(aws.sqs, aws.dlq_url)) == 3
    assert calls["receive"] == 4


def test_peek_an_empty_queue(aws: Aws) -> None:
    assert dead_letters.peek(aws.sqs, aws.dlq_url, wait_seconds=0) == []
