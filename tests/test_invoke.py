"""`imgproc invoke`: the real handler, configured like the deployed function, on an event file.

The real template is deployed into in-process moto (event source mapping disabled: nothing consumes
the queue), objects are uploaded, and `cli.main(["invoke", …])` runs the handler on event files.
"""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import boto3
import imagegen
import pytest
from conftest import REGION, s3_body, s3_record, sqs_event, sqs_record
from moto import mock_aws

from imgproc import cli
from processor.spec import Fit, OutputFormat, RenditionSpec, Size

# moto's CloudFormation skips the template's policies (imgproc.local_stack applies them for `up`).
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")

EVENTS = Path(__file__).resolve().parent.parent / "events"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def stack(environ: None, emptied_stack: dict[str, str]) -> dict[str, str]:
    return emptied_stack


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `imgproc invoke ARGS`; returns the exit code, stdout and stderr."""
    code = cli.main(["invoke", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_event(tmp_path: Path, event: dict[str, Any], name: str = "event.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(event))
    return str(path)


def created(bucket: str, key: str, message_id: str) -> dict[str, Any]:
    return sqs_record(s3_body(s3_record(key, bucket=bucket)), message_id=message_id)


def dest_objects(outputs: dict[str, str]) -> dict[str, dict[str, str]]:
    """Every rendition in the destination bucket -> its user metadata (the idempotency marker)."""
    s3 = boto3.client("s3", region_name=REGION)
    bucket = outputs["DestinationBucketName"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {key: s3.head_object(Bucket=bucket, Key=key)["Metadata"] for key in sorted(keys)}


def jpeg_digest(size: int) -> str:
    return RenditionSpec(Size(size, size), Fit.CONTAIN, OutputFormat.JPEG, 85).digest()


def dlq_messages(outputs: dict[str, str]) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name=REGION)
    return sqs.receive_message(
        QueueUrl=outputs["DeadLetterQueueUrl"],
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        VisibilityTimeout=300,
    ).get("Messages", [])


def test_upload_is_rendered_with_markers(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    put = s3.put_object(
        Bucket=stack["SourceBucketName"], Key="original/photos/cat.jpg", Body=imagegen.photo_jpeg(1200, 800)
    )
    etag = put["ETag"].strip('"')
    event = sqs_event(created(stack["SourceBucketName"], "original/photos/cat.jpg", "msg-1"))

    code, out, err = invoke(capsys, write_event(tmp_path, event))

    assert code == 0
    assert out == '{"batchItemFailures": []}\n'
    renditions = dest_objects(stack)
    assert sorted(renditions) == ["resized/100x100/photos/cat.jpg", "resized/300x300/photos/cat.jpg"]
    for size in (100, 300):
        marker = renditions[f"resized/{size}x{size}/photos/cat.jpg"]
        assert set(marker) == {"source-etag", "source-key", "rendition", "processed-at"}
        assert marker["source-etag"] == etag
        assert marker["source-key"] == "original/photos/cat.jpg"
        assert marker["rendition"] == jpeg_digest(size)
        assert ISO_UTC.match(marker["processed-at"])
    # The handler's logs and its EMF metrics went to stderr, as JSON lines, the summary line after them.
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    log_lines = [line for line in lines if "_aws" not in line]
    assert [line["event"] for line in log_lines] == ["record.rendered", "batch.done"]
    (metrics,) = [line for line in lines if "_aws" in line]
    assert metrics["RecordsProcessed"] == 1
    assert log_lines[0]["key"] == "original/photos/cat.jpg"
    assert re.search(
        rf"^imgproc invoke: {re.escape(stack['FunctionName'])}: 1 message\(s\), 0 failed, \d+ ms$",
        err,
        re.MULTILINE,
    )


def test_the_shipped_sample_events_run_against_the_stack(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    assert stack["SourceBucketName"] == "imgproc-source-123456789012-us-east-1"  # what the samples name
    etag = s3.put_object(
        Bucket=stack["SourceBucketName"], Key="original/sample.jpg", Body=imagegen.photo_jpeg(640, 480)
    )["ETag"].strip('"')

    assert invoke(capsys, str(EVENTS / "s3-test-event.json"), "--json")[:2] == (
        0,
        '{"batchItemFailures": []}\n',
    )
    assert dest_objects(stack) == {}

    assert invoke(capsys, str(EVENTS / "s3-put.json"), "--json")[:2] == (0, '{"batchItemFailures": []}\n')
    renditions = dest_objects(stack)
    assert sorted(renditions) == ["resized/100x100/sample.jpg", "resized/300x300/sample.jpg"]
    assert {m["source-etag"] for m in renditions.values()} == {etag}

    s3.delete_object(Bucket=stack["SourceBucketName"], Key="original/sample.jpg")
    assert invoke(capsys, str(EVENTS / "s3-delete.json"), "--json")[:2] == (0, '{"batchItemFailures": []}\n')
    assert dest_objects(stack) == {}


def test_a_poison_file_is_dead_lettered_and_acknowledged(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=stack["SourceBucketName"], Key="original/poison.jpg", Body=imagegen.HTML)
    record = created(stack["SourceBucketName"], "original/poison.jpg", "poison-1")

    code, out, _ = invoke(capsys, write_event(tmp_path, sqs_event(record)))

    assert code == 0
    assert out == '{"batchItemFailures": []}\n'
    assert dest_objects(stack) == {}
    function = boto3.client("lambda", region_name=REGION).get_function_configuration(
        FunctionName=stack["FunctionName"]
    )
    assert function["Environment"]["Variables"]["DLQ_URL"] == stack["DeadLetterQueueUrl"]
    (dead,) = dlq_messages(stack)
    assert dead["Body"] == record["body"]
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["error-class"] == "NotAnImage"
    assert attributes["original-message-id"] == "poison-1"
    assert attributes["replay-count"] == "0"
    assert ISO_UTC.match(attributes["failed-at"])


def missing_queue(outputs: dict[str, str]) -> str:
    """A DLQ_URL where no queue exists: a permanent failure can then not be parked, so it must fail."""
    return outputs["DeadLetterQueueUrl"].rsplit("/", 1)[0] + "/imgproc-no-such-dlq"


def test_a_failing_record_is_reported_and_exits_1(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=stack["SourceBucketName"], Key="original/ok.jpg", Body=imagegen.photo_jpeg(400, 300))
    s3.put_object(Bucket=stack["SourceBucketName"], Key="original/poison.jpg", Body=imagegen.HTML)
    event = sqs_event(
        created(stack["SourceBucketName"], "original/ok.jpg", "good-1"),
        created(stack["SourceBucketName"], "original/poison.jpg", "bad-1"),
    )

    # Every delivery of bad-1 fails the same way while its DLQ cannot take it: nothing is ever lost.
    code, out, err = invoke(capsys, write_event(tmp_path, event), "--env", f"DLQ_URL={missing_queue(stack)}")

    assert code == 1
    assert json.loads(out) == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}
    assert sorted(dest_objects(stack)) == ["resized/100x100/ok.jpg", "resized/300x300/ok.jpg"]
    assert dlq_messages(stack) == []
    assert ": 2 message(s), 1 failed, " in err


def test_env_overrides_the_functions_variables(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=stack["SourceBucketName"], Key="original/a.jpg", Body=imagegen.photo_jpeg(400, 300))
    path = write_event(tmp_path, sqs_event(created(stack["SourceBucketName"], "original/a.jpg", "m")))

    code, out, err = invoke(capsys, path, "--env", "SIZES=50x50", "--env", "LOG_LEVEL=WARNING")

    assert (code, out) == (0, '{"batchItemFailures": []}\n')
    assert sorted(dest_objects(stack)) == ["resized/50x50/a.jpg"]
    logged = [line for line in err.splitlines() if line.startswith("{") and '"_aws"' not in line]
    assert not logged  # INFO lines filtered out (the EMF metrics line is not a log line)


def test_a_handler_error_is_reported_like_lambda_does(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_event(tmp_path, sqs_event(created(stack["SourceBucketName"], "original/a.jpg", "m")))

    code, out, err = invoke(capsys, path, "--env", "SIZES=banana")

    assert code == 1
    error = json.loads(out)
    assert error["errorType"] == "ConfigError"
    assert error["errorMessage"].startswith("invalid configuration: SIZES='banana'")
    assert "Traceback (most recent call last)" in err  # the developer's clue, on stderr


def test_response_is_pretty_on_a_terminal_unless_json(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    path = write_event(tmp_path, sqs_event(sqs_record("not an S3 event", message_id="bad-2")))
    dlq = f"DLQ_URL={missing_queue(stack)}"
    pretty = '{\n  "batchItemFailures": [\n    {\n      "itemIdentifier": "bad-2"\n    }\n  ]\n}\n'

    assert invoke(capsys, path, "--env", dlq)[:2] == (1, pretty)
    assert invoke(capsys, path, "--env", dlq, "--json")[:2] == (
        1,
        '{"batchItemFailures": [{"itemIdentifier": "bad-2"}]}\n',
    )


def test_event_from_stdin(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=stack["SourceBucketName"], Key="original/in.jpg", Body=imagegen.photo_jpeg(200, 200))
    event = sqs_event(created(stack["SourceBucketName"], "original/in.jpg", "stdin-1"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(event)))

    assert invoke(capsys, "-")[:2] == (0, '{"batchItemFailures": []}\n')
    assert sorted(dest_objects(stack)) == ["resized/100x100/in.jpg", "resized/300x300/in.jpg"]


def test_missing_stack_exits_1_with_a_clear_message(
    environ: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_event(tmp_path, sqs_event(sqs_record(s3_body(s3_record("original/a.jpg")))))
    with mock_aws():
        code, out, err = invoke(capsys, path, "--stack-name", "nope")
    assert code == 1  # the environment is wrong, not the command line
    assert out == ""
    assert err == "imgproc invoke: stack 'nope' not found; deploy it with `imgproc deploy`\n"


def test_created_event_for_a_missing_key_warns_once_and_still_runs(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = stack["SourceBucketName"]
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=bucket, Key="original/here.jpg", Body=imagegen.photo_jpeg(64, 64))
    event = sqs_event(
        created(bucket, "original/here.jpg", "m-1"), created(bucket, "original/never uploaded.jpg", "m-2")
    )

    code, out, err = invoke(capsys, write_event(tmp_path, event))

    assert (code, out) == (0, '{"batchItemFailures": []}\n')  # the handler reconciled: nothing to do
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == [
        f"imgproc invoke: warning: s3://{bucket}/original/never uploaded.jpg does not exist, so this "
        "ObjectCreated:Put event is stale to the handler (it deletes the renditions); upload the object "
        "first or edit the event's key"
    ]


def test_no_warning_for_removed_keys(
    stack: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = s3_record(
        "original/gone.jpg", bucket=stack["SourceBucketName"], event_name="ObjectRemoved:Delete"
    )
    code, _, err = invoke(capsys, write_event(tmp_path, sqs_event(sqs_record(s3_body(record)))))
    assert code == 0
    assert "warning" not in err


S3_NOTIFICATION = s3_body(s3_record("original/a.jpg"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"Records": [', "is not JSON: Expecting value: line 1 column 14 (char 13)"),
        ("[]", "is not a Lambda SQS event (not an SQS event: no Records list)"),
        (
            S3_NOTIFICATION,
            "is not a Lambda SQS event (no 'messageId'); it is an S3 notification, which the function "
            "gets as the body of an SQS record",
        ),
        ('{"Records": [{"body": "{}"}]}', "is not a Lambda SQS event (no 'messageId'); every record needs"),
    ],
)
def test_unusable_event_files_exit_2(
    content: str, message: str, environ: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "event.json"
    path.write_text(content)
    code, out, err = invoke(capsys, str(path))
    assert code == 2
    assert out == ""
    assert err.startswith(f"imgproc invoke: {path} {message}")
    assert "Traceback" not in err


def test_missing_file_and_bad_env_exit_2(
    environ: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = invoke(capsys, str(tmp_path / "absent.json"))
    assert code == 2
    assert err == f"imgproc invoke: cannot read {tmp_path / 'absent.json'}: No such file or directory\n"

    binary = tmp_path / "photo.jpg"
    binary.write_bytes(imagegen.photo_jpeg(16, 16))
    code, _, err = invoke(capsys, str(binary))
    assert code == 2
    assert err == f"imgproc invoke: {binary} is not UTF-8 text: invalid start byte at byte 0\n"

    path = write_event(tmp_path, sqs_event(sqs_record(s3_body(s3_record("original/a.jpg")))))
    code, _, err = invoke(capsys, path, "--env", "LOG_LEVEL")
    assert code == 2
    assert err == "imgproc invoke: --env 'LOG_LEVEL' is not KEY=VALUE\n"
