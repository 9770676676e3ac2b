"""Taking messages off the DLQ without losing one: `imgproc dlq replay` and `imgproc dlq purge`.

A message is deleted from the DLQ only once it is safe elsewhere: replay deletes exactly the entries
that ``SendMessageBatch`` accepted on the ingest queue, purge deletes only what it has appended to an
fsynced archive. A failure between the two leaves a duplicate, never a gap (the handler reconciles,
so a duplicate costs a HEAD). Every message not deleted is made visible again by the scanner.
"""

from __future__ import annotations

import base64
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dlq_replayer.scan import Depth, Filters, Scanner, rounds_until, scan_warnings
from processor.dead_letter import ERROR_CLASS, ERROR_MESSAGE, FAILED_AT, ORIGINAL_MESSAGE_ID, REPLAY_COUNT
from toolkit import aws, dead_letters, interrupts
from toolkit.throughput import SQS_BATCH, Progress, RateLimiter, send_batch

DETAIL_LIMIT = 50  # messages listed by id per kind (refused, capped, ...); the counts are always exact
DRY_RUN_SAMPLES = 10
MAX_MESSAGE_ATTRIBUTES = 10  # SQS limit per message
MAX_BATCH_BYTES = 262_144  # SendMessageBatch limit: bodies and attributes of all entries together
NATIVE_MAX_RATE = 500  # StartMessageMoveTask's MaxNumberOfMessagesPerSecond limit
# Error codes with which an SQS look-alike says that it does not know an action.
_UNSUPPORTED_CODES = frozenset(
    {"NotImplemented", "InvalidAction", "UnsupportedOperation", "UnknownOperationException", "501"}
)

Message = dict[str, Any]  # as ReceiveMessage returns it through boto3


@dataclass
class Listing:
    """Messages of one kind (refused, capped, ...): the exact count, and the first few described."""

    count: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, message: Mapping[str, Any], reason: str, now: datetime) -> None:
        self.count += 1
        if len(self.items) < DETAIL_LIMIT:
            summary = dead_letters.summary(message, now)
            self.items.append(
                {
                    "message_id": summary["message_id"],
                    "error_class": summary["error_class"],
                    "keys": summary["keys"],
                    "replay_count": summary["replay_count"],
                    "reason": reason,
                }
            )

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "messages": self.items}


@dataclass
class MoveReport:
    """What ``replay`` or ``purge`` did (or, in a dry run, would do).

    ``scanned`` = ``matched`` + ``skipped``; of the matched, ``moved`` left the DLQ (replay: were
    sent), the ``capped`` and ``refused`` ones are still on it, and ``not_deleted`` lists moved
    messages whose delete failed (replay: now on both queues; purge: archived but still on the DLQ).
    """

    action: str  # "replay" or "purge"
    queue: str
    url: str
    filters: Filters
    depth: Depth
    dry_run: bool = False
    destination: str | None = None  # replay: the ingest queue's URL
    archive: str | None = None  # purge: the archive file, None with --no-archive
    limit: int | None = None
    rate: float | None = None
    max_replays: int | None = None  # None: no cap (purge, or replay --force)
    scanned: int = 0
    matched: int = 0
    skipped: int = 0  # did not match the filters: released at once
    moved: int = 0  # replayed or purged (dry run: would be)
    archived: int = 0  # purge: lines appended to the archive
    moved_by_error_class: Counter[str] = field(default_factory=Counter)
    capped: Listing = field(default_factory=Listing)  # replay-count reached --max-replays: left on the DLQ
    refused: Listing = field(default_factory=Listing)  # the send was refused: left on the DLQ
    not_deleted: Listing = field(default_factory=Listing)  # moved, but the delete failed: still on the DLQ
    samples: list[dict[str, Any]] = field(default_factory=list)  # dry run: some of what would move
    arrived_during_run: int = 0  # sent to the DLQ after the run started: left for the next run
    repeated: int = 0  # replay: another copy of a failure this run already replayed: left on the DLQ
    released: int = 0
    release_failures: list[str] = field(default_factory=list)
    stopped_at_max: bool = False
    interrupted: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Everything selected moved: nothing refused, capped, left behind, interrupted or failed."""
        left = self.refused.count or self.capped.count or self.not_deleted.count
        return not (left or self.interrupted or self.error)

    def moved_one(self, message: Mapping[str, Any], now: datetime) -> None:
        self.moved += 1
        self.moved_by_error_class[dead_letters.error_class(message)] += 1
        if self.dry_run and len(self.samples) < DRY_RUN_SAMPLES:
            self.samples.append(dead_letters.summary(message, now))

    def warnings(self, visibility: int) -> list[str]:
        return scan_warnings(self.depth, self.release_failures, visibility)

    def to_json(self, visibility: int) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "action": self.action,
            "dry_run": self.dry_run,
            "queue": self.queue,
            "url": self.url,
        }
        if self.action == "replay":
            doc.update(destination=self.destination, max_replays=self.max_replays)
        else:
            doc.update(archive=self.archive, archived=self.archived)
        doc.update(
            {
                "filters": self.filters.to_json(),
                "max": self.limit,
                "rate": self.rate,
                "visible_at_start": self.depth.visible,
                "in_flight_at_start": self.depth.in_flight,
                "scanned": self.scanned,
                "matched": self.matched,
                "skipped": self.skipped,
                "moved": self.moved,
                "moved_by_error_class": dict(self.moved_by_error_class.most_common()),
                "capped": self.capped.to_json(),
                "refused": self.refused.to_json(),
                "not_deleted": self.not_deleted.to_json(),
                "arrived_during_run": self.arrived_during_run,
                "repeated": self.repeated,
                "released": self.released,
                "stopped_at_max": self.stopped_at_max,
                "interrupted": self.interrupted,
                "error": self.error,
                "ok": self.ok,
                "warnings": self.warnings(visibility),
            }
        )
        if self.dry_run:
            doc["samples"] = self.samples
        return doc


def _rounds(scanner: Scanner, report: MoveReport) -> Iterator[list[Message]]:
    """The scanner's rounds, stopping once ``--max`` messages matched."""
    yield from rounds_until(scanner, report.limit, lambda: report.matched, all_match=report.filters.empty)
    report.stopped_at_max = report.limit is not None and report.matched >= report.limit


