"""Chaos run on the embedded AWS: uploads, overwrites, deletes and duplicate events under S3 faults.

Every upload must end rendered (exactly its current renditions, with correct markers) or in the DLQ
with its error class: never lost, never looping. ``make test`` runs a short version (default
``IMGPROC_CHAOS_UPLOADS=60``, faults only, well under a minute); ``make chaos`` a long one
(``IMGPROC_CHAOS_UPLOADS=400``), which also SIGKILLs one of the two worker processes mid-run.

Why the short version does not kill a worker: the Poller replaces a dead worker within a second, but
the messages the dead one held come back only after the queue's visibility timeout, which the
template sets to 6x the function timeout. Even with ``Timeout=10`` (the smallest allowed, used here) that is
60 s of waiting, too long for ``make test``. The long version waits for it (the drain timeout covers
visibility + margin) and so proves that the killed worker's in-flight messages come back and finish.
``IMGPROC_CHAOS_KILL=1`` or ``0`` forces the kill on or off whatever the size.

Faults: ``s3.GetObject=0.1,s3.PutObject=0.05,s3.HeadObject=0.03`` on the handler's own clients,
each failure a 500, a 503 SlowDown or a read timeout at random (``imgproc/faults.py``), raised before
the request, so botocore's own retries never absorb it. One attempt at an image makes about 4 HEADs,
1 GET and 2 PUTs: it fails with probability 1 - 0.97^4 x 0.9 x 0.95^2 ~= 0.28. ``MaxReceiveCount=10``:
a valid upload is wrongly redriven only after 10 failed attempts in a row, 0.28^10 ~= 3e-6 per
message, ~1.5e-3 for a 500-message run. So any valid key in the DLQ is a bug, not bad luck.
``retry_after=1`` brings failed messages back after 1 s instead of the visibility timeout.

"No rendition written twice for the same source ETag and spec" -- what the system guarantees, and
what is asserted: the marker check (a HEAD per rendition) runs before every render, so once a render
of (key, source ETag) has *completed* (its ``record.rendered`` log line), every later event for that
ETag -- duplicate, retry, replay -- finds the renditions current and skips. Two renders of the same
(key, ETag) can only happen when they run *concurrently* (two workers holding two events for the
same key at once: a duplicate notification, or the create events of an overwritten key both seeing
the newest ETag); there is no lock, by design, and both write identical bytes and markers. The test
asserts exactly that: for every (key, ETag) rendered more than once, each render started before the
previous one finished. (A failed attempt that PUT some renditions is not a completed render and logs
no ``record.rendered``; its retry re-renders only what is not current.)
"""

from __future__ import annotations

import io
import itertools
import json
import os
import random
import re
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

import imagegen
import pytest
from conftest import local_runtime, s3_body, s3_record
from PIL import Image

from imgproc import local, poller
from processor.errors import InvalidEvent
from processor.events import parse_body

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

UPLOADS = int(os.environ.get("IMGPROC_CHAOS_UPLOADS", "60"))
KILL = os.environ.get("IMGPROC_CHAOS_KILL", "1" if UPLOADS >= 200 else "0") == "1"
FAULTS = "s3.GetObject=0.1,s3.PutObject=0.05,s3.HeadObject=0.03"
SIZES = ("300x300", "100x100")
VISIBILITY_SECONDS = 60  # Timeout=10 -> the template's QueueVisibilityTimeout
# Credentials the workers inherit: must never show up in any log.
FAKE_KEY_ID = "AKIAZZCHAOSTESTKEY01"
FAKE_SECRET = "cHa0sS3cr3t/DoNotLogMe+wJalrXUtnFEMIK7MDENGbPxRfiCY"
AKIA = re.compile(r"AKIA[0-9A-Z]{16}")


@dataclass
class Source:
    key: str
    data: bytes | None  # None: deleted
    size: tuple[int, int] | None = None  # the current content's size; None for poison
    error_class: str | None = None  # poison: the DLQ class expected
    versions: int = 0
    spoiled: bool = False  # a valid image overwritten by a poison one: its old renditions must go


@dataclass
class Run:
    runtime: local.LocalRuntime
    log_dir: Path
    sources: dict[str, Source]
    counts: Counter[str] = field(default_factory=Counter)
    drained_after: float = 0.0
    killed: int | None = None


