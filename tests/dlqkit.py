"""The DLQ commands' test kit: the deployed stack's two queues, seen from outside, and the CLI run
in-process, and a pipeline that runs the function on what reaches the ingest queue. Shared by the DLQ
test modules; fixtures live in conftest."""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from conftest import REGION, s3_body, s3_record

from imgproc import cli, poller
from observability import logs
from processor import dead_letter
from processor.batch import process_batch
from processor.config import Config
from processor.errors import ProcessingError
from processor.events import SqsMessage, parse_sqs_event

CORRUPT = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8  # a JPEG header, then noise: CorruptImage


@dataclass
class Stack:
    outputs: dict[str, str]
    sqs: Any

    @property
    def ingest(self) -> str:
        return self.outputs["QueueUrl"]

    @property
    def dlq(self) -> str:
        return self.outputs["DeadLetterQueueUrl"]

    def depth(self, url: str) -> tuple[int, int]:
        """(visible, in flight) of the queue at ``url``."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def counts(self) -> dict[str, tuple[int, int]]:
        return {"ingest": self.depth(self.ingest), "dlq": self.depth(self.dlq)}

    def snapshot(self, url: str) -> dict[str, dict[str, Any]]:
        """Every message on ``url`` by id (body, message attributes), then made visible again."""
        found: dict[str, dict[str, Any]] = {}
        handles = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                break
            for m in batch:
                found[m["MessageId"]] = {
                    "Body": m["Body"],
                    "MessageAttributes": m.get("MessageAttributes", {}),
                }
                handles.append(m["ReceiptHandle"])
        for start in range(0, len(handles), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(handles[start : start + 10])
            ]
            self.sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
        return found

    def dead_letter(
        self, key: str, error: ProcessingError, replay_count: int = 0, original_id: str | None = None
    ) -> None:
        """What the handler writes for a permanent failure (processor.dead_letter.send) of the ingest
        message ``original_id`` (a new one by default)."""
        message = SqsMessage(
            original_id or str(uuid.uuid4()),
            s3_body(s3_record(key)),
            receive_count=1,
            replay_count=replay_count,
        )
        dead_letter.send(self.sqs, self.dlq, message, error)
        time.sleep(0.002)  # distinct SentTimestamps

    def redriven(self, *keys: str, **attributes: dict[str, Any]) -> None:
        """What SQS's redrive leaves on the DLQ: the ingest message as it was (S3 sends no attributes)."""
        extra = {"MessageAttributes": attributes} if attributes else {}
        self.sqs.send_message(QueueUrl=self.dlq, MessageBody=s3_body(*(s3_record(k) for k in keys)), **extra)
        time.sleep(0.002)


class Pipeline:
    """The function consuming the ingest queue, run right after each batch the CLI sends to it: the
    fastest a real pipeline could turn a replay around."""

    def __init__(self, stack: Stack, config: Config | None = None) -> None:
        self.stack = stack
        self.s3 = boto3.client("s3", region_name=REGION)
        self.config = config or Config(
            dest_bucket=stack.outputs["DestinationBucketName"],
            source_bucket=stack.outputs["SourceBucketName"],
            dlq_url=stack.dlq,
            concurrency=1,
        )
        self.renders = 0
        self.records = 0

    def put(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.config.source_bucket, Key=key, Body=data)

    def notify(self, key: str) -> None:
        """The S3 event of ``key`` on the ingest queue."""
        body = s3_body(s3_record(key, bucket=self.config.source_bucket or ""))
        self.stack.sqs.send_message(QueueUrl=self.stack.ingest, MessageBody=body)

    def drain(self, **_: Any) -> None:
        sqs = self.stack.sqs
        while True:
            received = sqs.receive_message(
                QueueUrl=self.stack.ingest,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                return
            event = poller.lambda_event(received, self.stack.outputs["QueueArn"], REGION)
            with contextlib.redirect_stdout(io.StringIO()):  # its log lines, not the CLI's output
                result = process_batch(
                    parse_sqs_event(event),
                    config=self.config,
                    s3=self.s3,
                    sqs=sqs,
                    remaining_ms=lambda: 900_000,
                    log=logs.get_logger("pipeline"),
                )
            for report in result.records():
                self.records += 1
                self.renders += report.outcome == "rendered"
            failed = {f["itemIdentifier"] for f in result.response()["batchItemFailures"]}
            done = [m for m in received if m["MessageId"] not in failed]
            for m in done:
                sqs.delete_message(QueueUrl=self.stack.ingest, ReceiptHandle=m["ReceiptHandle"])


def run_dlq(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["dlq", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run_dlq(capsys, *args, "--json")
    assert "Traceback" not in err
    return code, json.loads(out)
