"""`imgproc dlq replay --follow`: after the replay, follow each replayed key to its outcome.

Once the stack's outputs and the function's configuration are read (before the replay), only S3 and SQS
are, so it works against AWS and the embedded AWS alike. In rounds, until every key's outcome is
known or ``--follow-timeout`` passes:

1. a bounded read of the DLQ (at most :data:`DLQ_RECEIVES` receives of 10, each message hidden for
   :data:`~dlq_replayer.scan.PEEK_VISIBILITY` seconds and made visible again as soon as the round's
   receives are done: nothing is consumed). A message is one of ours when it carries the
   ``original-message-id`` of a failure this run replayed with at least the ``replay-count`` the
   replay gave it (an older copy of the same failure, left on the DLQ, has a lower one), or, lacking
   that, when it arrived after the replay started and names a replayed key. Such a key has failed
   again: no HEAD is needed;
2. HEADs of the source and of its renditions for the keys still pending (at most
   :data:`KEYS_PER_ROUND` a round, on :data:`HEAD_THREADS` threads), with the handler's own key
   mapping and markers (:mod:`toolkit.renditions`, as `imgproc explain` looks at a key);
3. :func:`dlq_replayer.outcomes.classify` says what that means; a final outcome stops the key's HEADs;
4. a pause growing from :data:`FIRST_PAUSE` to :data:`MAX_PAUSE` seconds.

Ctrl-C stops between calls (:mod:`toolkit.interrupts`); the report then says what is known.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO

from dlq_replayer.outcomes import Observation, Outcome, Verdict, classify
from dlq_replayer.scan import PEEK_VISIBILITY, Scanner
from processor import storage
from processor.config import Config
from processor.errors import InvalidEvent
from processor.events import parse_body
from processor.renditions import ignore_reason
from toolkit import aws, dead_letters, interrupts
from toolkit.dead_letters import DeadLetter
from toolkit.function import load_deployment
from toolkit.renditions import Candidate, observe_renditions
from toolkit.stack import Output
from toolkit.terminal import Block, group, live

DEFAULT_TIMEOUT = 300.0  # seconds: --follow-timeout's default (5m)
MAX_TIMEOUT = 43_200.0  # 12h: longer than any redrive of a replayed message by SQS
FIRST_PAUSE = 1.0  # seconds between the first rounds
MAX_PAUSE = 15.0
PAUSE_GROWTH = 1.5
HEAD_THREADS = 4
KEYS_PER_ROUND = 200  # keys HEADed per round at most; the others wait for the next rounds, in turn
DLQ_RECEIVES = 5  # receives of up to 10 DLQ messages per round
LISTED = 50  # keys listed per outcome in the human summary (--json has them all)
LINE_INTERVAL = 2.0  # off a terminal: at most one tally line per this many seconds (the last always)


@dataclass(frozen=True)
class Target:
    """Where a replayed key's outcome shows: the source bucket, the DLQ, the function's configuration."""

    source_bucket: str
    dlq_url: str
    config: Config


def resolve(args: argparse.Namespace, dlq_url: str) -> Target:
    """The target, read before anything moves: a stack or function that cannot be read stops the
    command before the replay (:class:`~toolkit.function.FunctionConfigError`: the follow could not
    tell a rendition's marker)."""
    deployed = load_deployment(
        aws.client(args, "cloudformation"),
        aws.client(args, "lambda"),
        args.stack_name,
        (Output.SOURCE_BUCKET, Output.FUNCTION_NAME),
    )
    return Target(deployed.source_bucket, dlq_url, deployed.config)


@dataclass
class Item:
    """One followed key (or a replayed message naming none, ``key`` None: only the DLQ can tell)."""

    key: str | None
    failure_ids: set[str]
    ignored: str | None = None  # why the handler ignores this key (processor.renditions.ignore_reason)
    verdict: Verdict = field(default_factory=lambda: Verdict(Outcome.PENDING))

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "failure_ids": sorted(self.failure_ids),
            "outcome": str(self.verdict.outcome),
            "error_class": self.verdict.error_class,
            "error_message": self.verdict.error_message,
            "message_id": self.verdict.message_id,
            "ignored_because": self.verdict.ignored,
            "claimed_by": self.verdict.claimed_by,
        }


