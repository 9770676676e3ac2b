"""One backfill run: enumerate the source objects (a listing in key order, or an S3 Inventory report),
decide each key (filtered, current, enqueue), send in batches of 10, several in flight at once, at the
allowed pace, and keep the checkpoint (see :mod:`backfill`)."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.progress import ProgressColumn, SpinnerColumn, TextColumn

from backfill import inventory
from backfill.records import message_body, s3_record
from backfill.window import Entry, Mark, SendWindow
from processor import markers
from processor.config import Config
from processor.renditions import ignore_reason
from toolkit.renditions import observe_renditions
from toolkit.throughput import SQS_BATCH, Backpressure, BatchSendResult, Progress, RateLimiter, rate_text

LIST_PAGE = 1000  # ListObjectsV2 maximum
DEFAULT_CONCURRENCY = 16  # SendMessageBatch requests in flight (160 keys a round trip)
MAX_CONCURRENCY = 32
HEADS_PER_SEND = 4  # --skip-current: rendition HEADs in flight per send in flight (a key costs 1-4 HEADs)
MAX_HEAD_THREADS = 48  # within toolkit.aws's connection pool
CHECK_AHEAD = 4  # --skip-current: keys checked ahead of the sender, per HEAD thread
MAX_LISTED_FAILURES = 1000  # failed keys kept for the report (all are counted)
FAILED_BATCHES_ABORT = 3  # consecutive batches with no entry accepted: stop, SQS is refusing everything

# Decisions on a listed key.
FILTERED = "filtered"  # outside --since / --suffix, or a key the handler ignores (folder marker)
CURRENT = "current"  # --skip-current: every rendition is up to date
ENQUEUE = "enqueue"


@dataclass(frozen=True)
class Target:
    """Where keys come from and go to, and the function's configuration (for filters and markers)."""

    bucket: str
    queue_url: str
    region: str
    config: Config


@dataclass(frozen=True)
class Options:
    prefix: str
    start_after: str | None = None  # a key, or with an inventory DATA_FILE:LINE
    since: datetime | None = None
    suffixes: tuple[str, ...] = ()
    skip_current: bool = False
    dry_run: bool = False
    max_keys: int | None = None
    max_backlog: int | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    inventory: inventory.Manifest | None = None  # read this report instead of listing


@dataclass
class Summary:
    listed: int = 0
    filtered: int = 0
    current: int = 0
    enqueued: int = 0  # with --dry-run: would be enqueued
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)  # the first MAX_LISTED_FAILURES
    last_key: str | None = None  # the key at the checkpoint
    checkpoint: str | None = None  # what --start-after takes: last_key, or with an inventory FILE:LINE
    complete: bool = False  # listing exhausted, and every matching key enqueued
    stopped: str | None = None  # "interrupted", "max-keys", "send-failures", "error"
    error: str | None = None
    elapsed_seconds: float = 0.0
    held_back_seconds: float = 0.0  # --max-backlog: time spent waiting for the queue to drain


@dataclass
class BackfillProgress(Progress):
    """Progress of a listing of unknown length: keys listed, enqueued, skipped; no ETA. On a terminal
    rich draws :meth:`line` behind a spinner."""

    summary: Summary = field(default_factory=Summary)
    backpressure: Backpressure | None = None

    def columns(self) -> list[str | ProgressColumn]:
        return [SpinnerColumn(), TextColumn("{task.fields[line]}")]

    def fields(self) -> dict[str, Any]:
        return {"line": self.line()}

    def line(self) -> str:
        elapsed = time.monotonic() - self._started
        s = self.summary
        text = (
            f"{self.label}: listed {s.listed:,}{rate_text(s.listed, elapsed)}, enqueued {s.enqueued:,}, "
            f"skipped {s.filtered + s.current:,}, failed {s.failed:,}; at {s.last_key or '(start)'}"
        )
        gate = self.backpressure
        if gate is not None and gate.waiting is not None:
            text += f"; held back: {gate.waiting:,} waiting in the queue (--max-backlog {gate.limit:,})"
        return text


def start_mark(options: Options) -> Mark:
    """The position a run starts after: ``--start-after`` (with an inventory, its line's key is not
    known until it is read again)."""
    if options.inventory is not None:
        return Mark(None, options.start_after)
    return Mark(options.start_after, options.start_after)


def head_threads(concurrency: int) -> int:
    """--skip-current: rendition HEADs in flight, in proportion to the sends in flight."""
    return min(MAX_HEAD_THREADS, HEADS_PER_SEND * concurrency)


