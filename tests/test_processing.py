"""The batch Lambda against moto's S3 and SQS: what it writes, deletes, skips and dead-letters."""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
from typing import Any
from urllib.parse import quote

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
from PIL import Image, ImageChops

from processor import handler
from processor.config import Config
from processor.spec import Fit, OutputFormat, RenditionSpec, Size

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def run(aws: Aws, config: Config, *records: dict[str, Any], remaining: Any = None) -> dict[str, Any]:
    """Run one batch through the processor and return Lambda's partial batch response."""
    return run_batch(aws, config, *records, remaining=remaining)


def created(key: str, message_id: str | None = None) -> dict[str, Any]:
    return sqs_record(s3_body(s3_record(key)), message_id=message_id)


def removed(key: str, message_id: str | None = None) -> dict[str, Any]:
    return sqs_record(s3_body(s3_record(key, "ObjectRemoved:Delete")), message_id=message_id)


def gif(*, transparent: bool) -> bytes:
    """A two-colour GIF, its right half fully transparent when ``transparent``."""
    image = Image.open(io.BytesIO(imagegen.palette_png(200, 100, transparent=False)))
    return imagegen.encode(image, "GIF", **({"transparency": 1} if transparent else {}))


def image_size(aws: Aws, key: str) -> tuple[int, int]:
    return Image.open(io.BytesIO(aws.dest_object(key)["Body"].read())).size


def test_upload_produces_every_rendition_with_markers(aws: Aws, config: Config) -> None:
    etag = aws.put_source("original/photos/cat.jpg", imagegen.photo_jpeg(1200, 800))

    assert run(aws, config, created("original/photos/cat.jpg")) == {"batchItemFailures": []}

    assert aws.dest_keys() == ["resized/100x100/photos/cat.jpg", "resized/300x300/photos/cat.jpg"]
    assert image_size(aws, "resized/300x300/photos/cat.jpg") == (300, 200)
    assert image_size(aws, "resized/100x100/photos/cat.jpg") == (100, 67)
    head = aws.s3.head_object(Bucket=DEST_BUCKET, Key="resized/300x300/photos/cat.jpg")
    assert head["ContentType"] == "image/jpeg"
    assert head["CacheControl"] == config.cache_control
    meta = head["Metadata"]
    assert set(meta) == {"source-etag", "source-key", "rendition", "processed-at"}
    assert meta["source-etag"] == etag
    assert meta["source-key"] == "original/photos/cat.jpg"
    assert meta["rendition"] == RenditionSpec(Size(300, 300), Fit.CONTAIN, OutputFormat.JPEG, 85).digest()
    assert ISO_UTC.match(meta["processed-at"])


def test_second_delivery_costs_heads_only(aws: Aws, config: Config) -> None:
    aws.put_source("original/a.jpg", imagegen.photo_jpeg(640, 480))
    run(aws, config, created("original/a.jpg"))
    before = {k: aws.dest_object(k)["Metadata"]["processed-at"] for k in aws.dest_keys()}
    aws.calls.clear()

    assert run(aws, config, created("original/a.jpg")) == {"batchItemFailures": []}

    assert aws.calls == {"s3.HeadObject": 3}  # the source and each rendition; no GET, no PUT
    assert {k: aws.dest_object(k)["Metadata"]["processed-at"] for k in aws.dest_keys()} == before


def test_a_changed_recipe_re_renders(aws: Aws, config: Config) -> None:
    aws.put_source("original/a.jpg", imagegen.photo_jpeg(640, 480))
    run(aws, config, created("original/a.jpg"))
    aws.calls.clear()

    run(aws, with_config(config, fit=Fit.COVER), created("original/a.jpg"))

    assert aws.calls["s3.GetObject"] == 1
    assert aws.calls["s3.PutObject"] == 2
    assert image_size(aws, "resized/300x300/a.jpg") == (300, 300)


