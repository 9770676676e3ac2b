"""`imgproc backfill` against the real stack deployed into in-process moto.

The template is deployed with the event source mapping disabled and moto applies no bucket
notification, so the ingest queue holds exactly what the backfill sends: every test counts the
messages of both queues before and after, and drains the ingest queue to check that each key is
there as often as promised. The handler is run on backfilled messages as Lambda's SQS event source
mapping would (`imgproc.poller.lambda_event`, then delete what did not fail).

moto's SQS costs O(queue depth) per call, so the tests list thousands of keys but send a few hundred.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import signal
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import imagegen
import pytest
from conftest import REGION, hook_sqs
from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

import backfill
from imgproc import cli, function, poller, status
from processor import markers
from processor.config import Config
from processor.events import BACKFILL_MARKER, parse_body
from toolkit.function import load_function
from toolkit.throughput import Backpressure, RateLimiter

# moto's CloudFormation skips the template's policies (imgproc.local_stack applies them for `up`).
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")

EVENTS = Path(__file__).resolve().parent.parent / "events"
BULK = 2500


@pytest.fixture
def stack(environ: None, emptied_stack: dict[str, str]) -> dict[str, str]:
    return emptied_stack


def run_backfill(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["backfill", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run_backfill(capsys, *args, "--json")
    return code, json.loads(out), err


def depths(sqs: Any, stack: dict[str, str]) -> tuple[int, int]:
    """Messages on (the ingest queue, the DLQ): visible + in flight + delayed."""
    return sum(status.queue_counts(sqs, stack["QueueUrl"])), sum(
        status.queue_counts(sqs, stack["DeadLetterQueueUrl"])
    )


def receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    """Every message on the queue, each once (a long visibility timeout)."""
    found: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=600,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", []):
        found.extend(batch)
    return found


def delete(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        chunk = messages[start : start + 10]
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
        assert not sqs.delete_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def drain(sqs: Any, stack: dict[str, str]) -> list[dict[str, Any]]:
    """Receive and delete every message of the ingest queue; return their S3 records (one each)."""
    messages = receive_all(sqs, stack["QueueUrl"])
    delete(sqs, stack["QueueUrl"], messages)
    records = []
    for message in messages:
        (record,) = json.loads(message["Body"])["Records"]
        records.append(record)
    return records


def key_of(record: dict[str, Any]) -> str:
    return unquote_plus(record["s3"]["object"]["key"])


def put_tiny(s3: Any, bucket: str, keys: list[str]) -> dict[str, str]:
    """A 1-byte object at each key, written straight into moto's S3 (the in-process one that ``s3``
    talks to): thousands of PutObject calls through botocore take seconds, and backfill only lists
    and reads them. Returns key -> ETag (without quotes)."""
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    return {k: backend.put_object(bucket, k, b"x").etag.strip('"') for k in keys}


def resume_args(err: str, lead: str) -> list[str]:
    """The arguments of the resume command printed after ``lead`` on stderr."""
    (line,) = [line for line in err.splitlines() if line.startswith(f"{lead}; resume with: imgproc backfill")]
    return shlex.split(line.split("; resume with: ", 1)[1])[1:]  # without "imgproc"


def run_handler(sqs: Any, stack: dict[str, str], capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """What Lambda's event source mapping does for everything on the queue: one invocation of the
    real handler, configured from the deployed function, then delete every message that did not
    fail. Returns the handler's log lines (its EMF metric lines left out)."""
    messages = receive_all(sqs, stack["QueueUrl"])
    lam = boto3.client("lambda", region_name=REGION)
    fn = load_function(lam, stack["FunctionName"])
    function.apply_environment(fn, endpoint_url=None, region=REGION)
    capsys.readouterr()
    event = poller.lambda_event(messages, stack["QueueArn"], REGION)
    response = function.invoke(fn, event, fresh=True)
    assert response == {"batchItemFailures": []}
    delete(sqs, stack["QueueUrl"], messages)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return [line for line in lines if "_aws" not in line]


