"""The handler's logs: JSON lines carrying the invocation's and the record's context, and no secrets."""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions
import imagegen
import pytest
from conftest import DEST_BUCKET, Aws, s3_body, s3_record, sqs_event, sqs_record

from processor import handler

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
CONTEXT = {"event", "level", "timestamp", "logger", "request_id", "function_name", "cold_start"}


class Context:
    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def invoke(aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    monkeypatch.setenv("DEST_BUCKET", DEST_BUCKET)
    monkeypatch.setenv("DLQ_URL", aws.dlq_url)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "imgproc-fn")
    handler.runtime.cache_clear()

    def run(*records: dict[str, Any], request_id: str = "req-1") -> list[dict[str, Any]]:
        """The log lines of one invocation (its EMF metric documents are kept in ``emf``)."""
        handler.lambda_handler(sqs_event(*records), Context(request_id))
        out = capsys.readouterr().out
        assert SECRET not in out
        lines = [json.loads(line) for line in out.splitlines() if line.strip()]
        emf[:] = [line for line in lines if "_aws" in line]
        return [line for line in lines if "_aws" not in line]

    emf: list[dict[str, Any]] = []
    run.emf = emf  # type: ignore[attr-defined]

    yield run
    handler.runtime.cache_clear()


def record(key: str, message_id: str) -> dict[str, Any]:
    return sqs_record(s3_body(s3_record(key)), message_id)


def test_every_line_is_json_with_the_invocation_context(aws: Aws, invoke: Any) -> None:
    aws.put_source("original/a.jpg", imagegen.photo_jpeg(64, 64))
    first = invoke(record("original/a.jpg", "m-1"), request_id="req-1")
    second = invoke(record("original/a.jpg", "m-2"), request_id="req-2")

    for line in first + second:
        assert {"event", "level", "timestamp", "logger", "request_id", "function_name", "cold_start"} <= set(
            line
        )
        assert line["function_name"] == "imgproc-fn"
        assert line["timestamp"].endswith("Z")
    assert {line["cold_start"] for line in first} == {True}
    assert {line["cold_start"] for line in second} == {False}
    assert {line["request_id"] for line in second} == {"req-2"}


def test_record_lines_carry_the_record_context_and_outcome(aws: Aws, invoke: Any) -> None:
    etag = aws.put_source("original/a.jpg", imagegen.photo_jpeg(640, 480))
    lines = invoke(record("original/a.jpg", "m-1"))

    (rendered,) = [line for line in lines if line["event"] == "record.rendered"]
    assert rendered["message_id"] == "m-1"
    assert (rendered["bucket"], rendered["key"], rendered["source_etag"]) == (
        "imgproc-source",
        "original/a.jpg",
        etag,
    )
    assert rendered["outcome"] == "rendered"
    assert rendered["renditions"] == 2
    assert set(rendered["timings_ms"]) == {"head", "get", "decode", "render 300x300", "render 100x100", "put"}
    assert max(len(json.dumps(line)) for line in lines) < 2000  # no image bytes anywhere

    (skipped,) = [
        line for line in invoke(record("original/a.jpg", "m-2")) if line["event"].startswith("record.")
    ]
    assert (skipped["event"], skipped["source_etag"], skipped["message_id"]) == (
        "record.skipped",
        etag,
        "m-2",
    )