def test_a_watermark_marks_large_renditions_and_a_new_text_re_renders_only_them(
    aws: Aws, config: Config
) -> None:
    aws.put_source("original/a.png", imagegen.encode(imagegen.photo(900, 900), "PNG"))
    run(aws, config, created("original/a.png"))
    plain = {k: aws.dest_object(k)["Body"].read() for k in aws.dest_keys()}
    aws.calls.clear()

    marked = with_config(config, watermark_text="(c) ACME")
    run(aws, marked, created("original/a.png"))

    # Only the 300x300 recipe includes the mark (100x100 is below WATERMARK_MIN_SIZE=150).
    assert aws.calls["s3.PutObject"] == 1
    assert aws.dest_object("resized/100x100/a.png")["Body"].read() == plain["resized/100x100/a.png"]
    large = Image.open(io.BytesIO(aws.dest_object("resized/300x300/a.png")["Body"].read())).convert("RGB")
    before = Image.open(io.BytesIO(plain["resized/300x300/a.png"])).convert("RGB")
    box = ImageChops.difference(before, large).getbbox()
    assert box is not None
    assert box[0] >= 150  # bottom-right, the default position
    assert box[1] >= 250
    aws.calls.clear()

    run(aws, marked, created("original/a.png"))  # the same text again: HEADs only
    assert aws.calls == {"s3.HeadObject": 3}

    run(aws, with_config(marked, watermark_text="(c) ACME 2026"), created("original/a.png"))
    assert aws.calls["s3.PutObject"] == 1
    assert aws.dest_object("resized/300x300/a.png")["Body"].read() != plain["resized/300x300/a.png"]


def test_only_stale_renditions_are_rendered(aws: Aws, config: Config) -> None:
    aws.put_source("original/a.jpg", imagegen.photo_jpeg(640, 480))
    run(aws, config, created("original/a.jpg"))
    aws.s3.delete_object(Bucket=DEST_BUCKET, Key="resized/100x100/a.jpg")
    aws.calls.clear()

    run(aws, config, created("original/a.jpg"))

    assert aws.calls["s3.PutObject"] == 1
    assert aws.dest_keys() == ["resized/100x100/a.jpg", "resized/300x300/a.jpg"]


def test_a_stale_event_renders_the_current_source(aws: Aws, config: Config) -> None:
    aws.put_source("original/a.jpg", imagegen.photo_jpeg(640, 480))
    current = aws.put_source("original/a.jpg", imagegen.photo_jpeg(480, 640))  # overwritten before delivery

    run(aws, config, created("original/a.jpg"))  # the event of the first upload, late

    assert image_size(aws, "resized/300x300/a.jpg") == (225, 300)
    assert aws.dest_object("resized/300x300/a.jpg")["Metadata"]["source-etag"] == current
    aws.calls.clear()
    run(aws, config, created("original/a.jpg"))  # the second upload's event: nothing left to do
    assert "s3.GetObject" not in aws.calls


def test_create_then_delete_in_order_removes_renditions(aws: Aws, config: Config) -> None:
    aws.put_source("original/a.jpg", imagegen.photo_jpeg(64, 64))
    run(aws, config, created("original/a.jpg"))
    aws.s3.delete_object(Bucket=SOURCE_BUCKET, Key="original/a.jpg")

    assert run(aws, config, removed("original/a.jpg")) == {"batchItemFailures": []}
    assert aws.dest_keys() == []


def test_create_then_delete_delivered_backwards_leaves_nothing(aws: Aws, config: Config) -> None:
    aws.put_source("original/a.jpg", imagegen.photo_jpeg(64, 64))
    aws.s3.delete_object(Bucket=SOURCE_BUCKET, Key="original/a.jpg")

    assert run(aws, config, removed("original/a.jpg")) == {"batchItemFailures": []}
    assert run(aws, config, created("original/a.jpg")) == {"batchItemFailures": []}

    assert aws.dest_keys() == []
    assert aws.dlq_messages() == []


def test_delete_then_create_delivered_backwards_keeps_renditions(aws: Aws, config: Config) -> None:
    aws.put_source("original/a.jpg", imagegen.photo_jpeg(64, 64))
    run(aws, config, created("original/a.jpg"))
    aws.s3.delete_object(Bucket=SOURCE_BUCKET, Key="original/a.jpg")
    etag = aws.put_source("original/a.jpg", imagegen.photo_jpeg(80, 40))  # re-uploaded

    assert run(aws, config, created("original/a.jpg")) == {"batchItemFailures": []}
    # the delete's event arrives last
    assert run(aws, config, removed("original/a.jpg")) == {"batchItemFailures": []}

    assert aws.dest_keys() == ["resized/100x100/a.jpg", "resized/300x300/a.jpg"]
    assert aws.dest_object("resized/100x100/a.jpg")["Metadata"]["source-etag"] == etag
    assert aws.dlq_messages() == []


def test_delete_on_remove_disabled_keeps_renditions(aws: Aws, config: Config) -> None:
    aws.put_source("original/a.jpg", imagegen.photo_jpeg(64, 64))
    run(aws, config, created("original/a.jpg"))
    aws.s3.delete_object(Bucket=SOURCE_BUCKET, Key="original/a.jpg")

    aws.calls.clear()

    response = run(aws, with_config(config, delete_on_remove=False), removed("original/a.jpg"))

    assert response == {"batchItemFailures": []}
    assert aws.dest_keys() == ["resized/100x100/a.jpg", "resized/300x300/a.jpg"]
    assert aws.calls["s3.DeleteObject"] == 0
    assert aws.calls["s3.DeleteObjects"] == 0
    assert aws.dlq_messages() == []


