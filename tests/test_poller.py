"""The poller's Lambda semantics, against moto's SQS: the event it builds and what it deletes."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from conftest import LAMBDA_SQS_RECORD_KEYS, Aws

from imgproc import faults, poller
from imgproc.worker import outcome_counts
from observability.outcomes import Outcome
from processor.batch import BatchResult, MessageOutcome, MessageStatus, RecordReport
from toolkit.function import FunctionConfig

FUNCTION = FunctionConfig(
    name="fn",
    arn="arn:aws:lambda:us-east-1:123456789012:function:fn",
    timeout_seconds=30,
    memory_mb=1769,
    environment={},
)


def mapping(aws: Aws, **changes: Any) -> poller.Mapping:
    arn = aws.sqs.get_queue_attributes(QueueUrl=aws.queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    values = {
        "endpoint_url": "",
        "region": "us-east-1",
        "queue_url": aws.queue_url,
        "queue_arn": arn,
        "batch_size": 10,
        "window_seconds": 0.0,
        "function": FUNCTION,
        **changes,
    }
    return poller.Mapping(**values)


def send(aws: Aws, *bodies: str) -> list[str]:
    return [
        aws.sqs.send_message(
            QueueUrl=aws.queue_url,
            MessageBody=body,
            MessageAttributes={"replay-count": {"DataType": "Number", "StringValue": "1"}},
        )["MessageId"]
        for body in bodies
    ]


def depth(aws: Aws) -> tuple[int, int]:
    attrs = aws.sqs.get_queue_attributes(
        QueueUrl=aws.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_the_event_is_shaped_like_lambdas(aws: Aws) -> None:
    (message_id,) = send(aws, '{"a": 1}')
    m = mapping(aws)
    (message,) = poller.receive_batch(aws.sqs, m, wait_seconds=0)

    (record,) = poller.lambda_event([message], m.queue_arn, "us-east-1")["Records"]

    assert set(record) == LAMBDA_SQS_RECORD_KEYS
    assert record["messageId"] == message_id
    assert record["body"] == '{"a": 1}'
    assert record["md5OfBody"] == hashlib.md5(b'{"a": 1}').hexdigest()
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == m.queue_arn
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"] == {
        "replay-count": {
            "stringValue": "1",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "Number",
        }
    }


def test_a_batch_fills_up_to_the_batch_size(aws: Aws) -> None:
    send(aws, *(f"m{i}" for i in range(7)))
    assert len(poller.receive_batch(aws.sqs, mapping(aws, batch_size=5), wait_seconds=0)) == 5


MESSAGES = [{"MessageId": "a"}, {"MessageId": "b"}, {"MessageId": "c"}]


@pytest.mark.parametrize(
    ("response", "deleted", "failed"),
    [
        ({"batchItemFailures": []}, ["a", "b", "c"], []),
        (None, ["a", "b", "c"], []),
        ({}, ["a", "b", "c"], []),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, ["a", "c"], ["b"]),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, [], ["a", "b", "c"]),  # unknown id: all fail
        ({"batchItemFailures": [{"wrong": "b"}]}, [], ["a", "b", "c"]),  # malformed: all fail
        ("not a dict", [], ["a", "b", "c"]),
    ],
)
def test_settle_follows_lambdas_partial_batch_rules(
    response: Any, deleted: list[str], failed: list[str]
) -> None:
    done, failures = poller.settle(MESSAGES, response)
    assert [m["MessageId"] for m in done] == deleted
    assert failures == failed


def test_only_succeeded_messages_are_deleted(aws: Aws) -> None:
    ids = send(aws, "ok-1", "fail", "ok-2")
    m = mapping(aws)
    messages = poller.receive_batch(aws.sqs, m, wait_seconds=0)
    failing = ids[1]

    report = poller.run_batch(
        aws.sqs, m, messages, lambda event: {"batchItemFailures": [{"itemIdentifier": failing}]}
    )

    assert (report.received, report.deleted, report.failed) == (3, 2, 1)
    assert depth(aws) == (0, 1)  # the failure stays invisible until its visibility timeout


def test_a_handler_exception_fails_the_whole_batch(aws: Aws) -> None:
    send(aws, "x", "y")
    m = mapping(aws)

    def crash(event: dict[str, Any]) -> Any:
        raise RuntimeError("boom")

    report = poller.run_batch(aws.sqs, m, poller.receive_batch(aws.sqs, m, wait_seconds=0), crash)

    assert report.batch_error == "RuntimeError: boom"
    assert (report.deleted, report.failed) == (0, 2)
    assert depth(aws) == (0, 2)


def test_running_past_the_timeout_fails_the_batch(aws: Aws) -> None:
    send(aws, "x")
    short = FunctionConfig(name="fn", arn="", timeout_seconds=0, memory_mb=128, environment={})
    m = mapping(aws, function=short)

    def slow(event: dict[str, Any]) -> Any:
        time.sleep(0.01)
        return {"batchItemFailures": []}

    report = poller.run_batch(aws.sqs, m, poller.receive_batch(aws.sqs, m, wait_seconds=0), slow)

    assert report.batch_error == "Task timed out after 0 seconds"
    assert report.deleted == 0


def test_retry_after_brings_failures_back_sooner(aws: Aws) -> None:
    (failing,) = send(aws, "x")
    m = mapping(aws)
    messages = poller.receive_batch(aws.sqs, m, wait_seconds=0)

    poller.run_batch(
        aws.sqs,
        m,
        messages,
        lambda event: {"batchItemFailures": [{"itemIdentifier": failing}]},
        retry_after=0,
    )

    assert depth(aws) == (1, 0)


def test_fault_rules_parse() -> None:
    assert faults.parse("s3.GetObject@flaky=2, s3.*=0.5 ,sqs.SendMessage=*") == [
        faults.Rule("s3.GetObject", "flaky", 2, None),
        faults.Rule("s3.*", None, None, 0.5),
        faults.Rule("sqs.SendMessage", None, None, None),
    ]
    for bad in ("GetObject=1", "s3.GetObject", "s3.GetObject=often", "s3.GetObject=1.5"):
        with pytest.raises(ValueError, match="fault rule"):
            faults.parse(bad)


def test_injected_faults_fail_real_calls_as_specified(aws: Aws) -> None:
    aws.s3.put_object(Bucket="imgproc-source", Key="original/flaky.jpg", Body=b"x")
    aws.s3.put_object(Bucket="imgproc-source", Key="original/fine.jpg", Body=b"x")
    injector = faults.Injector(faults.parse("s3.GetObject@flaky=2"))
    faults.attach(injector, aws.s3)

    for _ in range(2):
        with pytest.raises(aws.s3.exceptions.ClientError, match="SlowDown"):
            aws.s3.get_object(Bucket="imgproc-source", Key="original/flaky.jpg")
    assert aws.s3.get_object(Bucket="imgproc-source", Key="original/flaky.jpg")["Body"].read() == b"x"
    assert aws.s3.get_object(Bucket="imgproc-source", Key="original/fine.jpg")["Body"].read() == b"x"
    assert injector.injected == 2


def test_a_worker_counts_settled_outcomes_from_the_batch_result() -> None:
    # What `imgproc up` shows per outcome: one per record whose fate is settled; a retry counts per
    # message (`retried`, from the batch's failures), not here.
    result = BatchResult(
        [
            MessageOutcome(
                "a", MessageStatus.OK, [RecordReport(Outcome.RENDERED), RecordReport(Outcome.SKIPPED)]
            ),
            MessageOutcome(
                "b", MessageStatus.FAILED, [RecordReport(Outcome.RENDERED), RecordReport(Outcome.RETRY, "X")]
            ),
            MessageOutcome(
                "c", MessageStatus.DEAD_LETTERED, [RecordReport(Outcome.DEAD_LETTERED, "CorruptImage")]
            ),
            MessageOutcome(
                "d", MessageStatus.OK, [RecordReport(Outcome.IGNORED), RecordReport(Outcome.DELETED)]
            ),
        ]
    )
    assert outcome_counts(result) == {
        "rendered": 2,
        "skipped": 1,
        "dead-lettered": 1,
        "ignored": 1,
        "deleted": 1,
    }
