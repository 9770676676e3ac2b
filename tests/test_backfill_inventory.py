"""`imgproc backfill --from-inventory` and the parallel sends, against the real stack in in-process moto.

The inventory reports are written into moto's S3 as S3 writes them (:mod:`inventorykit`); the
messages are counted and drained as in :mod:`test_backfill`, whose helpers and fixtures are reused.
"""

from __future__ import annotations

import gzip
import threading
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import REGION, hook_sqs
from inventorykit import put_report, row
from moto import mock_aws
from test_backfill import (
    depths,
    drain,
    key_of,
    put_tiny,
    resume_args,
    run_backfill,
    run_json,
    stack,
    target_of,
)

import backfill
from backfill.window import Entry, Mark, SendWindow

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")
__all__ = ["stack"]  # a fixture, imported for its registration


@pytest.fixture
def inventory_bucket(s3: Any) -> str:
    """A bucket for the reports (S3 Inventory's destination bucket)."""
    name = f"imgproc-inventory-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    return name


ODD = "original/a b+c/ünï (1).jpg"  # a space, a plus, non-ASCII: URL-encoded in the CSV


def two_files(source: str) -> list[list[dict[str, str]]]:
    first = [row(f"original/inv/k{i:03d}.jpg", size=i + 1, etag=f"{i:032x}") for i in range(25)]
    first += [row("original/inv/"), row("original/inv/notes.txt"), row("elsewhere/x.jpg")]
    second = [row(ODD, etag="e" * 32), row("original/inv/old.png", modified="2020-01-01T00:00:00.000Z")]
    second += [row(f"original/inv/m{i:03d}.png") for i in range(12)]
    return [first, second]