def target_of(stack: dict[str, str]) -> backfill.Target:
    """The stack's source bucket, ingest queue and deployed function configuration, as the command
    resolves them: for runs of :class:`backfill.Backfill` in the test's process."""
    fn = load_function(boto3.client("lambda", region_name=REGION), stack["FunctionName"])
    return backfill.Target(
        bucket=stack["SourceBucketName"],
        queue_url=stack["QueueUrl"],
        region=REGION,
        config=Config.from_env(fn.environment),
    )


def dest_keys(s3: Any, stack: dict[str, str]) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=stack["DestinationBucketName"])
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


# --- the messages --------------------------------------------------------------------------------


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def test_a_record_has_the_shape_of_s3s_own_and_says_backfill() -> None:
    key = "original/a b+c/ünï (1).jpg"
    record = backfill.s3_record(
        bucket="imgproc-source",
        key=key,
        size=48213,
        etag='"9b2cf535f27731c974343645a3985328"',
        region="us-east-1",
        event_time=datetime(2026, 11, 27, 9, 14, 7, 512345, tzinfo=UTC),
        sequencer="0018A3B2C4D5E6F708",
        request_id="C3D13FE58DE4C810",
    )

    assert record == {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-27T09:14:07.512Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "imgproc-backfill"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "imgproc-backfill"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "imgproc-backfill",
            "bucket": {
                "name": "imgproc-source",
                "ownerIdentity": {"principalId": "imgproc-backfill"},
                "arn": "arn:aws:s3:::imgproc-source",
            },
            "object": {
                "key": "original/a+b%2Bc/%C3%BCn%C3%AF+%281%29.jpg",
                "size": 48213,
                "eTag": "9b2cf535f27731c974343645a3985328",
                "sequencer": "0018A3B2C4D5E6F708",
            },
        },
        "imgprocBackfill": True,
    }
    # Field for field (and type for type) the record of the shipped sample S3 event, plus the marker;
    # versionId is left out: ListObjectsV2 does not return it.
    sample_body = json.loads((EVENTS / "s3-put.json").read_text())["Records"][0]["body"]
    expected = _shape(json.loads(sample_body)["Records"][0])
    del expected["s3"]["object"]["versionId"]
    assert _shape(record) == {**expected, BACKFILL_MARKER: "bool"}

    body = backfill.message_body(record)
    assert json.loads(body) == {"Records": [record]}
    (ref,) = parse_body(body).refs
    assert (ref.bucket, ref.key, ref.event_name, ref.etag, ref.backfill) == (
        "imgproc-source",
        key,
        "ObjectCreated:Put",
        "9b2cf535f27731c974343645a3985328",
        True,
    )


def test_since_accepts_durations_and_iso_times() -> None:
    now = datetime(2026, 11, 27, 12, 30, 45, 900000, tzinfo=UTC)
    second = now.replace(microsecond=0)
    assert backfill.parse_since("7d", now) == second - timedelta(days=7)
    assert backfill.parse_since("12h", now) == second - timedelta(hours=12)
    assert backfill.parse_since("30m", now) == second - timedelta(minutes=30)
    assert backfill.parse_since("90s", now) == second - timedelta(seconds=90)
    assert backfill.parse_since("2W", now) == second - timedelta(weeks=2)
    assert backfill.parse_since("2026-11-01") == datetime(2026, 11, 1, tzinfo=UTC)
    assert backfill.parse_since("2026-11-01T10:00:00Z") == datetime(2026, 11, 1, 10, tzinfo=UTC)
    # Other zones are converted; fractions are floored (S3's LastModified has whole seconds).
    assert backfill.parse_since("2026-11-01T10:00:00.750+02:00") == datetime(2026, 11, 1, 8, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError, match="neither an ISO-8601 date/time nor a duration"):
        backfill.parse_since("yesterday")


