"""`imgproc status`: is the pipeline keeping up, and what has been failing?

For the ingest queue: messages waiting (visible), being processed (in flight), delayed, and the age of
the oldest one as CloudWatch last reported it (``AWS/SQS ApproximateAgeOfOldestMessage``; the embedded
AWS publishes no such metric, so it is "unknown" there). For the dead-letter queue: its depth, and a
non-destructive peek at up to 10 messages for the age of the oldest and the most recent failures.

The ingest queue is never received from: even a peek increments receive counts, which would push its
messages towards the DLQ. Peeking the DLQ, which has no redrive policy, only bumps a counter.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from rich.live import Live

from imgproc import boundary
from toolkit import aws, dead_letters
from toolkit.durations import format_age
from toolkit.errors import StackNotFound
from toolkit.options import positive
from toolkit.queues import queue_counts
from toolkit.stack import Output, read_outputs
from toolkit.tables import clip
from toolkit.terminal import Block, Table, group, live, show

RECENT_FAILURES = 5
PEEK = dead_letters.MAX_RECEIVE
AGE_METRIC_WINDOW = timedelta(minutes=5)
_MESSAGE_WIDTH = 60
_KEYS_WIDTH = 40


@dataclass
class QueueStatus:
    name: str
    url: str
    visible: int  # ApproximateNumberOfMessages
    in_flight: int  # ApproximateNumberOfMessagesNotVisible
    delayed: int  # ApproximateNumberOfMessagesDelayed
    oldest_age_seconds: float | None = None  # None: unknown
    depth: int = field(init=False)

    def __post_init__(self) -> None:
        self.depth = self.visible + self.in_flight + self.delayed


@dataclass
class Status:
    stack: str
    region: str
    checked_at: str
    ingest: QueueStatus
    dlq: QueueStatus
    dlq_peeked: int  # messages the DLQ figures (oldest age, failures) are computed from
    recent_failures: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["dlq"]["peeked"] = doc.pop("dlq_peeked")
        return doc


def _now() -> datetime:
    return datetime.now(UTC)


def oldest_age_metric(cloudwatch: Any, queue_name: str, now: datetime) -> float | None:
    """The latest ``ApproximateAgeOfOldestMessage`` Maximum of the last 5 minutes, or None without one."""
    datapoints = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": queue_name}],
        StartTime=now - AGE_METRIC_WINDOW,
        EndTime=now,
        Period=60,
        Statistics=["Maximum"],
    ).get("Datapoints", [])
    if not datapoints:
        return None
    return float(max(datapoints, key=lambda d: d["Timestamp"])["Maximum"])


def collect(args: argparse.Namespace) -> Status:
    """Everything `status` shows, read from the stack at ``args``' endpoint."""
    outputs = read_outputs(
        aws.client(args, "cloudformation"),
        args.stack_name,
        required=(Output.QUEUE_URL, Output.QUEUE_ARN, Output.DLQ_URL, Output.DLQ_ARN),
    )
    sqs = aws.client(args, "sqs")
    now = _now()
    warnings = []

    ingest = QueueStatus(outputs.queue_name, outputs.queue_url, *queue_counts(sqs, outputs.queue_url))
    try:
        ingest.oldest_age_seconds = oldest_age_metric(aws.client(args, "cloudwatch"), ingest.name, now)
    except (ClientError, BotoCoreError) as exc:  # e.g. not allowed cloudwatch:GetMetricStatistics
        warnings.append(f"oldest ingest message age unknown: CloudWatch said {exc}")

    dlq_url = outputs.dlq_url
    dlq = QueueStatus(outputs.dlq_name, dlq_url, *queue_counts(sqs, dlq_url))
    peeked = dead_letters.peek(sqs, dlq_url, PEEK, expected=dlq.visible)
    ages = [a for a in (dead_letters.age_seconds(m, now) for m in peeked) if a is not None]
    dlq.oldest_age_seconds = round(max(ages), 3) if ages else None
    failures = [dead_letters.summary(m, now) for m in dead_letters.newest_first(peeked)[:RECENT_FAILURES]]
    return Status(
        stack=args.stack_name,
        region=args.region,
        checked_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        ingest=ingest,
        dlq=dlq,
        dlq_peeked=len(peeked),
        recent_failures=failures,
        warnings=warnings,
    )


