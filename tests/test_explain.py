"""`imgproc explain` and `imgproc enqueue` against the real template deployed into in-process moto, with
the real handler run in this process (as Lambda's event source mapping would) to render, dead-letter
or delete: healthy, stale, missing, orphaned, dead-lettered keys, a recipe change, keys with spaces,
``+`` and non-ASCII characters, rendition keys and URLs as input, the JSON shape, the log lines."""

from __future__ import annotations

import json
import os
import shlex
import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import imagegen
import pytest
from conftest import REGION, hook_sqs
from test_backfill import receive_all, run_handler

from explainer import handler_logs
from imgproc import cli
from toolkit import dead_letters

pytestmark = [
    pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning"),
    pytest.mark.usefixtures("short_polls"),
]

KEY = "original/e x+p é.jpg"  # a space, a plus and a non-ASCII letter: S3 events encode all three
NAME = KEY.removeprefix("original/")


@pytest.fixture
def stack(environ: None, emptied_stack: dict[str, str]) -> dict[str, str]:
    return emptied_stack


def dlq_visible(sqs: Any, stack: dict[str, str]) -> tuple[int, int]:
    """The DLQ's (visible, in flight) message counts: explain must leave every message visible."""
    attributes = sqs.get_queue_attributes(QueueUrl=stack["DeadLetterQueueUrl"], AttributeNames=["All"])
    counts = attributes["Attributes"]
    return int(counts["ApproximateNumberOfMessages"]), int(counts["ApproximateNumberOfMessagesNotVisible"])


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def explain(capsys: pytest.CaptureFixture[str], *keys: str) -> tuple[int, dict[str, Any]]:
    """``imgproc explain KEYS --json``: the exit status and the document."""
    code, out, _ = run(capsys, "explain", *keys, "--json")
    return code, json.loads(out)


def upload(s3: Any, stack: dict[str, str], key: str, data: bytes) -> str:
    return s3.put_object(Bucket=stack["SourceBucketName"], Key=key, Body=data)["ETag"].strip('"')


def render(capsys: pytest.CaptureFixture[str], sqs: Any, stack: dict[str, str], *keys: str) -> None:
    """`imgproc enqueue KEYS`, then the handler takes what is on the ingest queue."""
    code, out, _ = run(capsys, "enqueue", *keys)
    assert code == 0, out
    run_handler(sqs, stack, capsys)