def test_an_inventory_report_is_read_instead_of_listing_with_the_same_filters(
    stack: dict[str, str], s3: Any, sqs: Any, inventory_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = stack["SourceBucketName"]
    report = put_report(s3, dest_bucket=inventory_bucket, source_bucket=source, files=two_files(source))
    put_tiny(s3, source, ["original/listed-only.jpg"])  # in the bucket, not in the report: not sent
    assert depths(sqs, stack) == (0, 0)

    code, doc, err = run_json(capsys, "--from-inventory", report.url, "--suffix", ".jpg,.png")
    assert (code, err) == (0, "")
    assert {k: doc[k] for k in ("listed", "filtered", "enqueued", "failed", "complete", "inventory")} == {
        "listed": 42,
        "filtered": 3,  # the folder marker, notes.txt, a key outside SOURCE_PREFIX
        "enqueued": 39,
        "failed": 0,
        "complete": True,
        "inventory": report.url,
    }
    assert doc["checkpoint"] == f"{report.data_keys[1]}:14"
    assert doc["last_key"] == "original/inv/m011.png"
    records = drain(sqs, stack)
    keys = sorted(key_of(r) for r in records)
    assert keys == sorted(
        [f"original/inv/k{i:03d}.jpg" for i in range(25)]
        + [ODD, "original/inv/old.png"]
        + [f"original/inv/m{i:03d}.png" for i in range(12)]
    )  # each exactly once, the odd key decoded
    by_key = {key_of(r): r["s3"]["object"] for r in records}
    assert (by_key["original/inv/k007.jpg"]["eTag"], by_key["original/inv/k007.jpg"]["size"]) == (
        f"{7:032x}",
        8,
    )
    assert by_key[ODD]["key"] == "original/a+b%2Bc/%C3%BCn%C3%AF+%281%29.jpg"  # as S3 encodes it

    # --since reads LastModifiedDate: old.png (2020) is left out (notes.txt is in: no --suffix).
    code, doc, _ = run_json(capsys, "--from-inventory", report.url, "--since", "2026-01-01", "--dry-run")
    assert (code, doc["enqueued"], doc["dry_run"]) == (0, 40 - 1, True)
    assert depths(sqs, stack) == (0, 0)


def test_an_inventory_run_resumes_per_data_file_and_line(
    stack: dict[str, str], s3: Any, sqs: Any, inventory_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = stack["SourceBucketName"]
    report = put_report(s3, dest_bucket=inventory_bucket, source_bucket=source, files=two_files(source))
    first, second = report.data_keys

    # A slice that ends mid first file, then one that crosses into the second, then the rest.
    code, doc, err = run_json(
        capsys, "--from-inventory", report.url, "--max-keys", "20", "--concurrency", "3"
    )
    assert (code, doc["stopped"], doc["enqueued"], doc["checkpoint"]) == (0, "max-keys", 20, f"{first}:20")
    assert doc["last_key"] == "original/inv/k019.jpg"
    assert doc["resume"] == (
        f"imgproc backfill --start-after '{first}:20' --from-inventory '{report.url}' --concurrency 3 --json"
    )
    code, doc, err = run_json(
        capsys, *resume_args(err, "stopped after 20 keys (--max-keys)")[1:-1], "--max-keys", "10"
    )
    assert (code, doc["listed"], doc["checkpoint"], doc["last_key"]) == (
        0,
        10,
        f"{second}:2",
        "original/inv/old.png",
    )
    code, doc, err = run_json(capsys, "--from-inventory", report.url, "--start-after", doc["checkpoint"])
    assert (code, err, doc["complete"], doc["checkpoint"]) == (0, "", True, f"{second}:14")

    counts = Counter(key_of(r) for r in drain(sqs, stack))
    assert len(counts) == 40  # with notes.txt: no --suffix here
    assert set(counts.values()) == {1}  # every key, exactly once

    code, out, err = run_backfill(
        capsys, "--from-inventory", report.url, "--start-after", "original/inv/k001.jpg"
    )
    assert (code, out) == (2, "")
    assert err.startswith("imgproc backfill: --start-after 'original/inv/k001.jpg' is not a DATA_FILE:LINE")

    superscript = f"{doc['checkpoint'].rpartition(':')[0]}:²"  # a digit to str.isdigit, not to int()
    code, out, err = run_backfill(capsys, "--from-inventory", report.url, "--start-after", superscript)
    assert (code, out) == (2, "")
    assert err.startswith(f"imgproc backfill: --start-after '{superscript}' is not a DATA_FILE:LINE")


def test_reports_that_cannot_be_used_are_refused_in_one_line(
    stack: dict[str, str],
    s3: Any,
    sqs: Any,
    inventory_bucket: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = stack["SourceBucketName"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "manifest.json").write_text("{}")  # a local file, not a key of the source bucket
    files = [[row("original/x.jpg")]]
    orc = put_report(s3, dest_bucket=inventory_bucket, source_bucket=source, files=files, file_format="ORC")
    other = put_report(s3, dest_bucket=inventory_bucket, source_bucket="someone-else", files=files)
    bare = put_report(
        s3,
        dest_bucket=inventory_bucket,
        source_bucket=source,
        files=files,
        schema=("Bucket", "Key"),
        config_id="bare",
    )
    local = "is a local path: give s3://BUCKET/KEY or a key in the source bucket"
    cases = [
        *[
            (["--from-inventory", path], f"--from-inventory {path!r} {local}")
            for path in ("/tmp/walk/manifest.json", "./manifest.json", "~/manifest.json", "manifest.json")
        ],
        (
            ["--from-inventory", orc.url],
            f"{orc.url} is an inventory in ORC format: only CSV inventories can be read",
        ),
        (
            ["--from-inventory", f"s3://{inventory_bucket}/nope/manifest.json"],
            "no inventory manifest at s3://",
        ),
        (["--from-inventory", other.url], "lists bucket 'someone-else', not the stack's source bucket"),
        (
            ["--from-inventory", bare.url, "--skip-current"],
            "--skip-current needs the inventory's ETag column",
        ),
        (
            ["--from-inventory", bare.url, "--since", "7d"],
            "--since needs the inventory's LastModifiedDate column",
        ),
    ]
    for argv, message in cases:
        code, out, err = run_backfill(capsys, *argv)
        assert (code, out, err.count("\n")) == (2, "", 1), err
        assert err.startswith("imgproc backfill: "), err
        assert message in err, err
    assert depths(sqs, stack) == (0, 0)

    # A data file that is not what the manifest says: stop with exit 1 before its last batch is sent.
    good = put_report(s3, dest_bucket=inventory_bucket, source_bucket=source, files=[[row("original/y.jpg")]])
    s3.put_object(
        Bucket=inventory_bucket, Key=good.data_keys[0], Body=gzip.compress(b'"b","original%2Fz.jpg"\n')
    )
    code, doc, err = run_json(capsys, "--from-inventory", good.url)
    assert (code, doc["stopped"], doc["enqueued"], doc["checkpoint"]) == (1, "error", 0, None)
    assert "differs from the manifest's" in doc["error"]
    assert err.startswith("stopped by an error (s3://")
    drain(sqs, stack)


def test_a_report_whose_data_file_is_gone_is_incomplete_exit_2_without_a_resume_hint(
    stack: dict[str, str], s3: Any, sqs: Any, inventory_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = stack["SourceBucketName"]
    report = put_report(s3, dest_bucket=inventory_bucket, source_bucket=source, files=two_files(source))
    s3.delete_object(Bucket=inventory_bucket, Key=report.data_keys[1])  # expired apart from its manifest

    code, doc, err = run_json(capsys, "--from-inventory", report.url)

    assert (code, doc["stopped"], doc["resume"], doc["complete"]) == (2, "error", None, False)
    assert err == f"imgproc backfill: {doc['error']}\n"
    assert doc["error"].startswith(
        f"s3://{inventory_bucket}/{report.data_keys[1]}, a data file of {report.url}"
    )
    assert "is missing: the report is incomplete" in doc["error"]
    drain(sqs, stack)


def test_a_checkpoint_is_the_lowest_unacknowledged_position_whatever_order_batches_finish_in() -> None:
    with mock_aws():
        client = boto3.client("sqs", region_name=REGION)
        url = client.create_queue(QueueName="window")["QueueUrl"]
        release, others_done = threading.Event(), threading.Event()
        finished: list[str] = []

        def slow_first_batch(params: dict[str, Any], **_: Any) -> None:
            bodies = [e["MessageBody"] for e in params["Entries"]]
            if "b0-0" in bodies:
                assert release.wait(10)
            for entry in params["Entries"]:
                if entry["MessageBody"] == "b1-4":
                    entry["DelaySeconds"] = 1000  # refused: a sender fault, not retried

        def after(**_: Any) -> None:
            finished.append("batch")
            if len(finished) == 2:  # the second and third: the first waits for its release
                others_done.set()

        client.meta.events.register("provide-client-params.sqs.SendMessageBatch", slow_first_batch)
        client.meta.events.register("after-call.sqs.SendMessageBatch", after)
        settled: list[tuple[str, int]] = []
        window = SendWindow(
            client, url, concurrency=3, on_settled=lambda e, r: settled.append((e[0].body[:2], len(r.sent)))
        )

        def batch(n: int) -> list[Entry]:
            return [
                Entry(f"k{n}-{i}", f"b{n}-{i}", before=Mark(f"k{n}-{i - 1}", f"k{n}-{i - 1}"))
                for i in range(5)
            ]

        for n in range(3):
            window.submit(batch(n))
        assert others_done.wait(10)
        window.reap()
        while len(settled) < 2:
            window.reap(block=True)
        assert sorted(settled) == [("b1", 4), ("b2", 5)]  # finished before the first
        assert window.hold() == Mark("k0--1", "k0--1")  # still before the first batch
        release.set()
        window.drain()
        window.close()
        assert window.hold() == Mark("k1-3", "k1-3")  # for good: before the refused entry
        attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "14"


def test_parallel_sends_keep_the_refused_entry_checkpoint(
    stack: dict[str, str], s3: Any, sqs: Any, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    keys = [f"original/p/k{i:03d}.jpg" for i in range(120)]
    put_tiny(s3, stack["SourceBucketName"], keys)

    def refuse_k013(params: dict[str, Any], **_: Any) -> None:
        for entry in params["Entries"]:
            if "k013.jpg" in entry["MessageBody"]:
                entry["DelaySeconds"] = 1000

    with monkeypatch.context() as scoped:
        hook_sqs(scoped, "provide-client-params.sqs.SendMessageBatch", refuse_k013)
        code, doc, _ = run_json(capsys, "--prefix", "original/p/", "--concurrency", "32")
    assert (code, doc["enqueued"], doc["failed"], doc["last_key"]) == (1, 119, 1, "original/p/k012.jpg")
    assert [f["key"] for f in doc["failures"]] == ["original/p/k013.jpg"]
    assert sorted(key_of(r) for r in drain(sqs, stack)) == [k for k in keys if k != "original/p/k013.jpg"]


def test_a_stop_while_held_back_sends_nothing_more_and_keeps_the_checkpoint_before_it(
    stack: dict[str, str], s3: Any, sqs: Any
) -> None:
    keys = [f"original/h/k{i:02d}.jpg" for i in range(40)]
    put_tiny(s3, stack["SourceBucketName"], keys)
    stop, reads = threading.Event(), Counter[str]()

    def ctrl_c_on_the_third_depth_read(**_: Any) -> None:
        reads["depth"] += 1
        if reads["depth"] == 3:  # the room for 2 batches is spent, then held back: Ctrl-C
            stop.set()

    producer = boto3.client("sqs", region_name=REGION)
    producer.meta.events.register("before-call.sqs.GetQueueAttributes", ctrl_c_on_the_third_depth_read)
    job = backfill.Backfill(
        s3=s3,
        sqs=producer,
        target=target_of(stack),
        options=backfill.Options(prefix="original/h/", max_backlog=20, concurrency=4),
        stop=stop,
        backlog_poll=0.001,
    )
    summary = job.run()
    assert (summary.stopped, summary.enqueued, summary.last_key) == ("interrupted", 20, keys[19])
    assert not [t.name for t in threading.enumerate() if t.name.startswith("backfill-")]
    assert sorted(key_of(r) for r in drain(sqs, stack)) == keys[:20]