def test_test_event_is_acknowledged_without_s3_calls(aws: Aws, config: Config) -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": SOURCE_BUCKET})
    assert run(aws, config, sqs_record(body)) == {"batchItemFailures": []}
    assert aws.calls == {}
    assert aws.dlq_messages() == []


@pytest.mark.parametrize(
    ("bucket", "key"),
    [(SOURCE_BUCKET, "elsewhere/a.jpg"), (DEST_BUCKET, "resized/100x100/a.jpg")],
)
def test_keys_outside_the_source_prefix_and_our_own_output_are_ignored(
    aws: Aws, config: Config, bucket: str, key: str
) -> None:
    record = sqs_record(s3_body(s3_record(key, bucket=bucket)))
    assert run(aws, config, record) == {"batchItemFailures": []}
    assert aws.calls == {}


def test_another_buckets_event_never_touches_our_renditions(aws: Aws, config: Config) -> None:
    aws.put_source("original/a.jpg", imagegen.photo_jpeg(64, 64))
    guarded = with_config(config, source_bucket=SOURCE_BUCKET)
    run(aws, guarded, created("original/a.jpg"))
    aws.calls.clear()

    # Same key, a bucket that does not exist: its HEAD would answer 404, "source gone".
    stray = sqs_record(s3_body(s3_record("original/a.jpg", "ObjectRemoved:Delete", bucket="not-ours")))
    assert run(aws, guarded, stray) == {"batchItemFailures": []}

    assert aws.calls == {}
    assert aws.dest_keys() == ["resized/100x100/a.jpg", "resized/300x300/a.jpg"]


def test_keys_with_spaces_plus_and_non_ascii(aws: Aws, config: Config) -> None:
    key = "original/été 2026/a+b c.jpg"
    aws.put_source(key, imagegen.photo_jpeg(64, 64))

    assert run(aws, config, created(key)) == {"batchItemFailures": []}

    assert aws.dest_keys() == ["resized/100x100/été 2026/a+b c.jpg", "resized/300x300/été 2026/a+b c.jpg"]
    meta = aws.dest_object("resized/100x100/été 2026/a+b c.jpg")["Metadata"]
    assert meta["source-key"] == quote(key)


def test_transparent_png_keeps_alpha_and_auto_switches_format_with_the_pixels(
    aws: Aws, config: Config
) -> None:
    aws.put_source("original/logo.gif", gif(transparent=False))
    run(aws, config, created("original/logo.gif"))
    assert aws.dest_keys() == ["resized/100x100/logo.gif.jpg", "resized/300x300/logo.gif.jpg"]

    aws.put_source("original/logo.gif", gif(transparent=True))
    run(aws, config, created("original/logo.gif"))

    assert aws.dest_keys() == ["resized/100x100/logo.gif.png", "resized/300x300/logo.gif.png"]
    assert aws.dest_object("resized/100x100/logo.gif.png")["ContentType"] == "image/png"
    aws.calls.clear()
    run(aws, config, created("original/logo.gif"))
    assert set(aws.calls) == {"s3.HeadObject"}


def test_a_transient_fault_fails_only_its_own_message(aws: Aws, config: Config) -> None:
    aws.put_source("original/good.jpg", imagegen.photo_jpeg(64, 64))
    aws.put_source("original/flaky.jpg", imagegen.photo_jpeg(64, 64))

    def slow_down(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == "original/flaky.jpg":
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject"
            )

    aws.s3.meta.events.register("before-parameter-build.s3.GetObject", slow_down)
    response = run(
        aws, config, created("original/good.jpg", "m-good"), created("original/flaky.jpg", "m-flaky")
    )

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-flaky"}]}
    assert aws.dest_keys() == ["resized/100x100/good.jpg", "resized/300x300/good.jpg"]
    assert aws.dlq_messages() == []


def test_source_replaced_during_the_read_is_retried(aws: Aws, config: Config) -> None:
    aws.put_source("original/a.jpg", imagegen.photo_jpeg(64, 64))

    def overwrite_first_time(params: dict[str, Any], **_: Any) -> None:
        aws.s3.meta.events.unregister("before-parameter-build.s3.GetObject", overwrite_first_time)
        aws.put_source(params["Key"], imagegen.photo_jpeg(32, 32))

    aws.s3.meta.events.register("before-parameter-build.s3.GetObject", overwrite_first_time)
    assert run(aws, config, created("original/a.jpg", "m-1")) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}]
    }
    assert aws.dest_keys() == []

    assert run(aws, config, created("original/a.jpg", "m-1")) == {"batchItemFailures": []}
    assert image_size(aws, "resized/100x100/a.jpg") == (32, 32)


