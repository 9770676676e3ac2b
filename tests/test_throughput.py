"""Rate limiting, progress and per-entry batch sends for the operators' commands (moto's SQS)."""

from __future__ import annotations

import io
from typing import Any

from conftest import Aws

from dlq_replayer.throughput import Progress, RateLimiter, format_duration, send_batch


class FakeClock:
    """A clock the limiter sleeps on: time passes only when it sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_rate_limiter_spaces_operations() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        limiter.acquire(10)  # batches of 10 at 10/s: one per second
    assert clock.slept == 4.0


def test_unlimited_rate_never_sleeps() -> None:
    clock = FakeClock()
    limiter = RateLimiter(None, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        limiter.acquire(10)
    assert clock.slept == 0.0


def test_progress_line_has_rate_and_eta_and_is_silent_off_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress("replayed", total=100, stream=stream)
    progress.advance(40)
    line = progress.line()
    assert line.startswith("replayed: 40/100 (")
    assert "ETA " in line
    progress.close()
    assert stream.getvalue() == ""  # not a terminal: the caller prints a summary instead


def test_durations() -> None:
    assert [format_duration(s) for s in (5, 75, 3725)] == ["5s", "1m15s", "1h02m"]


def queue_depth(aws: Aws) -> int:
    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=aws.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_send_batch_reports_each_entry(aws: Aws) -> None:
    entries = [{"MessageBody": f"m{i}"} for i in range(3)]

    def reject_second(params: dict[str, Any], **_: Any) -> None:
        params["Entries"][1]["DelaySeconds"] = 1000  # SQS refuses this one entry (sender fault)

    aws.sqs.meta.events.register("provide-client-params.sqs.SendMessageBatch", reject_second)
    result = send_batch(aws.sqs, aws.queue_url, entries, sleep=lambda s: None)

    assert result.sent == [0, 2]
    assert list(result.failed) == [1]
    assert result.failed[1].startswith("InvalidParameterValue")
    assert queue_depth(aws) == 2


def test_a_refused_request_fails_every_entry(aws: Aws) -> None:
    bad_type = {"a": {"DataType": "Bogus", "StringValue": "v"}}
    result = send_batch(aws.sqs, aws.queue_url, [{"MessageBody": "x", "MessageAttributes": bad_type}])
    assert result.sent == []
    assert list(result.failed) == [0]
    assert queue_depth(aws) == 0


def test_an_unanswered_request_is_retried_then_reported(aws: Aws) -> None:
    import botocore.exceptions

    attempts = []

    def unreachable(**_: Any) -> None:
        attempts.append(1)
        raise botocore.exceptions.EndpointConnectionError(endpoint_url="https://sqs.invalid")

    aws.sqs.meta.events.register("before-call.sqs.SendMessageBatch", unreachable)
    result = send_batch(aws.sqs, aws.queue_url, [{"MessageBody": "x"}], attempts=3, sleep=lambda s: None)

    assert len(attempts) == 3
    assert result.sent == []
    assert result.failed[0].startswith("EndpointConnectionError")
    assert queue_depth(aws) == 0