def _valid(rng: random.Random, seed: int, ext: str) -> tuple[bytes, tuple[int, int]]:
    """A small valid image in ``ext``'s format, of a random size (an overwrite changes it)."""
    width, height = rng.choice([(64, 48), (48, 64), (80, 40), (120, 90), (320, 200)])
    if ext == ".jpg":
        return imagegen.photo_jpeg(width, height, seed=seed), (width, height)
    colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    return imagegen.encode(Image.new("RGB", (width, height), colour), "PNG"), (width, height)


def _poison(index: int) -> tuple[bytes, str]:
    if index % 2:
        return imagegen.TEXT, "NotAnImage"
    jpeg = imagegen.photo_jpeg(64, 48, seed=index)
    return jpeg[: len(jpeg) // 2], "CorruptImage"


def _queue_busy(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _plan(rng: random.Random) -> list[tuple[str, int]]:
    """The operations, shuffled across keys but in order per key (upload first)."""
    per_key: dict[int, list[str]] = {}
    for i in range(UPLOADS):
        ops = ["upload"]
        if i % 10 != 9:  # every tenth key is poison: uploaded once, never touched again
            roll = rng.random()
            if roll < 0.2:
                ops.append("overwrite")
            elif roll < 0.3:
                ops.append("delete")
            if rng.random() < 0.15:
                ops.append("duplicate")
            if "delete" not in ops and rng.random() < 0.1:
                ops.append("spoil")  # valid, then overwritten by a corrupt file
        per_key[i] = ops
    slots = [i for i, ops in per_key.items() for _ in ops]
    rng.shuffle(slots)
    cursor: Counter[int] = Counter()
    ordered = []
    for i in slots:
        ordered.append((per_key[i][cursor[i]], i))
        cursor[i] += 1
    return ordered


def _drive(rt: local.LocalRuntime, sources: dict[str, Source], counts: Counter[str]) -> int | None:
    """Upload, overwrite, delete and duplicate; kill a worker once batches flow (long version)."""
    rng = random.Random(20261127)  # a reproducible workload
    s3, sqs = rt.client("s3"), rt.client("sqs")
    bucket, queue = rt.outputs["SourceBucketName"], rt.outputs["QueueUrl"]
    operations = _plan(rng)
    keys: dict[int, str] = {}
    killed = None
    for step, (op, i) in enumerate(operations):
        if op == "upload":
            ext = ".jpg" if i % 10 == 9 or rng.random() < 0.5 else ".png"
            keys[i] = key = f"original/chaos/{i:04d}{ext}"
        key = keys[i]
        if op in ("upload", "overwrite"):
            if i % 10 == 9:
                data, error_class = _poison(i)
                sources[key] = Source(key, data, None, error_class, 1)
            else:
                data, size = _valid(rng, i * 2 + (op == "overwrite"), key[-4:])
                source = sources.setdefault(key, Source(key, None))
                source.data, source.size = data, size
                source.versions += 1
            s3.put_object(Bucket=bucket, Key=key, Body=data)
            counts["uploaded" if op == "upload" else "overwritten"] += 1
        elif op == "spoil":
            data, error_class = _poison(i + 1)
            source = sources[key]
            source.data, source.size, source.error_class, source.spoiled = data, None, error_class, True
            s3.put_object(Bucket=bucket, Key=key, Body=data)
            counts["overwritten valid -> unrenderable"] += 1
        elif op == "delete":
            s3.delete_object(Bucket=bucket, Key=key)
            sources[key].data = None
            counts["deleted (sources)"] += 1
        elif op == "duplicate":
            sqs.send_message(QueueUrl=queue, MessageBody=s3_body(s3_record(key, bucket=bucket)))
            counts["duplicate events"] += 1
        if KILL and killed is None and step >= len(operations) // 3 and rt.update_totals():
            killed = rt.worker_pids[0]
            os.kill(killed, signal.SIGKILL)
    return killed


@pytest.fixture(scope="module")
def chaos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    state = tmp_path_factory.mktemp("chaos-state")
    options = poller.WorkerOptions(log_dir=state / "logs", retry_after=1, fault_spec=FAULTS)
    sources: dict[str, Source] = {}
    counts: Counter[str] = Counter()
    credentials = {"AWS_ACCESS_KEY_ID": FAKE_KEY_ID, "AWS_SECRET_ACCESS_KEY": FAKE_SECRET}
    with (
        mock.patch.dict(os.environ, credentials),  # inherited by the worker processes
        local_runtime(overrides={"MaxReceiveCount": "10", "Timeout": "10"}, options=options) as rt,
    ):
        started = time.monotonic()
        killed = _drive(rt, sources, counts)
        sqs = rt.client("sqs")
        deadline = time.monotonic() + (VISIBILITY_SECONDS + 60 if killed else 60) + UPLOADS * 0.2
        quiet_since = None
        while time.monotonic() < deadline:
            rt.update_totals()
            if _queue_busy(sqs, rt.outputs["QueueUrl"]) == 0:
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= 3:
                    break
            else:
                quiet_since = None
            time.sleep(0.5)
        run = Run(rt, state / "logs", sources, counts, time.monotonic() - started, killed)
        rt.update_totals()
        yield run


def _head(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError:
        return None


def _dlq(rt: local.LocalRuntime) -> list[tuple[str, str]]:
    """(key, error-class) of every DLQ message (received once with a long visibility timeout)."""
    sqs = rt.client("sqs")
    found: list[tuple[str, str]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=rt.outputs["DeadLetterQueueUrl"],
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=600,
        ).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            error = message.get("MessageAttributes", {}).get("error-class", {}).get("StringValue", "-")
            try:
                found.extend((ref.key, error) for ref in parse_body(message["Body"]).refs)
            except InvalidEvent:
                found.append(("<invalid>", error))


def _log_events(log_dir: Path) -> list[dict[str, Any]]:
    events = []
    for path in sorted(log_dir.glob("worker-*.jsonl")):
        for line in path.read_text().splitlines():
            if line.startswith('{"logger"'):
                events.append(json.loads(line))
    return events


def _ts(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()


def test_chaos_every_upload_ends_rendered_or_dead_lettered(chaos: Run) -> None:
    rt = chaos.runtime
    s3, sqs = rt.client("s3"), rt.client("sqs")
    source_bucket, dest = rt.outputs["SourceBucketName"], rt.outputs["DestinationBucketName"]
    problems: list[str] = []

    # The ingest queue is empty: nothing in flight, nothing looping.
    assert _queue_busy(sqs, rt.outputs["QueueUrl"]) == 0, "ingest queue did not drain"

    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=dest, Prefix="resized/")
    renditions = {o["Key"] for page in pages for o in page.get("Contents", [])}
    expected_renditions: set[str] = set()
    dlq = _dlq(rt)
    dlq_by_key = defaultdict(list)
    for key, error in dlq:
        dlq_by_key[key].append(error)

    stale = 0
    for key, source in chaos.sources.items():
        names = [f"resized/{size}/{key.removeprefix('original/')}" for size in SIZES]
        if source.error_class:  # poison: in the DLQ with its class, no renditions
            errors = dlq_by_key.get(key, [])
            # Exactly once, unless a worker was killed between the DLQ send and the delete, or (spoiled)
            # an earlier event of the key was processed after the overwrite and found it unrenderable too.
            once = len(errors) == 1 or chaos.killed or source.spoiled
            if not errors or set(errors) != {source.error_class} or not once:
                problems.append(f"{key}: DLQ entries {errors}, expected one {source.error_class}")
            if any(name in renditions for name in names):
                stale += 1
                problems.append(f"{key}: unrenderable current version, but renditions remain")
            continue
        if key in dlq_by_key:
            problems.append(f"{key}: valid source dead-lettered {dlq_by_key[key]}")
        if source.data is None:  # deleted: no rendition left
            if any(name in renditions for name in names):
                problems.append(f"{key}: deleted source still has renditions")
            continue
        etag = s3.head_object(Bucket=source_bucket, Key=key)["ETag"].strip('"')
        expected_renditions.update(names)
        for name, box in zip(names, (300, 100), strict=True):
            head = _head(s3, dest, name)
            if head is None or head["Metadata"].get("source-etag") != etag:
                problems.append(
                    f"{name}: missing or stale (marker {head and head['Metadata']}, source {etag})"
                )
                continue
            if head["Metadata"].get("source-key") != key:
                problems.append(f"{name}: marker source-key {head['Metadata'].get('source-key')}")
            width, height = source.size or (0, 0)
            scale = min(1.0, box / width, box / height)
            want = (max(1, round(width * scale)), max(1, round(height * scale)))
            body = s3.get_object(Bucket=dest, Key=name)["Body"].read()
            if Image.open(io.BytesIO(body)).size != want:
                problems.append(f"{name}: size {Image.open(io.BytesIO(body)).size}, expected {want}")
    extra = renditions - expected_renditions
    if extra:
        problems.append(f"renditions of no current source: {sorted(extra)[:5]}")
    stray = [key for key, _ in dlq if key not in chaos.sources]
    if stray:
        problems.append(f"DLQ entries for unknown keys: {stray[:5]}")

    # No (key, ETag) rendered again after a completed render of it (see the module doc).
    events = _log_events(chaos.log_dir)
    renders: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for event in events:
        if event.get("event") == "record.rendered":
            end = _ts(event)
            renders[(event["key"], event["source_etag"])].append((end - event["duration_ms"] / 1000, end))
    concurrent_twice = 0
    for (key, etag), spans in renders.items():
        spans.sort(key=lambda span: span[1])
        for (_, first_end), (second_start, _) in itertools.pairwise(spans):
            concurrent_twice += 1
            if second_start > first_end + 0.05:  # 50 ms for the two processes' clocks and rounding
                problems.append(f"{key} ({etag}) rendered again after a completed render")

    totals = rt.totals
    injected = sum(
        1 for e in events if e.get("event") == "record.error" and "injected" in str(e.get("error"))
    )
    valid = [s for s in chaos.sources.values() if not s.error_class]
    accounting = {
        "uploaded (new keys)": chaos.counts["uploaded"],
        "overwritten": chaos.counts["overwritten"],
        "deleted (sources)": chaos.counts["deleted (sources)"],
        "duplicate events": chaos.counts["duplicate events"],
        "poison uploads": sum(1 for s in chaos.sources.values() if s.error_class and not s.spoiled),
        "overwritten valid -> unrenderable": chaos.counts["overwritten valid -> unrenderable"],
        "stale renditions (unrenderable current)": stale,
        "surviving sources": sum(1 for s in valid if s.data is not None),
        "records rendered": totals.get("rendered", 0),
        "  of which concurrent re-renders": concurrent_twice,
        "records skipped (current)": totals.get("skipped", 0),
        "records deleted (renditions removed)": totals.get("deleted", 0),
        "records ignored": totals.get("ignored", 0),
        "dead-lettered": totals.get("dead-lettered", 0),
        "DLQ messages": len(dlq),
        "retried (batch item failures)": totals.get("retried", 0),
        "record errors from injected faults": injected,
        "worker killed (pid)": chaos.killed or 0,
        "workers running at the end": len(rt.worker_pids),
        "seconds to drain": round(chaos.drained_after, 1),
        "lost": len(problems),
    }
    table = "\n".join(f"  {name:38} {value:>8}" for name, value in accounting.items())
    report = f"chaos run: {UPLOADS} keys, faults {FAULTS}\n{table}\n"
    print("\n" + report)
    (chaos.log_dir.parent / "chaos-accounting.txt").write_text(report + "\n".join(problems))

    assert problems == []
    assert len(rt.worker_pids) == 2
    assert (chaos.killed is not None) == KILL
    if KILL:
        assert chaos.killed not in rt.worker_pids  # the killed one was replaced
    assert totals.get("retried", 0) > 0  # the faults did happen
    assert injected > 0


def test_no_credentials_in_any_log(chaos: Run) -> None:
    """The workers ran with a distinctive secret and an AKIA key id in their environment: neither, nor
    any AKIA-shaped value, appears in the handler logs or the embedded AWS's request log."""
    logs = [*sorted(chaos.log_dir.glob("worker-*.jsonl")), chaos.log_dir / "moto.log"]
    assert len(logs) >= 3
    for path in logs:
        text = path.read_text(errors="replace")
        assert text, f"{path.name} is empty: nothing was checked"
        assert FAKE_SECRET not in text, path.name
        assert FAKE_SECRET.split("/", maxsplit=1)[0] not in text, path.name
        assert AKIA.findall(text) == [], path.name