def test_source_replaced_during_rendering_is_retried(aws: Aws, config: Config) -> None:
    aws.put_source("original/a.jpg", imagegen.photo_jpeg(64, 64))

    def overwrite_after_first_put(**_: Any) -> None:
        aws.s3.meta.events.unregister("after-call.s3.PutObject", overwrite_after_first_put)
        aws.put_source("original/a.jpg", imagegen.photo_jpeg(32, 32))

    aws.s3.meta.events.register("after-call.s3.PutObject", overwrite_after_first_put)
    assert run(aws, config, created("original/a.jpg", "m-1")) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}]
    }

    run(aws, config, created("original/a.jpg", "m-1"))
    assert image_size(aws, "resized/300x300/a.jpg") == (32, 32)


POISON = {
    "corrupt": (lambda: b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8, "CorruptImage"),
    "truncated": (lambda: imagegen.photo_jpeg(400, 300)[:2000], "CorruptImage"),
    "zero-bytes": (lambda: b"", "NotAnImage"),
    "text": (lambda: b"<html><body>not an image</body></html>", "NotAnImage"),
    "bomb": (lambda: imagegen.declared_size_png(100_000, 100_000), "ImageTooLarge"),
}


@pytest.mark.parametrize("name", sorted(POISON))
def test_poison_inputs_are_dead_lettered_with_their_class(aws: Aws, config: Config, name: str) -> None:
    make, error_class = POISON[name]
    key = f"original/{name}.jpg"
    aws.put_source(key, make())
    record = created(key, "m-poison")

    assert run(aws, config, record) == {"batchItemFailures": []}

    (message,) = aws.dlq_messages()
    assert message["Body"] == record["body"]
    attrs = {k: (v["DataType"], v["StringValue"]) for k, v in message["MessageAttributes"].items()}
    assert attrs["error-class"] == ("String", error_class)
    assert attrs["original-message-id"] == ("String", "m-poison")
    assert attrs["replay-count"] == ("Number", "0")
    assert ISO_UTC.match(attrs["failed-at"][1])
    assert 0 < len(attrs["error-message"][1].encode()) <= 1024
    assert aws.dest_keys() == []


def test_too_large_source_is_rejected_before_download(aws: Aws, config: Config) -> None:
    aws.put_source("original/big.jpg", imagegen.photo_jpeg(64, 64))
    run(aws, with_config(config, max_source_bytes=100), created("original/big.jpg"))

    assert "s3.GetObject" not in aws.calls
    (message,) = aws.dlq_messages()
    assert message["MessageAttributes"]["error-class"]["StringValue"] == "ImageTooLarge"


def test_malformed_body_is_dead_lettered_as_invalid_event(aws: Aws, config: Config) -> None:
    assert run(aws, config, sqs_record("{not json", "m-bad")) == {"batchItemFailures": []}
    (message,) = aws.dlq_messages()
    assert message["Body"] == "{not json"
    assert message["MessageAttributes"]["error-class"]["StringValue"] == "InvalidEvent"


def test_replay_count_is_carried_to_the_dlq(aws: Aws, config: Config) -> None:
    aws.put_source("original/x.jpg", b"nope")
    record = sqs_record(s3_body(s3_record("original/x.jpg")), "m-1", **{"replay-count": "2"})
    run(aws, config, record)
    (message,) = aws.dlq_messages()
    assert message["MessageAttributes"]["replay-count"] == {"StringValue": "2", "DataType": "Number"}


def test_a_replayed_message_keeps_naming_the_first_failure(aws: Aws, config: Config) -> None:
    aws.put_source("original/x.jpg", b"nope")
    attributes = {"replay-count": "1", "original-message-id": "first-id"}
    run(aws, config, sqs_record(s3_body(s3_record("original/x.jpg")), "m-2", **attributes))
    (message,) = aws.dlq_messages()
    assert message["MessageAttributes"]["original-message-id"]["StringValue"] == "first-id"
    assert message["MessageAttributes"]["replay-count"]["StringValue"] == "1"


def test_a_failing_dlq_send_keeps_the_message_in_failures(aws: Aws, config: Config) -> None:
    aws.put_source("original/x.jpg", b"not an image")
    missing_dlq = aws.dlq_url.replace("imgproc-dlq", "no-such-queue")

    response = run(aws, with_config(config, dlq_url=missing_dlq), created("original/x.jpg", "m-1"))

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}


