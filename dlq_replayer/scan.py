"""Walking a dead-letter queue: which messages a command selects, and reading them without losing any.

SQS has no "list": a queue is read by receiving, which hides each message for a visibility timeout.
:class:`Scanner` receives in rounds of up to 10 (system and message attributes included), hands out
each message once (SQS may deliver one twice), and keeps track of every message it holds hidden so
that all of them are made visible again (``ChangeMessageVisibility`` 0) unless the caller deleted
them, also when the command fails or is interrupted. Only message ids and receipt handles are kept,
never bodies, so memory stays small on a DLQ of many thousands.

Messages a command does not want are released at once. SQS then delivers them again; the second
time the scanner keeps them hidden until the end of the scan instead, so that a scan always ends (at
the first receive that brings nothing) and sees every message of the queue.

A scan that moves messages (replay, purge) takes only those that were on the queue when it started
(``sent_before_ms``): with the pipeline running, a replayed message that fails again is back on the
DLQ within milliseconds, and taking it again would replay the run's own output until ``--max-replays``
(or forever, with ``--force``). Such late arrivals are held until the end of the scan (so each is
received once), counted in :attr:`Scanner.late`, and left for the next run; a receive that brings
nothing else counts as empty, so that a steady stream of new failures cannot keep a scan alive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from toolkit import dead_letters, interrupts, queues
from toolkit.durations import format_duration
from toolkit.throughput import SQS_BATCH

MAX_VISIBILITY = 43200  # SQS limit, seconds
# Seconds a message read without consuming it (`imgproc explain`, `dlq replay --follow`) stays hidden
# should the reader die before releasing it: short, as the message is not being moved.
PEEK_VISIBILITY = 30
# The HTTP Date header has whole seconds: a run that started at 12:00:00.900 reads 12:00:00. Messages
# sent within that second count as present at the start; the run's own output among them is still
# recognised by its failure id (:func:`dead_letters.failure_id`).
DATE_RESOLUTION_MS = 1000
WAIT_SECONDS = 1  # long poll: an empty answer then means no visible message, not an unlucky sample
EMPTY_POLLS = 2  # consecutive empty receives that end a scan


@dataclass(frozen=True)
class Depth:
    """A queue's approximate counts when a command starts (for progress and the summary)."""

    visible: int
    in_flight: int
    retention_seconds: int | None
    # Messages sent after this (epoch ms) arrived after the command started: SQS's own clock from its
    # Date header, so that this machine's clock skew does not matter; this machine's when there is none.
    cutoff_ms: int = 0


def queue_depth(sqs: Any, url: str) -> Depth:
    attributes, response = queues.read_attributes(
        sqs, url, queues.VISIBLE, queues.IN_FLIGHT, queues.RETENTION
    )
    retention = attributes.get(queues.RETENTION)
    return Depth(
        queues.count(attributes, queues.VISIBLE),
        queues.count(attributes, queues.IN_FLIGHT),
        int(retention) if retention else None,
        _cutoff_ms(response),
    )


def _cutoff_ms(response: Mapping[str, Any]) -> int:
    """The end of the second in the response's HTTP ``Date`` header (epoch ms); now by this machine's
    clock when the header is missing or unreadable."""
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return int(parsedate_to_datetime(date).timestamp() * 1000) + DATE_RESOLUTION_MS
    except (TypeError, ValueError, IndexError):
        return int(time.time() * 1000)


def scan_warnings(depth: Depth, release_failures: list[str], visibility: int) -> list[str]:
    """What an operator must know about a scan's coverage: messages it could not see or release."""
    notes = []
    if depth.in_flight:
        notes.append(
            f"{depth.in_flight} message(s) were in flight when the scan started (another reader "
            "holds them): not read"
        )
    if release_failures:
        notes.append(
            f"{len(release_failures)} message(s) could not be released now; SQS shows them again "
            f"within {visibility} s"
        )
    return notes