class Backfill:
    """One backfill run: enumerate, filter, check, send in batches of 10, keep the checkpoint.

    ``stop`` is checked after every key and while held back by ``--max-backlog``; setting it is how
    Ctrl-C and tests end a run early with a clean checkpoint: no batch is started after it, the
    batches in flight are settled. ``backlog_poll``: seconds between reads of the queue's depth while
    held back.
    """

    def __init__(
        self,
        *,
        s3: Any,
        sqs: Any,
        target: Target,
        options: Options,
        limiter: RateLimiter | None = None,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        send_sleep: Callable[[float], None] = time.sleep,
        backlog_poll: float = 1.0,
    ) -> None:
        self.s3, self.sqs, self.target, self.options = s3, sqs, target, options
        self.limiter = limiter or RateLimiter(None)
        self.progress = progress
        self.stop = stop or threading.Event()
        self._examined = start_mark(options)  # the last position looked at
        self.summary = Summary(last_key=self._examined.key, checkpoint=self._examined.at)
        self._pending: list[Entry] = []  # the batch being filled
        self._refused: Mark | None = None  # stopped while held back: the checkpoint stays here
        self.window: SendWindow | None = None  # while running, unless --dry-run
        self.backpressure = Backpressure(
            sqs, target.queue_url, options.max_backlog, poll=backlog_poll, stop=self.stop, settle=self._drain
        )
        self._clock = clock
        self._send_sleep = send_sleep
        self._request_id = uuid.uuid4().hex[:16].upper()
        self._failed_batches = 0

    # enumerating and deciding

    def _listing(self) -> Generator[tuple[dict[str, Any], Mark], None, None]:
        """The objects under the prefix after ``start_after``, page by page (never all at once)."""
        page_size = min(LIST_PAGE, self.options.max_keys or LIST_PAGE)
        params: dict[str, Any] = {"Bucket": self.target.bucket, "Prefix": self.options.prefix}
        params["MaxKeys"] = page_size
        if self.options.start_after:
            params["StartAfter"] = self.options.start_after
        while True:
            page = self.s3.list_objects_v2(**params)
            for obj in page.get("Contents", []):
                yield obj, Mark(obj["Key"], obj["Key"])
            if not page.get("IsTruncated") or not page.get("NextContinuationToken"):
                return
            params["ContinuationToken"] = page["NextContinuationToken"]

    def _objects(self) -> Generator[tuple[dict[str, Any], Mark], None, None]:
        manifest = self.options.inventory
        if manifest is None:
            return self._listing()
        start = (
            inventory.parse_start(self.options.start_after, manifest) if self.options.start_after else None
        )
        return inventory.rows(self.s3, manifest, start)

    def _filtered_out(self, obj: dict[str, Any]) -> bool:
        key = obj["Key"]
        if not key.startswith(self.options.prefix) or obj.get("Current") is False:
            return True  # an inventory covers the whole bucket, and may list old versions
        if ignore_reason(self.target.bucket, key, self.target.config):
            return True  # e.g. a folder marker: the handler would only acknowledge it
        if self.options.suffixes and not key.lower().endswith(self.options.suffixes):
            return True
        if self.options.since is None:
            return False
        return obj["LastModified"] is None or obj["LastModified"] < self.options.since

    def is_current(self, key: str, etag: str) -> bool:
        """True when every rendition of ``key`` is current for ``etag`` and today's recipe, judged as
        explain and the handler judge it (a rendition another source key made is not)."""
        config = self.target.config
        return all(
            size.current(etag) for size in observe_renditions(self.s3, config.dest_bucket, config, key)
        )

    def decisions(self) -> Iterator[tuple[dict[str, Any], Mark, str]]:
        """Each object with its position and decision, in order. With ``--skip-current`` the
        renditions of the next keys are HEADed on a pool while the earlier ones are decided."""
        objects = self._objects()
        if not self.options.skip_current:
            try:
                for obj, mark in objects:
                    yield obj, mark, FILTERED if self._filtered_out(obj) else ENQUEUE
            finally:
                objects.close()  # an inventory's data file in hand is closed
            return
        threads = head_threads(self.options.concurrency)
        pool = ThreadPoolExecutor(threads, thread_name_prefix="backfill-head")
        ahead: deque[tuple[dict[str, Any], Mark, Future[bool] | None]] = deque()

        def decided() -> tuple[dict[str, Any], Mark, str]:
            obj, mark, check = ahead.popleft()
            if check is None:
                return obj, mark, FILTERED
            return obj, mark, CURRENT if check.result() else ENQUEUE

        try:
            for obj, mark in objects:
                check = None
                if not self._filtered_out(obj):
                    check = pool.submit(self.is_current, obj["Key"], markers.strip_quotes(obj["ETag"]))
                ahead.append((obj, mark, check))
                if len(ahead) >= threads * CHECK_AHEAD:
                    yield decided()
            while ahead:
                yield decided()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            objects.close()

    # sending and the checkpoint

    def checkpoint(self) -> Mark:
        """The position before the lowest entry not (yet) enqueued, else the last one examined."""
        for held in (self.window.hold() if self.window else None, self._refused):
            if held is not None:
                return held
        return self._pending[0].before if self._pending else self._examined

    def _mark_summary(self) -> None:
        mark = self.checkpoint()
        self.summary.last_key, self.summary.checkpoint = mark.key, mark.at

    def _body(self, obj: dict[str, Any]) -> str:
        now = self._clock()
        record = s3_record(
            bucket=self.target.bucket,
            key=obj["Key"],
            size=obj.get("Size", 0),
            etag=obj.get("ETag", ""),
            region=self.target.region,
            event_time=now,
            sequencer=f"{time.time_ns():018X}",
            request_id=self._request_id,
        )
        return message_body(record)

    def _settled(self, entries: Sequence[Entry], result: BatchSendResult) -> None:
        """A batch's fate is known (called in this thread by the window)."""
        self.summary.enqueued += len(result.sent)
        for index, reason in result.failed.items():
            self.summary.failed += 1
            if len(self.summary.failures) < MAX_LISTED_FAILURES:
                self.summary.failures.append({"key": entries[index].key, "error": reason})
        self._failed_batches = 0 if result.sent else self._failed_batches + 1

    def _drain(self) -> None:
        """Before reading the queue's depth (--max-backlog): let the batches in flight land in it."""
        if self.window:
            self.window.drain()

    def _flush(self) -> None:
        """Send the batch being filled (up to 10) once the pace and the backlog allow."""
        pending = self._pending
        if not pending or self._refused:
            return
        if self.window is None:  # --dry-run
            self.summary.enqueued += len(pending)
            pending.clear()
            return
        redraw = (lambda: self.progress.advance(0)) if self.progress else None
        if not self.backpressure.acquire(len(pending), on_wait=redraw):
            self._refused = pending[0].before  # stopped while held back: nothing sent from here on
            return
        self.limiter.acquire(len(pending))
        if self.stop.is_set():  # stopped during the --rate wait: "Ctrl-C starts no new batch"
            self._refused = pending[0].before
            return
        self.window.submit(list(pending))
        pending.clear()

    def _take(self, obj: dict[str, Any], mark: Mark, decision: str) -> None:
        """Account for one object, in order; send the batch once it holds 10."""
        self.summary.listed += 1
        if decision == ENQUEUE:
            self._pending.append(Entry(obj["Key"], self._body(obj), before=self._examined))
        elif decision == CURRENT:
            self.summary.current += 1
        else:
            self.summary.filtered += 1
        self._examined = mark
        if len(self._pending) == SQS_BATCH:
            self._flush()
        if self.window:
            self.window.reap()
        if self.progress:
            self._mark_summary()
            self.progress.advance()

    def _stop_reason(self) -> str | None:
        if self._failed_batches >= FAILED_BATCHES_ABORT:
            return "send-failures"
        if self.stop.is_set():
            return "interrupted"
        if self.options.max_keys and self.summary.listed >= self.options.max_keys:
            return "max-keys"
        return None

    def run(self) -> Summary:
        """Enumerate, decide and send until the end or a stop is asked for; return the summary.

        AWS errors other than per-entry send failures propagate; ``self.summary`` then holds the
        counts and the checkpoint so far (the batches in flight are settled first, but after a
        second Ctrl-C, which leaves them unsettled: the checkpoint stays before them).
        """
        started = time.monotonic()
        if not self.options.dry_run:
            self.window = SendWindow(
                self.sqs,
                self.target.queue_url,
                concurrency=self.options.concurrency,
                on_settled=self._settled,
                send_sleep=self._send_sleep,
            )
        hard_stop = False
        try:
            exhausted = self._send_all()
        except KeyboardInterrupt:  # a second Ctrl-C: leave now, the sends under way finish alone
            hard_stop = True
            raise
        finally:
            self._finish(started, hard_stop=hard_stop)
        self.summary.complete = exhausted and not self.summary.failed and not self._refused
        return self.summary

    def _send_all(self) -> bool:
        """The loop of :meth:`run`; True when every object was enumerated."""
        exhausted = False
        decisions = self.decisions()
        try:
            for obj, mark, decision in decisions:
                self._take(obj, mark, decision)
                self.summary.stopped = self._stop_reason()
                if self.summary.stopped:
                    break
            else:
                exhausted = True
        finally:
            decisions.close()  # cancels the rendition checks still queued
        if self.summary.stopped != "interrupted":
            self._flush()  # the last partial batch (after Ctrl-C it stays unsent: resumed later)
        self._drain()
        return exhausted

    def _finish(self, started: float, *, hard_stop: bool) -> None:
        if self.window:
            if not hard_stop:
                # After an error: settle what was sent, for an exact checkpoint (the first error is
                # the one reported; a batch whose send failed too keeps its hold).
                with contextlib.suppress(Exception):
                    self.window.drain()
            self.window.close(wait_for_sends=not hard_stop)
        self._mark_summary()
        self.summary.elapsed_seconds = round(time.monotonic() - started, 3)
        self.summary.held_back_seconds = round(self.backpressure.waited_seconds, 3)
        if self.progress:
            self.progress.close()
