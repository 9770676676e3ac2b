"""What the operators' long-running commands share: a rate limit, back-pressure, progress with ETA,
batch sends.

`imgproc dlq replay`, `imgproc dlq purge` and `imgproc backfill` move thousands to millions of
messages; these pieces keep them polite to SQS (``--rate``) and to the consumers (``--max-backlog``:
never run further ahead of them than a bound), visible to the operator (count, rate, ETA on a
terminal, drawn by rich) and honest about partial failures (per-entry results of ``SendMessageBatch``).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError
from rich.progress import (
    BarColumn,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

from toolkit.queues import visible_messages
from toolkit.terminal import console, is_terminal, redirects

SQS_BATCH = 10  # SendMessageBatch / DeleteMessageBatch limit


class RateLimiter:
    """At most ``rate`` operations per second on average (None: unlimited), without bursts above it."""

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("--rate must be positive")
        self._interval = 0.0 if rate is None else 1.0 / rate
        self._clock, self._sleep = clock, sleep
        self._next = clock()

    def acquire(self, count: int = 1) -> None:
        """Wait until ``count`` more operations fit in the rate."""
        if not self._interval:
            return
        now = self._clock()
        if self._next > now:
            self._sleep(self._next - now)
        self._next = max(self._next, now) + count * self._interval


class Backpressure:
    """Holds a producer back while the queue already has ``limit`` or more messages waiting.

    A backfill of millions of keys sent at full speed would put them all on the ingest queue at
    once: fresh uploads would then wait behind the whole backlog, and messages could outlive the
    queue's retention period before a consumer reaches them. With a limit, the producer runs at most
    about ``limit`` messages ahead of the consumers, so the queue's age stays near ``limit`` divided
    by the consumption rate. ``ApproximateNumberOfMessages`` (visible messages only: in-flight ones
    are being worked on) is read once, then the room it showed is spent without asking again, so a
    batch costs no extra request while there is room; when the room is spent the queue is read again
    every ``poll`` seconds until it has drained below the limit. The count is approximate, and a
    batch is sent whenever there is room for one message, so the queue may briefly hold up to
    ``limit + 9``. A producer with sends still in flight passes ``settle``, called before each read of
    the depth to let them land in the queue first (otherwise the read misses them and the room is
    spent twice).
    """

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        limit: int | None,
        *,
        poll: float = 1.0,
        stop: threading.Event | None = None,
        settle: Callable[[], None] | None = None,
    ) -> None:
        if limit is not None and limit <= 0:
            raise ValueError("--max-backlog must be positive")
        self.settle = settle
        self.sqs, self.queue_url, self.limit, self.poll = sqs, queue_url, limit, poll
        self.stop = stop or threading.Event()
        self.waiting: int | None = None  # while held back: the depth last read
        self.waited_seconds = 0.0
        self._room = 0

    def _depth(self) -> int:
        return visible_messages(self.sqs, self.queue_url)

    def acquire(self, count: int, on_wait: Callable[[], None] | None = None) -> bool:
        """Wait until the queue has room, then take ``count`` of it. False: ``stop`` was set while
        waiting, and nothing may be sent. ``on_wait`` is called after each read that found no room
        (to redraw a progress line)."""
        if self.limit is None:
            return True
        held_since: float | None = None
        try:
            while self._room <= 0:
                if self.settle:
                    self.settle()
                depth = self._depth()
                self._room = self.limit - depth
                if self._room > 0:
                    break
                held_since = held_since or time.monotonic()
                self.waiting = depth
                if on_wait:
                    on_wait()
                if self.stop.wait(self.poll):
                    return False
        finally:
            self.waiting = None
            if held_since is not None:
                self.waited_seconds += time.monotonic() - held_since
        self._room -= count
        return True


MIN_RATE_SECONDS = 0.5  # a rate over a shorter time says more about the clock than about the work


def rate_text(count: int, seconds: float) -> str:
    """`` (N/s)``, or nothing when ``seconds`` is too short for a rate to mean anything."""
    if seconds < MIN_RATE_SECONDS:
        return ""
    rate = count / seconds
    return f" ({rate:,.1f}/s)" if rate < 10 else f" ({rate:,.0f}/s)"


class RateColumn(ProgressColumn):
    """Items per second over the whole run so far (rich's own speed column counts bytes)."""

    def render(self, task: Task) -> Text:
        return Text(rate_text(int(task.completed), task.elapsed or 0.0).strip())


@dataclass
class Progress:
    """Progress of a long run, drawn by rich on a terminal (count, bar, rate, ETA); silent elsewhere,
    where the caller prints a summary instead.

    ``total`` may be unknown (None): then no bar and no ETA. Call :meth:`advance` as work completes and
    :meth:`close` at the end. Nothing runs in the background: the display is redrawn by
    :meth:`advance`, at most every ``interval`` seconds. ``clock``: the time rich measures rate and
    ETA with (a test's fake clock).
    """

    label: str
    total: int | None = None
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    interval: float = 0.2
    done: int = 0
    clock: Callable[[], float] = time.monotonic
    _started: float = field(default_factory=time.monotonic)
    _drawn: float = -math.inf
    _bar: RichProgress | None = None
    _task: TaskID | None = None
    _closed: bool = False

    def columns(self) -> list[str | ProgressColumn]:
        """What the terminal shows: label, count, bar, rate and time left."""
        if self.total is None:
            return [SpinnerColumn(), TextColumn("{task.description}: {task.completed:,}"), RateColumn()]
        return [
            TextColumn("{task.description}: {task.completed:,}/{task.total:,}"),
            BarColumn(),
            RateColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        ]

    def __post_init__(self) -> None:
        self._draw()  # on a terminal, from the start: the rate counts from here

    def fields(self) -> dict[str, Any]:
        """Fields of the task that :meth:`columns` may show (``{task.fields[name]}``)."""
        return {}

    def _draw(self, *, final: bool = False) -> None:
        if self._closed or not (final or is_terminal(self.stream)):
            return
        if self._bar is None:
            self._bar = RichProgress(
                *self.columns(),
                console=console(self.stream),
                auto_refresh=False,
                get_time=self.clock,
                **redirects(),
            )
            self._task = self._bar.add_task(self.label, total=self.total, **self.fields())
            self._bar.start()
        assert self._task is not None
        self._bar.update(self._task, completed=self.done, refresh=True, **self.fields())

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._drawn >= self.interval:  # the clock first: isatty is a syscall
            self._drawn = now
            self._draw()

    def close(self) -> None:
        """Draw the last state and leave it on the screen."""
        if self._bar is not None:
            self._draw(final=True)
            self._bar.stop()
        self._closed = True


@dataclass(frozen=True)
class BatchSendResult:
    sent: list[int]  # indexes (into the entries given) that SQS accepted
    failed: dict[int, str]  # index -> "Code: Message" for entries still refused after the retries


def send_batch(
    sqs: Any,
    queue_url: str,
    entries: Sequence[dict[str, Any]],
    *,
    attempts: int = 3,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchSendResult:
    """``SendMessageBatch`` for up to 10 entries (without ``Id``: added here), retrying only the
    entries SQS refused with a retryable error (not a sender fault, not a 4xx); reports each entry's
    fate, so that the caller deletes or marks exactly the entries that were sent."""
    if len(entries) > SQS_BATCH:
        raise ValueError(f"at most {SQS_BATCH} entries per batch")
    pending = dict(enumerate(entries))
    failed: dict[int, str] = {}
    sent: list[int] = []
    for attempt in range(attempts):
        if not pending:
            break
        if attempt:
            sleep(backoff * 2 ** (attempt - 1))
        try:
            response = sqs.send_message_batch(
                QueueUrl=queue_url, Entries=[{**entry, "Id": str(i)} for i, entry in pending.items()]
            )
        except sqs.exceptions.ClientError as exc:  # the whole request refused: every entry failed
            error = exc.response.get("Error", {})
            reason = f"{error.get('Code', 'Error')}: {error.get('Message', '')}"
            failed.update(dict.fromkeys(pending, reason))
            if int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)) < 500:
                pending.clear()  # a client error: retrying the same request cannot help
            continue
        except BotoCoreError as exc:  # no answer (connection, timeout): unknown fate, retry
            failed.update(dict.fromkeys(pending, f"{type(exc).__name__}: {exc}"))
            continue
        for ok in response.get("Successful", []):
            index = int(ok["Id"])
            sent.append(index)
            pending.pop(index, None)
        for bad in response.get("Failed", []):
            index = int(bad["Id"])
            failed[index] = f"{bad.get('Code', 'Error')}: {bad.get('Message', '')}"
            if bad.get("SenderFault"):
                pending.pop(index, None)  # our request is wrong: retrying cannot help
    for index in pending:
        failed.setdefault(index, "not accepted after retries")
    return BatchSendResult(sent=sorted(sent), failed={i: failed[i] for i in sorted(failed) if i not in sent})