def render(status: Status) -> list[Block]:
    """The human form: queue table, then recent failures (drawn by rich on a terminal)."""
    dlq = status.dlq
    dlq_age = format_age(dlq.oldest_age_seconds)
    if dlq.oldest_age_seconds is not None and status.dlq_peeked < dlq.depth:
        dlq_age = f">={dlq_age} ({status.dlq_peeked} sampled)"
    lines: list[Block] = [f"stack {status.stack} ({status.region}) at {status.checked_at}", ""]
    queues = Table(
        ["queue", "visible", "in flight", "delayed", "oldest"],
        [
            [
                "ingest",
                str(status.ingest.visible),
                str(status.ingest.in_flight),
                str(status.ingest.delayed),
                format_age(status.ingest.oldest_age_seconds),
            ],
            ["dead-letter", str(dlq.visible), str(dlq.in_flight), str(dlq.delayed), dlq_age],
        ],
        right=(1, 2, 3),
    )
    lines += [queues, ""]
    if not status.recent_failures:
        lines.append("recent failures: none" if dlq.depth == 0 else "recent failures: none visible right now")
    else:
        shown = len(status.recent_failures)
        lines.append(f"recent failures ({shown} of {dlq.depth} on the DLQ, newest first)")
        rows = []
        for failure in status.recent_failures:
            # Redriven messages carry no failed-at: their (original) send time is the best there is.
            sent = failure["sent_at"]
            when = failure["failed_at"] or (sent[:19] + "Z" if sent else "-")
            keys = failure["keys"]
            keys_cell = keys[0] + (f" (+{len(keys) - 1})" if len(keys) > 1 else "") if keys else "-"
            rows.append(
                [
                    when,
                    failure["error_class"],
                    clip(keys_cell, _KEYS_WIDTH),
                    clip(failure["error_message"] or "-", _MESSAGE_WIDTH),
                ]
            )
        lines.append(Table(["failed at", "error class", "key", "error message"], rows, indent=2))
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "The ingest queue's oldest age is CloudWatch's latest ApproximateAgeOfOldestMessage (unknown without "
        "one); the DLQ's comes from a peek at up to 10 of its messages, which leaves them there. Exit "
        "status: 0; 1 when the stack or AWS cannot be read (with --watch: only when the first read "
        "fails); 2 bad options."
    )
    aws.add_arguments(parser)
    parser.add_argument(
        "--watch",
        type=positive(float),
        metavar="SECONDS",
        help="refresh every SECONDS until Ctrl-C (with --json: one object per line)",
    )


def run(args: argparse.Namespace) -> int:
    # --watch on a terminal: one display redrawn in place; elsewhere (and with --json) one print a read.
    display = live(sys.stdout) if args.watch is not None and not args.json else None
    first = True
    with display or contextlib.nullcontext():
        try:
            while True:
                try:
                    status = collect(args)
                except (StackNotFound, ClientError, BotoCoreError) as exc:
                    # Caught here rather than by the error boundary: --watch carries on after a failure.
                    print(f"imgproc status: {boundary.describe(exc)[0]}", file=sys.stderr, flush=True)
                    if first or args.watch is None:
                        return 1
                else:
                    _show(status, args, display)
                first = False
                if args.watch is None:
                    return 0
                time.sleep(args.watch)
        except KeyboardInterrupt:
            return 0


def _show(status: Status, args: argparse.Namespace, display: Live | None) -> None:
    for warning in status.warnings:
        print(f"imgproc status: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(status.to_json()), flush=True)
    elif display is not None:
        display.update(group(render(status)), refresh=True)
    else:
        show(render(status), sys.stdout)
