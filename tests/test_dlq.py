"""`imgproc dlq inspect | replay | purge` against the real stack deployed into in-process moto.

Every scenario counts the messages of both queues before and after: nothing may be lost, and nothing
may be left hidden (in flight) on the DLQ once a command is done.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import REGION, hook_sqs, s3_body, s3_record
from dlqkit import Stack, run_dlq, run_json
from moto import mock_aws

from dlq_replayer import census, dlq, moves
from imgproc import cli, poller
from observability import logs
from processor import dead_letter
from processor.batch import process_batch
from processor.config import Config
from processor.errors import CorruptImage, NotAnImage
from processor.events import SqsMessage, parse_sqs_event
from toolkit import dead_letters, durations

# moto's CloudFormation skips the template's policies (imgproc.local_stack applies them for `up`).
pytestmark = [
    pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning"),
    pytest.mark.usefixtures("short_polls"),
]


def sent_times(stack: Stack) -> list[datetime]:
    """The DLQ messages' SentTimestamps, oldest first (read the way `status` peeks)."""
    found = dead_letters.peek(stack.sqs, stack.dlq, expected=10, attempts=10)
    return sorted(t for t in (dead_letters.sent_at(m) for m in found) if t is not None)


def set_clock(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    monkeypatch.setattr(dlq, "_now", lambda: now)


def keys_of(found: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(k for m in found.values() for k in dead_letters.source_keys(m["Body"]))


# ---------------------------------------------------------------------------------------------------
# inspect


def test_inspect_counts_by_class_prefix_age_and_replays_and_consumes_nothing(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.redriven("original/2026/slow.jpg", "original/2026/slow-2.jpg")  # the oldest
    stack.dead_letter("original/2026/a.jpg", NotAnImage("not an image (text/html)"))
    stack.dead_letter("original/2025/b.jpg", NotAnImage("not an image (empty)"), replay_count=1)
    stack.dead_letter("original/c.png", CorruptImage("truncated PNG"), replay_count=3)
    stack.redriven("original/2025/late.jpg")  # the newest
    oldest, *_, newest = sent_times(stack)
    now = newest + timedelta(minutes=2)
    set_clock(monkeypatch, now)
    before = stack.snapshot(stack.dlq)

    code, doc = run_json(capsys, "inspect", "--samples", "1")

    assert code == 0
    assert (doc["scanned"], doc["matched"], doc["released"]) == (5, 5, 5)
    assert (doc["visible_at_start"], doc["in_flight_at_start"], doc["stopped_at_max"]) == (5, 0, False)
    assert doc["by_error_class"] == {"RetriesExhausted": 2, "NotAnImage": 2, "CorruptImage": 1}
    assert doc["by_key_prefix"] == {"original/2026/": 2, "original/2025/": 2, "original/": 1}
    assert doc["by_age"] == {"< 1h": 5}
    assert doc["by_replay_count"] == {"0": 3, "1": 1, "3": 1}
    assert doc["oldest"]["keys"] == ["original/2026/slow.jpg", "original/2026/slow-2.jpg"]
    assert doc["oldest"]["age_seconds"] == round((now - oldest).total_seconds(), 3)
    assert doc["oldest"]["expires_in_seconds"] == 1209600 - doc["oldest"]["age_seconds"]
    assert doc["newest"]["keys"] == ["original/2025/late.jpg"]
    assert doc["newest"]["age_seconds"] == 120.0
    assert {
        c: [(s["keys"], s["error_message"], s["replay_count"]) for s in v] for c, v in doc["samples"].items()
    } == {
        "RetriesExhausted": [(["original/2026/slow.jpg", "original/2026/slow-2.jpg"], None, 0)],
        "NotAnImage": [(["original/2026/a.jpg"], "not an image (text/html)", 0)],
        "CorruptImage": [(["original/c.png"], "truncated PNG", 3)],
    }
    assert doc["warnings"] == []
    # Nothing consumed, nothing left hidden, nothing changed.
    assert stack.counts() == {"ingest": (0, 0), "dlq": (5, 0)}
    assert stack.snapshot(stack.dlq) == before


def test_inspect_human_output(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.redriven("original/2026/slow.jpg")
    stack.dead_letter("original/2026/a.jpg", NotAnImage("not an image (text/html)"), replay_count=1)
    oldest, newest = sent_times(stack)
    set_clock(monkeypatch, oldest + timedelta(hours=2, minutes=5, seconds=30))  # newest: a few ms less

    code, out, err = run_dlq(capsys, "inspect")

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:2] == [
        "DLQ imgproc-dlq: 2 visible, 0 in flight at start",
        "read 2 (2 distinct keys); released 2",
    ]
    assert lines[2] == (
        f"oldest  {oldest:%Y-%m-%dT%H:%M:%S}Z  2h05m ago  original/2026/slow.jpg  (SQS drops it in 13d21h)"
    )
    assert lines[3] == f"newest  {newest:%Y-%m-%dT%H:%M:%S}Z  2h05m ago  original/2026/a.jpg"
    assert lines[4:] == [
        "",
        "error class       messages  keys",
        "RetriesExhausted         1     1",
        "NotAnImage               1     1",
        "",
        "key prefix      messages",
        "original/2026/         2",
        "",
        "age    messages",
        "1h-6h         2",
        "",
        "replay count  messages",
        "0                    1",
        "1                    1",
        "",
        "samples",
        "  error class       key                     replays  error message",
        "  RetriesExhausted  original/2026/slow.jpg        0  -",
        "  NotAnImage        original/2026/a.jpg           1  not an image (text/html)",
    ]
    assert stack.counts() == {"ingest": (0, 0), "dlq": (2, 0)}


def test_inspect_counts_distinct_keys_beside_messages(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same failure twice (a duplicate S3 event, a worker killed after its DLQ send)."""
    stack.dead_letter("original/a.jpg", NotAnImage("x"), original_id="m-1")
    stack.dead_letter("original/a.jpg", NotAnImage("x"), original_id="m-1")
    stack.dead_letter("original/a.jpg", NotAnImage("x"))
    stack.dead_letter("original/b.jpg", NotAnImage("x"))
    stack.redriven("original/a.jpg")

    code, doc = run_json(capsys, "inspect")

    assert code == 0
    assert doc["by_error_class"] == {"NotAnImage": 4, "RetriesExhausted": 1}
    assert doc["distinct_keys_by_error_class"] == {"NotAnImage": 2, "RetriesExhausted": 1}
    assert doc["distinct_keys"] == 2


def test_inspect_with_filters_and_max(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(4):
        stack.dead_letter(f"original/x/{i}.jpg", NotAnImage("nope"))
    for i in range(3):
        stack.redriven(f"original/y/{i}.jpg")

    code, doc = run_json(capsys, "inspect", "--error-class", "notanimage")  # case-insensitive
    assert code == 0
    assert (doc["scanned"], doc["matched"], doc["by_error_class"]) == (7, 4, {"NotAnImage": 4})
    assert doc["filters"]["error_classes"] == ["notanimage"]

    code, doc = run_json(capsys, "inspect", "--max", "3")
    assert code == 0
    assert (doc["scanned"], doc["matched"], doc["stopped_at_max"]) == (3, 3, True)
    assert stack.counts() == {"ingest": (0, 0), "dlq": (7, 0)}


def test_a_failed_release_is_reported_and_the_message_comes_back(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.redriven("original/a.jpg")
    stack.redriven("original/b.jpg")

    def break_first(params: dict[str, Any], **_: Any) -> None:
        params["Entries"][0]["ReceiptHandle"] = "not-a-handle"

    hook_sqs(monkeypatch, "provide-client-params.sqs.ChangeMessageVisibilityBatch", break_first)

    code, doc = run_json(capsys, "inspect", "--visibility", "1")

    assert (code, doc["scanned"], doc["released"]) == (0, 2, 1)
    assert doc["warnings"] == ["1 message(s) could not be released now; SQS shows them again within 1 s"]
    assert stack.counts() == {"ingest": (0, 0), "dlq": (1, 1)}
    time.sleep(1.1)
    assert stack.counts() == {"ingest": (0, 0), "dlq": (2, 0)}


def test_inspect_an_empty_dlq(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_dlq(capsys, "inspect")
    assert code == 0
    assert out == "DLQ imgproc-dlq: 0 visible, 0 in flight at start\nread 0; released 0\n"


# ---------------------------------------------------------------------------------------------------
# replay


def test_replay_keeps_body_and_attributes_but_the_last_failure_and_increments_replay_count(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.dead_letter("original/a.jpg", NotAnImage("not an image"), replay_count=1, original_id="orig-a")
    stack.redriven(
        "original/b.jpg",
        **{
            "trace-id": {"DataType": "String", "StringValue": "t-123"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
            "priority": {"DataType": "Number.int", "StringValue": "7"},
        },
    )
    on_dlq = stack.snapshot(stack.dlq)
    assert stack.counts() == {"ingest": (0, 0), "dlq": (2, 0)}

    code, doc = run_json(capsys, "replay")

    assert code == 0
    assert (doc["scanned"], doc["matched"], doc["moved"], doc["ok"]) == (2, 2, 2, True)
    assert doc["moved_by_error_class"] == {"NotAnImage": 1, "RetriesExhausted": 1}
    assert stack.counts() == {"ingest": (2, 0), "dlq": (0, 0)}
    replayed = {m["Body"]: m["MessageAttributes"] for m in stack.snapshot(stack.ingest).values()}
    assert set(replayed) == {m["Body"] for m in on_dlq.values()}
    for dlq_id, before in on_dlq.items():
        after = replayed[before["Body"]]
        previous = int(before["MessageAttributes"].get("replay-count", {}).get("StringValue", 0))
        assert after.pop("replay-count") == {"DataType": "Number", "StringValue": str(previous + 1)}
        # Every replayed message names its first failure: the one SQS redrove without attributes, itself.
        first = before["MessageAttributes"].get("original-message-id", {}).get("StringValue", dlq_id)
        assert after.pop("original-message-id") == {"DataType": "String", "StringValue": first}
        # The replayed failure's own description is dropped; every other attribute is kept.
        kept = {
            name: value
            for name, value in before["MessageAttributes"].items()
            if name
            not in ("replay-count", "original-message-id", "error-class", "error-message", "failed-at")
        }
        assert after == kept
    handler_written = replayed[s3_body(s3_record("original/a.jpg"))]
    assert "error-class" not in handler_written  # if SQS redrives it later, it reads RetriesExhausted


def test_replay_filters_by_error_class_and_key_prefix(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.dead_letter("original/a/1.jpg", NotAnImage("x"))
    stack.dead_letter("original/b/2.jpg", CorruptImage("x"))
    stack.redriven("original/a/3.jpg")
    stack.redriven("original/b/4.jpg")
    stack.redriven("original/a/5.jpg", "original/b/6.jpg")  # one of its keys matches

    code, doc = run_json(capsys, "replay", "--error-class", "RetriesExhausted", "--key-prefix", "original/a/")

    assert code == 0
    assert (doc["scanned"], doc["matched"], doc["skipped"], doc["moved"]) == (5, 2, 3, 2)
    assert stack.counts() == {"ingest": (2, 0), "dlq": (3, 0)}  # the rest released at once
    assert keys_of(stack.snapshot(stack.ingest)) == [
        "original/a/3.jpg",
        "original/a/5.jpg",
        "original/b/6.jpg",
    ]
    assert keys_of(stack.snapshot(stack.dlq)) == ["original/a/1.jpg", "original/b/2.jpg", "original/b/4.jpg"]

    code, doc = run_json(capsys, "replay", "--error-class", "NotAnImage,CorruptImage")
    assert (code, doc["matched"], doc["moved"]) == (0, 2, 2)
    assert stack.counts() == {"ingest": (4, 0), "dlq": (1, 0)}


def test_the_key_filter_matches_exact_keys_only_in_inspect_replay_and_purge(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = "original/walk/a b+c é.jpg"  # a space, a plus and a non-ASCII letter, URL-encoded in bodies
    stack.dead_letter("original/walk/corrupt.jpg", CorruptImage("x"))
    stack.dead_letter("original/walk/corrupt.jpg.old", CorruptImage("x"))  # the prefix would take it
    stack.dead_letter(odd, NotAnImage("x"))
    stack.dead_letter("original/walk/a b+c é.jpg.bak", NotAnImage("x"))
    stack.redriven("original/walk/other.jpg", "original/walk/corrupt.jpg")  # one of its keys matches

    code, doc = run_json(capsys, "inspect", "--key", "original/walk/corrupt.jpg")
    assert (code, doc["matched"], doc["filters"]["keys"]) == (0, 2, ["original/walk/corrupt.jpg"])
    code, doc = run_json(capsys, "replay", "--key", odd, "--key", "original/walk/nothing.jpg", "--dry-run")
    assert (code, doc["matched"], [s["keys"] for s in doc["samples"]]) == (0, 1, [[odd]])
    # Combined with the other filters as AND: the class must match too.
    code, doc = run_json(
        capsys, "replay", "--key", "original/walk/corrupt.jpg", "--error-class", "CorruptImage"
    )
    assert (code, doc["matched"], doc["moved"]) == (0, 1, 1)
    assert keys_of(stack.snapshot(stack.ingest)) == ["original/walk/corrupt.jpg"]

    code, doc = run_json(
        capsys, "purge", "--key", odd, "--key-prefix", "original/walk/", "-y", "--no-archive"
    )
    assert (code, doc["matched"]) == (0, 1)
    assert keys_of(stack.snapshot(stack.dlq)) == [
        "original/walk/a b+c é.jpg.bak",
        "original/walk/corrupt.jpg",
        "original/walk/corrupt.jpg.old",
        "original/walk/other.jpg",
    ]
    assert stack.counts() == {"ingest": (1, 0), "dlq": (3, 0)}

    for action in ("inspect", "replay", "purge"):
        with pytest.raises(SystemExit):
            run_dlq(capsys, action, "--help")
        out = " ".join(capsys.readouterr().out.split())
        assert "--key KEY only messages naming exactly this S3 key" in out


def test_replay_by_age(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.redriven("original/old.jpg")
    stack.redriven("original/new.jpg")
    old, new = sent_times(stack)
    # One hour after a moment between the two sends: "old" is over an hour old, "new" is not.
    set_clock(monkeypatch, old + (new - old) / 2 + timedelta(hours=1))

    code, doc = run_json(capsys, "replay", "--older-than", "1h", "--dry-run")
    assert (code, doc["matched"], [s["keys"] for s in doc["samples"]]) == (0, 1, [["original/old.jpg"]])

    code, doc = run_json(capsys, "replay", "--newer-than", "60m")
    assert (code, doc["matched"], doc["moved"]) == (0, 1, 1)
    assert keys_of(stack.snapshot(stack.ingest)) == ["original/new.jpg"]
    assert keys_of(stack.snapshot(stack.dlq)) == ["original/old.jpg"]
    assert stack.counts() == {"ingest": (1, 0), "dlq": (1, 0)}


def test_dry_run_changes_nothing(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    stack.dead_letter("original/a.jpg", NotAnImage("x"))
    stack.dead_letter("original/b.jpg", NotAnImage("x"), replay_count=3)
    stack.redriven("original/c.jpg")
    before = stack.snapshot(stack.dlq)

    code, out, _ = run_dlq(capsys, "replay", "--dry-run")

    assert code == 1  # a real run would leave the capped message behind
    lines = out.splitlines()
    assert lines[0] == "replay imgproc-dlq -> imgproc-ingest; filters: none"
    assert lines[1] == "scanned 3: 3 matched, 0 did not (released)"
    assert lines[2] == (
        "dry run: would have replayed 2 (NotAnImage 1, RetriesExhausted 1), capped 1 "
        "(replay-count >= 3; --force replays them)"
    )
    assert "nothing was changed" in lines
    assert any(line.startswith("capped, still on the DLQ") for line in lines)
    assert stack.snapshot(stack.dlq) == before
    assert stack.counts() == {"ingest": (0, 0), "dlq": (3, 0)}

    code, doc = run_json(capsys, "replay", "--dry-run", "--force")
    assert (code, doc["moved"], doc["capped"]["count"], len(doc["samples"])) == (0, 3, 0, 3)
    assert stack.snapshot(stack.dlq) == before


def test_a_refused_entry_stays_on_the_dlq(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "refused", "c"):
        stack.dead_letter(f"original/{name}.jpg", NotAnImage("x"))

    def refuse_one(params: dict[str, Any], **_: Any) -> None:
        for entry in params["Entries"]:
            if "refused.jpg" in entry["MessageBody"]:
                entry["DelaySeconds"] = 1000  # moto refuses this one entry (sender fault)

    hook_sqs(monkeypatch, "provide-client-params.sqs.SendMessageBatch", refuse_one)

    code, doc = run_json(capsys, "replay")

    assert code == 1
    assert (doc["matched"], doc["moved"], doc["refused"]["count"], doc["ok"]) == (3, 2, 1, False)
    (refused,) = doc["refused"]["messages"]
    assert refused["keys"] == ["original/refused.jpg"]
    assert refused["reason"].startswith(
        "InvalidParameterValue: Value 1000 for parameter DelaySeconds is invalid"
    )
    assert stack.counts() == {"ingest": (2, 0), "dlq": (1, 0)}
    assert keys_of(stack.snapshot(stack.dlq)) == ["original/refused.jpg"]
    (left,) = stack.snapshot(stack.dlq).values()
    assert left["MessageAttributes"]["replay-count"]["StringValue"] == "0"  # unchanged: it did not move


def test_replay_cap_holds_across_rounds_through_the_handler(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    source = stack.outputs["SourceBucketName"]
    s3.put_object(Bucket=source, Key="original/poison.jpg", Body=b"<html>not an image</html>")
    body = s3_body(s3_record("original/poison.jpg", bucket=source))
    dead_letter.send(stack.sqs, stack.dlq, SqsMessage("m0", body, 1, 0), NotAnImage("not an image"))
    config = Config(dest_bucket=stack.outputs["DestinationBucketName"], dlq_url=stack.dlq, concurrency=1)

    def handler_round() -> None:
        """The poller and the handler take the replayed message and dead-letter it again."""
        (message,) = stack.sqs.receive_message(
            QueueUrl=stack.ingest, MessageAttributeNames=["All"], AttributeNames=["All"], VisibilityTimeout=30
        )["Messages"]
        event = poller.lambda_event([message], stack.outputs["QueueArn"], REGION)
        result = process_batch(
            parse_sqs_event(event),
            config=config,
            s3=s3,
            sqs=stack.sqs,
            remaining_ms=lambda: 60_000,
            log=logs.get_logger("test"),
        )
        assert result.response() == {"batchItemFailures": []}
        stack.sqs.delete_message(QueueUrl=stack.ingest, ReceiptHandle=message["ReceiptHandle"])
        capsys.readouterr()  # the handler's log lines

    for expected in (1, 2, 3):
        code, doc = run_json(capsys, "replay", "--max-replays", "3")
        assert (code, doc["moved"]) == (0, 1)
        handler_round()
        (back,) = stack.snapshot(stack.dlq).values()
        assert back["MessageAttributes"]["replay-count"]["StringValue"] == str(expected)
        assert stack.counts() == {"ingest": (0, 0), "dlq": (1, 0)}

    code, doc = run_json(capsys, "replay", "--max-replays", "3")
    assert (code, doc["moved"], doc["capped"]["count"]) == (1, 0, 1)
    assert doc["capped"]["messages"][0]["reason"] == "replay-count 3 >= --max-replays 3"
    assert stack.counts() == {"ingest": (0, 0), "dlq": (1, 0)}

    code, doc = run_json(capsys, "replay", "--force")
    assert (code, doc["moved"], doc["capped"]["count"]) == (0, 1, 0)
    (forced,) = stack.snapshot(stack.ingest).values()
    assert forced["MessageAttributes"]["replay-count"]["StringValue"] == "4"
    assert stack.counts() == {"ingest": (1, 0), "dlq": (0, 0)}


def test_a_message_that_would_exceed_ten_attributes_stays(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    full = {f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(10)}
    stack.redriven("original/full.jpg", **full)
    stack.redriven("original/ok.jpg")

    code, doc = run_json(capsys, "replay")

    assert (code, doc["moved"], doc["refused"]["count"]) == (1, 1, 1)
    assert doc["refused"]["messages"][0]["reason"] == "would carry 11 message attributes (SQS allows 10)"
    assert stack.counts() == {"ingest": (1, 0), "dlq": (1, 0)}
    assert keys_of(stack.snapshot(stack.dlq)) == ["original/full.jpg"]


def test_replay_respects_the_rate(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(25):
        stack.sqs.send_message(QueueUrl=stack.dlq, MessageBody=s3_body(s3_record(f"original/{i}.jpg")))

    started = time.monotonic()
    code, doc = run_json(capsys, "replay", "--rate", "20")
    elapsed = time.monotonic() - started

    assert (code, doc["moved"]) == (0, 25)
    # Batches of 10, 10 and 5 at 20/s: the second waits 0.5 s, the third 0.5 s more.
    assert 0.95 <= elapsed < 30
    assert stack.counts() == {"ingest": (25, 0), "dlq": (0, 0)}


def test_replay_max_and_many_non_matching(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """Non-matching messages are released at once and come straight back: each is still counted once,
    and the scan ends."""
    for i in range(23):
        stack.redriven(f"original/skip/{i}.jpg")
    for i in range(4):
        stack.dead_letter(f"original/take/{i}.jpg", NotAnImage("x"))

    code, doc = run_json(capsys, "replay", "--error-class", "NotAnImage", "--max", "3")
    assert (code, doc["matched"], doc["moved"], doc["stopped_at_max"]) == (0, 3, 3, True)
    assert stack.counts() == {"ingest": (3, 0), "dlq": (24, 0)}

    code, doc = run_json(capsys, "replay", "--error-class", "NotAnImage")
    assert (code, doc["scanned"], doc["matched"], doc["skipped"]) == (0, 24, 1, 23)
    assert stack.counts() == {"ingest": (4, 0), "dlq": (23, 0)}


def test_a_failed_delete_leaves_a_duplicate_not_a_gap(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack.dead_letter("original/a.jpg", NotAnImage("x"))
    stack.dead_letter("original/b.jpg", NotAnImage("x"))

    def break_first(params: dict[str, Any], **_: Any) -> None:
        params["Entries"][0]["ReceiptHandle"] = "not-a-handle"

    hook_sqs(monkeypatch, "provide-client-params.sqs.DeleteMessageBatch", break_first)

    code, out, _ = run_dlq(capsys, "replay")

    assert code == 1
    assert "replayed 2 (NotAnImage 2)" in out
    assert "replayed but not deleted, still on the DLQ (a duplicate, harmless):" in out
    assert stack.counts() == {"ingest": (2, 0), "dlq": (1, 0)}  # released, visible again


def test_ctrl_c_releases_everything_held(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(15):
        stack.redriven(f"original/{i}.jpg")
    sends = []

    def interrupt_second(**_: Any) -> None:
        sends.append(1)
        if len(sends) == 2:
            raise KeyboardInterrupt

    hook_sqs(monkeypatch, "before-call.sqs.SendMessageBatch", interrupt_second)

    code, doc = run_json(capsys, "replay")

    assert code == 130
    assert (doc["interrupted"], doc["moved"]) == (True, 10)
    assert stack.counts() == {"ingest": (10, 0), "dlq": (5, 0)}  # none left hidden


def test_native_move_is_reported_unsupported_on_moto(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.redriven("original/a.jpg")

    code, out, err = run_dlq(capsys, "replay", "--native", "--rate", "50")

    assert (code, out) == (2, "")
    assert err.startswith("imgproc dlq replay: native move not supported by this endpoint (")
    assert err.endswith("run without --native to replay message by message\n")
    assert stack.counts() == {"ingest": (0, 0), "dlq": (1, 0)}


@pytest.mark.parametrize(
    ("extra", "conflict"),
    [
        (["--error-class", "NotAnImage"], "filters"),
        (["--older-than", "1h"], "filters"),
        (["--dry-run"], "--dry-run"),
        (["--max", "5"], "--max"),
    ],
)
def test_native_refuses_selection(
    stack: Stack, capsys: pytest.CaptureFixture[str], extra: list[str], conflict: str
) -> None:
    stack.redriven("original/a.jpg")
    code, out, err = run_dlq(capsys, "replay", "--native", *extra)
    assert (code, out) == (2, "")
    assert err == (
        f"imgproc dlq replay: --native moves the whole queue: it cannot be combined with {conflict}; "
        "run without --native to replay message by message\n"
    )
    assert stack.counts() == {"ingest": (0, 0), "dlq": (1, 0)}


def test_native_rate_must_fit_sqs(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_dlq(capsys, "replay", "--native", "--rate", "501")
    assert code == 2
    assert "--native needs a whole --rate from 1 to 500" in err


# ---------------------------------------------------------------------------------------------------
# purge


def archive_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_purge_archives_before_deleting(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stack.dead_letter("original/a.jpg", NotAnImage("not an image"), replay_count=2)
    stack.redriven("original/b.jpg", blob={"DataType": "Binary", "BinaryValue": b"\x00\xff"})
    stack.dead_letter("original/keep.jpg", CorruptImage("x"))
    archive = tmp_path / "archive.jsonl"
    events: list[str] = []
    real_fsync = moves.os.fsync

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def deleting(params: dict[str, Any], **_: Any) -> None:
        events.append(f"delete {len(params['Entries'])} with {len(archive_lines(archive))} archived")

    monkeypatch.setattr(moves.os, "fsync", fsync)
    hook_sqs(monkeypatch, "provide-client-params.sqs.DeleteMessageBatch", deleting)

    code, doc = run_json(
        capsys, "purge", "--yes", "--archive", str(archive), "--error-class", "NotAnImage,RetriesExhausted"
    )

    assert code == 0
    assert (doc["matched"], doc["moved"], doc["archived"], doc["archive"]) == (2, 2, 2, str(archive))
    assert events == ["fsync", "fsync", "delete 2 with 2 archived"]  # directory, file, then the delete
    lines = sorted(archive_lines(archive), key=lambda line: line["Body"])
    assert [sorted(line) for line in lines] == [["Attributes", "Body", "MessageAttributes", "MessageId"]] * 2
    first, second = lines
    assert first["Body"] == s3_body(s3_record("original/a.jpg"))
    assert first["MessageAttributes"]["error-class"] == {"DataType": "String", "StringValue": "NotAnImage"}
    assert first["MessageAttributes"]["replay-count"] == {"DataType": "Number", "StringValue": "2"}
    assert second["Body"] == s3_body(s3_record("original/b.jpg"))
    assert second["MessageAttributes"] == {"blob": {"DataType": "Binary", "BinaryValue": "AP8="}}
    assert "SentTimestamp" in second["Attributes"]
    assert stack.counts() == {"ingest": (0, 0), "dlq": (1, 0)}  # 3 = 1 left + 2 archived
    assert keys_of(stack.snapshot(stack.dlq)) == ["original/keep.jpg"]
    assert archive.stat().st_mode & 0o777 == 0o600


def test_purge_asks_first(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stack.redriven("original/a.jpg")
    stack.redriven("original/b.jpg")
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    set_clock(monkeypatch, datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC))

    class Terminal:
        def __init__(self, answer: str) -> None:
            self.answer = answer

        def isatty(self) -> bool:
            return True

        def readline(self) -> str:
            return self.answer

    # No terminal and no --yes: refused.
    code, out, err = run_dlq(capsys, "purge")
    assert (code, out) == (2, "")
    assert err == "imgproc dlq purge: not confirmed, nothing deleted (scripts pass --yes)\n"

    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    code, out, err = run_dlq(capsys, "purge", "--max", "1")
    assert (code, out) == (2, "")
    assert err.splitlines()[:3] == [
        "Purge every message (at most 1) from the DLQ imgproc-dlq (2 visible)?",
        "Each is first appended to dlq-archive-20261127T120000Z.jsonl.",
        "Proceed? [y/N] imgproc dlq purge: not confirmed, nothing deleted (scripts pass --yes)",
    ]
    assert stack.counts() == {"ingest": (0, 0), "dlq": (2, 0)}
    assert list(here.iterdir()) == []

    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, out, err = run_dlq(capsys, "purge", "--error-class", "RetriesExhausted", "--no-archive")
    assert code == 0
    assert err.splitlines()[:2] == [
        "Purge the messages matching error class RetriesExhausted from the DLQ imgproc-dlq (2 visible)?",
        "They are NOT archived (--no-archive): purged messages cannot be recovered.",
    ]
    assert out.splitlines() == [
        "purge imgproc-dlq, archive none; filters: error class RetriesExhausted",
        "scanned 2: 2 matched, 0 did not (released)",
        "purged 2 (RetriesExhausted 2)",
    ]
    assert stack.counts() == {"ingest": (0, 0), "dlq": (0, 0)}
    assert list(here.iterdir()) == []


def test_purge_default_archive_and_dry_run(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stack.redriven("original/a.jpg")
    stack.dead_letter("original/b.jpg", NotAnImage("x"))
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    set_clock(monkeypatch, datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC))

    code, doc = run_json(capsys, "purge", "--dry-run")
    assert (code, doc["dry_run"], doc["moved"], doc["archive"]) == (0, True, 2, None)
    assert stack.counts() == {"ingest": (0, 0), "dlq": (2, 0)}
    assert list(here.iterdir()) == []

    code, out, _ = run_dlq(capsys, "purge", "--yes", "--key-prefix", "original/b")
    assert code == 0
    assert out.splitlines()[-1] == "purged 1 (NotAnImage 1); 1 archived to dlq-archive-20261127T120000Z.jsonl"
    (line,) = archive_lines(here / "dlq-archive-20261127T120000Z.jsonl")
    assert dead_letters.source_keys(line["Body"]) == ["original/b.jpg"]
    assert stack.counts() == {"ingest": (0, 0), "dlq": (1, 0)}


def test_an_archive_that_cannot_be_written_deletes_nothing(
    stack: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    stack.redriven("original/a.jpg")

    code, doc = run_json(capsys, "purge", "--yes", "--archive", str(tmp_path / "missing-dir" / "a.jsonl"))

    assert code == 1
    assert (doc["moved"], doc["archived"]) == (0, 0)
    assert "No such file or directory" in doc["error"]
    assert stack.counts() == {"ingest": (0, 0), "dlq": (1, 0)}


# ---------------------------------------------------------------------------------------------------
# options, errors and helpers


def test_missing_stack_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with mock_aws():
        code, out, err = run_dlq(capsys, "inspect", "--stack-name", "nope")
    assert (code, out) == (1, "")
    assert err == "imgproc dlq inspect: stack 'nope' not found; deploy it with `imgproc deploy`\n"


def test_dlq_without_an_action_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_dlq(capsys)
    assert (code, out) == (2, "")
    assert err.startswith("usage: imgproc dlq [-h] ACTION ...")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay", "--older-than", "soon"], "'soon' is not a duration"),
        (["replay", "--rate", "0"], "must be a positive number"),
        (["purge", "--archive", "a.jsonl", "--no-archive"], "not allowed with argument"),
        (["inspect", "--visibility", "43201"], "at most 43200 seconds"),
        (["replay", "--max", "0"], "must be at least 1"),
    ],
)
def test_bad_options_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["dlq", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_an_empty_age_window_exits_2(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_dlq(capsys, "replay", "--older-than", "2h", "--newer-than", "1h")
    assert code == 2
    assert err == "imgproc dlq replay: --older-than 2h with --newer-than 1h selects nothing\n"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("1.5h", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert durations.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2", "h", "2x", "2h and", "-1h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        durations.parse_duration(text)


def test_key_prefixes_and_age_buckets() -> None:
    assert [census.key_prefix(k, 2) for k in ("original/2026/11/a.jpg", "original/a.jpg", "a.jpg")] == [
        "original/2026/",
        "original/",
        "",
    ]
    assert [census.age_bucket(a) for a in (None, 0, 3599, 3600, 86400 * 7)] == [
        "unknown",
        "< 1h",
        "< 1h",
        "1h-6h",
        ">= 7d",
    ]


def test_batches_respect_count_and_size() -> None:
    small = [({"MessageId": str(i)}, {"MessageBody": "x" * 10}) for i in range(23)]
    assert [len(b) for b in moves.batches_of(small)] == [10, 10, 3]
    big = [({"MessageId": str(i)}, {"MessageBody": "x" * 100_000}) for i in range(5)]
    assert [len(b) for b in moves.batches_of(big)] == [2, 2, 1]


# ---------------------------------------------------------------------------------------------------
# end to end: the embedded AWS, the poller and the handler, the CLI as a separate process


def test_an_unknown_error_class_is_warned_about_not_silently_matched_by_nothing(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.dead_letter("original/a.jpg", NotAnImage("x"))

    code, out, err = run_dlq(capsys, "replay", "--error-class", "NotAnImgae", "--dry-run")

    assert code == 0
    assert err.splitlines() == [
        "imgproc dlq replay: warning: --error-class NotAnImgae is not a class this version writes "
        "(CorruptImage, ImageTooLarge, InvalidEvent, NotAnImage, UnsupportedImage, RetriesExhausted); "
        "only messages carrying it match"
    ]
    assert "would have replayed 0" in out
    code, _, err = run_dlq(capsys, "inspect", "--error-class", "notanimage,retriesexhausted")
    assert (code, err) == (0, "")