def test_without_a_dlq_permanent_failures_are_left_to_the_sqs_redrive(aws: Aws, config: Config) -> None:
    aws.put_source("original/x.jpg", b"not an image")
    response = run(aws, with_config(config, dlq_url=None), created("original/x.jpg", "m-1"))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}


def test_one_message_with_a_good_and_a_poison_record_is_dead_lettered_whole(aws: Aws, config: Config) -> None:
    aws.put_source("original/good.jpg", imagegen.photo_jpeg(64, 64))
    aws.put_source("original/bad.jpg", b"not an image")
    body = s3_body(s3_record("original/good.jpg"), s3_record("original/bad.jpg"))

    assert run(aws, config, sqs_record(body, "m-1")) == {"batchItemFailures": []}

    assert len(aws.dest_keys()) == 2  # the good record was rendered; a replay of the body just skips it
    (message,) = aws.dlq_messages()
    assert message["Body"] == body


def test_a_transient_failure_outranks_a_permanent_one_in_the_same_message(aws: Aws, config: Config) -> None:
    aws.put_source("original/bad.jpg", b"not an image")
    body = s3_body(
        s3_record("original/bad.jpg"), s3_record("original/missing-bucket.jpg", bucket="no-such-bucket")
    )
    response = run(aws, config, sqs_record(body, "m-1"))
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert aws.dlq_messages() == []


def test_timeout_guard_reports_unstarted_records(aws: Aws, config: Config) -> None:
    for name in "abc":
        aws.put_source(f"original/{name}.jpg", imagegen.photo_jpeg(64, 64))
    clock = iter([60_000, 4_000, 3_000])  # ms left when each record would start
    serial = with_config(config, concurrency=1, deadline_margin_ms=5_000)

    response = run(
        aws,
        serial,
        *(created(f"original/{name}.jpg", f"m-{name}") for name in "abc"),
        remaining=lambda: next(clock),
    )

    assert response == {"batchItemFailures": [{"itemIdentifier": "m-b"}, {"itemIdentifier": "m-c"}]}
    assert aws.dest_keys() == ["resized/100x100/a.jpg", "resized/300x300/a.jpg"]


def test_a_batch_renders_concurrently_and_completely(aws: Aws, config: Config) -> None:
    names = [f"original/{i:02d}.jpg" for i in range(12)]
    for name in names:
        aws.put_source(name, imagegen.photo_jpeg(320, 240))
    # The first two GetObject calls meet at a barrier: they can only both pass it if they are in
    # flight at the same time (a serial loop would block the first until the barrier times out).
    barrier = threading.Barrier(2, timeout=5)
    lock = threading.Lock()
    arrivals: list[int] = []
    met: list[int] = []

    def meet(**_: Any) -> None:
        with lock:
            arrivals.append(len(arrivals))
            mine = arrivals[-1]
        if mine < 2:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
                met.append(mine)

    aws.s3.meta.events.register("before-call.s3.GetObject", meet)

    response = run(aws, with_config(config, concurrency=4), *(created(n) for n in names))

    assert response == {"batchItemFailures": []}
    assert len(aws.dest_keys()) == 2 * len(names)
    assert sorted(met) == [0, 1], "two GetObject calls were never in flight at once"


class _Context:
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def test_lambda_handler_entry_point(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEST_BUCKET", DEST_BUCKET)
    monkeypatch.setenv("DLQ_URL", aws.dlq_url)
    handler.runtime.cache_clear()
    aws.put_source("original/a.png", imagegen.png_rgba(120, 60))
    aws.put_source("original/bad.png", b"\x89PNG\r\n\x1a\n garbage")
    try:
        response = handler.lambda_handler(
            sqs_event(created("original/a.png", "m-ok"), created("original/bad.png", "m-bad")), _Context()
        )
    finally:
        handler.runtime.cache_clear()

    assert response == {"batchItemFailures": []}
    assert aws.dest_keys() == ["resized/100x100/a.png", "resized/300x300/a.png"]
    assert Image.open(io.BytesIO(aws.dest_object("resized/300x300/a.png")["Body"].read())).mode == "RGBA"
    assert [m["MessageAttributes"]["original-message-id"]["StringValue"] for m in aws.dlq_messages()] == [
        "m-bad"
    ]


def test_lambda_handler_fails_cold_start_on_bad_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEST_BUCKET", raising=False)
    handler.runtime.cache_clear()
    with pytest.raises(ValueError, match="DEST_BUCKET is required"):
        handler.lambda_handler(sqs_event(), _Context())
    handler.runtime.cache_clear()
