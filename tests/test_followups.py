"""The optional catalog (DynamoDB) and notifications (SNS) against moto: what is written, announced,
skipped, retried, and never rendered twice."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.exceptions
import imagegen
import pytest
from conftest import (
    DEST_BUCKET,
    REGION,
    SOURCE_BUCKET,
    Aws,
    s3_body,
    s3_record,
    sqs_event,
    sqs_record,
    with_config,
)
from PIL import Image

from observability import logs
from processor import catalog, handler
from processor.batch import process_batch
from processor.config import Config
from processor.events import parse_sqs_event
from processor.renditions import plan_renditions

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
TABLE = "imgproc-catalog"


@dataclass
class Extras:
    dynamodb: Any
    sns: Any
    sqs: Any
    topic_arn: str
    inbox_url: str  # an SQS queue subscribed to the topic (raw delivery: attributes kept)
    calls: Counter[str]  # "dynamodb.PutItem", "sns.Publish" -> count

    def item(self, key: str) -> dict[str, Any] | None:
        return catalog.get(self.dynamodb, TABLE, key)

    def notifications(self) -> list[tuple[dict[str, Any], dict[str, str]]]:
        """Every message published so far: (JSON body, {attribute: value}), consumed."""
        found = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.inbox_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                attrs = {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}
                found.append((json.loads(message["Body"]), attrs))
                self.sqs.delete_message(QueueUrl=self.inbox_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def extras(aws: Aws) -> Extras:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    sns = boto3.client("sns", region_name=REGION)
    dynamodb.create_table(  # as infra/cloudformation/imgproc.yaml's CatalogTable
        TableName=TABLE,
        KeySchema=[{"AttributeName": "source_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "source_key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    topic_arn = sns.create_topic(Name="imgproc-notifications")["TopicArn"]
    inbox_url = aws.sqs.create_queue(QueueName="subscriber")["QueueUrl"]
    inbox_arn = aws.sqs.get_queue_attributes(QueueUrl=inbox_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=inbox_arn, Attributes={"RawMessageDelivery": "true"}
    )
    calls: Counter[str] = Counter()
    dynamodb.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.update([f"dynamodb.{model.name}"])
    )
    sns.meta.events.register("before-call.sns.*", lambda model, **_: calls.update([f"sns.{model.name}"]))
    return Extras(dynamodb, sns, aws.sqs, topic_arn, inbox_url, calls)


@pytest.fixture
def both(config: Config, extras: Extras) -> Config:
    return with_config(config, catalog_table=TABLE, notify_topic_arn=extras.topic_arn)


def run(aws: Aws, extras: Extras, config: Config, *records: dict[str, Any]) -> dict[str, Any]:
    result = process_batch(
        parse_sqs_event(sqs_event(*records)),
        config=config,
        s3=aws.s3,
        sqs=aws.sqs,
        dynamodb=extras.dynamodb,
        sns=extras.sns,
        remaining_ms=lambda: 900_000,
        log=logs.get_logger("test"),
    )
    return result.response()


def created(key: str, message_id: str | None = None, receive_count: int = 1) -> dict[str, Any]:
    record = sqs_record(s3_body(s3_record(key)), message_id=message_id)
    record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    return record


def removed(key: str) -> dict[str, Any]:
    return sqs_record(s3_body(s3_record(key, "ObjectRemoved:Delete")))


def fail_once(client: Any, operation: str, code: str = "InternalServerError", status: int = 500) -> None:
    """Make the next ``operation`` call of ``client`` fail as AWS would, then behave again."""
    service = client.meta.service_model.service_name

    def fail(**_: Any) -> None:
        client.meta.events.unregister(f"before-call.{service}.{operation}", fail)
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": code, "Message": "injected"}, "ResponseMetadata": {"HTTPStatusCode": status}},
            operation,
        )

    client.meta.events.register(f"before-call.{service}.{operation}", fail)


def last_modified(aws: Aws, key: str) -> int:
    return int(aws.s3.head_object(Bucket=SOURCE_BUCKET, Key=key)["LastModified"].timestamp())


def recipe(config: Config, key: str) -> str:
    return catalog.recipe_digest(
        (p.candidates[0].key, p.candidates[0].digest) for p in plan_renditions(config, key)
    )


def rendition_entries(aws: Aws, *keys: str) -> list[dict[str, Any]]:
    entries = []
    for key in keys:
        data = aws.dest_object(key)["Body"].read()
        width, height = Image.open(io.BytesIO(data)).size
        entries.append({"key": key, "width": width, "height": height, "bytes": len(data), "format": "jpeg"})
    return entries


CAT_KEYS = ("resized/300x300/cat.jpg", "resized/100x100/cat.jpg")


# ---------------------------------------------------------------------------------------------------
# off by default


def test_everything_off_makes_no_catalog_or_notification_call(
    aws: Aws, config: Config, extras: Extras
) -> None:
    aws.put_source("original/cat.jpg", imagegen.photo_jpeg(640, 480))
    aws.put_source("original/bad.jpg", b"not an image")
    assert run(aws, extras, config, created("original/cat.jpg"), created("original/bad.jpg")) == {
        "batchItemFailures": []
    }
    aws.s3.delete_object(Bucket=SOURCE_BUCKET, Key="original/cat.jpg")
    assert run(aws, extras, config, removed("original/cat.jpg")) == {"batchItemFailures": []}
    assert aws.dest_keys() == []  # the removal did its work without any follow-up

    assert extras.calls == {}
    assert extras.notifications() == []


def test_the_runtime_builds_dynamodb_and_sns_clients_only_when_enabled(
    aws: Aws, extras: Extras, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEST_BUCKET", DEST_BUCKET)
    handler.runtime.cache_clear()
    try:
        off = handler.runtime()
        handler.runtime.cache_clear()
        monkeypatch.setenv("CATALOG_TABLE", TABLE)
        monkeypatch.setenv("NOTIFY_TOPIC_ARN", extras.topic_arn)
        on = handler.runtime()
    finally:
        handler.runtime.cache_clear()
    assert (off.dynamodb, off.sns) == (None, None)
    assert on.dynamodb.meta.service_model.service_name == "dynamodb"
    assert on.sns.meta.service_model.service_name == "sns"


def test_the_handler_records_and_announces_with_the_template_variables(
    aws: Aws, extras: Extras, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEST_BUCKET", DEST_BUCKET)
    monkeypatch.setenv("CATALOG_TABLE", TABLE)
    monkeypatch.setenv("NOTIFY_TOPIC_ARN", extras.topic_arn)
    handler.runtime.cache_clear()
    aws.put_source("original/cat.jpg", imagegen.photo_jpeg(640, 480))
    try:
        response = handler.lambda_handler(sqs_event(created("original/cat.jpg")), None)
    finally:
        handler.runtime.cache_clear()
    assert response == {"batchItemFailures": []}
    assert extras.item("original/cat.jpg")["status"] == "rendered"  # type: ignore[index]
    assert [attrs for _, attrs in extras.notifications()] == [{"outcome": "rendered"}]


# ---------------------------------------------------------------------------------------------------
# the catalog


def test_a_rendered_source_gets_its_catalog_item(aws: Aws, config: Config, extras: Extras) -> None:
    etag = aws.put_source("original/cat.jpg", imagegen.photo_jpeg(1200, 800, orientation=6))
    cataloged = with_config(config, catalog_table=TABLE)

    assert run(aws, extras, cataloged, created("original/cat.jpg")) == {"batchItemFailures": []}

    assert extras.calls == {"dynamodb.PutItem": 1}
    item = extras.item("original/cat.jpg")
    assert item is not None
    assert ISO_UTC.match(item.pop("processed_at"))
    assert item == {
        "source_key": "original/cat.jpg",
        "source_bucket": SOURCE_BUCKET,
        "source_etag": etag,
        "source_last_modified": last_modified(aws, "original/cat.jpg"),
        "source_size": aws.s3.head_object(Bucket=SOURCE_BUCKET, Key="original/cat.jpg")["ContentLength"],
        "source_format": "jpeg",
        "source_width": 800,  # EXIF orientation 6: shown upright as 800x1200
        "source_height": 1200,
        "renditions": rendition_entries(aws, *CAT_KEYS),
        "recipe": recipe(cataloged, "original/cat.jpg"),
        "status": "rendered",
    }
    assert [(r["width"], r["height"]) for r in item["renditions"]] == [(200, 300), (67, 100)]


def test_a_redelivered_current_source_costs_one_get_item(aws: Aws, config: Config, extras: Extras) -> None:
    aws.put_source("original/cat.jpg", imagegen.photo_jpeg(640, 480))
    cataloged = with_config(config, catalog_table=TABLE)
    run(aws, extras, cataloged, created("original/cat.jpg"))
    before = extras.item("original/cat.jpg")
    aws.calls.clear()
    extras.calls.clear()

    assert run(aws, extras, cataloged, created("original/cat.jpg", receive_count=2)) == {
        "batchItemFailures": []
    }

    assert aws.calls == {"s3.HeadObject": 3}
    assert extras.calls == {"dynamodb.GetItem": 1}
    assert extras.item("original/cat.jpg") == before


def test_a_newer_record_is_never_overwritten_by_an_older_version(aws: Aws, extras: Extras) -> None:
    base = catalog.dead_letter_item(
        bucket="b", key="k", etag="v2", last_modified=200, size=1, error_class="X", processed_at="t"
    )
    assert catalog.put(extras.dynamodb, TABLE, base).result is catalog.PutResult.WRITTEN

    older = {**base, "source_etag": "v1", "source_last_modified": 100, "error_class": "Y"}
    outcome = catalog.put(extras.dynamodb, TABLE, older)
    assert outcome.result is catalog.PutResult.NEWER
    assert outcome.existing == base
    assert extras.item("k") == base

    again = {**base, "error_class": "Z"}  # the same version again: the latest outcome wins
    assert catalog.put(extras.dynamodb, TABLE, again).result is catalog.PutResult.WRITTEN
    newer = {**base, "source_etag": "v3", "source_last_modified": 300}
    assert catalog.put(extras.dynamodb, TABLE, newer).result is catalog.PutResult.WRITTEN
    assert extras.item("k") == newer

    same_second = {**base, "source_etag": "v4", "source_last_modified": 300}
    outcome = catalog.put(extras.dynamodb, TABLE, same_second)
    assert (outcome.result, outcome.existing) == (catalog.PutResult.TIE, newer)
    assert catalog.put(extras.dynamodb, TABLE, same_second, replacing="v1").result is catalog.PutResult.NEWER
    assert (
        catalog.put(extras.dynamodb, TABLE, same_second, replacing="v3").result is catalog.PutResult.WRITTEN
    )
    assert extras.item("k") == same_second


def test_a_stale_worker_loses_to_the_newer_version_written_meanwhile(
    aws: Aws, config: Config, extras: Extras
) -> None:
    """Worker A renders v1 and verifies it; before its catalog write, v2 is uploaded and fully
    processed by worker B. A's late write must not replace B's record."""
    cataloged = with_config(config, catalog_table=TABLE)
    aws.put_source("original/cat.jpg", imagegen.photo_jpeg(640, 480))
    v2: list[str] = []

    def newer_upload_processed_first(**_: Any) -> None:
        extras.dynamodb.meta.events.unregister("before-call.dynamodb.PutItem", newer_upload_processed_first)
        v2.append(aws.put_source("original/cat.jpg", imagegen.photo_jpeg(480, 640)))
        assert run(aws, extras, cataloged, created("original/cat.jpg")) == {"batchItemFailures": []}

    extras.dynamodb.meta.events.register("before-call.dynamodb.PutItem", newer_upload_processed_first)
    assert run(aws, extras, cataloged, created("original/cat.jpg")) == {"batchItemFailures": []}

    item = extras.item("original/cat.jpg")
    assert item is not None
    assert (item["source_etag"], item["source_width"], item["source_height"]) == (v2[0], 480, 640)
    assert [(r["width"], r["height"]) for r in item["renditions"]] == [(225, 300), (75, 100)]


def test_a_same_second_record_of_a_version_that_is_gone_is_replaced(
    aws: Aws, config: Config, extras: Extras
) -> None:
    cataloged = with_config(config, catalog_table=TABLE)
    etag = aws.put_source("original/cat.jpg", imagegen.photo_jpeg(640, 480))
    lm = last_modified(aws, "original/cat.jpg")
    gone = catalog.dead_letter_item(
        bucket=SOURCE_BUCKET, key="original/cat.jpg", etag="0" * 32, last_modified=lm, size=1,
        error_class="CorruptImage", processed_at="2026-01-01T00:00:00Z",
    )  # fmt: skip
    catalog.put(extras.dynamodb, TABLE, gone)

    assert run(aws, extras, cataloged, created("original/cat.jpg")) == {"batchItemFailures": []}

    item = extras.item("original/cat.jpg")
    assert item is not None
    assert (item["source_etag"], item["status"]) == (etag, "rendered")


def test_a_removed_source_loses_its_item_and_a_re_upload_keeps_its_own(
    aws: Aws, config: Config, extras: Extras
) -> None:
    cataloged = with_config(config, catalog_table=TABLE)
    aws.put_source("original/cat.jpg", imagegen.photo_jpeg(64, 64))
    run(aws, extras, cataloged, created("original/cat.jpg"))
    aws.s3.delete_object(Bucket=SOURCE_BUCKET, Key="original/cat.jpg")

    assert run(aws, extras, cataloged, removed("original/cat.jpg")) == {"batchItemFailures": []}
    assert extras.item("original/cat.jpg") is None
    assert aws.dest_keys() == []

    # A record of a version newer than the moment the source was found missing is kept.
    future = catalog.dead_letter_item(
        bucket=SOURCE_BUCKET, key="original/cat.jpg", etag="e", last_modified=2**40, size=1,
        error_class="X", processed_at="t",
    )  # fmt: skip
    catalog.put(extras.dynamodb, TABLE, future)
    assert run(aws, extras, cataloged, removed("original/cat.jpg")) == {"batchItemFailures": []}
    assert extras.item("original/cat.jpg") == future


def test_a_removed_source_whose_renditions_stay_is_marked_deleted(
    aws: Aws, config: Config, extras: Extras
) -> None:
    keep = with_config(config, catalog_table=TABLE, delete_on_remove=False)
    aws.put_source("original/cat.jpg", imagegen.photo_jpeg(640, 480))
    run(aws, extras, keep, created("original/cat.jpg"))
    rendered = extras.item("original/cat.jpg")
    aws.s3.delete_object(Bucket=SOURCE_BUCKET, Key="original/cat.jpg")

    assert run(aws, extras, keep, removed("original/cat.jpg")) == {"batchItemFailures": []}

    item = extras.item("original/cat.jpg")
    assert rendered is not None
    assert item is not None
    assert item["status"] == "deleted"
    assert {k: v for k, v in item.items() if k not in ("status", "processed_at")} == {
        k: v for k, v in rendered.items() if k not in ("status", "processed_at")
    }
    assert len(aws.dest_keys()) == 2


def test_enabling_the_catalog_later_fills_it_from_redeliveries_without_rendering(
    aws: Aws, config: Config, extras: Extras
) -> None:
    etag = aws.put_source("original/cat.jpg", imagegen.photo_jpeg(1200, 800))
    run(aws, extras, config, created("original/cat.jpg"))  # catalog off
    aws.calls.clear()

    cataloged = with_config(config, catalog_table=TABLE)
    assert run(aws, extras, cataloged, created("original/cat.jpg")) == {"batchItemFailures": []}

    # HEADs, each rendition read back, and the source's header (a ranged GET): never a PUT.
    assert aws.calls == {"s3.HeadObject": 3, "s3.GetObject": 3}
    item = extras.item("original/cat.jpg")
    assert item is not None
    assert (item["source_etag"], item["source_width"], item["source_height"]) == (etag, 1200, 800)
    assert item["renditions"] == rendition_entries(aws, *CAT_KEYS)
    assert extras.notifications() == []


def test_a_dead_lettered_source_is_recorded_with_its_error_class(
    aws: Aws, config: Config, extras: Extras
) -> None:
    etag = aws.put_source("original/bad.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)

    assert run(aws, extras, with_config(config, catalog_table=TABLE), created("original/bad.jpg")) == {
        "batchItemFailures": []
    }

    item = extras.item("original/bad.jpg")
    assert item is not None
    assert ISO_UTC.match(item.pop("processed_at"))
    assert item == {
        "source_key": "original/bad.jpg",
        "source_bucket": SOURCE_BUCKET,
        "source_etag": etag,
        "source_last_modified": last_modified(aws, "original/bad.jpg"),
        "source_size": 2052,
        "renditions": [],
        "status": "dead-lettered",
        "error_class": "CorruptImage",
    }
    assert len(aws.dlq_messages()) == 1


def test_a_rendered_source_overwritten_by_a_corrupt_one_is_recorded_dead_lettered_without_renditions(
    aws: Aws, config: Config, extras: Extras
) -> None:
    catalogued = with_config(config, catalog_table=TABLE)
    aws.put_source("original/a.jpg", imagegen.photo_jpeg(320, 240))
    assert run(aws, extras, catalogued, created("original/a.jpg")) == {"batchItemFailures": []}
    assert extras.item("original/a.jpg")["status"] == "rendered"
    etag = aws.put_source("original/a.jpg", b"GIF89a broken")

    assert run(aws, extras, catalogued, created("original/a.jpg")) == {"batchItemFailures": []}

    item = extras.item("original/a.jpg")
    assert (item["source_etag"], item["status"], item["renditions"]) == (etag, "dead-lettered", [])
    assert aws.dest_keys() == []


# ---------------------------------------------------------------------------------------------------
# notifications


def test_one_notification_per_rendered_source_none_for_skips(
    aws: Aws, config: Config, extras: Extras
) -> None:
    etag = aws.put_source("original/cat.jpg", imagegen.photo_jpeg(1200, 800))
    notifying = with_config(config, notify_topic_arn=extras.topic_arn)

    run(aws, extras, notifying, created("original/cat.jpg"))
    run(aws, extras, notifying, created("original/cat.jpg"))  # a duplicate event: skipped

    ((body, attrs),) = extras.notifications()
    assert attrs == {"outcome": "rendered"}
    assert ISO_UTC.match(body.pop("processed_at"))
    assert body == {
        "source_bucket": SOURCE_BUCKET,
        "source_key": "original/cat.jpg",
        "source_etag": etag,
        "outcome": "rendered",
        "renditions": rendition_entries(aws, *CAT_KEYS),
    }
    assert extras.calls == {"sns.Publish": 1}


def test_a_dead_lettered_source_is_announced_with_its_error_class(
    aws: Aws, config: Config, extras: Extras
) -> None:
    etag = aws.put_source("original/bad.jpg", b"<html>not an image</html>")

    run(aws, extras, with_config(config, notify_topic_arn=extras.topic_arn), created("original/bad.jpg"))

    ((body, attrs),) = extras.notifications()
    assert attrs == {"outcome": "dead-lettered", "error_class": "NotAnImage"}
    assert ISO_UTC.match(body.pop("processed_at"))
    assert body == {
        "source_bucket": SOURCE_BUCKET,
        "source_key": "original/bad.jpg",
        "source_etag": etag,
        "outcome": "dead-lettered",
        "error_class": "NotAnImage",
        "error_message": "not an image in any format we know (starts with b'<html>not an ima')",
    }


def test_subscribers_can_filter_on_the_outcome(aws: Aws, config: Config, extras: Extras) -> None:
    failures_url = aws.sqs.create_queue(QueueName="failures-only")["QueueUrl"]
    failures_arn = aws.sqs.get_queue_attributes(QueueUrl=failures_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    extras.sns.subscribe(
        TopicArn=extras.topic_arn,
        Protocol="sqs",
        Endpoint=failures_arn,
        Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps({"outcome": ["dead-lettered"]})},
    )
    aws.put_source("original/good.jpg", imagegen.photo_jpeg(64, 64))
    aws.put_source("original/bad.jpg", b"nope")

    run(
        aws,
        extras,
        with_config(config, notify_topic_arn=extras.topic_arn),
        created("original/good.jpg"),
        created("original/bad.jpg"),
    )

    received = aws.sqs.receive_message(QueueUrl=failures_url, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["source_key"] for m in received] == ["original/bad.jpg"]
    assert sorted(body["outcome"] for body, _ in extras.notifications()) == ["dead-lettered", "rendered"]


def test_no_dead_letter_notification_without_dlq_url(aws: Aws, config: Config, extras: Extras) -> None:
    aws.put_source("original/bad.jpg", b"nope")
    notifying = with_config(config, notify_topic_arn=extras.topic_arn, catalog_table=TABLE, dlq_url=None)
    assert run(aws, extras, notifying, created("original/bad.jpg", "m-1")) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}]
    }
    assert extras.calls == {}


# ---------------------------------------------------------------------------------------------------
# failures: retried, never rendered twice


def test_a_failed_catalog_write_is_retried_without_a_second_render(
    aws: Aws, both: Config, extras: Extras
) -> None:
    etag = aws.put_source("original/cat.jpg", imagegen.photo_jpeg(640, 480))
    fail_once(extras.dynamodb, "PutItem", "ProvisionedThroughputExceededException", 400)

    assert run(aws, extras, both, created("original/cat.jpg", "m-1")) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}]
    }
    assert len(aws.dest_keys()) == 2
    assert extras.item("original/cat.jpg") is None
    aws.calls.clear()

    assert run(aws, extras, both, created("original/cat.jpg", "m-1", receive_count=2)) == {
        "batchItemFailures": []
    }

    assert aws.calls == {"s3.HeadObject": 3, "s3.GetObject": 3}  # no PutObject: nothing rendered again
    item = extras.item("original/cat.jpg")
    assert item is not None
    assert (item["source_etag"], item["status"]) == (etag, "rendered")
    assert item["notified"] == f"{etag}:{item['recipe']}"
    # The first attempt had published before its catalog write failed: announced again (at least once).
    assert [attrs for _, attrs in extras.notifications()] == [{"outcome": "rendered"}] * 2


def test_a_failed_publish_is_completed_by_the_retry_exactly_once(
    aws: Aws, both: Config, extras: Extras
) -> None:
    etag = aws.put_source("original/cat.jpg", imagegen.photo_jpeg(640, 480))
    fail_once(extras.sns, "Publish")

    assert run(aws, extras, both, created("original/cat.jpg", "m-1")) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}]
    }
    item = extras.item("original/cat.jpg")
    assert item is not None
    assert "notified" not in item  # recorded, not yet announced
    aws.calls.clear()
    extras.calls.clear()

    assert run(aws, extras, both, created("original/cat.jpg", "m-1", receive_count=2)) == {
        "batchItemFailures": []
    }

    assert aws.calls == {"s3.HeadObject": 3}  # the message is built from the catalog item
    assert extras.calls == {"dynamodb.GetItem": 1, "sns.Publish": 1, "dynamodb.UpdateItem": 1}
    ((body, _),) = extras.notifications()
    assert body["renditions"] == item["renditions"]
    assert extras.item("original/cat.jpg") == {**item, "notified": f"{etag}:{item['recipe']}"}

    extras.calls.clear()  # a third delivery (say the response was lost): already announced
    run(aws, extras, both, created("original/cat.jpg", "m-1", receive_count=3))
    assert extras.calls == {"dynamodb.GetItem": 1}


def test_without_the_catalog_a_redelivered_skip_publishes_again(
    aws: Aws, config: Config, extras: Extras
) -> None:
    notifying = with_config(config, notify_topic_arn=extras.topic_arn)
    aws.put_source("original/cat.jpg", imagegen.photo_jpeg(640, 480))
    fail_once(extras.sns, "Publish")

    assert run(aws, extras, notifying, created("original/cat.jpg", "m-1")) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}]
    }
    aws.calls.clear()
    assert run(aws, extras, notifying, created("original/cat.jpg", "m-1", receive_count=2)) == {
        "batchItemFailures": []
    }

    assert aws.calls == {"s3.HeadObject": 3, "s3.GetObject": 2}  # the renditions, read back; no PUT
    ((body, _),) = extras.notifications()
    assert body["renditions"] == rendition_entries(aws, *CAT_KEYS)


def test_a_failing_dead_letter_notification_retries_instead_of_dead_lettering(
    aws: Aws, both: Config, extras: Extras
) -> None:
    aws.put_source("original/bad.jpg", b"nope")
    fail_once(extras.sns, "Publish")

    assert run(aws, extras, both, created("original/bad.jpg", "m-1")) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}]
    }
    assert aws.dlq_messages() == []
    assert extras.item("original/bad.jpg") is None

    assert run(aws, extras, both, created("original/bad.jpg", "m-1", receive_count=2)) == {
        "batchItemFailures": []
    }
    assert len(aws.dlq_messages()) == 1
    assert extras.item("original/bad.jpg")["status"] == "dead-lettered"  # type: ignore[index]
    assert [attrs for _, attrs in extras.notifications()] == [
        {"outcome": "dead-lettered", "error_class": "NotAnImage"}
    ]


def test_side_effect_failures_are_reported_as_their_own_error_class(
    aws: Aws, both: Config, extras: Extras, capsys: pytest.CaptureFixture[str]
) -> None:
    aws.put_source("original/cat.jpg", imagegen.photo_jpeg(64, 64))
    fail_once(extras.dynamodb, "PutItem")
    logs.configure("INFO")
    run(aws, extras, both, created("original/cat.jpg"))
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (failure,) = [line for line in lines if line.get("event") == "record.error"]
    assert (failure["error_class"], failure["outcome"]) == ("CatalogFailed", "retry")
    assert failure["error"].startswith("put failed: ClientError: ")


def test_a_message_replayed_from_the_dlq_counts_as_a_redelivery(
    aws: Aws, both: Config, extras: Extras
) -> None:
    """Retries exhausted by an SNS outage, the message went to the DLQ; the replay (a new message,
    first delivery) must still complete the announcement, once."""
    aws.put_source("original/cat.jpg", imagegen.photo_jpeg(640, 480))
    fail_once(extras.sns, "Publish")
    run(aws, extras, both, created("original/cat.jpg"))
    replayed = sqs_record(s3_body(s3_record("original/cat.jpg")), "m-replay", **{"replay-count": "1"})

    assert run(aws, extras, both, replayed) == {"batchItemFailures": []}
    run(aws, extras, both, created("original/cat.jpg"))  # a plain duplicate event afterwards

    assert [attrs for _, attrs in extras.notifications()] == [{"outcome": "rendered"}]
