"""`imgproc status` against the real stack deployed into in-process moto."""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from conftest import REGION, s3_body, s3_record
from moto import mock_aws

from imgproc import cli, status
from processor import dead_letter
from processor.errors import NotAnImage
from processor.events import SqsMessage
from toolkit import dead_letters

# moto's CloudFormation skips the template's policies (imgproc.local_stack applies them for `up`).
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def stack(deployed_stack: dict[str, str]) -> dict[str, str]:
    return deployed_stack  # a stack of its own: some tests delete a queue


def set_clock(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    monkeypatch.setattr(status, "_now", lambda: now)


def run_status(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["status", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def sent_times(sqs: Any, url: str) -> dict[str, datetime]:
    """SentTimestamp of every message on the DLQ, by MessageId (a peek: they stay visible)."""
    return {m["MessageId"]: dead_letters.sent_at(m) for m in dead_letters.peek(sqs, url)}


def test_empty_queues(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_clock(monkeypatch, NOW)

    code, out, err = run_status(capsys)

    assert (code, err) == (0, "")
    assert out == (
        "stack imgproc (us-east-1) at 2026-11-27T12:00:00Z\n"
        "\n"
        "queue        visible  in flight  delayed  oldest\n"
        "ingest             0          0        0  unknown\n"
        "dead-letter        0          0        0  unknown\n"
        "\n"
        "recent failures: none\n"
    )

    code, out, _ = run_status(capsys, "--json")
    assert code == 0
    assert json.loads(out) == {
        "stack": "imgproc",
        "region": "us-east-1",
        "checked_at": "2026-11-27T12:00:00Z",
        "ingest": {
            "name": "imgproc-ingest",
            "url": stack["QueueUrl"],
            "visible": 0,
            "in_flight": 0,
            "delayed": 0,
            "depth": 0,
            "oldest_age_seconds": None,
        },
        "dlq": {
            "name": "imgproc-dlq",
            "url": stack["DeadLetterQueueUrl"],
            "visible": 0,
            "in_flight": 0,
            "delayed": 0,
            "depth": 0,
            "oldest_age_seconds": None,
            "peeked": 0,
        },
        "recent_failures": [],
        "warnings": [],
    }


def test_backlog_and_failures(
    stack: dict[str, str], sqs: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ingest, dlq = stack["QueueUrl"], stack["DeadLetterQueueUrl"]
    for key in ("original/1.jpg", "original/2.jpg", "original/3.jpg"):
        sqs.send_message(QueueUrl=ingest, MessageBody=s3_body(s3_record(key)))
    sqs.receive_message(QueueUrl=ingest, MaxNumberOfMessages=1, VisibilityTimeout=600)  # one in flight
    sqs.send_message(QueueUrl=ingest, MessageBody=s3_body(s3_record("original/4.jpg")), DelaySeconds=60)
    # On the DLQ: first one SQS redrove (the body alone), then one the handler dead-lettered.
    sqs.send_message(QueueUrl=dlq, MessageBody=s3_body(s3_record("original/slow photo.jpg")))
    time.sleep(0.01)  # distinct SentTimestamps
    poison = SqsMessage("orig-7", s3_body(s3_record("original/poison.jpg")), receive_count=1, replay_count=1)
    dead_letter.send(sqs, dlq, poison, NotAnImage("not an image (text/html)"))
    sent = sent_times(sqs, dlq)
    (redriven_id,) = [mid for mid, at in sent.items() if at == min(sent.values())]
    (poison_id,) = set(sent) - {redriven_id}
    (dead,) = [m for m in dead_letters.peek(sqs, dlq) if m["MessageId"] == poison_id]
    failed_at = dead["MessageAttributes"]["failed-at"]["StringValue"]
    now = sent[redriven_id] + timedelta(minutes=2, seconds=5)
    set_clock(monkeypatch, now)
    checked_at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    redriven_at = sent[redriven_id].strftime("%Y-%m-%dT%H:%M:%SZ")

    code, out, err = run_status(capsys)

    assert (code, err) == (0, "")
    header = "  failed at             error class       key                      error message"
    failures = [
        f"  {failed_at}  NotAnImage        original/poison.jpg      not an image (text/html)",
        f"  {redriven_at}  RetriesExhausted  original/slow photo.jpg  -",
    ]
    assert out.splitlines() == [
        f"stack imgproc (us-east-1) at {checked_at}",
        "",
        "queue        visible  in flight  delayed  oldest",
        "ingest             2          1        1  unknown",
        "dead-letter        2          0        0  2m05s",
        "",
        "recent failures (2 of 2 on the DLQ, newest first)",
        header,
        *failures,
    ]

    code, out, _ = run_status(capsys, "--json")
    assert code == 0
    doc = json.loads(out)
    assert {
        k: doc["ingest"][k] for k in ("visible", "in_flight", "delayed", "depth", "oldest_age_seconds")
    } == {
        "visible": 2,
        "in_flight": 1,
        "delayed": 1,
        "depth": 4,
        "oldest_age_seconds": None,
    }
    assert {k: doc["dlq"][k] for k in ("visible", "in_flight", "depth", "oldest_age_seconds", "peeked")} == {
        "visible": 2,
        "in_flight": 0,
        "depth": 2,
        "oldest_age_seconds": 125.0,
        "peeked": 2,
    }
    assert [(f["message_id"], f["error_class"], f["keys"]) for f in doc["recent_failures"]] == [
        (poison_id, "NotAnImage", ["original/poison.jpg"]),
        (redriven_id, "RetriesExhausted", ["original/slow photo.jpg"]),
    ]
    newest, oldest = doc["recent_failures"]
    assert (newest["error_message"], newest["failed_at"]) == ("not an image (text/html)", failed_at)
    assert (newest["original_message_id"], newest["replay_count"]) == ("orig-7", 1)
    assert (oldest["error_message"], oldest["failed_at"], oldest["original_message_id"]) == (None, None, None)
    assert oldest["age_seconds"] == 125.0

    # Nothing was taken off either queue, and the ingest queue was never received from.
    for url, visible in ((ingest, "2"), (dlq, "2")):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        assert attributes["Attributes"]["ApproximateNumberOfMessages"] == visible
    waiting = sqs.receive_message(
        QueueUrl=ingest,
        MaxNumberOfMessages=10,
        VisibilityTimeout=600,
        AttributeNames=["ApproximateReceiveCount"],
    )["Messages"]
    assert [m["Attributes"]["ApproximateReceiveCount"] for m in waiting] == ["1", "1"]


def test_ingest_age_comes_from_cloudwatch(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    set_clock(monkeypatch, now)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)

    def datapoint(queue: str, value: float, ago: timedelta) -> dict[str, Any]:
        return {
            "MetricName": "ApproximateAgeOfOldestMessage",
            "Dimensions": [{"Name": "QueueName", "Value": queue}],
            "Value": value,
            "Unit": "Seconds",
            "Timestamp": now - ago,
        }

    cloudwatch.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            datapoint("imgproc-ingest", 4000.0, timedelta(minutes=9)),  # outside the 5-minute window
            datapoint("imgproc-ingest", 900.0, timedelta(minutes=3)),  # an older reading
            datapoint("imgproc-ingest", 187.0, timedelta(seconds=30)),  # the latest: what status shows
            datapoint("imgproc-dlq", 50000.0, timedelta(seconds=30)),  # another queue
        ],
    )

    code, out, _ = run_status(capsys, "--json")
    assert code == 0
    assert json.loads(out)["ingest"]["oldest_age_seconds"] == 187.0

    code, out, _ = run_status(capsys)
    assert code == 0
    assert out.splitlines()[3] == "ingest             0          0        0  3m07s"


def test_a_big_dlq_is_sampled(
    stack: dict[str, str], sqs: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dlq = stack["DeadLetterQueueUrl"]
    sent: list[str] = []  # MessageIds, oldest first
    for i in range(12):
        body = s3_body(s3_record(f"original/{i:02d}.jpg"), s3_record(f"original/{i:02d}-b.jpg"))
        sent.append(sqs.send_message(QueueUrl=dlq, MessageBody=body)["MessageId"])
        time.sleep(0.002)  # distinct SentTimestamps (milliseconds): "newest first" is then a real order
    oldest = min(sent_times(sqs, dlq).values())
    set_clock(monkeypatch, oldest + timedelta(hours=3, minutes=2))

    code, out, _ = run_status(capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[4].startswith("dead-letter       12          0        0  >=3h02m (10 sampled)")
    assert lines[6] == "recent failures (5 of 12 on the DLQ, newest first)"
    rows = lines[8:]
    assert len(rows) == 5
    assert all(" RetriesExhausted  original/" in row and "-b.jpg)" not in row for row in rows)
    assert all(row.split()[3] == "(+1)" for row in rows)  # two keys per message: the first, then a count

    doc = json.loads(run_status(capsys, "--json")[1])
    assert (doc["dlq"]["depth"], doc["dlq"]["peeked"], len(doc["recent_failures"])) == (12, 10, 5)
    ages = [f["age_seconds"] for f in doc["recent_failures"]]
    assert ages == sorted(set(ages))  # newest first, every age distinct
    # The newest 5 of the 10 peeked (not necessarily of all 12): the 2 messages left out of the sample
    # may be newer, so each row is among the 7 newest sent, and the rows follow the send order backwards.
    positions = [sent.index(f["message_id"]) for f in doc["recent_failures"]]
    assert positions == sorted(positions, reverse=True)
    assert min(positions) >= len(sent) - 7
    assert [f["keys"] for f in doc["recent_failures"]] == [
        [f"original/{i:02d}.jpg", f"original/{i:02d}-b.jpg"] for i in positions
    ]


def test_missing_stack_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        code, out, err = run_status(capsys, "--stack-name", "nope")
    assert (code, out) == (1, "")
    assert err == "imgproc status: stack 'nope' not found; deploy it with `imgproc deploy`\n"


def test_aws_errors_exit_1_without_a_traceback(
    stack: dict[str, str], sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs.delete_queue(QueueUrl=stack["DeadLetterQueueUrl"])

    code, out, err = run_status(capsys)

    assert (code, out) == (1, "")
    assert err.startswith(
        "imgproc status: AWS refused (GetQueueAttributes): AWS.SimpleQueueService.NonExistentQueue: "
    )
    assert "Traceback" not in err


def test_watch_refreshes_until_ctrl_c(
    stack: dict[str, str], sqs: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_clock(monkeypatch, NOW)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 1:
            sqs.send_message(QueueUrl=stack["QueueUrl"], MessageBody="{}")  # arrives between refreshes
        elif len(sleeps) == 2:
            sqs.delete_queue(QueueUrl=stack["DeadLetterQueueUrl"])  # the third refresh fails...
        else:
            raise KeyboardInterrupt  # ...and watching goes on until Ctrl-C

    monkeypatch.setattr(status.time, "sleep", sleep)

    code, out, err = run_status(capsys, "--watch", "2.5", "--json")

    assert code == 0
    assert sleeps == [2.5, 2.5, 2.5]
    assert [json.loads(line)["ingest"]["visible"] for line in out.splitlines()] == [0, 1]
    assert (
        err.count(
            "imgproc status: AWS refused (GetQueueAttributes): AWS.SimpleQueueService.NonExistentQueue: "
        )
        == 1
    )


@pytest.mark.parametrize("bad", ["0", "-1", "soon"])
def test_watch_needs_a_positive_interval(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["status", "--watch", bad])
    assert exit_info.value.code == 2
    assert "--watch" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "unknown"),
        (0, "0s"),
        (59.9, "59s"),
        (60, "1m00s"),
        (3599, "59m59s"),
        (3600, "1h00m"),
        (86399, "23h59m"),
        (86400 * 3 + 3600 * 4 + 59, "3d04h"),
    ],
)
def test_format_age(seconds: float | None, text: str) -> None:
    assert status.format_age(seconds) == text


def test_watch_redraws_the_screen_on_a_terminal(
    stack: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    set_clock(monkeypatch, NOW)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)

    def interrupted(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(status.time, "sleep", interrupted)

    code, out, _ = run_status(capsys, "--watch", "1")

    assert code == 0
    # rich.live redraws the display in place (cursor up, erase line), never clearing the screen.
    assert "\x1b[2J" not in out
    assert "\x1b[1A\x1b[2K" in out
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    assert shown.startswith("stack imgproc (us-east-1) at 2026-11-27T12:00:00Z\n")
    assert re.search(r"^queue +visible +in flight +delayed +oldest *$", shown, re.M)
    assert re.search(r"^ingest +0 +0 +0 +unknown$", shown, re.M)
    assert re.search(r"^dead-letter +0 +0 +0 +unknown$", shown, re.M)
