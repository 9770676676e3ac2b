from __future__ import annotations

import json

import pytest
from conftest import s3_body, s3_record, sqs_event, sqs_record

from processor.errors import InvalidEvent
from processor.events import ObjectRef, parse_body, parse_sqs_event


def test_keys_are_url_decoded_with_plus_as_space() -> None:
    body = s3_body(s3_record("original/my photo+1 é.jpg"))
    assert "my+photo%2B1+%C3%A9.jpg" in body
    (ref,) = parse_body(body).refs
    assert ref == ObjectRef(
        bucket="imgproc-source",
        key="original/my photo+1 é.jpg",
        event_name="ObjectCreated:Put",
        sequencer="0055AED6DCD90281E5",
    )


def test_moto_style_encoded_slashes_are_decoded() -> None:
    record = s3_record("x")
    record["s3"]["object"]["key"] = "original%2Fa%2Fb.jpg"
    assert parse_body(s3_body(record)).refs[0].key == "original/a/b.jpg"


def test_several_records_per_message() -> None:
    refs = parse_body(
        s3_body(s3_record("original/a.jpg"), s3_record("original/b.jpg", "ObjectRemoved:Delete"))
    ).refs
    assert [(r.key, r.event_name) for r in refs] == [
        ("original/a.jpg", "ObjectCreated:Put"),
        ("original/b.jpg", "ObjectRemoved:Delete"),
    ]


def test_test_event_has_no_records() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b", "RequestId": "r"})
    notification = parse_body(body)
    assert notification.test_event
    assert notification.refs == ()


def test_sns_wrapped_notification_is_unwrapped() -> None:
    inner = s3_body(s3_record("original/a.jpg"))
    body = json.dumps({"Type": "Notification", "MessageId": "m", "Message": inner})
    assert parse_body(body).refs[0].key == "original/a.jpg"


def test_backfill_marker_is_read() -> None:
    record = s3_record("original/a.jpg")
    record["imgprocBackfill"] = True
    assert parse_body(s3_body(record)).refs[0].backfill


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ("{}", "no S3 Records"),
        ('{"Records": []}', "no S3 Records"),
        ('{"Records": [{"eventSource": "aws:dynamodb"}]}', "not an S3 event"),
        ('{"Records": [{"eventSource": "aws:s3", "eventName": "x", "s3": {}}]}', "lacks 'object'"),
        ('{"Records": ["text"]}', "lacks"),
    ],
)
def test_malformed_bodies_are_invalid_events(body: str, reason: str) -> None:
    with pytest.raises(InvalidEvent, match=reason):
        parse_body(body)


def test_sqs_envelope_fields() -> None:
    event = sqs_event(sqs_record("{}", message_id="m-1", **{"replay-count": "2"}))
    (message,) = parse_sqs_event(event)
    assert (message.message_id, message.body, message.receive_count, message.replay_count) == (
        "m-1",
        "{}",
        1,
        2,
    )


def test_not_an_sqs_event() -> None:
    with pytest.raises(ValueError, match="not an SQS event"):
        parse_sqs_event({"detail": {}})
