"""A source whose current version cannot be rendered loses its old renditions before it is dead-lettered.

The renditions of a key must show the source as it is now: when a valid image is overwritten by a
corrupt, foreign or oversized one, the renditions of the old image are stale by definition.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import imagegen
import pytest
from conftest import (
    DEST_BUCKET,
    SOURCE_BUCKET,
    Aws,
    run_batch,
    s3_body,
    s3_record,
    sqs_event,
    sqs_record,
    with_config,
)

from observability import logs
from processor.batch import process_batch
from processor.config import Config
from processor.events import parse_sqs_event

KEY = "original/a.jpg"
RENDITIONS = ["resized/100x100/a.jpg", "resized/300x300/a.jpg"]


def run(aws: Aws, config: Config, message_id: str = "m-1") -> dict[str, Any]:
    return run_batch(aws, config, sqs_record(s3_body(s3_record(KEY)), message_id=message_id))


def dlq_classes(aws: Aws) -> list[str]:
    return [m["MessageAttributes"]["error-class"]["StringValue"] for m in aws.dlq_messages()]


@pytest.fixture
def rendered(aws: Aws, config: Config) -> str:
    """``KEY`` uploaded as a valid photo and rendered; returns its ETag."""
    etag = aws.put_source(KEY, imagegen.photo_jpeg(640, 480))
    assert run(aws, config, "m-0") == {"batchItemFailures": []}
    assert aws.dest_keys() == RENDITIONS
    return etag


@pytest.mark.parametrize(
    ("data", "error_class"),
    [
        (imagegen.photo_jpeg(640, 480)[:700], "CorruptImage"),  # truncated
        (b"", "NotAnImage"),
        (b"<html><body>not a photo</body></html>", "NotAnImage"),
    ],
    ids=["truncated", "empty", "html"],
)
def test_an_unrenderable_overwrite_removes_the_old_renditions_then_dead_letters(
    aws: Aws, config: Config, rendered: str, data: bytes, error_class: str
) -> None:
    aws.put_source(KEY, data)

    assert run(aws, config) == {"batchItemFailures": []}  # acknowledged: it is on the DLQ now

    assert aws.dest_keys() == []
    assert dlq_classes(aws) == [error_class]


def test_an_overwrite_over_max_source_bytes_removes_the_renditions_without_a_download(
    aws: Aws, config: Config, rendered: str
) -> None:
    aws.put_source(KEY, imagegen.photo_jpeg(640, 480) + b"\0" * 5000)
    aws.calls.clear()

    assert run(aws, with_config(config, max_source_bytes=4000)) == {"batchItemFailures": []}

    assert aws.dest_keys() == []
    assert dlq_classes(aws) == ["ImageTooLarge"]
    assert aws.calls["s3.GetObject"] == 0


def test_when_the_delete_fails_the_record_is_retried_not_dead_lettered(
    aws: Aws, config: Config, rendered: str
) -> None:
    aws.put_source(KEY, b"not an image")

    def refuse(**_: Any) -> None:
        raise botocore.exceptions.ClientError(
            {
                "Error": {"Code": "InternalError", "Message": "injected"},
                "ResponseMetadata": {"HTTPStatusCode": 500},
            },
            "DeleteObjects",
        )

    aws.s3.meta.events.register("before-call.s3.DeleteObjects", refuse)
    assert run(aws, config) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert aws.dest_keys() == RENDITIONS  # nothing dead-lettered while stale renditions remain
    assert aws.dlq_messages() == []

    aws.s3.meta.events.unregister("before-call.s3.DeleteObjects", refuse)
    assert run(aws, config) == {"batchItemFailures": []}  # SQS's retry
    assert aws.dest_keys() == []
    assert dlq_classes(aws) == ["NotAnImage"]


def test_a_valid_upload_racing_the_delete_is_rendered_by_the_retry(
    aws: Aws, config: Config, rendered: str
) -> None:
    aws.put_source(KEY, b"not an image")
    racing = imagegen.photo_jpeg(320, 240)
    fired: list[str] = []

    def upload_meanwhile(**_: Any) -> None:  # another worker renders a new valid version right now
        if not fired:
            fired.append(aws.put_source(KEY, racing))

    aws.s3.meta.events.register("before-call.s3.DeleteObjects", upload_meanwhile)

    assert run(aws, config) == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}  # SourceChanged
    assert aws.dlq_messages() == []  # the old version's failure is not what the key is now
    assert run(aws, config) == {"batchItemFailures": []}  # the retry reconciles with the new version
    assert aws.dest_keys() == RENDITIONS
    for key in RENDITIONS:
        head = aws.s3.head_object(Bucket=DEST_BUCKET, Key=key)
        assert head["Metadata"]["source-etag"] == fired[0]


def test_a_later_valid_upload_renders_as_usual(aws: Aws, config: Config, rendered: str) -> None:
    aws.put_source(KEY, b"not an image")
    assert run(aws, config) == {"batchItemFailures": []}
    etag = aws.put_source(KEY, imagegen.photo_jpeg(800, 600))

    assert run(aws, config, "m-2") == {"batchItemFailures": []}

    assert aws.dest_keys() == RENDITIONS
    assert {aws.s3.head_object(Bucket=DEST_BUCKET, Key=k)["Metadata"]["source-etag"] for k in RENDITIONS} == {
        etag
    }


def test_renditions_of_both_auto_candidates_are_removed(aws: Aws, config: Config) -> None:
    """A ``.gif`` source's rendition may be JPEG or PNG: whichever exists goes."""
    key = "original/anim.gif"
    aws.put_source(key, imagegen.encode(imagegen.photo(200, 100), "GIF"))
    event = sqs_event(sqs_record(s3_body(s3_record(key)), message_id="m-0"))
    batch = parse_sqs_event(event)
    log = logs.get_logger("test")
    process_batch(batch, config=config, s3=aws.s3, sqs=aws.sqs, remaining_ms=lambda: 900_000, log=log)
    assert len(aws.dest_keys()) == 2
    aws.s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=b"GIF89a truncated")

    process_batch(batch, config=config, s3=aws.s3, sqs=aws.sqs, remaining_ms=lambda: 900_000, log=log)

    assert aws.dest_keys() == []
    assert dlq_classes(aws) == ["CorruptImage"]