def _select(
    batch: Sequence[Message],
    report: MoveReport,
    now: datetime,
    progress: Progress,
    taken: set[str] | None = None,
) -> tuple[list[Message], list[Message]]:
    """Split a round into (selected, to release now); counts scanned, matched, skipped and capped.

    ``taken``, when given, holds the failure ids (:func:`dead_letters.failure_id`) selected so far in this
    run: a message of a failure already taken is neither selected nor released (it stays held until
    the scan ends and is counted as ``repeated``), so one run never sends one failure twice.
    """
    selected, release = [], []
    for message in batch:
        if report.limit is not None and report.matched >= report.limit:
            release.append(message)  # beyond --max: not looked at
            continue
        if taken is not None and dead_letters.failure_id(message) in taken:
            report.repeated += 1  # not scanned: the run's own output, or a copy of what it took
            continue
        report.scanned += 1
        progress.advance()
        if not report.filters.matches(message, now):
            report.skipped += 1
            release.append(message)
            continue
        report.matched += 1
        count = dead_letters.replay_count(message)
        if report.max_replays is not None and count >= report.max_replays:
            report.capped.add(message, f"replay-count {count} >= --max-replays {report.max_replays}", now)
            release.append(message)
            continue
        if taken is not None:
            taken.add(dead_letters.failure_id(message))
        selected.append(message)
    return selected, release


def _delete(
    sqs: Any, scanner: Scanner, report: MoveReport, batch: Sequence[Message], now: datetime
) -> list[Message]:
    """Delete ``batch`` (safe elsewhere by now) from the DLQ by receipt handle; returns the messages
    deleted. The others are listed as not deleted and stay held until the scan ends."""
    if not batch:
        return []
    entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
    try:
        response = sqs.delete_message_batch(QueueUrl=report.url, Entries=entries)
        failed = {
            int(bad["Id"]): f"{bad.get('Code')}: {bad.get('Message', '')}"
            for bad in response.get("Failed", [])
        }
    except (ClientError, BotoCoreError) as exc:
        failed = dict.fromkeys(range(len(batch)), str(exc))
    for index, reason in failed.items():
        report.not_deleted.add(batch[index], reason, now)
    deleted = [m for i, m in enumerate(batch) if i not in failed]
    scanner.deleted(deleted)
    return deleted


# ---------------------------------------------------------------------------------------------------
# replay