@dataclass(frozen=True)
class Filters:
    """Which dead letters a command selects; an empty filter selects them all.

    Within one option the values are alternatives (any error class given, any key prefix given, any
    key given); the options combine (error class and key prefix and key and age). The key-prefix and
    key filters look at the S3 keys in the body (:func:`dead_letters.source_keys`, URL-decoded), so a
    message naming no key never matches one; ``--key`` is an exact match (``original/a.jpg`` does not
    select ``original/a.jpg.old``, as the prefix ``original/a.jpg`` would). Ages
    count from ``SentTimestamp``; a message without one never matches an age filter.
    """

    error_classes: tuple[str, ...] = ()
    key_prefixes: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()  # exact S3 keys
    older_than: float | None = None  # seconds
    newer_than: float | None = None

    @property
    def empty(self) -> bool:
        return (
            not (self.error_classes or self.key_prefixes or self.keys)
            and self.older_than is self.newer_than is None
        )

    def matches(self, message: Mapping[str, Any], now: datetime) -> bool:
        if self.error_classes:
            wanted = {c.lower() for c in self.error_classes}
            if dead_letters.error_class(message).lower() not in wanted:
                return False
        if (self.key_prefixes or self.keys) and not self._keys_match(message):
            return False
        if self.older_than is not None or self.newer_than is not None:
            age = dead_letters.age_seconds(message, now)
            if age is None:
                return False
            if self.older_than is not None and age < self.older_than:
                return False
            if self.newer_than is not None and age > self.newer_than:
                return False
        return True

    def _keys_match(self, message: Mapping[str, Any]) -> bool:
        """The message names a key under a given prefix (if any given) and a given key (if any)."""
        keys = dead_letters.source_keys(str(message.get("Body", "")))
        if self.key_prefixes and not any(key.startswith(self.key_prefixes) for key in keys):
            return False
        return not self.keys or not set(self.keys).isdisjoint(keys)

    def describe(self) -> str:
        """``error class NotAnImage or CorruptImage, older than 2h``; ``none`` when empty."""
        parts = []
        if self.error_classes:
            parts.append("error class " + " or ".join(self.error_classes))
        if self.key_prefixes:
            parts.append("key prefix " + " or ".join(self.key_prefixes))
        if self.keys:
            parts.append("key " + " or ".join(self.keys))
        if self.older_than is not None:
            parts.append(f"older than {format_duration(self.older_than)}")
        if self.newer_than is not None:
            parts.append(f"newer than {format_duration(self.newer_than)}")
        return ", ".join(parts) or "none"

    def to_json(self) -> dict[str, Any]:
        return {
            "error_classes": list(self.error_classes),
            "key_prefixes": list(self.key_prefixes),
            "keys": list(self.keys),
            "older_than_seconds": self.older_than,
            "newer_than_seconds": self.newer_than,
        }


