"""One backfill run: list the source bucket in key order, decide each key (filtered, current, enqueue),
send in batches of 10 at the allowed pace, and keep the checkpoint (see :mod:`backfill`)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from rich.progress import ProgressColumn, SpinnerColumn, TextColumn

from backfill.records import message_body, s3_record
from processor import markers, storage
from processor.config import Config
from processor.renditions import ignore_reason, plan_renditions
from toolkit.throughput import SQS_BATCH, Backpressure, Progress, RateLimiter, rate_text, send_batch

LIST_PAGE = 1000  # ListObjectsV2 maximum
HEAD_THREADS = 8  # --skip-current: rendition HEADs in flight at once
CHECK_CHUNK = 64  # --skip-current: keys checked ahead of the sender, at most
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
    start_after: str | None = None
    since: datetime | None = None
    suffixes: tuple[str, ...] = ()
    skip_current: bool = False
    dry_run: bool = False
    max_keys: int | None = None
    max_backlog: int | None = None


@dataclass
class Summary:
    listed: int = 0
    filtered: int = 0
    current: int = 0
    enqueued: int = 0  # with --dry-run: would be enqueued
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)  # the first MAX_LISTED_FAILURES
    last_key: str | None = None  # the checkpoint
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


@dataclass
class _Pending:
    key: str
    body: str
    before: str | None  # the checkpoint if this entry is the first one not enqueued


class Backfill:
    """One backfill run: list, filter, check, send in batches of 10, keep the checkpoint.

    ``stop`` is checked after every key (so after every settled batch) and while held back by
    ``--max-backlog``; setting it is how Ctrl-C and tests end a run early with a clean checkpoint.
    ``backlog_poll``: seconds between reads of the queue's depth while held back.
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
        self.summary = Summary(last_key=options.start_after)
        self.progress = progress
        self.stop = stop or threading.Event()
        self.backpressure = Backpressure(
            sqs, target.queue_url, options.max_backlog, poll=backlog_poll, stop=self.stop
        )
        self._clock = clock
        self._send_sleep = send_sleep
        self._request_id = uuid.uuid4().hex[:16].upper()
        self._examined = options.start_after  # the last key looked at, in listing order
        self._frozen = False  # an entry failed: the checkpoint stays before it
        self._failed_batches = 0

    # listing and deciding

    def _listing(self) -> Iterator[dict[str, Any]]:
        """The objects under the prefix after ``start_after``, page by page (never all at once)."""
        page_size = min(LIST_PAGE, self.options.max_keys or LIST_PAGE)
        params: dict[str, Any] = {"Bucket": self.target.bucket, "Prefix": self.options.prefix}
        params["MaxKeys"] = page_size
        if self.options.start_after:
            params["StartAfter"] = self.options.start_after
        while True:
            page = self.s3.list_objects_v2(**params)
            yield from page.get("Contents", [])
            if not page.get("IsTruncated") or not page.get("NextContinuationToken"):
                return
            params["ContinuationToken"] = page["NextContinuationToken"]

    def _filtered_out(self, obj: dict[str, Any]) -> bool:
        key = obj["Key"]
        if ignore_reason(self.target.bucket, key, self.target.config):
            return True  # e.g. a folder marker: the handler would only acknowledge it
        if self.options.suffixes and not key.lower().endswith(self.options.suffixes):
            return True
        return self.options.since is not None and obj["LastModified"] < self.options.since

    def is_current(self, key: str, etag: str) -> bool:
        """True when every rendition of ``key`` carries a marker for ``etag`` and today's recipe."""
        config = self.target.config
        for plan in plan_renditions(config, key):
            if not any(
                markers.is_current(storage.head_metadata(self.s3, config.dest_bucket, c.key), etag, c.digest)
                for c in plan.candidates
            ):
                return False
        return True

    def decisions(self) -> Iterator[tuple[dict[str, Any], str]]:
        """Each listed object with its decision, in listing order."""
        listing = self._listing()
        if not self.options.skip_current:
            for obj in listing:
                yield obj, FILTERED if self._filtered_out(obj) else ENQUEUE
            return
        pool = ThreadPoolExecutor(HEAD_THREADS, thread_name_prefix="backfill-head")
        try:
            while chunk := list(islice(listing, CHECK_CHUNK)):
                checks: list[Future[bool] | None] = [
                    None
                    if self._filtered_out(obj)
                    else pool.submit(self.is_current, obj["Key"], markers.strip_quotes(obj["ETag"]))
                    for obj in chunk
                ]
                for obj, check in zip(chunk, checks, strict=True):
                    if check is None:
                        yield obj, FILTERED
                    else:
                        yield obj, CURRENT if check.result() else ENQUEUE
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # sending and the checkpoint

    def _advance(self, key: str | None) -> None:
        if not self._frozen:
            self.summary.last_key = key

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

    def _flush(self, pending: list[_Pending]) -> None:
        """Send ``pending`` (up to 10); settle the checkpoint by each entry's fate."""
        if not pending:
            return
        if self.options.dry_run:
            self.summary.enqueued += len(pending)
            pending.clear()
            self._advance(self._examined)
            return
        redraw = (lambda: self.progress.advance(0)) if self.progress else None
        if not self.backpressure.acquire(len(pending), on_wait=redraw):
            # Stopped while held back: nothing sent, the checkpoint stays before the batch.
            self._advance(pending[0].before)
            pending.clear()
            return
        self.limiter.acquire(len(pending))
        result = send_batch(
            self.sqs,
            self.target.queue_url,
            [{"MessageBody": p.body} for p in pending],
            sleep=self._send_sleep,
        )
        self.summary.enqueued += len(result.sent)
        for index, reason in result.failed.items():
            self.summary.failed += 1
            if len(self.summary.failures) < MAX_LISTED_FAILURES:
                self.summary.failures.append({"key": pending[index].key, "error": reason})
        if result.failed:
            self._advance(pending[min(result.failed)].before)
            self._frozen = True
        else:
            self._advance(self._examined)
        self._failed_batches = 0 if result.sent else self._failed_batches + 1
        pending.clear()

    def _take(self, obj: dict[str, Any], decision: str, pending: list[_Pending]) -> None:
        """Account for one listed object, in order; send the batch once it holds 10."""
        key = obj["Key"]
        self.summary.listed += 1
        if decision == ENQUEUE:
            pending.append(_Pending(key, self._body(obj), before=self._examined))
        elif decision == CURRENT:
            self.summary.current += 1
        else:
            self.summary.filtered += 1
        self._examined = key
        if not pending:
            self._advance(key)
        elif len(pending) == SQS_BATCH:
            self._flush(pending)
        if self.progress:
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
        """List, decide and send until the listing ends or a stop is asked for; return the summary.

        AWS errors other than per-entry send failures propagate; ``self.summary`` then holds the
        counts and the checkpoint so far.
        """
        started = time.monotonic()
        pending: list[_Pending] = []
        exhausted = False
        try:
            decisions = self.decisions()
            try:
                for obj, decision in decisions:
                    self._take(obj, decision, pending)
                    self.summary.stopped = self._stop_reason()
                    if self.summary.stopped:
                        break
                else:
                    exhausted = True
            finally:
                decisions.close()  # cancels the rendition checks still queued
            self._flush(pending)  # the last partial batch, also when stopping: it is settled here
        finally:
            self.summary.elapsed_seconds = round(time.monotonic() - started, 3)
            self.summary.held_back_seconds = round(self.backpressure.waited_seconds, 3)
            if self.progress:
                self.progress.close()
        self.summary.complete = exhausted and not self.summary.failed
        return self.summary
