"""The sample events in events/: real-shaped, consistent, and parsed into what they claim to name."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import LAMBDA_SQS_RECORD_KEYS

from processor.events import ObjectRef, parse_body, parse_sqs_event

EVENTS = Path(__file__).resolve().parent.parent / "events"
SOURCE_BUCKET = "imgproc-source-123456789012-us-east-1"  # what the stack "imgproc" creates in moto
INGEST_ARN = "arn:aws:sqs:us-east-1:123456789012:imgproc-ingest"


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def test_the_folder_holds_exactly_the_documented_samples() -> None:
    assert sorted(p.name for p in EVENTS.iterdir()) == [
        "README.md",
        "s3-delete.json",
        "s3-put.json",
        "s3-test-event.json",
    ]
    readme = (EVENTS / "README.md").read_text()
    for name in ("s3-put.json", "s3-test-event.json", "s3-delete.json", "imgproc invoke"):
        assert name in readme


@pytest.mark.parametrize("name", ["s3-put.json", "s3-test-event.json", "s3-delete.json"])
def test_each_record_is_shaped_like_lambdas_sqs_event(name: str) -> None:
    (record,) = load(name)["Records"]
    assert set(record) == LAMBDA_SQS_RECORD_KEYS
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
    assert set(record["attributes"]) == {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    sent = int(record["attributes"]["SentTimestamp"])
    assert 0 < int(record["attributes"]["ApproximateFirstReceiveTimestamp"]) - sent < 1000
    assert record["messageAttributes"] == {}
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == INGEST_ARN
    assert record["awsRegion"] == "us-east-1"

    (message,) = parse_sqs_event(load(name))
    assert message.message_id == record["messageId"]
    assert message.body == record["body"]
    assert message.receive_count == 1
    assert message.replay_count == 0


def s3_record(name: str) -> dict[str, Any]:
    (record,) = json.loads(load(name)["Records"][0]["body"])["Records"]
    return record


def test_put_names_the_sample_key_in_the_stacks_source_bucket() -> None:
    (message,) = parse_sqs_event(load("s3-put.json"))
    notification = parse_body(message.body)
    assert notification.test_event is False
    assert notification.refs == (
        ObjectRef(
            bucket=SOURCE_BUCKET,
            key="original/sample.jpg",
            event_name="ObjectCreated:Put",
            etag="9b2cf535f27731c974343645a3985328",
            sequencer="00674704CF7A9B5C3E",
        ),
    )
    record = s3_record("s3-put.json")
    assert set(record) == {
        "eventVersion",
        "eventSource",
        "awsRegion",
        "eventTime",
        "eventName",
        "userIdentity",
        "requestParameters",
        "responseElements",
        "s3",
    }
    assert record["eventVersion"] == "2.1"
    assert record["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{SOURCE_BUCKET}"
    assert set(record["s3"]["bucket"]) == {"name", "ownerIdentity", "arn"}
    assert set(record["s3"]) == {"s3SchemaVersion", "configurationId", "bucket", "object"}
    assert record["s3"]["object"]["size"] == 48213


def test_test_event_names_no_object() -> None:
    (message,) = parse_sqs_event(load("s3-test-event.json"))
    notification = parse_body(message.body)
    assert notification.test_event is True
    assert notification.refs == ()
    assert json.loads(message.body)["Bucket"] == SOURCE_BUCKET


def test_delete_names_the_same_key_later_in_s3s_order() -> None:
    (message,) = parse_sqs_event(load("s3-delete.json"))
    assert parse_body(message.body).refs == (
        ObjectRef(
            bucket=SOURCE_BUCKET,
            key="original/sample.jpg",
            event_name="ObjectRemoved:Delete",
            etag=None,
            sequencer="0067470901A2B3C4D5",
        ),
    )
    put, delete = s3_record("s3-put.json"), s3_record("s3-delete.json")
    assert set(delete["s3"]["object"]) == {"key", "sequencer"}  # removals carry no size or ETag
    # S3 orders the events of one key by sequencer (compared as hex strings of equal length).
    assert int(delete["s3"]["object"]["sequencer"], 16) > int(put["s3"]["object"]["sequencer"], 16)
    assert delete["eventTime"] > put["eventTime"]


def _shell_lines(markdown: str) -> list[str]:
    """The lines of the ```sh blocks of a Markdown file, in order."""
    lines, inside = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```sh"
            continue
        if inside:
            lines.append(line.split("  #")[0].strip())  # without the trailing comment
    return lines


@pytest.mark.parametrize("readme", ["README.md", "events/README.md"])
def test_the_readme_flow_uploads_the_key_the_put_sample_names(readme: str) -> None:
    """Followed literally, the README's upload and its `imgproc invoke events/s3-put.json` agree."""
    (ref,) = parse_body(load("s3-put.json")["Records"][0]["body"]).refs
    lines = _shell_lines((EVENTS.parent / readme).read_text())
    uploads = [line.split()[4] for line in lines if line.startswith("aws s3 cp ")]
    assert f"s3://{ref.bucket}/{ref.key}" in uploads
    first_invoke = next(i for i, line in enumerate(lines) if line.startswith("imgproc invoke events/s3-put"))
    first_upload = next(i for i, line in enumerate(lines) if line.startswith("aws s3 cp "))
    assert first_upload < first_invoke


def test_the_readme_activates_the_venv_before_its_first_bare_command() -> None:
    """`imgproc` and `aws` are in .venv/bin: a bare command only works after the activation."""
    lines = _shell_lines((EVENTS.parent / "README.md").read_text())
    activate = lines.index(". .venv/bin/activate")
    bare = [i for i, line in enumerate(lines) if line.startswith(("imgproc ", "aws "))]
    assert bare
    assert activate < min(bare)