@dataclass
class Tracker:
    """What the replay sent, as :func:`dlq_replayer.moves.replay` reports it (``on_sent``), and where
    to follow it."""

    target: Target
    cutoff_ms: int  # the replay's start by SQS's clock: a later DLQ message arrived after it
    sent_counts: dict[str, int] = field(default_factory=dict)  # failure id -> replay-count it was sent with
    items: dict[str, Item] = field(default_factory=dict)  # key, or "message ID" for a keyless one

    def sent(self, message: Mapping[str, Any]) -> None:
        failure = dead_letters.failure_id(message)
        self.sent_counts[failure] = dead_letters.replay_count(message) + 1
        body = str(message.get("Body", ""))
        objects = _objects(body)
        if not objects:  # the handler acknowledges an s3:TestEvent: only the DLQ could settle it otherwise
            ignored = TEST_EVENT if _is_test_event(body) else None
            self.items.setdefault(f"message {failure}", Item(None, set(), ignored)).failure_ids.add(failure)
        for bucket, key in objects:
            if key not in self.items:
                ignored = ignore_reason(bucket or self.target.source_bucket, key, self.target.config)
                self.items[key] = Item(key, set(), ignored)
            self.items[key].failure_ids.add(failure)

    def ours(self, message: Mapping[str, Any]) -> list[Item]:
        """The items a DLQ message says failed again (see the module doc). A replayed message back on
        the DLQ names every key of its body, even one a round already saw rendered: the DLQ is per
        message, and the handler fails the whole message when one of its keys fails."""
        failure = dead_letters.failure_id(message)
        sent = self.sent_counts.get(failure)
        if sent is not None and dead_letters.replay_count(message) >= sent:
            return [i for i in self.items.values() if failure in i.failure_ids]
        arrived = dead_letters.sent_timestamp_ms(message)
        if arrived is None or arrived <= self.cutoff_ms:
            return []
        keys = dead_letters.source_keys(str(message.get("Body", "")))
        return [self.items[k] for k in keys if k in self.items and not self.items[k].verdict.outcome.final]


TEST_EVENT = "s3:TestEvent"


def _is_test_event(body: str) -> bool:
    try:
        return parse_body(body).test_event
    except InvalidEvent:
        return False


def _objects(body: str) -> list[tuple[str | None, str]]:
    """(bucket, key) of each S3 record of a message body, as the handler reads them; the keys alone
    (bucket None) of a body it cannot parse."""
    try:
        return [(ref.bucket, ref.key) for ref in parse_body(body).refs]
    except InvalidEvent:
        return [(None, key) for key in dead_letters.source_keys(body)]


@dataclass
class FollowReport:
    """What the follow found: each item's verdict, and how the follow ended."""

    timeout: float
    items: list[Item] = field(default_factory=list)
    rounds: int = 0
    elapsed: float = 0.0
    dlq_read: int = 0  # DLQ messages read (and released) in all
    interrupted: bool = False
    timed_out: bool = False
    error: str | None = None

    def tally(self) -> Counter[Outcome]:
        return Counter(item.verdict.outcome for item in self.items)

    def with_outcome(self, outcome: Outcome) -> list[Item]:
        return [item for item in self.items if item.verdict.outcome is outcome]

    @property
    def ok(self) -> bool:
        """Every key's outcome is known and none failed again."""
        tally = self.tally()
        return not (tally[Outcome.FAILED_AGAIN] or tally[Outcome.PENDING] or self.interrupted or self.error)

    def to_json(self) -> dict[str, Any]:
        tally = self.tally()
        return {
            "timeout_seconds": self.timeout,
            "elapsed_seconds": round(self.elapsed, 1),
            "rounds": self.rounds,
            "dlq_messages_read": self.dlq_read,
            "keys_followed": len(self.items),
            "tally": {str(o).replace(" ", "_"): tally[o] for o in Outcome},
            "failed_again": [i.to_json() for i in self.with_outcome(Outcome.FAILED_AGAIN)],
            "pending": [i.key for i in self.with_outcome(Outcome.PENDING)],
            "keys": [i.to_json() for i in self.items],
            "timed_out": self.timed_out,
            "interrupted": self.interrupted,
            "error": self.error,
            "ok": self.ok,
        }


def observe(s3: Any, target: Target, key: str) -> Observation:
    """HEAD the source and its renditions. With the source there, the HEADs stop at the first size
    with no current rendition: the key is pending anyway, whatever the other sizes hold."""
    config = target.config
    head = storage.head_source(s3, target.source_bucket, key)
    sizes: list[tuple[Candidate, ...]] = []
    for size in observe_renditions(s3, config.dest_bucket, config, key):
        sizes.append(size.candidates)
        if head is not None and not size.current(head.etag):
            break
    return Observation(
        source_etag=None if head is None else head.etag,
        sizes=sizes,
        delete_on_remove=config.delete_on_remove,
    )