def test_progress_line_counts_without_an_eta_and_stays_off_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    summary = backfill.Summary(listed=1500, filtered=200, current=100, enqueued=1190, failed=10)
    summary.last_key = "original/k01499.jpg"
    stream = io.StringIO()
    progress = backfill.BackfillProgress("backfill", stream=stream, summary=summary)
    progress.advance(1500)
    # Within the first half second there is no rate worth showing.
    assert (
        progress.line()
        == "backfill: listed 1,500, enqueued 1,190, skipped 300, failed 10; at original/k01499.jpg"
    )
    started = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: started + 2.0)
    line = progress.line()
    assert line.startswith("backfill: listed 1,500 (7")  # about 750/s
    assert line.endswith("/s), enqueued 1,190, skipped 300, failed 10; at original/k01499.jpg")
    assert "ETA" not in line
    progress.close()
    assert stream.getvalue() == ""

    gate = Backpressure(sqs=None, queue_url="", limit=1000)
    progress.backpressure = gate
    assert progress.line().endswith("failed 10; at original/k01499.jpg")  # not held back
    gate.waiting = 1234  # held back: the line says why it does not move
    assert progress.line().endswith("; held back: 1,234 waiting in the queue (--max-backlog 1,000)")


# --- against the stack ---------------------------------------------------------------------------