FAILURE_ATTRIBUTES = frozenset({ERROR_CLASS, ERROR_MESSAGE, FAILED_AT})


def _sendable(value: Mapping[str, Any]) -> dict[str, Any]:
    """A received message attribute value as SendMessage takes it (ReceiveMessage adds list fields)."""
    return {k: value[k] for k in ("DataType", "StringValue", "BinaryValue") if k in value}


def replay_entry(message: Mapping[str, Any]) -> dict[str, Any]:
    """The ``SendMessageBatch`` entry (without ``Id``) that puts ``message`` back: the same body, its
    message attributes with ``replay-count`` incremented, and the X-Ray trace header when there was one.

    The last failure's ``error-class``, ``error-message`` and ``failed-at`` are dropped: they describe
    the failure being replayed, and a replayed message that SQS later redrives must read as
    ``RetriesExhausted``, not as its old class. ``original-message-id`` stays, or is set to this
    message's id when SQS redrove it without one (and the message has room for one more attribute),
    so that a message back on the DLQ, by the handler or by SQS, names the first failure (and a
    replay run recognises its own output by it).
    """
    attributes: dict[str, Any] = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        if name in FAILURE_ATTRIBUTES:
            continue
        attributes[name] = _sendable(value)
    attributes[REPLAY_COUNT] = {
        "DataType": "Number",
        "StringValue": str(dead_letters.replay_count(message) + 1),
    }
    if ORIGINAL_MESSAGE_ID not in attributes and len(attributes) < MAX_MESSAGE_ATTRIBUTES:
        attributes[ORIGINAL_MESSAGE_ID] = {
            "DataType": "String",
            "StringValue": dead_letters.failure_id(message),
        }
    entry: dict[str, Any] = {"MessageBody": message["Body"], "MessageAttributes": attributes}
    trace = (message.get("Attributes") or {}).get("AWSTraceHeader")
    if trace:
        entry["MessageSystemAttributes"] = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace}}
    return entry


def entry_size(entry: Mapping[str, Any]) -> int:
    """Bytes SQS counts for an entry: the body plus each attribute's name, type and value."""
    size = len(str(entry["MessageBody"]).encode())
    for name, value in entry.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(value["DataType"].encode())
        size += len(str(value.get("StringValue", "")).encode()) + len(value.get("BinaryValue", b""))
    return size