@dataclass
class Scanner:
    """Receives a queue's messages once each and makes visible again every one it still holds.

    :meth:`rounds` yields lists of messages never seen before in this scan, each held hidden for
    ``visibility`` seconds. For each one, the caller either deletes it (then calls :meth:`deleted`),
    releases it now (:meth:`release`), or does nothing: it stays hidden until the caller calls
    :meth:`close` at the end of the scan (in a ``finally``: also on errors and Ctrl-C).
    """

    sqs: Any
    queue_url: str
    visibility: int = 120
    wait_seconds: int = field(default_factory=lambda: WAIT_SECONDS)
    empty_polls: int = field(default_factory=lambda: EMPTY_POLLS)
    sent_before_ms: int | None = None  # take only messages sent by then (see the module doc)
    stop: threading.Event | None = None  # set (by Ctrl-C): stop before the next receive
    late: int = 0  # messages sent after ``sent_before_ms``: held, not handed out
    release_failures: list[str] = field(default_factory=list)  # "message id: reason"
    _seen: set[str] = field(default_factory=set)
    _held: dict[str, str] = field(default_factory=dict)  # message id -> latest receipt handle

    def rounds(self, batch_size: Callable[[], int] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Rounds of new messages until ``empty_polls`` receives in a row bring nothing.

        ``batch_size()``, when given, caps each receive (a caller that needs 3 more asks for 3).
        A stop asked for (``stop``) raises ``KeyboardInterrupt`` before the next receive, never
        during one: every message SQS hid for this scan is then known, and :meth:`close` frees it.
        """
        empty = 0
        while empty < self.empty_polls:
            interrupts.check(self.stop)
            batch = self.receive(batch_size() if batch_size else dead_letters.MAX_RECEIVE)
            empty = 0 if batch is not None else empty + 1
            if batch:
                yield batch

    def receive(self, max_messages: int = dead_letters.MAX_RECEIVE) -> list[dict[str, Any]] | None:
        """One receive: the messages new to this scan (maybe none), or None when SQS gave nothing
        (or nothing but late arrivals)."""
        received = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(max_messages, dead_letters.MAX_RECEIVE)),
            VisibilityTimeout=self.visibility,
            WaitTimeSeconds=self.wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not received:
            return None
        fresh = []
        late = 0
        for message in received:
            message_id = message["MessageId"]
            self._held[message_id] = message["ReceiptHandle"]  # a repeat: only its latest handle works
            if message_id in self._seen:  # a repeat stays held until the end: no more repeats
                continue
            self._seen.add(message_id)
            if self._arrived_late(message):
                late += 1
            else:
                fresh.append(message)
        self.late += late
        return None if late == len(received) else fresh

    def _arrived_late(self, message: Mapping[str, Any]) -> bool:
        sent = dead_letters.sent_timestamp_ms(message)
        return self.sent_before_ms is not None and sent is not None and sent > self.sent_before_ms

    def deleted(self, batch: Iterable[Mapping[str, Any]]) -> None:
        for message in batch:
            self._held.pop(message["MessageId"], None)

    def release(self, batch: Iterable[Mapping[str, Any]]) -> int:
        """Make ``batch`` visible again now; returns how many SQS accepted."""
        handles = {}
        for message in batch:
            handle = self._held.pop(message["MessageId"], None)
            if handle is not None:
                handles[message["MessageId"]] = handle
        return self._release(handles)

    def close(self) -> int:
        """Release every message still held; returns how many SQS accepted."""
        handles, self._held = self._held, {}
        return self._release(handles)

    def _release(self, handles: Mapping[str, str]) -> int:
        items = list(handles.items())
        released = 0
        for start in range(0, len(items), SQS_BATCH):
            chunk = items[start : start + SQS_BATCH]
            entries = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                for i, (_, handle) in enumerate(chunk)
            ]
            try:
                response = self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:  # they reappear after `visibility` anyway
                self.release_failures += [f"{message_id}: {exc}" for message_id, _ in chunk]
                continue
            released += len(response.get("Successful", []))
            for bad in response.get("Failed", []):
                message_id = chunk[int(bad["Id"])][0]
                self.release_failures.append(f"{message_id}: {bad.get('Code')}: {bad.get('Message', '')}")
        return released


def rounds_until(
    scanner: Scanner, limit: int | None, matched: Callable[[], int], *, all_match: bool
) -> Iterator[list[dict[str, Any]]]:
    """``scanner``'s rounds, ending once ``matched()`` reaches ``limit`` (``--max``; None: no limit).
    When every message matches (``all_match``: no filters), each receive asks only for what the
    limit still needs, so that no more messages than that are hidden."""

    def batch_size() -> int:
        if limit is None or not all_match:
            return dead_letters.MAX_RECEIVE
        return min(dead_letters.MAX_RECEIVE, limit - matched())

    for batch in scanner.rounds(batch_size):
        yield batch
        if limit is not None and matched() >= limit:
            return