@pytest.mark.slow
def test_thousands_of_keys_since_and_suffix_with_dry_run(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = stack["SourceBucketName"]

    def ext(i: int) -> str:
        return {7: ".txt", 27: ".PNG"}.get(i % 60, ".jpg")

    keys = [f"original/bulk/k{i:05d}{ext(i)}" for i in range(BULK)]
    newer = {i for i in range(BULK) if i % 20 == 7}  # 125 keys, spread over all three pages
    s3.put_object(Bucket=bucket, Key="original/bulk/", Body=b"")  # a folder marker: never enqueued
    put_tiny(s3, bucket, [k for i, k in enumerate(keys) if i not in newer])
    cutoff = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    time.sleep((cutoff - datetime.now(UTC)).total_seconds() + 0.02)
    etags = put_tiny(s3, bucket, [keys[i] for i in sorted(newer)])
    expected = sorted(k for k in etags if not k.endswith(".txt"))  # 42 .txt left out
    assert len(expected) == 83
    assert depths(sqs, stack) == (0, 0)

    since = markers.utc_timestamp(cutoff)
    code, doc, err = run_json(capsys, "--since", since, "--suffix", ".jpg,.png", "--dry-run")
    assert (code, err) == (0, "")
    assert {k: doc[k] for k in ("listed", "filtered", "current", "enqueued", "failed", "dry_run")} == {
        "listed": BULK + 1,
        "filtered": BULK + 1 - 83,
        "current": 0,
        "enqueued": 83,  # would be
        "failed": 0,
        "dry_run": True,
    }
    assert (doc["last_key"], doc["complete"], doc["stopped"], doc["resume"]) == (keys[-1], True, None, None)
    assert depths(sqs, stack) == (0, 0)  # nothing sent

    code, out, err = run_backfill(capsys, "--since", since, "--suffix", ".jpg,.png")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"backfill s3://{bucket}/original/ -> imgproc-ingest: complete"
    assert lines[1].startswith("  listed   2,501  keys in ")
    assert lines[2:] == [
        "  filtered 2,418  not matching --since / --suffix, or ignored by the handler",
        "  enqueued    83",
        "  failed       0",
        f"  last key {keys[-1]}",
    ]
    assert depths(sqs, stack) == (83, 0)
    records = drain(sqs, stack)
    assert sorted(key_of(r) for r in records) == expected  # each exactly once
    for record in records:
        assert record[BACKFILL_MARKER] is True
        assert record["s3"]["bucket"]["name"] == bucket
        assert record["s3"]["object"]["eTag"] == etags[key_of(record)]
        assert record["s3"]["object"]["size"] == 1
    assert depths(sqs, stack) == (0, 0)


@pytest.mark.slow
def test_resume_after_a_stop_and_an_interruption_covers_every_key_exactly_once(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    bucket = stack["SourceBucketName"]
    keys = [f"original/bulk/k{i:05d}{'.jpg' if i % 20 == 7 else '.txt'}" for i in range(BULK)]
    put_tiny(s3, bucket, keys)
    wanted = sorted(k for k in keys if k.endswith(".jpg"))
    assert len(wanted) == 125
    assert depths(sqs, stack) == (0, 0)

    # 1. A slice: stop after 1,234 listed keys; the checkpoint is the 1,234th key (all settled).
    code, doc, err = run_json(capsys, "--suffix", ".jpg", "--max-keys", "1234")
    assert code == 0
    assert (doc["listed"], doc["enqueued"], doc["stopped"], doc["last_key"]) == (
        1234,
        62,
        "max-keys",
        keys[1233],
    )
    assert doc["resume"] == f"imgproc backfill --start-after '{keys[1233]}' --suffix .jpg --json"
    assert resume_args(err, "stopped after 1,234 keys (--max-keys)") == [
        "backfill",
        "--start-after",
        keys[1233],
        "--suffix",
        ".jpg",
        "--json",
    ]
    assert depths(sqs, stack) == (62, 0)

    # 2. Resume, and press Ctrl-C (a real SIGINT) while the third batch is being sent: the batches in
    #    flight (the third, and any the listing had already started beside it) are settled, no other
    #    is started, and the run stops with exit status 130 and the checkpoint after the last batch
    #    sent, before the first key not sent.
    sends = Counter[str]()

    def ctrl_c_on_third_send(**_: Any) -> None:
        sends["batches"] += 1
        if sends["batches"] == 3:
            os.kill(os.getpid(), signal.SIGINT)

    with monkeypatch.context() as scoped:  # this run only
        hook_sqs(scoped, "provide-client-params.sqs.SendMessageBatch", ctrl_c_on_third_send)
        code, out, err = run_backfill(capsys, *resume_args(err, "stopped after 1,234 keys (--max-keys)")[1:])
    doc = json.loads(out)
    sent = doc["enqueued"]  # 30 unless batches after the third were already under way
    assert code == 130
    assert (doc["stopped"], sent % 10, sends["batches"] * 10) == ("interrupted", 0, sent)
    assert sent >= 30
    assert wanted[62 + sent - 1] <= doc["last_key"] < wanted[62 + sent]
    assert "stopping after the batches in flight" in err
    assert not [t.name for t in threading.enumerate() if t.name.startswith("backfill-")]  # none left running
    assert resume_args(err, "interrupted")[:3] == ["backfill", "--start-after", doc["last_key"]]
    assert depths(sqs, stack) == (62 + sent, 0)

    # 3. Resume again: the rest.
    code, doc, err = run_json(capsys, *resume_args(err, "interrupted")[1:-1])
    assert (code, err) == (0, "")
    assert (doc["enqueued"], doc["complete"], doc["last_key"]) == (125 - 62 - sent, True, keys[-1])
    assert depths(sqs, stack) == (125, 0)

    assert sorted(key_of(r) for r in drain(sqs, stack)) == wanted  # every key, exactly once
    assert depths(sqs, stack) == (0, 0)


def test_handler_processes_backfill_messages(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = stack["SourceBucketName"]
    odd = "original/a b+c/ünï (1).png"
    s3.put_object(Bucket=bucket, Key="original/photos/cat.jpg", Body=imagegen.photo_jpeg(320, 240))
    s3.put_object(Bucket=bucket, Key=odd, Body=imagegen.png_rgba(120, 60))
    s3.put_object(Bucket=bucket, Key="original/broken.jpg", Body=b"<html>not an image</html>")
    assert depths(sqs, stack) == (0, 0)

    code, doc, _ = run_json(capsys)
    assert (code, doc["enqueued"]) == (0, 3)
    assert depths(sqs, stack) == (3, 0)

    log = run_handler(sqs, stack, capsys)

    # Every line about a record carries backfill=true (and the event name, which is only a hint).
    per_record = sorted(
        (line["key"], line["event"], line["backfill"], line["event_name"]) for line in log if "key" in line
    )
    assert per_record == [
        ("original/a b+c/ünï (1).png", "record.rendered", True, "ObjectCreated:Put"),
        ("original/broken.jpg", "record.dead_lettered", True, "ObjectCreated:Put"),
        ("original/broken.jpg", "record.error", True, "ObjectCreated:Put"),
        ("original/photos/cat.jpg", "record.rendered", True, "ObjectCreated:Put"),
    ]
    assert [line["event"] for line in log if "key" not in line] == ["batch.done"]
    assert dest_keys(s3, stack) == [
        "resized/100x100/a b+c/ünï (1).png",
        "resized/100x100/photos/cat.jpg",
        "resized/300x300/a b+c/ünï (1).png",
        "resized/300x300/photos/cat.jpg",
    ]
    # Nothing lost: the ingest queue is empty, the permanent failure is on the DLQ with its reason.
    assert depths(sqs, stack) == (0, 1)
    (dead,) = receive_all(sqs, stack["DeadLetterQueueUrl"])
    assert dead["MessageAttributes"]["error-class"]["StringValue"] == "NotAnImage"
    assert json.loads(dead["Body"])["Records"][0][BACKFILL_MARKER] is True


def test_skip_current_enqueues_only_stale_keys(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket, dest = stack["SourceBucketName"], stack["DestinationBucketName"]
    for i in range(4):
        s3.put_object(Bucket=bucket, Key=f"original/p{i}.jpg", Body=imagegen.photo_jpeg(96, 64, seed=i))
    s3.put_object(
        Bucket=bucket, Key="original/anim.gif", Body=imagegen.gif(64, 48, transparent=True)
    )  # PNG: by pixels
    assert run_json(capsys)[:1] == (0,)
    assert depths(sqs, stack) == (5, 0)
    run_handler(sqs, stack, capsys)
    assert "resized/300x300/anim.gif.png" in dest_keys(s3, stack)  # the second candidate key
    assert depths(sqs, stack) == (0, 0)

    s3.put_object(Bucket=bucket, Key="original/p0.jpg", Body=imagegen.photo_jpeg(96, 64, seed=9))  # changed
    s3.delete_object(Bucket=dest, Key="resized/100x100/p1.jpg")  # one rendition lost
    s3.put_object(Bucket=bucket, Key="original/p9.jpg", Body=imagegen.photo_jpeg(96, 64))  # never rendered
    stale = ["original/p0.jpg", "original/p1.jpg", "original/p9.jpg"]

    code, doc, err = run_json(capsys, "--skip-current", "--dry-run")
    assert (code, err) == (0, "")
    assert {k: doc[k] for k in ("listed", "filtered", "current", "enqueued", "complete")} == {
        "listed": 6,
        "filtered": 0,
        "current": 3,  # p2, p3 and anim.gif (its PNG candidate is current, no JPEG exists)
        "enqueued": 3,
        "complete": True,
    }
    assert depths(sqs, stack) == (0, 0)

    code, out, err = run_backfill(capsys, "--skip-current")
    assert (code, err) == (0, "")
    assert out.splitlines()[2:] == [
        "  filtered 0  not matching --since / --suffix, or ignored by the handler",
        "  current  3  every rendition up to date: skipped",
        "  enqueued 3",
        "  failed   0",
        "  last key original/p9.jpg",
    ]
    assert depths(sqs, stack) == (3, 0)
    log = run_handler(sqs, stack, capsys)
    assert sorted(line["key"] for line in log if line["event"] == "record.rendered") == stale
    assert depths(sqs, stack) == (0, 0)

    # Everything is current now: nothing left to enqueue.
    code, doc, _ = run_json(capsys, "--skip-current")
    assert (code, doc["current"], doc["enqueued"]) == (0, 6, 0)
    assert depths(sqs, stack) == (0, 0)


def test_an_entry_sqs_refuses_is_reported_and_holds_the_checkpoint(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    keys = [f"original/f/k{i:02d}.jpg" for i in range(30)]
    put_tiny(s3, stack["SourceBucketName"], keys)
    assert depths(sqs, stack) == (0, 0)

    def refuse_k13(params: dict[str, Any], **_: Any) -> None:
        for entry in params["Entries"]:
            if "k13.jpg" in entry["MessageBody"]:
                entry["DelaySeconds"] = 1000  # SQS refuses this one entry (a sender fault)

    with monkeypatch.context() as scoped:  # this run only: the resume below must send k13
        hook_sqs(scoped, "provide-client-params.sqs.SendMessageBatch", refuse_k13)
        code, out, err = run_backfill(capsys, "--prefix", "original/f/", "--rate", "5000")

    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"backfill s3://{stack['SourceBucketName']}/original/f/ -> imgproc-ingest: incomplete"
    assert lines[3:6] == [
        "  enqueued 29",
        "  failed    1  not enqueued, listed below",
        "  last key original/f/k12.jpg",
    ]
    assert lines[6].startswith("  failed: original/f/k13.jpg: InvalidParameterValue: ")
    assert len(lines) == 7
    assert err == (
        "1 key(s) not enqueued; resume with: "
        "imgproc backfill --start-after 'original/f/k12.jpg' --prefix original/f/ --rate 5000\n"
    )
    assert depths(sqs, stack) == (29, 0)

    # Resuming from the checkpoint sends k13 and, again, the keys after it: at least once, none missing.
    code, doc, err = run_json(capsys, *resume_args(err, "1 key(s) not enqueued")[1:])
    assert (code, err, doc["enqueued"], doc["failed"], doc["complete"]) == (0, "", 17, 0, True)
    assert depths(sqs, stack) == (46, 0)
    counts = Counter(key_of(r) for r in drain(sqs, stack))
    assert counts == {k: 2 if k > "original/f/k13.jpg" else 1 for k in keys}
    assert depths(sqs, stack) == (0, 0)


def test_usage_errors_exit_2_stack_errors_1_and_both_send_nothing(
    stack: dict[str, str], sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["backfill", "--since", "last tuesday"])
    assert exited.value.code == 2
    assert "neither an ISO-8601 date/time nor a duration" in capsys.readouterr().err

    code, out, err = run_backfill(capsys, "--prefix", "elsewhere/")
    assert (code, out) == (2, "")
    assert err == (
        "imgproc backfill: --prefix 'elsewhere/' is outside the function's SOURCE_PREFIX 'original/': "
        "the handler would ignore every key\n"
    )

    code, out, err = run_backfill(capsys, "--stack-name", "nope")
    assert (code, out) == (1, "")  # the environment is wrong, not the command line
    assert err == "imgproc backfill: stack 'nope' not found; deploy it with `imgproc deploy`\n"
    assert depths(sqs, stack) == (0, 0)


def test_max_backlog_keeps_the_backfill_a_bounded_distance_ahead_of_the_function(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = [f"original/m/k{i:03d}.jpg" for i in range(95)]
    put_tiny(s3, stack["SourceBucketName"], keys)
    url = stack["QueueUrl"]
    target = target_of(stack)
    consumer = boto3.client("sqs", region_name=REGION)  # the function: 5 messages per depth read
    consumed: list[str] = []
    depth_after_send: list[int] = []

    def function_progresses(**_: Any) -> None:
        messages = consumer.receive_message(QueueUrl=url, MaxNumberOfMessages=5).get("Messages", [])
        if messages:
            delete(consumer, url, messages)
            consumed.extend(key_of(json.loads(m["Body"])["Records"][0]) for m in messages)

    def observe(**_: Any) -> None:
        depth_after_send.append(sum(status.queue_counts(consumer, url)))

    producer = boto3.client("sqs", region_name=REGION)
    producer.meta.events.register("before-call.sqs.GetQueueAttributes", function_progresses)
    producer.meta.events.register("after-call.sqs.SendMessageBatch", observe)
    job = backfill.Backfill(
        s3=s3,
        sqs=producer,
        target=target,
        options=backfill.Options(prefix="original/m/", max_backlog=20),
        backlog_poll=0.001,
    )
    summary = job.run()

    assert (summary.enqueued, summary.complete, summary.last_key) == (95, True, keys[-1])
    assert max(depth_after_send) <= 20 + 9  # never further ahead than the limit and one batch
    assert summary.held_back_seconds > 0
    assert sorted(consumed + [key_of(r) for r in drain(sqs, stack)]) == keys  # each key once

    # The option is in the report and in the resume command.
    code, doc, _ = run_json(capsys, "--prefix", "original/m/", "--max-backlog", "500", "--max-keys", "40")
    assert (code, doc["enqueued"], doc["max_backlog"], doc["held_back_seconds"]) == (0, 40, 500, 0.0)
    assert doc["resume"] == (
        f"imgproc backfill --start-after '{keys[39]}' --prefix original/m/ --max-backlog 500 --json"
    )
    drain(sqs, stack)
    code, out, _ = run_backfill(capsys, "--prefix", "original/m/", "--max-backlog", "500")
    assert "  held back 0.0s in all (--max-backlog 500)" in out.splitlines()
    assert depths(sqs, stack) == (95, 0)


@pytest.mark.parametrize(
    ("listed", "seconds", "took"),
    [
        (10, 0.004, "in 0.0s"),  # no rate from a clock tick: it used to say 10 keys at 2,500/s
        (10, 0.49, "in 0.5s"),
        (10, 2.0, "in 2.0s (5.0/s)"),
        (5_000, 2.0, "in 2.0s (2,500/s)"),
    ],
)
def test_the_summary_gives_a_rate_only_over_a_meaningful_time(listed: int, seconds: float, took: str) -> None:
    target = backfill.Target(
        bucket="b", queue_url="https://q/imgproc-ingest", region=REGION, config=Config(dest_bucket="d")
    )
    summary = backfill.Summary(listed=listed, elapsed_seconds=seconds)
    listed_line = backfill.render(target, backfill.Options(prefix="original/"), summary).splitlines()[1]
    assert listed_line.split()[0] == "listed"
    assert listed_line.endswith(f" keys {took}")


def test_ctrl_c_during_a_rate_wait_starts_no_new_batch(stack: dict[str, str], s3: Any, sqs: Any) -> None:
    """--rate 2: after the first batch, the next waits 5 s; a Ctrl-C meanwhile cuts the wait short and
    sends nothing more (the checkpoint stays before the batch not sent)."""
    keys = [f"original/r/k{i:03}.jpg" for i in range(30)]
    put_tiny(s3, stack["SourceBucketName"], keys)
    stop = threading.Event()
    job = backfill.Backfill(
        s3=s3,
        sqs=sqs,
        target=target_of(stack),
        options=backfill.Options(prefix="original/r/"),
        limiter=RateLimiter(2, sleep=stop.wait),
        stop=stop,
    )
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()

    summary = job.run()

    assert time.monotonic() - started < 4  # not the 5 s of the wait
    assert (summary.stopped, summary.enqueued) == ("interrupted", 10)
    assert depths(sqs, stack) == (10, 0)
    assert summary.checkpoint == keys[9]