def batches_of(
    pairs: Sequence[tuple[Message, dict[str, Any]]],
) -> Iterator[list[tuple[Message, dict[str, Any]]]]:
    """(message, entry) pairs in batches of at most 10 entries and :data:`MAX_BATCH_BYTES`."""
    batch: list[tuple[Message, dict[str, Any]]] = []
    size = 0
    for pair in pairs:
        pair_size = entry_size(pair[1])
        if batch and (len(batch) == SQS_BATCH or size + pair_size > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(pair)
        size += pair_size
    if batch:
        yield batch


def replay(
    sqs: Any,
    scanner: Scanner,
    report: MoveReport,
    *,
    limiter: RateLimiter,
    now: datetime,
    progress: Progress,
    on_sent: Callable[[Message], None] | None = None,
) -> None:
    """Send the selected messages to ``report.destination``; delete from the DLQ exactly those SQS took.
    ``on_sent`` is told of each message SQS accepted (``--follow`` follows them).

    Each failure is sent at most once per run (see :func:`_select`), and only messages that were on
    the DLQ when the run started are taken (the scanner's ``sent_before_ms``).
    """
    assert report.destination is not None
    taken: set[str] = set()
    for batch in _rounds(scanner, report):
        selected, release = _select(batch, report, now, progress, taken)
        pairs = []
        for message in selected:
            entry = replay_entry(message)
            if len(entry["MessageAttributes"]) > MAX_MESSAGE_ATTRIBUTES:
                reason = f"would carry {len(entry['MessageAttributes'])} message attributes (SQS allows 10)"
                report.refused.add(message, reason, now)
                release.append(message)
            else:
                pairs.append((message, entry))
        scanner.release(release)
        if report.dry_run:
            for message, _ in pairs:  # stays hidden until the end of the scan, so it is counted once
                report.moved_one(message, now)
            continue
        for chunk in batches_of(pairs):
            interrupts.check(scanner.stop)  # the rest of the round stays held and is released
            limiter.acquire(len(chunk))  # cut short by Ctrl-C (see dlq._limiter): check again
            interrupts.check(scanner.stop)
            result = send_batch(sqs, report.destination, [entry for _, entry in chunk])
            for index, reason in result.failed.items():
                report.refused.add(chunk[index][0], reason, now)
            scanner.release(chunk[i][0] for i in result.failed)
            sent = [chunk[i][0] for i in result.sent]
            for message in sent:  # on the ingest queue now: replayed, even if the delete below fails
                report.moved_one(message, now)
                if on_sent is not None:
                    on_sent(message)
            _delete(sqs, scanner, report, sent, now)


# ---------------------------------------------------------------------------------------------------
# purge


def archive_record(message: Mapping[str, Any]) -> dict[str, Any]:
    """One archive line: the message as received (binary attribute values base64-encoded)."""
    attributes = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        kept = _sendable(value)
        if isinstance(kept.get("BinaryValue"), bytes | bytearray):
            kept["BinaryValue"] = base64.b64encode(kept["BinaryValue"]).decode("ascii")
        attributes[name] = kept
    return {
        "MessageId": message["MessageId"],
        "Body": message["Body"],
        "MessageAttributes": attributes,
        "Attributes": dict(message.get("Attributes") or {}),
    }


class Archive:
    """A JSON Lines file that purged messages are appended to, durably, before they are deleted.

    Appending never overwrites: several purges may share one archive. The file is created only when
    there is something to write, readable by its owner only.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0
        self._file: Any = None

    def write(self, batch: Sequence[Mapping[str, Any]]) -> None:
        """Append ``batch`` and fsync: once this returns, the lines survive a crash or a power cut."""
        if self._file is None:
            created = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._file = os.fdopen(fd, "a", encoding="utf-8")
            if created:  # make the new directory entry durable too
                directory = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(directory)
                finally:
                    os.close(directory)
        for message in batch:
            self._file.write(json.dumps(archive_record(message), ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.written += len(batch)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def purge(
    sqs: Any,
    scanner: Scanner,
    report: MoveReport,
    *,
    archive: Archive | None,
    limiter: RateLimiter,
    now: datetime,
    progress: Progress,
) -> None:
    """Delete the selected messages, each first appended to ``archive`` (unless None)."""
    for batch in _rounds(scanner, report):
        selected, release = _select(batch, report, now, progress)
        scanner.release(release)
        if report.dry_run:
            for message in selected:
                report.moved_one(message, now)
            continue
        for start in range(0, len(selected), SQS_BATCH):
            chunk = selected[start : start + SQS_BATCH]
            interrupts.check(scanner.stop)
            limiter.acquire(len(chunk))  # cut short by Ctrl-C: checked again before anything is written
            interrupts.check(scanner.stop)
            if archive is not None:
                archive.write(chunk)  # fsynced: only now may they go
                report.archived += len(chunk)
            for message in _delete(sqs, scanner, report, chunk, now):
                report.moved_one(message, now)


# ---------------------------------------------------------------------------------------------------
# replay --native


class NativeUnsupported(RuntimeError):
    """The endpoint has no ``StartMessageMoveTask`` (e.g. the embedded AWS)."""


def _unsupported(exc: ClientError, endpoint_url: str | None) -> bool:
    error = exc.response.get("Error", {})
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if status == 501 or error.get("Code") in _UNSUPPORTED_CODES:
        return True
    # A look-alike on this machine answers an action it lacks with a bare 500 (moto's server does).
    return status == 500 and aws.is_local_endpoint(endpoint_url)


def native_move(
    sqs: Any, source_arn: str, destination_arn: str, rate: int | None, endpoint_url: str | None
) -> str:
    """Start SQS's own move of every message of ``source_arn`` to ``destination_arn``; returns the task
    handle. :class:`NativeUnsupported` when the endpoint does not implement it."""
    params: dict[str, Any] = {"SourceArn": source_arn, "DestinationArn": destination_arn}
    if rate is not None:
        params["MaxNumberOfMessagesPerSecond"] = rate
    try:
        return str(sqs.start_message_move_task(**params)["TaskHandle"])
    except NotImplementedError as exc:  # moto in-process
        raise NativeUnsupported(str(exc)) from None
    except ClientError as exc:
        if _unsupported(exc, endpoint_url):
            raise NativeUnsupported(str(exc)) from None
        raise