def read_dead_letters(sqs: Any, dlq_url: str) -> list[dict[str, Any]]:
    """Up to :data:`DLQ_RECEIVES` x 10 DLQ messages, released at once after the reads (a
    :class:`~dlq_replayer.scan.Scanner`, so a message SQS hands out twice counts once)."""
    scanner = Scanner(sqs, dlq_url, visibility=PEEK_VISIBILITY)
    found: list[dict[str, Any]] = []
    try:
        for _ in range(DLQ_RECEIVES):
            batch = scanner.receive()
            if not batch:
                break
            found += batch
    finally:
        scanner.close()
    return found


def _dead_letters_back(sqs: Any, tracker: Tracker, report: FollowReport) -> None:
    """Step 1 of a round: the items whose message is back on the DLQ have failed again; an ignored
    item is known from its message. Neither needs a HEAD."""
    messages = read_dead_letters(sqs, tracker.target.dlq_url)
    report.dlq_read += len(messages)
    back: dict[int, DeadLetter] = {}
    for message in messages:
        items = tracker.ours(message)
        letter = DeadLetter.from_message(message) if items else None
        for item in items:
            back.setdefault(id(item), letter)
    for item in report.items:
        if id(item) in back or (item.ignored is not None and not item.verdict.outcome.final):
            item.verdict = classify(Observation(None, (), back.get(id(item)), ignored=item.ignored))


def _heads(s3: Any, pool: ThreadPoolExecutor, target: Target, report: FollowReport, turn: int) -> int:
    """Step 2: HEAD up to :data:`KEYS_PER_ROUND` pending keys from ``turn`` on (round robin); returns
    where the next round starts."""
    keyed = [i for i in report.items if i.key is not None and not i.verdict.outcome.final]
    turn %= max(1, len(keyed))
    chosen = (keyed[turn:] + keyed[:turn])[:KEYS_PER_ROUND]
    looks = [(i, pool.submit(observe, s3, target, str(i.key))) for i in chosen]
    for item, look in looks:
        item.verdict = classify(look.result())
    return turn + len(chosen)


def follow(
    s3: Any,
    sqs: Any,
    tracker: Tracker,
    report: FollowReport,
    *,
    stop: threading.Event,
    on_round: Callable[[FollowReport], None] = lambda report: None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Rounds until every item is final, ``report.timeout`` passes, or ``stop`` is set (then
    ``KeyboardInterrupt``, at a safe point); ``report`` holds what is known at any time."""
    report.items = list(tracker.items.values())
    started = clock()
    pause = FIRST_PAUSE
    turn = 0
    pool = ThreadPoolExecutor(HEAD_THREADS, thread_name_prefix="follow-head")
    try:
        while not all(i.verdict.outcome.final for i in report.items):  # nothing replayed: no round
            interrupts.check(stop)
            _dead_letters_back(sqs, tracker, report)
            turn = _heads(s3, pool, tracker.target, report, turn)
            report.rounds += 1
            report.elapsed = clock() - started
            on_round(report)
            # A Ctrl-C during the round wins over its result: the round may have settled every key
            # (or used up the time), but the operator asked to stop and was told so.
            interrupts.check(stop)
            left = report.timeout - (clock() - started)
            if all(i.verdict.outcome.final for i in report.items):
                return
            if left <= 0:
                report.timed_out = True
                return
            if stop.wait(min(pause, left)):
                raise KeyboardInterrupt
            pause = min(MAX_PAUSE, pause * PAUSE_GROWTH)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a second Ctrl-C: only the HEADs under way finish


class TallyDisplay:
    """The live tally while following: redrawn in place on a terminal (rich), erased when the summary
    follows; else one plain line when the tally changed (at most every :data:`LINE_INTERVAL` seconds,
    the last one always)."""

    def __init__(
        self,
        stream: TextIO | None,
        lines: Callable[[FollowReport], list[Block]],
        line: Callable[[FollowReport], str],
        *,
        enabled: bool = True,
    ) -> None:
        self.out = stream or sys.stderr
        self.lines, self.line, self.enabled = lines, line, enabled
        self.display = live(self.out, transient=True) if enabled else None
        self.shown: str | None = None
        self.pending: str | None = None
        self.at = -LINE_INTERVAL

    def __enter__(self) -> TallyDisplay:
        if self.display is not None:
            self.display.start()
        return self

    def update(self, report: FollowReport) -> None:
        if not self.enabled:
            return
        if self.display is not None:
            self.display.update(group(self.lines(report)), refresh=True)
            return
        text = self.line(report)
        if text == self.shown:
            self.pending = None
        elif time.monotonic() - self.at >= LINE_INTERVAL:
            self._print(text)
        else:
            self.pending = text

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)
        self.shown, self.pending, self.at = text, None, time.monotonic()

    def __exit__(self, *exc: object) -> None:
        if self.display is not None:
            self.display.stop()
        elif self.pending is not None:
            self._print(self.pending)
