"""The DLQ commands' test kit: the deployed stack's two queues, seen from outside, and the CLI run
in-process. Shared by the DLQ test modules; fixtures live in conftest."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import s3_body, s3_record

from imgproc import cli
from processor import dead_letter
from processor.errors import ProcessingError
from processor.events import SqsMessage


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


def run_dlq(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["dlq", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run_dlq(capsys, *args, "--json")
    assert "Traceback" not in err
    return code, json.loads(out)