def test_a_rendered_key_with_odd_characters_is_healthy(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    etag = upload(s3, stack, KEY, imagegen.photo_jpeg(640, 480))
    render(capsys, sqs, stack, KEY)

    code, doc = explain(capsys, KEY)
    assert code == 0
    assert doc["healthy"] is True
    (entry,) = doc["keys"]
    assert entry["source"] | {"last_modified": None} == {
        "bucket": stack["SourceBucketName"],
        "key": KEY,
        "exists": True,
        "size": entry["source"]["size"],
        "etag": etag,
        "last_modified": None,
        "content_type": "binary/octet-stream",
    }
    assert [(r["size"], r["key"], r["state"]) for r in entry["renditions"]] == [
        ("300x300", f"resized/300x300/{NAME}", "current"),
        ("100x100", f"resized/100x100/{NAME}", "current"),
    ]
    rendition = entry["renditions"][0]
    assert rendition["made_from_etag"] == etag
    assert rendition["recipe"] == rendition["expected_recipe"]
    assert rendition["recipe_current"] is True
    assert rendition["markers"]["source-key"] == "original/e%20x%2Bp%20%C3%A9.jpg"
    assert entry["dead_letters"] == []
    assert entry["verdict"] == {
        "state": "healthy",
        "healthy": True,
        "summary": f"every rendition (2) is current with ETag {etag}",
        "fix": None,
    }

    code, out, _ = run(capsys, "explain", KEY)  # the screen, plain off a terminal
    assert code == 0
    assert out.startswith(f"{KEY}\nsource s3://{stack['SourceBucketName']}/{KEY}: ")
    lines = out.splitlines()
    at = lines.index(f"  300x300   current  resized/300x300/{NAME}")
    assert (
        lines[at + 1].strip().startswith(f"made from ETag {etag}, recipe {rendition['recipe']} (today's), ")
    )
    assert out.splitlines()[-1] == f"verdict: healthy: every rendition (2) is current with ETag {etag}"


def test_an_overwritten_source_makes_its_renditions_stale_until_enqueued(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    old = upload(s3, stack, KEY, imagegen.photo_jpeg(640, 480))
    render(capsys, sqs, stack, KEY)
    new = upload(s3, stack, KEY, imagegen.photo_jpeg(480, 640))  # its event lost: nothing on the queue

    code, doc = explain(capsys, KEY)
    assert code == 1
    entry = doc["keys"][0]
    assert {r["state"] for r in entry["renditions"]} == {"stale"}
    assert entry["renditions"][0]["made_from_etag"] == old
    assert entry["renditions"][0]["reason"] == f"made from ETag {old}, the source is now {new}"
    assert entry["verdict"]["state"] == "stale"
    assert entry["verdict"]["fix"] == f"imgproc enqueue '{KEY}'"

    render(capsys, sqs, stack, KEY)  # the fix it proposed
    code, doc = explain(capsys, KEY)
    assert code == 0
    assert doc["keys"][0]["renditions"][0]["made_from_etag"] == new


def test_a_never_processed_key_is_missing_and_a_deleted_one_orphaned(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    upload(s3, stack, KEY, imagegen.photo_jpeg(320, 240))
    code, doc = explain(capsys, KEY)
    assert code == 1
    assert doc["keys"][0]["verdict"]["state"] == "missing"
    assert {r["state"] for r in doc["keys"][0]["renditions"]} == {"missing"}

    render(capsys, sqs, stack, KEY)
    s3.delete_object(Bucket=stack["SourceBucketName"], Key=KEY)  # its ObjectRemoved event lost
    code, doc = explain(capsys, KEY)
    assert code == 1
    entry = doc["keys"][0]
    assert entry["source"]["exists"] is False
    assert {r["state"] for r in entry["renditions"]} == {"orphaned"}
    assert entry["verdict"]["fix"] == f"imgproc enqueue '{KEY}'"

    render(capsys, sqs, stack, KEY)  # the handler deletes the renditions of a source that is gone
    code, doc = explain(capsys, KEY)
    assert code == 1
    assert doc["keys"][0]["verdict"]["state"] == "no-source"
    assert not s3.list_objects_v2(Bucket=stack["DestinationBucketName"]).get("Contents")


def test_a_dead_lettered_key_shows_its_failure_and_the_dlq_keeps_it(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "original/broken é+.jpg"
    upload(s3, stack, key, imagegen.photo_jpeg(64, 64)[:300])  # a JPEG cut short
    render(capsys, sqs, stack, key)

    code, doc = explain(capsys, key)
    assert code == 1
    entry = doc["keys"][0]
    (letter,) = entry["dead_letters"]
    assert letter["error_class"] == "CorruptImage"
    assert letter["replay_count"] == 0
    assert letter["error_message"]
    assert entry["verdict"]["state"] == "dead-lettered"
    assert entry["verdict"]["summary"].startswith("dead-lettered as CorruptImage at ")
    assert entry["verdict"]["fix"].startswith(f"fix the source: {letter['error_message']}")
    assert entry["dlq"] == {"scanned": 1, "depth": 1, "complete": True}
    assert dlq_visible(sqs, stack) == (1, 0)  # read, not consumed: still there for the next reader


def test_a_recipe_change_makes_every_rendition_stale(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    upload(s3, stack, KEY, imagegen.photo_jpeg(640, 480))
    render(capsys, sqs, stack, KEY)
    lam = boto3.client("lambda", region_name=REGION)
    env = lam.get_function_configuration(FunctionName=stack["FunctionName"])["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=stack["FunctionName"], Environment={"Variables": {**env, "QUALITY": "60"}}
    )
    try:
        code, doc = explain(capsys, KEY)
    finally:
        lam.update_function_configuration(FunctionName=stack["FunctionName"], Environment={"Variables": env})
    assert code == 1
    renditions = doc["keys"][0]["renditions"]
    assert {r["recipe_current"] for r in renditions} == {False}
    assert all(r["reason"].startswith(f"recipe {r['recipe']}, today's is ") for r in renditions)


def test_a_rendition_key_or_url_is_explained_as_its_source(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    upload(s3, stack, KEY, imagegen.photo_jpeg(320, 240))
    render(capsys, sqs, stack, KEY)
    rendition = f"resized/100x100/{NAME}"
    url = f"s3://{stack['DestinationBucketName']}/{rendition}"
    code, doc = explain(capsys, rendition, url, f"s3://{stack['SourceBucketName']}/{KEY}")
    assert code == 0
    assert [(k["given"], k["source_key"]) for k in doc["keys"]] == [
        (rendition, KEY),
        (url, KEY),
        (f"s3://{stack['SourceBucketName']}/{KEY}", KEY),
    ]


def test_several_keys_exit_1_when_one_is_unhealthy_and_usage_errors_exit_2(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    upload(s3, stack, KEY, imagegen.photo_jpeg(320, 240))
    render(capsys, sqs, stack, KEY)
    code, doc = explain(capsys, KEY, "original/nothing here.jpg")
    assert code == 1
    assert [k["verdict"]["healthy"] for k in doc["keys"]] == [True, False]
    assert doc["healthy"] is False

    code, out, err = run(capsys, "explain", KEY, "thumbnails/x.jpg")
    assert (code, out) == (2, "")
    assert err == (
        "imgproc explain: 'thumbnails/x.jpg' is neither a source key (under SOURCE_PREFIX 'original/') "
        "nor a rendition key (under DEST_PREFIX 'resized/')\n"
    )


def test_against_aws_the_logs_insights_query_is_printed_and_run_with_logs(
    stack: dict[str, str], s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    upload(s3, stack, KEY, imagegen.photo_jpeg(320, 240))
    group = f"/aws/lambda/{stack['FunctionName']}"  # moto reports no LoggingConfig: Lambda's default
    code, doc = explain(capsys, KEY)
    assert code == 1  # missing renditions
    logs = doc["keys"][0]["logs"]
    assert logs["origin"] == "query"
    assert logs["where"] == group
    assert logs["query"].splitlines() == [
        "fields @timestamp, @message",
        '| filter key = "original/e x+p é.jpg"',
        "| sort @timestamp desc",
        "| limit 10",
    ]
    _, out, _ = run(capsys, "explain", KEY)
    assert f"handler logs: run this Logs Insights query over {group} (or pass --logs):" in out
    assert '  | filter key = "original/e x+p é.jpg"' in out

    client = boto3.client("logs", region_name=REGION)
    client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName="s")
    line = {
        "event": "record.dead_lettered",
        "key": KEY,
        "outcome": "dead-lettered",
        "error_class": "NotAnImage",
    }
    now_ms = int(time.time() * 1000)
    client.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[
            {"timestamp": now_ms, "message": json.dumps(line | {"timestamp": "2026-12-01T00:00:00Z"})}
        ],
    )
    _, doc = explain(capsys, KEY, "--logs")
    logs = doc["keys"][0]["logs"]
    assert logs["origin"] == "insights"
    assert [(d["event"], d["error_class"]) for d in logs["lines"]] == [("record.dead_lettered", "NotAnImage")]
    assert handler_logs.describe_line(logs["lines"][0]) == (
        "2026-12-01T00:00:00Z  record.dead_lettered  outcome=dead-lettered  error_class=NotAnImage"
    )


def test_enqueue_sends_one_backfill_shaped_message_per_key(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    etag = upload(s3, stack, KEY, imagegen.photo_jpeg(320, 240))
    code, out, _ = run(capsys, "enqueue", KEY, f"resized/300x300/{NAME}", "original/gone.jpg", "--json")
    assert code == 0
    assert json.loads(out) == {
        "stack": "imgproc",
        "queue_url": stack["QueueUrl"],
        "enqueued": [
            {"key": KEY, "source_exists": True, "etag": etag},
            {"key": "original/gone.jpg", "source_exists": False, "etag": None},
        ],
        "failed": [],
    }
    bodies = [json.loads(m["Body"]) for m in receive_all(sqs, stack["QueueUrl"])]
    records = sorted((b["Records"][0] for b in bodies), key=lambda r: r["s3"]["object"]["key"])
    assert [r["s3"]["object"]["key"] for r in records] == ["original/e+x%2Bp+%C3%A9.jpg", "original/gone.jpg"]
    assert all(r["imgprocBackfill"] is True and r["eventName"] == "ObjectCreated:Put" for r in records)

    code, out, err = run(capsys, "enqueue", "nowhere/x.jpg")
    assert (code, out) == (2, "")
    assert err.startswith("imgproc enqueue: 'nowhere/x.jpg' is neither a source key")


def test_the_catalog_item_is_shown_when_catalog_table_is_set(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName="catalog",
        KeySchema=[{"AttributeName": "source_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "source_key", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    lam = boto3.client("lambda", region_name=REGION)
    env = lam.get_function_configuration(FunctionName=stack["FunctionName"])["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=stack["FunctionName"], Environment={"Variables": {**env, "CATALOG_TABLE": "catalog"}}
    )
    try:
        etag = upload(s3, stack, KEY, imagegen.photo_jpeg(320, 240))
        render(capsys, sqs, stack, KEY)
        code, doc = explain(capsys, KEY)
        _, out, _ = run(capsys, "explain", KEY)
    finally:
        lam.update_function_configuration(FunctionName=stack["FunctionName"], Environment={"Variables": env})
        dynamodb.delete_table(TableName="catalog")
    assert code == 0
    catalog = doc["keys"][0]["catalog"]
    assert catalog["table"] == "catalog"
    assert catalog["item"]["status"] == "rendered"
    assert catalog["item"]["source_etag"] == etag
    assert len(catalog["item"]["renditions"]) == 2
    assert f"catalog (catalog): status rendered, source_etag {etag}, processed_at " in out


def test_ctrl_c_while_reading_the_dlq_releases_every_message_and_exits_130(
    stack: dict[str, str], sqs: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        sqs.send_message(
            QueueUrl=stack["DeadLetterQueueUrl"],
            MessageBody=json.dumps({"Records": [{"s3": {"object": {"key": f"original/{i}.jpg"}}}]}),
        )
    receives = []

    def ctrl_c_during_the_first_receive(**_: Any) -> None:
        receives.append(1)
        if len(receives) == 1:  # the messages are hidden, their receipt handles not yet read
            os.kill(os.getpid(), signal.SIGINT)

    hook_sqs(monkeypatch, "before-parse.sqs.ReceiveMessage", ctrl_c_during_the_first_receive)
    code = cli.main(["explain", "original/0.jpg"])
    assert code == 130
    assert capsys.readouterr().err.splitlines() == [
        "",
        "imgproc explain: stopping after the receive in flight (Ctrl-C again to stop at once)",
        "imgproc explain: interrupted",
    ]
    assert dlq_visible(sqs, stack) == (3, 0)


def test_two_sources_mapping_to_one_rendition_key_are_a_collision_not_stale(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # No extension and transparent: rendered as PNG, at the key `noext.png` renders to as well.
    bare, named = "original/walk/noext", "original/walk/noext.png"
    upload(s3, stack, named, imagegen.png_rgba(64, 48))
    upload(s3, stack, bare, imagegen.png_rgba(48, 64))
    render(capsys, sqs, stack, named)
    render(capsys, sqs, stack, bare)  # rendered last: it holds resized/WxH/walk/noext.png

    code, doc = explain(capsys, named, bare)
    assert code == 1
    claimed, holder = doc["keys"]
    assert holder["verdict"]["state"] == "healthy"
    assert [(r["key"], r["state"], r["claimed_by"]) for r in claimed["renditions"]] == [
        ("resized/300x300/walk/noext.png", "claimed", bare),
        ("resized/100x100/walk/noext.png", "claimed", bare),
    ]
    verdict = claimed["verdict"]
    assert verdict["state"] == "collision"
    assert verdict["summary"] == (
        f"2 of 2 rendition(s) claimed by {bare} (a name collision: both keys map to "
        "resized/300x300/walk/noext.png)"
    )
    assert verdict["fix"].startswith(f"rename one of the two sources ({named} or {bare}): ")
    assert "imgproc enqueue" not in verdict["fix"]

    _, out, _ = run(capsys, "explain", named)
    assert "  300x300   claimed  resized/300x300/walk/noext.png" in out
    assert f"claimed by {bare} (its rendition: both keys map to resized/300x300/walk/noext.png)" in out
    assert out.splitlines()[-1].startswith("verdict: collision: 2 of 2 rendition(s) claimed by ")

    render(capsys, sqs, stack, named)  # what the old fix said: it only flips which one is claimed
    code, doc = explain(capsys, bare)
    assert (code, doc["keys"][0]["verdict"]["state"]) == (1, "collision")
    assert {r["claimed_by"] for r in doc["keys"][0]["renditions"]} == {named}


def test_a_deleted_source_with_a_dlq_message_proposes_an_upload_or_the_exact_purge(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "original/walk/corrupt é+.jpg"
    upload(s3, stack, key, imagegen.photo_jpeg(64, 64)[:300])  # a JPEG cut short: dead-lettered
    upload(s3, stack, key + ".old", imagegen.photo_jpeg(64, 64)[:300])
    render(capsys, sqs, stack, key, key + ".old")
    s3.delete_object(Bucket=stack["SourceBucketName"], Key=key)  # deleted on purpose

    code, doc = explain(capsys, key)
    assert code == 1
    entry = doc["keys"][0]
    assert entry["verdict"]["state"] == "no-source"
    purge = f"imgproc dlq purge --key '{key}'"
    assert entry["verdict"]["fix"] == (
        f"fix the source: there is no object s3://{stack['SourceBucketName']}/{key}; upload it again, or "
        f"if it was deleted on purpose: {purge}"
    )
    assert [(r["state"], r["reason"]) for r in entry["renditions"]] == [("none", "source gone")] * 2
    _, out, _ = run(capsys, "explain", key)
    assert "  100x100   none     resized/100x100/walk/corrupt é+.jpg  (source gone)" in out

    # The proposed purge, as a shell splits it, takes this key's message alone, not the `.old` one
    # that `--key-prefix` would have matched too.
    code, out, _ = run(capsys, *shlex.split(purge)[1:], "-y", "--no-archive")
    assert code == 0, out
    left = receive_all(sqs, stack["DeadLetterQueueUrl"])
    assert [dead_letters.source_keys(m["Body"]) for m in left] == [[key + ".old"]]


def test_local_logs_older_than_the_source_or_a_day_are_said_to_be_perhaps_another_runs(
    tmp_path: Any,
) -> None:
    log = tmp_path / "worker-0.jsonl"
    log.write_text(
        json.dumps({"timestamp": "2026-11-01T00:00:00Z", "event": "record.done", "key": KEY}) + "\n"
    )
    written = time.time() - 3600
    os.utime(log, (written, written))
    now = datetime.now(UTC)

    fresh = handler_logs.local_lines(tmp_path, KEY, source_modified=now - timedelta(hours=2), now=now)
    assert fresh.warning is None
    assert len(fresh.lines) == 1
    before_source = handler_logs.local_lines(tmp_path, KEY, source_modified=now - timedelta(minutes=5))
    assert before_source.warning is not None
    assert before_source.warning.endswith(
        "before the source was: these logs may be from another run (pass the --state-dir given to "
        "the `imgproc up` serving this endpoint)"
    )
    old = handler_logs.local_lines(tmp_path, KEY, now=now + timedelta(days=1))
    assert old.warning is not None
    assert "over a day ago: these logs may be from another run" in old.warning
    assert old.to_json()["warning"] == old.warning
