"""Rate limiting, progress and per-entry batch sends for the operators' commands (moto's SQS)."""

from __future__ import annotations

import io
from typing import Any

from conftest import Aws

from toolkit.durations import format_age
from toolkit.throughput import Backpressure, Progress, RateLimiter, send_batch


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


def test_progress_is_silent_off_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress("replayed", total=100, stream=stream, interval=0)
    progress.advance(40)
    assert progress.done == 40
    progress.close()
    assert stream.getvalue() == ""  # not a terminal: the caller prints a summary instead
    # On a terminal rich draws it: tests/test_terminal.py.


def test_durations() -> None:
    assert [format_age(s) for s in (5, 75, 3725)] == ["5s", "1m15s", "1h02m"]


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


def fill(aws: Aws, count: int) -> None:
    for start in range(0, count, 10):
        entries = [{"MessageBody": f"m{i}"} for i in range(start, min(start + 10, count))]
        assert send_batch(aws.sqs, aws.queue_url, entries).sent


def consume(aws: Aws, count: int) -> None:
    """What a consumer does: receive and delete ``count`` messages (at most 10)."""
    messages = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=count)["Messages"]
    entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
    assert not aws.sqs.delete_message_batch(QueueUrl=aws.queue_url, Entries=entries).get("Failed")


def count_depth_reads(aws: Aws) -> list[int]:
    reads: list[int] = []
    aws.sqs.meta.events.register("before-call.sqs.GetQueueAttributes", lambda **_: reads.append(1))
    return reads


def test_backpressure_holds_until_the_queue_drains_below_the_limit(aws: Aws) -> None:
    fill(aws, 25)
    gate = Backpressure(aws.sqs, aws.queue_url, 20, poll=0)
    seen: list[int | None] = []

    def consumers_progress() -> None:  # called each time the gate finds no room
        seen.append(gate.waiting)
        consume(aws, 10)

    assert gate.acquire(10, on_wait=consumers_progress)
    assert seen == [25]  # held back once, at the depth it read; then 15 waiting: room for a batch
    assert gate.waiting is None
    assert gate.waited_seconds > 0
    fill(aws, 10)  # the batch it let through: 25 waiting again, above the limit by less than a batch
    assert not gate.acquire(10, on_wait=gate.stop.set)  # its room is spent: it reads, and holds back


def test_backpressure_spends_the_room_it_read_before_reading_again(aws: Aws) -> None:
    reads = count_depth_reads(aws)
    gate = Backpressure(aws.sqs, aws.queue_url, 100, poll=0)
    for _ in range(10):
        assert gate.acquire(10)
        fill(aws, 10)
    assert len(reads) == 1  # one read for ten batches
    assert gate.acquire(10, on_wait=lambda: consume(aws, 10))  # full: read, wait, read again
    assert len(reads) == 3
    assert queue_depth(aws) == 90
    assert gate.waited_seconds > 0


def test_backpressure_gives_up_when_stopped_and_is_free_without_a_limit(aws: Aws) -> None:
    fill(aws, 10)
    gate = Backpressure(aws.sqs, aws.queue_url, 10, poll=0)
    assert not gate.acquire(10, on_wait=gate.stop.set)
    assert gate.waiting is None

    reads = count_depth_reads(aws)
    unlimited = Backpressure(aws.sqs, aws.queue_url, None)
    assert all(unlimited.acquire(10) for _ in range(100))
    assert reads == []
