"""Two source keys whose renditions share a name (docs/design.md, "Rendition keys"): ``original/a``
rendered as PNG and ``original/a.png`` both map to ``resized/WxH/a.png``. Which one a rendition shows
is whichever rendered last (the naming is the contract's); but neither source's removal, nor its
unrenderable upload, may delete the renditions the other one made (the ``source-key`` marker says
whose they are)."""

from __future__ import annotations

from typing import Any

import imagegen
from conftest import DEST_BUCKET, SOURCE_BUCKET, Aws, run_batch, s3_body, s3_record, sqs_record

from processor.config import Config

PNG_SOURCE = "original/a.png"
BARE_SOURCE = "original/a"  # no extension: its PNG rendition is named a.png too
SHARED = ["resized/100x100/a.png", "resized/300x300/a.png"]


def deliver(aws: Aws, config: Config, key: str, event_name: str = "ObjectCreated:Put") -> dict[str, Any]:
    body = s3_body(s3_record(key, event_name=event_name))
    return run_batch(aws, config, sqs_record(body, message_id=f"m-{key}-{event_name}"))


def owners(aws: Aws) -> dict[str, str]:
    """Each rendition's ``source-key`` marker."""
    return {
        key: aws.s3.head_object(Bucket=DEST_BUCKET, Key=key)["Metadata"]["source-key"]
        for key in aws.dest_keys()
    }


def rendered_png_source(aws: Aws, config: Config) -> None:
    aws.put_source(PNG_SOURCE, imagegen.png_rgba(320, 240))
    assert deliver(aws, config, PNG_SOURCE) == {"batchItemFailures": []}
    assert owners(aws) == dict.fromkeys(SHARED, PNG_SOURCE)


def test_removing_one_source_leaves_the_renditions_the_other_made(aws: Aws, config: Config) -> None:
    rendered_png_source(aws, config)

    # original/a never existed (or was deleted): its removal reconciles the names it would use
    assert deliver(aws, config, BARE_SOURCE, "ObjectRemoved:Delete") == {"batchItemFailures": []}

    assert owners(aws) == dict.fromkeys(SHARED, PNG_SOURCE)


def test_an_unrenderable_upload_leaves_the_renditions_the_other_source_made(aws: Aws, config: Config) -> None:
    rendered_png_source(aws, config)
    aws.put_source(BARE_SOURCE, b"<html>not an image</html>")

    assert deliver(aws, config, BARE_SOURCE) == {"batchItemFailures": []}  # dead-lettered

    classes = [m["MessageAttributes"]["error-class"]["StringValue"] for m in aws.dlq_messages()]
    assert classes == ["NotAnImage"]
    assert owners(aws) == dict.fromkeys(SHARED, PNG_SOURCE)


def test_removing_the_source_that_made_them_still_deletes_them(aws: Aws, config: Config) -> None:
    rendered_png_source(aws, config)
    aws.s3.delete_object(Bucket=SOURCE_BUCKET, Key=PNG_SOURCE)

    assert deliver(aws, config, PNG_SOURCE, "ObjectRemoved:Delete") == {"batchItemFailures": []}

    assert aws.dest_keys() == []


def test_a_failed_head_of_a_shared_name_is_retried_never_a_blind_delete(aws: Aws, config: Config) -> None:
    rendered_png_source(aws, config)

    def fail_once(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "HeadObject" and params["Key"] == SHARED[0] and not failed:
            failed.append(params["Key"])
            raise aws.s3.exceptions.ClientError({"Error": {"Code": "SlowDown"}}, "HeadObject")

    failed: list[str] = []
    aws.s3.meta.events.register("before-parameter-build.s3", fail_once)
    assert deliver(aws, config, BARE_SOURCE, "ObjectRemoved:Delete") != {"batchItemFailures": []}  # retried
    assert deliver(aws, config, BARE_SOURCE, "ObjectRemoved:Delete") == {"batchItemFailures": []}

    assert failed == [SHARED[0]]
    assert owners(aws) == dict.fromkeys(SHARED, PNG_SOURCE)


def test_a_format_switch_that_failed_half_way_leaves_no_old_format_behind(aws: Aws, config: Config) -> None:
    """``original/x.gif`` rendered as PNG (transparent), then overwritten with opaque pixels: JPEG now.
    One PUT fails; the retry finds that size's JPEG current and must still delete its old PNG."""
    key = "original/x.gif"
    aws.put_source(key, imagegen.png_rgba(320, 240))
    assert deliver(aws, config, key) == {"batchItemFailures": []}
    assert aws.dest_keys() == ["resized/100x100/x.gif.png", "resized/300x300/x.gif.png"]
    etag = aws.put_source(key, imagegen.photo_jpeg(320, 240))

    def fail_one_put(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "PutObject" and params["Key"].startswith("resized/100x100/") and not failed:
            failed.append(params["Key"])
            raise aws.s3.exceptions.ClientError({"Error": {"Code": "InternalError"}}, "PutObject")

    failed: list[str] = []
    aws.s3.meta.events.register("before-parameter-build.s3", fail_one_put)
    assert deliver(aws, config, key) != {"batchItemFailures": []}  # retried
    assert deliver(aws, config, key) == {"batchItemFailures": []}

    assert aws.dest_keys() == ["resized/100x100/x.gif.jpg", "resized/300x300/x.gif.jpg"]
    etags = {
        k: aws.s3.head_object(Bucket=DEST_BUCKET, Key=k)["Metadata"]["source-etag"] for k in aws.dest_keys()
    }
    assert set(etags.values()) == {etag}
