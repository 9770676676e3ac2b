"""The reconcile invariant, searched for counterexamples by Hypothesis over in-process moto.

A stateful machine uploads valid, corrupt and oversized images, overwrites and deletes them, delivers
their S3 events now, late, twice or out of order, injects transient S3 faults, replays the DLQ, and
drains the queue through the real batch handler (with SQS's real redrive). After every drain:

- every key whose current source is a renderable image has all its renditions, each carrying the
  current ETag; every other key has none (no stale rendition survives an unrenderable overwrite);
- every key whose current version is unrenderable is on the DLQ with a permanent error class;
- nothing else is on the DLQ: no transient failure was lost to a redrive, no valid key is there.

``make test`` runs a few dozen short programs (about ten seconds); ``make chaos`` sets
``IMGPROC_INVARIANT_EXAMPLES`` for a longer search and ``IMGPROC_INVARIANT_SHRINK=1`` to shrink what
it finds to the shortest failing program.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from datetime import UTC, datetime
from typing import Any

import boto3
import botocore.exceptions
import imagegen
import pytest
from conftest import REGION, s3_body, s3_record
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from moto import mock_aws

from dlq_replayer import moves, scan
from imgproc import poller
from observability import logs
from processor.batch import process_batch
from processor.config import Config
from processor.events import parse_sqs_event
from processor.spec import Size
from toolkit import dead_letters
from toolkit.throughput import Progress, RateLimiter

pytestmark = pytest.mark.slow

SOURCE, DEST = "inv-source", "inv-dest"
KEYS = ("original/a.jpg", "original/b/c.png", "original/d")  # d: no extension, the pixels decide
SIZES = (Size(32, 32), Size(16, 16))
MAX_SOURCE_BYTES = 20_000
MAX_RECEIVE = 5  # the template's MaxReceiveCount
PERMANENT = {"NotAnImage", "CorruptImage", "ImageTooLarge", "UnsupportedImage"}
EXAMPLES = int(os.environ.get("IMGPROC_INVARIANT_EXAMPLES", "25"))
# Shrinking a counterexample to the shortest program can take minutes: `make chaos` does it, `make test`
# reports the program as found (still a readable list of steps).
SHRINK = os.environ.get("IMGPROC_INVARIANT_SHRINK", "") == "1"


def _png(width: int, height: int) -> bytes:
    return imagegen.encode(imagegen.photo(width, height), "PNG")


# What an upload holds: (kind, bytes). "valid" renders; the others must end on the DLQ.
CONTENTS = st.sampled_from(["valid", "truncated", "text", "empty", "oversized"]).flatmap(
    lambda kind: st.tuples(st.just(kind), st.integers(8, 64), st.integers(8, 64))
)


def _bytes(kind: str, width: int, height: int, key: str) -> bytes:
    if kind == "valid":
        return _png(width, height) if key.endswith(".png") else imagegen.photo_jpeg(width, height)
    if kind == "truncated":
        return imagegen.photo_jpeg(width, height)[:200]
    if kind == "text":
        return b"<html>not an image</html>"
    if kind == "empty":
        return b""
    return imagegen.photo_jpeg(width, height) + b"\0" * MAX_SOURCE_BYTES  # over MAX_SOURCE_BYTES


class Pipeline(RuleBasedStateMachine):
    """The model: what each key holds now. The system: moto's S3 and SQS and the real handler."""

    def __init__(self) -> None:
        super().__init__()
        self.mock = mock_aws()
        self.mock.start()
        self.s3 = boto3.client("s3", region_name=REGION)  # the uploader's and the checks'
        self.function_s3 = boto3.client("s3", region_name=REGION)  # the handler's: faults go here
        self.sqs = boto3.client("sqs", region_name=REGION)
        for bucket in (SOURCE, DEST):
            self.s3.create_bucket(Bucket=bucket)
        self.dlq = self.sqs.create_queue(QueueName="inv-dlq")["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=self.dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE})
        self.queue = self.sqs.create_queue(QueueName="inv-ingest", Attributes={"RedrivePolicy": redrive})[
            "QueueUrl"
        ]
        self.config = Config(
            dest_bucket=DEST,
            source_bucket=SOURCE,
            sizes=SIZES,
            dlq_url=self.dlq,
            max_source_bytes=MAX_SOURCE_BYTES,
            concurrency=2,
        )
        self.current: dict[str, tuple[str, str]] = {}  # key -> (kind, etag) of the current version
        self.events: list[str] = []  # every S3 event body ever sent, for late and duplicate delivery
        self.pending: list[str] = []  # events S3 has not delivered yet
        self.faults: list[str] = []  # S3 operations that fail once each, next time they are called
        self.function_s3.meta.events.register("before-call.s3.*", self._fault)

    def teardown(self) -> None:
        self.mock.stop()

    # -- the system's edges ------------------------------------------------------------------------

    def _fault(self, model: Any, **_: Any) -> None:
        if model.name in self.faults:
            self.faults.remove(model.name)
            raise botocore.exceptions.ClientError(
                {
                    "Error": {"Code": "InternalError", "Message": "injected"},
                    "ResponseMetadata": {"HTTPStatusCode": 500},
                },
                model.name,
            )

    def _event(self, key: str, name: str) -> None:
        body = s3_body(s3_record(key, name, bucket=SOURCE))
        self.events.append(body)
        self.pending.append(body)

    # -- rules -------------------------------------------------------------------------------------

    @initialize()
    def nothing_yet(self) -> None:
        pass

    @rule(key=st.sampled_from(KEYS), content=CONTENTS)
    def upload(self, key: str, content: tuple[str, int, int]) -> None:
        kind, width, height = content
        etag = self.s3.put_object(Bucket=SOURCE, Key=key, Body=_bytes(kind, width, height, key))["ETag"]
        self.current[key] = (kind, etag.strip('"'))
        self._event(key, "ObjectCreated:Put")

    @precondition(lambda self: bool(self.current))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.current)))
        self.s3.delete_object(Bucket=SOURCE, Key=key)
        del self.current[key]
        self._event(key, "ObjectRemoved:Delete")

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def deliver_one_now(self, data: st.DataObject) -> None:
        """S3 delivers one pending event, not necessarily the oldest."""
        body = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))
        self.sqs.send_message(QueueUrl=self.queue, MessageBody=body)

    @precondition(lambda self: bool(self.events))
    @rule(data=st.data())
    def deliver_a_duplicate_or_stale_event(self, data: st.DataObject) -> None:
        body = data.draw(st.sampled_from(self.events))
        self.sqs.send_message(QueueUrl=self.queue, MessageBody=body)

    @precondition(lambda self: not self.faults)
    @rule(
        operation=st.sampled_from(["GetObject", "PutObject", "HeadObject", "DeleteObjects"]),
        times=st.integers(1, 2),
    )
    def inject_transient_fault(self, operation: str, times: int) -> None:
        """Fewer failures than MaxReceiveCount: retries must absorb them."""
        self.faults = [operation] * times

    @rule()
    def replay_the_dlq(self) -> None:
        depth = scan.queue_depth(self.sqs, self.dlq)
        scanner = scan.Scanner(
            self.sqs, self.dlq, wait_seconds=0, empty_polls=1, sent_before_ms=depth.cutoff_ms
        )
        report = moves.MoveReport(
            "replay", "inv-dlq", self.dlq, scan.Filters(), depth, destination=self.queue, max_replays=None
        )
        try:
            moves.replay(
                self.sqs,
                scanner,
                report,
                limiter=RateLimiter(None),
                now=datetime.now(UTC),
                progress=Progress("replay", stream=io.StringIO()),
            )
        finally:
            scanner.close()
        self.drain()

    @rule()
    def drain(self) -> None:
        """S3 delivers what is pending; the function works the queue off, failures retried by SQS."""
        while self.pending:
            self.sqs.send_message(QueueUrl=self.queue, MessageBody=self.pending.pop(0))
        for _ in range(200):
            received = self.sqs.receive_message(
                QueueUrl=self.queue,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                break
            self._invoke(received)
        else:
            raise AssertionError("the queue never drained")
        self.faults.clear()
        self.check_invariant()

    def _invoke(self, received: list[dict[str, Any]]) -> None:
        event = poller.lambda_event(received, "arn:aws:sqs:us-east-1:123456789012:inv-ingest", REGION)
        with contextlib.redirect_stdout(io.StringIO()):
            result = process_batch(
                parse_sqs_event(event),
                config=self.config,
                s3=self.function_s3,
                sqs=self.sqs,
                remaining_ms=lambda: 900_000,
                log=logs.get_logger("invariant"),
            )
        failed = {f["itemIdentifier"] for f in result.response()["batchItemFailures"]}
        for m in received:
            if m["MessageId"] in failed:  # back at once (a visibility timeout of 0), as after a short one
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
            else:
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])

    # -- the invariant -----------------------------------------------------------------------------

    def check_invariant(self) -> None:
        renditions = self._renditions()
        dead = self._dead_letters()
        for key in KEYS:
            kind, etag = self.current.get(key, ("absent", ""))
            found = renditions.get(key, {})
            if kind == "valid":
                assert len(found) == len(SIZES), (key, found)
                assert set(found.values()) == {etag}, (key, etag, found)
            else:
                assert found == {}, f"{key} is {kind} but still has renditions {found}"
            if kind not in ("valid", "absent"):
                assert dead.get(key), f"{key} is {kind} but not on the DLQ"
        for key, classes in dead.items():
            assert classes <= PERMANENT, f"{key} is on the DLQ as {classes}: a transient failure was lost"

    @invariant()
    def no_message_is_lost_in_flight(self) -> None:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["All"])["Attributes"]
        assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"

    def _renditions(self) -> dict[str, dict[str, str]]:
        """source key -> {rendition key: source-etag marker}."""
        found: dict[str, dict[str, str]] = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=DEST):
            for obj in page.get("Contents", []):
                meta = self.s3.head_object(Bucket=DEST, Key=obj["Key"])["Metadata"]
                source = "original/" + obj["Key"].split("/", 2)[2]
                source_key = next(k for k in KEYS if source == k or source.startswith(k + "."))
                found.setdefault(source_key, {})[obj["Key"]] = meta["source-etag"]
        return found

    def _dead_letters(self) -> dict[str, set[str]]:
        """source key -> error classes of its DLQ messages (read, then made visible again)."""
        found: dict[str, set[str]] = {}
        handles = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.dlq, MaxNumberOfMessages=10, VisibilityTimeout=60, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                break
            for m in batch:
                handles.append(m["ReceiptHandle"])
                for key in dead_letters.source_keys(m["Body"]):
                    found.setdefault(key, set()).add(dead_letters.error_class(m))
        for handle in handles:
            self.sqs.change_message_visibility(QueueUrl=self.dlq, ReceiptHandle=handle, VisibilityTimeout=0)
        return found


Pipeline.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[phase for phase in Phase if SHRINK or phase is not Phase.shrink],
)
TestReconcileInvariant = Pipeline.TestCase