def test_error_lines_carry_the_class_and_unexpected_ones_a_traceback(aws: Aws, invoke: Any) -> None:
    aws.put_source("original/bad.jpg", b"not an image")
    aws.put_source("original/boom.jpg", imagegen.photo_jpeg(64, 64))

    def explode(params: dict[str, Any], **_: Any) -> None:
        if params.get("Key") == "original/boom.jpg":
            raise KeyError("surprise")

    handler.runtime().s3.meta.events.register("before-parameter-build.s3.GetObject", explode)
    lines = invoke(record("original/bad.jpg", "m-bad"), record("original/boom.jpg", "m-boom"))

    errors = {line["message_id"]: line for line in lines if line["event"] == "record.error"}
    assert errors["m-bad"]["error_class"] == "NotAnImage"
    assert errors["m-bad"]["outcome"] == "dead-lettered"
    assert errors["m-bad"]["key"] == "original/bad.jpg"
    assert "exception" not in errors["m-bad"]
    assert errors["m-boom"]["error_class"] == "UnexpectedError"
    assert errors["m-boom"]["outcome"] == "retry"
    (trace,) = errors["m-boom"]["exception"]
    assert trace["exc_type"] == "KeyError"
    assert trace["frames"]  # a structured traceback, frame by frame


def test_every_dead_lettered_line_names_its_message_bucket_and_key(aws: Aws, invoke: Any) -> None:
    aws.put_source("original/bad.jpg", b"not an image")
    aws.put_source("original/worse.jpg", b"")
    two_records = sqs_record(s3_body(s3_record("original/bad.jpg"), s3_record("original/worse.jpg")), "m-2")

    lines = invoke(two_records, sqs_record("{not json", "m-invalid"))

    dead = [line for line in lines if line["event"] == "record.dead_lettered"]
    keyed = sorted((line["message_id"], line["bucket"], line["key"]) for line in dead if "key" in line)
    assert keyed == [
        ("m-2", "imgproc-source", "original/bad.jpg"),
        ("m-2", "imgproc-source", "original/worse.jpg"),
    ]
    (invalid,) = [line for line in dead if "key" not in line]  # a body with no record: the message alone
    assert (invalid["message_id"], invalid["error_class"]) == ("m-invalid", "InvalidEvent")


def test_log_level_is_honoured(aws: Aws, invoke: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    handler.runtime.cache_clear()
    aws.put_source("original/a.jpg", imagegen.photo_jpeg(64, 64))
    aws.put_source("original/bad.jpg", b"nope")

    lines = invoke(record("original/a.jpg", "m-1"), record("original/bad.jpg", "m-2"))

    assert {line["level"] for line in lines} == {"warning"}
    assert any(line["event"] == "record.dead_lettered" for line in lines)


def test_throttling_is_a_warning_with_its_class(aws: Aws, invoke: Any) -> None:
    aws.put_source("original/a.jpg", imagegen.photo_jpeg(64, 64))

    def slow_down(**_: Any) -> None:
        raise botocore.exceptions.ClientError(
            {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject"
        )

    handler.runtime().s3.meta.events.register("before-parameter-build.s3.GetObject", slow_down)
    lines = invoke(record("original/a.jpg", "m-1"))

    (error,) = [line for line in lines if line["event"] == "record.error"]
    assert (error["level"], error["error_class"], error["outcome"]) == ("warning", "Throttled", "retry")


def test_one_set_of_metrics_per_batch_matching_what_happened(aws: Aws, invoke: Any) -> None:
    aws.put_source("original/a.jpg", imagegen.photo_jpeg(640, 480))
    aws.put_source("original/bad.jpg", b"not an image")
    invoke(record("original/a.jpg", "m-1"), record("original/bad.jpg", "m-2"))

    general, by_class = invoke.emf
    assert general["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ImageProcessor"
    assert general["FunctionName"] == "imgproc-fn"
    counts = {name: general[name] for name in ("RecordsProcessed", "RecordsSkipped", "RecordsFailed")}
    assert counts == {"RecordsProcessed": 1, "RecordsSkipped": 0, "RecordsFailed": 1}
    assert general["RenditionsWritten"] == 2
    assert general["SourceBytes"] == [
        len(aws.s3.get_object(Bucket="imgproc-source", Key="original/a.jpg")["Body"].read())
    ]
    assert len(general["ProcessingTime"]) == 2
    assert (by_class["ErrorClass"], by_class["RecordsFailed"]) == ("NotAnImage", 1)
